"""Frames of the convolution and pooling animations: arrays in, Pillow images out."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .core import ACCENT, BG, FG, MUTED, apply_cmap, colormap, font, upscale

__all__ = ["conv_frame", "pool_frame"]


def _grid(values, lo, hi, lut, cell, numbers=False) -> Image.Image:
    img = Image.fromarray(upscale(apply_cmap(values, lo, hi, lut), cell))
    if numbers:
        d = ImageDraw.Draw(img)
        for (r, c), v in np.ndenumerate(values):
            t = (v - lo) / (hi - lo or 1)
            d.text(
                (c * cell + cell // 2, r * cell + cell // 2),
                f"{v:.2f}",
                anchor="mm",
                font=font(9),
                fill=(255, 255, 255) if t < 0.2 or t > 0.8 else FG,
            )
    return img


def _filled_map(img, d, xy, out, filled, zoom, lut, rng):
    h, w = out.shape
    mask = np.zeros(h * w, bool)
    mask[:filled] = True
    mask = mask.reshape(h, w)
    colored = apply_cmap(out, *rng, lut)
    colored[~mask] = (235, 235, 240)
    img.paste(Image.fromarray(upscale(colored, zoom)), xy)
    r, c = divmod(filled - 1, w)
    d.rectangle(
        [
            xy[0] + c * zoom,
            xy[1] + r * zoom,
            xy[0] + (c + 1) * zoom - 1,
            xy[1] + (r + 1) * zoom - 1,
        ],
        outline=ACCENT,
        width=2,
    )
    return r, c


def conv_frame(x, w, b, steps, filled: int, title: str) -> Image.Image:
    """One frame: the input(s) with the window, window x kernel = products, the map so far."""
    win, products, out = steps
    cin, k = w.shape[0], w.shape[-1]
    hout, wout = out.shape
    r, c = divmod(filled - 1, wout)
    signed = colormap("RdBu_r")
    rng = (-float(np.abs(out).max()), float(np.abs(out).max()))
    zin = 224 // x.shape[-1] if cin == 1 else 96 // x.shape[-1]
    img = Image.new("RGB", (1120, 330), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 14), title, fill=FG, font=font(20))
    total = float(products[r, c].sum())
    d.text(
        (20, 42),
        f"output ({r}, {c}) = sum of {products[r, c].size} products {total:+.3f} "
        f"+ bias {b:+.3f} = {out[r, c]:+.3f}",
        fill=MUTED,
        font=font(14),
    )
    y0 = 90
    gray = colormap("gray")
    for j in range(cin):  # inputs with the window outlined
        x0 = 20 + (j % 3) * (x.shape[-1] * zin + 12)
        yy = y0 + (j // 3) * (x.shape[-1] * zin + 22)
        lo, hi = float(x.min()), float(x.max())
        img.paste(Image.fromarray(upscale(apply_cmap(x[j], lo, hi, gray), zin)), (x0, yy))
        d.rectangle(
            [x0 + c * zin, yy + r * zin, x0 + (c + k) * zin - 1, yy + (r + k) * zin - 1],
            outline=ACCENT,
            width=2,
        )
        if cin > 1:
            d.text(
                (x0, yy - 3),
                f"in {j}: {products[r, c, j].sum():+.2f}",
                fill=FG,
                font=font(11),
                anchor="ls",
            )
    mid = 20 + (240 if cin == 1 else 3 * (x.shape[-1] * zin + 12)) + 10
    if cin == 1:
        lim = float(np.abs(products).max()) or 1.0
        wl = float(np.abs(w).max()) or 1.0
        cell = 30
        for i, (label, arr, lo, hi, lut) in enumerate(
            [
                ("window", win[r, c, 0], float(x.min()), float(x.max()), gray),
                ("x kernel", w[0], -wl, wl, signed),
                ("= products", products[r, c, 0], -lim, lim, signed),
            ]
        ):
            xx = mid + i * (k * cell + 16)
            d.text((xx, y0 - 4), label, fill=FG, font=font(12), anchor="ls")
            img.paste(_grid(arr, lo, hi, lut, cell, numbers=True), (xx, y0))
    else:
        d.text(
            (mid, y0 - 4),
            "per input channel: sum(window x kernel)",
            fill=FG,
            font=font(12),
            anchor="ls",
        )
        for j in range(cin):
            d.text(
                (mid, y0 + 10 + j * 20),
                f"in {j}: {products[r, c, j].sum():+.3f}",
                fill=FG,
                font=font(13),
            )
        d.text(
            (mid, y0 + 14 + cin * 20),
            f"+ bias {b:+.3f} = {out[r, c]:+.3f}",
            fill=ACCENT,
            font=font(13),
        )
    zo = 192 // hout
    ox = img.width - hout * zo - 30
    d.text((ox, y0 - 4), f"output map {hout}x{wout}", fill=FG, font=font(12), anchor="ls")
    _filled_map(img, d, (ox, y0), out, filled, zo, signed, rng)
    return img


def pool_frame(x, steps, filled: int, title: str) -> Image.Image:
    """One frame of 2x2 max pooling over a (non-negative) map."""
    win, out = steps
    hout, wout = out.shape
    r, c = divmod(filled - 1, wout)
    lut = colormap("viridis")
    rng = (0.0, float(x.max()) or 1.0)
    img = Image.new("RGB", (860, 360), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 14), title, fill=FG, font=font(20))
    d.text(
        (20, 42),
        f"output ({r}, {c}) = max of the 2x2 window = {out[r, c]:.3f}",
        fill=MUTED,
        font=font(14),
    )
    z = 240 // x.shape[0]
    img.paste(Image.fromarray(upscale(apply_cmap(x, *rng, lut), z)), (20, 90))
    d.rectangle(
        [20 + 2 * c * z, 90 + 2 * r * z, 20 + (2 * c + 2) * z - 1, 90 + (2 * r + 2) * z - 1],
        outline=ACCENT,
        width=2,
    )
    d.text((300, 86), "window", fill=FG, font=font(12), anchor="ls")
    img.paste(_grid(win[r, c], *rng, lut, 40, numbers=True), (300, 90))
    zo = 240 // hout
    d.text((420, 86), f"pooled map {hout}x{wout}", fill=FG, font=font(12), anchor="ls")
    _filled_map(img, d, (420, 90), out, filled, zo, lut, rng)
    return img
