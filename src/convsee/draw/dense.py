"""The picture of a dense output: one class's probability at every position of a fully
convolutional model's score map (MTCNN's PNet: face or not for every 12x12 window), on its own
grid and placed over the input by receptive field.

Arrays in, a Pillow image out; nothing here runs a model.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .core import BG, FG, MUTED, apply_cmap, colorbar, colormap, font, upscale

__all__ = ["placed_map", "dense_map_image"]

PANEL = 240  # px, the longer side of each panel


def placed_map(prob: np.ndarray, field, hw: tuple[int, int]) -> np.ndarray:
    """prob (h, w) at input resolution hw: every input pixel takes the value of the position
    whose receptive-field centre is nearest; pixels farther than half a stride beyond the
    outermost centres are NaN (no position is centred there). field None: stretched."""
    h, w = prob.shape
    H, W = hw
    if field is None or field.whole:
        rows = np.minimum(np.arange(H) * h // H, h - 1)
        cols = np.minimum(np.arange(W) * w // W, w - 1)
        return prob[rows][:, cols].astype(np.float32)
    out = []
    for n, size, start, stride in (
        (h, H, field.start[0], field.stride[0]),
        (w, W, field.start[1], field.stride[1]),
    ):
        pos = (np.arange(size) - start) / stride
        idx = np.clip(np.round(pos), 0, n - 1).astype(int)
        inside = (pos >= -0.5) & (pos <= n - 0.5)
        out.append((idx, inside))
    (ri, rin), (ci, cin) = out
    placed = prob[ri][:, ci].astype(np.float32)
    placed[~(rin[:, None] & cin[None, :])] = np.nan
    return placed


def _rgb(image: np.ndarray) -> np.ndarray:
    a = np.clip(np.asarray(image, np.float32), 0, 1)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, -1)
    return a[..., :3]


def _fit(rgb: np.ndarray, size: int) -> Image.Image:
    h, w = rgb.shape[:2]
    k = max(1, size // max(h, w))
    im = Image.fromarray(upscale(rgb, k))
    if max(im.size) > size:
        s = size / max(h, w)
        im = Image.fromarray(rgb).resize((round(w * s), round(h * s)), Image.Resampling.NEAREST)
    return im


def dense_map_image(
    image: np.ndarray,
    prob: np.ndarray,
    field,
    title: str,
    lines: list[str],
    cmap: str = "magma",
) -> Image.Image:
    """Input | the class probability on the output's own grid | placed over the input (in
    gray, the colour at 60%), with the scale fixed to [0, 1]. image (H, W) or (H, W, 3) in
    [0, 1]; prob (h, w) in [0, 1]; field: the output's receptive field (spec.Field) or None."""
    lut = colormap(cmap)
    rgb = _rgb(image)
    grid = apply_cmap(np.asarray(prob, np.float32), 0.0, 1.0, lut)
    placed = placed_map(prob, field, rgb.shape[:2])
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    heat = apply_cmap(np.nan_to_num(placed, nan=0.0), 0.0, 1.0, lut).astype(np.float32) / 255
    over = np.repeat(gray[..., None], 3, -1) * 0.4 + heat * 0.6
    over = np.where(np.isnan(placed)[..., None], np.repeat(gray[..., None], 3, -1), over)
    panels = [
        (_fit(np.round(rgb * 255).astype(np.uint8), PANEL), "input (as the model sees it)"),
        (_fit(grid, PANEL), f"probability at each of {prob.shape[0]}x{prob.shape[1]} positions"),
        (_fit(np.round(over * 255).astype(np.uint8), PANEL), "placed on the input"),
    ]
    top = 40 + 18 * len(lines) + 24
    width = 20 + sum(p.width + 24 for p, _ in panels) + 70
    height = top + max(p.height for p, _ in panels) + 20
    img = Image.new("RGB", (max(width, 20 + 8 * max(len(t) for t in [title, *lines])), height), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 14), title, fill=FG, font=font(18))
    for i, line in enumerate(lines):
        d.text((20, 40 + 18 * i), line, fill=MUTED, font=font(13))
    x = 20
    for pic, caption in panels:
        d.text((x, top - 6), caption, fill=MUTED, font=font(12), anchor="ls")
        img.paste(pic, (x, top))
        d.rectangle([x - 1, top - 1, x + pic.width, top + pic.height], outline=MUTED)
        x += pic.width + 24
    colorbar(d, img, (x, top), panels[0][0].height, 0.0, 1.0, lut, label="p")
    return img
