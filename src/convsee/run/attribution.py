"""Which pixels decide a class: saliency (the input gradient) and Grad-CAM on conv2.

saliency: |d logit_target / d input|, per pixel.
Grad-CAM (Selvaraju et al. 2017) on conv2's output A (16x8x8): alpha_c is the spatial mean
of d logit_target / d A_c, the map is ReLU(sum_c alpha_c A_c), drawn on the input by placing
each of its pixels at the centre of its receptive field.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..datasets.idx import MEAN, STD
from .predict import batch

__all__ = ["saliency", "grad_cam"]


def _eval(model):
    was = model.training
    model.eval()
    return was


def saliency(model, image: np.ndarray, target: int) -> np.ndarray:
    """(28, 28) absolute gradient of the target logit w.r.t. the [0, 1] input pixels."""
    was = _eval(model)
    try:
        x = torch.from_numpy(np.asarray(image, np.float32)[None]).requires_grad_(True)
        logits = model((x[:, None] - MEAN) / STD)
        (grad,) = torch.autograd.grad(logits[0, target], x)
    finally:
        model.train(was)
    return grad[0].abs().numpy()


def grad_cam(model, image: np.ndarray, target: int):
    """(cam 8x8 >= 0, cam upsampled to 28x28, alpha per conv2 channel)."""
    was = _eval(model)
    store = {}
    hook = model.conv2.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        logits = model(batch([image]))
        a = store["a"]
        (g,) = torch.autograd.grad(logits[0, target], a)
    finally:
        hook.remove()
        model.train(was)
    alpha = g[0].mean((1, 2))
    cam = F.relu((alpha[:, None, None] * a[0]).sum(0)).detach()
    # conv2 pixel i sees input rows 2i..2i+13, centred at 2i + 6.5: sample the 8x8 map there
    pos = (torch.arange(28, dtype=torch.float32) - 6.5) / 2 / 7 * 2 - 1  # align_corners=True
    gy, gx = torch.meshgrid(pos, pos, indexing="ij")
    grid = torch.stack([gx, gy], -1)[None]
    big = F.grid_sample(
        cam[None, None], grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return cam.numpy(), big[0, 0].numpy(), alpha.detach().numpy()
