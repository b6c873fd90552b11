"""The attribution picture: the input, saliency and Grad-CAM, each with its colour scale.

Arrays in, a Pillow image out; nothing here runs a model. Every panel shows the input at its
own pixel grid (enlarged by a whole factor, or reduced smoothly when it is large); Grad-CAM is
shown twice: at the layer's own resolution and placed on the input.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .core import BG, FG, MUTED, apply_cmap, colorbar, colormap, font, upscale

__all__ = ["attribution_image", "overlay", "fit_panel"]

PANEL = 200  # px, the longer side of every panel
BAR_W = 84  # px, a colour bar with its numbers


def fit_panel(rgb: np.ndarray, size: int = PANEL, smooth: bool = True) -> Image.Image:
    """(h, w, 3) uint8 enlarged by a whole factor (sharp pixels) to about `size` px, or
    reduced to it (smoothly for pictures, nearest for maps when smooth=False)."""
    h, w = rgb.shape[:2]
    k = size // max(h, w)
    if k >= 1:
        return Image.fromarray(upscale(rgb, k))
    s = size / max(h, w)
    im = Image.fromarray(rgb)
    how = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), how)


def _rgb(image: np.ndarray) -> np.ndarray:
    a = np.round(np.clip(image, 0, 1) * 255).astype(np.float32)
    return np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a


def overlay(image: np.ndarray, heat: np.ndarray, lut, vmax: float, alpha: float = 0.6):
    """heat coloured on [0, vmax] at `alpha` opacity over the input in gray (a colour input
    by its luminance, so the heat colours stay readable)."""
    g = np.asarray(image, np.float32)
    if g.ndim == 3:
        g = g[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    h = apply_cmap(heat, 0, vmax or 1.0, lut).astype(np.float32)
    return np.round(_rgb(g) * (1 - alpha) + h * alpha).astype(np.uint8)


def attribution_image(
    image: np.ndarray,
    sal: np.ndarray,
    cam: np.ndarray,
    placed: np.ndarray,
    title: str,
    lines: list[str],
    sal_label: str,
    cam_label: str,
) -> Image.Image:
    """Input | saliency, saliency over the input, its scale | Grad-CAM on the layer's grid,
    Grad-CAM over the input, its scale. image (H, W) or (H, W, 3) in [0, 1]; sal, placed
    (H, W) >= 0; cam (h, w) >= 0."""
    lut = colormap("inferno")
    smax = float(sal.max()) or 1.0
    cmax = float(cam.max()) or 1.0
    h, w = image.shape[:2]
    panels = [
        ("input", fit_panel(_rgb(image).astype(np.uint8)), None),
        ("saliency", fit_panel(apply_cmap(sal, 0, smax, lut), smooth=False), None),
        ("saliency over the input", fit_panel(overlay(image, sal, lut, smax)), (smax, sal_label)),
        (
            f"Grad-CAM, its own {cam.shape[0]}x{cam.shape[1]} grid",
            fit_panel(apply_cmap(cam, 0, cmax, lut), smooth=False),
            None,
        ),
        (
            f"Grad-CAM placed on the {h}x{w} input",
            fit_panel(overlay(image, placed, lut, cmax)),
            (cmax, cam_label),
        ),
    ]
    top = 96 + 18 * len(lines)
    x = 20
    xs = []
    for _, pic, bar in panels:
        xs.append(x)
        x += pic.width + 22 + (BAR_W if bar else 0)
    height = top + max(p.height for _, p, _ in panels) + 56
    img = Image.new("RGB", (x + 10, height), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 14), title, fill=FG, font=font(20))
    for i, line in enumerate(lines):
        d.text((20, 44 + 18 * i), line, fill=MUTED, font=font(13))
    for xx, (label, pic, bar) in zip(xs, panels, strict=True):
        d.text((xx, top - 8), label, fill=FG, font=font(12), anchor="ls")
        img.paste(pic, (xx, top))
        d.rectangle([xx - 1, top - 1, xx + pic.width, top + pic.height], outline=(200, 200, 205))
        if bar:
            vmax, name = bar
            bx = xx + pic.width + 14
            colorbar(d, img, (bx, top), pic.height, 0.0, vmax, lut)
            d.text((bx - 4, top + pic.height + 16), name, fill=MUTED, font=font(11), anchor="ls")
    d.text(
        (20, height - 22),
        "overlays: the colour scale at 60% opacity over the input in gray; "
        "each colour bar gives the range of the two panels before it",
        fill=MUTED,
        font=font(11),
    )
    return img
