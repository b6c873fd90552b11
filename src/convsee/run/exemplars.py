"""Top-k exemplars: for every channel, the dataset patches that excite it most.

For conv1 and conv2 each image contributes at most one patch, taken where the channel peaks
in it and cropped to that output pixel's receptive field in the input (conv1: 5x5, conv2:
14x14); fc units rank whole images. The Deep Visualization Toolbox's "top 9" idea, in
seconds on the whole MNIST test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..datasets.idx import normalize
from .capture import activations

__all__ = ["RF", "Exemplars", "top_exemplars"]

# layer -> (stride, size) of one output pixel's receptive field in the 28x28 input
RF = {
    "conv1": (1, 5),
    "relu1": (1, 5),
    "pool1": (2, 6),
    "conv2": (2, 14),
    "relu2": (2, 14),
    "pool2": (4, 16),
}


@dataclass
class Exemplars:
    layer: str
    patches: np.ndarray  # (C, k, h, w) in [0, 1]
    values: np.ndarray  # (C, k) the channel's peak activation in that image
    indices: np.ndarray  # (C, k) image index in the dataset
    positions: np.ndarray  # (C, k, 2) row, col of the peak in the layer's map (0 for fc)


@torch.no_grad()
def top_exemplars(model, images: torch.Tensor, layer, k: int = 9, batch: int = 2000) -> Exemplars:
    """images: (N, 28, 28) uint8 or [0, 1] float; layer: a spec.Layer of LeNet-5.
    Ties go to the lower image index."""
    name = layer.name
    peaks, where = [], []
    for i in range(0, len(images), batch):
        acts, _ = activations(model, normalize(images[i : i + batch]), [layer])
        a = torch.from_numpy(acts[name])
        flat = a.reshape(a.shape[0], a.shape[1], -1)
        v, idx = flat.max(2)  # (n, C): each image's peak per channel
        peaks.append(v)
        where.append(idx)
    peaks, where = torch.cat(peaks), torch.cat(where)  # (N, C)
    k = min(k, len(images))
    # stable sort, descending: equal values keep dataset order
    order = torch.sort(-peaks, dim=0, stable=True).indices[:k].T  # (C, k)
    c = peaks.shape[1]
    values = torch.gather(peaks.T, 1, order).numpy()
    flat_pos = torch.gather(where.T, 1, order).numpy()
    imgs = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    if name in RF:
        width = acts[name].shape[-1]
        rows, cols = flat_pos // width, flat_pos % width
        stride, size = RF[name]
        patches = np.zeros((c, k, size, size), np.float32)
        for ch in range(c):
            for j in range(k):
                r0, c0 = rows[ch, j] * stride, cols[ch, j] * stride
                crop = imgs[order[ch, j], r0 : r0 + size, c0 : c0 + size].numpy()
                patches[ch, j, : crop.shape[0], : crop.shape[1]] = crop
        positions = np.stack([rows, cols], -1)
    else:
        patches = imgs[order.reshape(-1)].numpy().reshape(c, k, 28, 28)
        positions = np.zeros((c, k, 2), np.int64)
    return Exemplars(name, patches, values, order.numpy(), positions)
