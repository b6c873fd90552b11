"""Pictures of the views beyond activation maps: exemplars, optimised inputs (attribution:
draw/attribution.py).

Arrays in, Pillow images out; nothing here runs a model.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .core import BG, FG, MUTED, font, upscale

__all__ = ["exemplar_image", "optimize_image"]


def exemplar_image(ex, title: str, max_rows: int = 32) -> Image.Image:
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


def optimize_image(images: np.ndarray, values, baseline, title: str, labels=None):
    """A grid of optimised inputs, the reached value and the random-input baseline under each."""
    n = len(images)
    cols = min(n, 8)
    rows = int(np.ceil(n / cols))
    z, t = 4, 112
    img = Image.new("RGB", (20 + cols * (t + 16), 80 + rows * (t + 40)), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 14), title, fill=FG, font=font(20))
    d.text((20, 42), "value reached (random inputs: mean) under each", fill=MUTED, font=font(13))
    for i in range(n):
        x, y = 20 + (i % cols) * (t + 16), 76 + (i // cols) * (t + 40)
        g = np.round(np.clip(images[i], 0, 1) * 255).astype(np.uint8)
        img.paste(Image.fromarray(upscale(g, z), "L").convert("RGB"), (x, y))
        name = labels[i] if labels else f"ch {i}"
        d.text((x, y + t + 3), f"{name}: {values[i]:.3g}", fill=FG, font=font(11))
        d.text((x, y + t + 17), f"(random {baseline[i]:.3g})", fill=MUTED, font=font(10))
    return img
