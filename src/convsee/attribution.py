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
from PIL import Image, ImageDraw

from .data import MEAN, STD
from .draw import BG, FG, MUTED, apply_cmap, colormap, font, upscale
from .predict import batch

__all__ = ["saliency", "grad_cam", "attribution_image"]


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


def _overlay(image, heat, lut, alpha=0.6):
    g = np.repeat(np.clip(image, 0, 1)[..., None], 3, -1) * 255
    h = apply_cmap(heat, 0, float(heat.max()) or 1.0, lut).astype(np.float32)
    w = alpha * (heat / (heat.max() or 1.0))[..., None]
    return np.round(g * (1 - w) + h * w).astype(np.uint8)


def attribution_image(image, sal, cam_big, target_name, pred_line, title) -> Image.Image:
    """Input, saliency, saliency over input, Grad-CAM over input; 28x28 panels at 7x."""
    z, s = 7, 196
    lut = colormap("inferno")
    panels = [
        ("input", np.repeat((np.clip(image, 0, 1) * 255).astype(np.uint8)[..., None], 3, -1)),
        ("saliency |d logit / d pixel|", apply_cmap(sal, 0, float(sal.max()) or 1.0, lut)),
        ("saliency over the input", _overlay(image, sal, lut)),
        ("Grad-CAM (conv2) over the input", _overlay(image, cam_big, lut)),
    ]
    img = Image.new("RGB", (20 + len(panels) * (s + 24), 110 + s + 40), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 14), title, fill=FG, font=font(20))
    d.text((20, 42), f"target class: {target_name} · {pred_line}", fill=MUTED, font=font(13))
    for i, (label, arr) in enumerate(panels):
        x = 20 + i * (s + 24)
        d.text((x, 96), label, fill=FG, font=font(12), anchor="ls")
        img.paste(Image.fromarray(upscale(arr, z)), (x, 104))
    return img
