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
from PIL import Image, ImageDraw

from .activations import activations
from .data import normalize
from .draw import BG, FG, MUTED, font, upscale

__all__ = ["RF", "Exemplars", "top_exemplars", "exemplar_image"]

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
def top_exemplars(
    model, images: torch.Tensor, layer: str, k: int = 9, batch: int = 2000
) -> Exemplars:
    """images: (N, 28, 28) uint8 or [0, 1] float. Ties go to the lower image index."""
    peaks, where = [], []
    for i in range(0, len(images), batch):
        acts, _ = activations(model, normalize(images[i : i + batch]), [layer])
        a = torch.from_numpy(acts[layer])
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
    if layer in RF:
        width = acts[layer].shape[-1]
        rows, cols = flat_pos // width, flat_pos % width
        stride, size = RF[layer]
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
    return Exemplars(layer, patches, values, order.numpy(), positions)


def exemplar_image(ex: Exemplars, title: str, max_rows: int = 32) -> Image.Image:
    """Rows: channels; columns: the top patches (value under each), then their mean."""
    c, k, h, w = ex.patches.shape
    c = min(c, max_rows)
    z = max(2, 56 // h) if h > 6 else 10
    t = h * z
    left, top, gap = 70, 80, 6
    width = left + (k + 1) * (t + gap) + 40
    img = Image.new("RGB", (width, top + c * (t + 22) + 10), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 14), title, fill=FG, font=font(20))
    d.text(
        (20, 42),
        f"each row: the top {k} patches for one channel (peak value under each), then their mean",
        fill=MUTED,
        font=font(13),
    )
    for ch in range(c):
        y = top + ch * (t + 22)
        d.text((left - 10, y + t // 2), f"ch {ch}", fill=FG, font=font(12), anchor="rm")
        for j in range(k + 1):
            x = left + j * (t + gap) + (gap if j == k else 0)
            p = ex.patches[ch].mean(0) if j == k else ex.patches[ch, j]
            g = np.round(np.clip(p, 0, 1) * 255).astype(np.uint8)
            img.paste(Image.fromarray(upscale(g, z), "L").convert("RGB"), (x, y))
            label = "mean" if j == k else f"{ex.values[ch, j]:.3g}"
            d.text((x, y + t + 2), label, fill=MUTED, font=font(10))
    return img
