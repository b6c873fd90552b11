"""Figures composed from arrays: activation grids, vector strips, probabilities, kernels,
sample sheets and the confusion matrix. Inputs are NumPy arrays and plain values; outputs
are Pillow images. Nothing here runs a model.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .core import ACCENT, BG, FG, MUTED, apply_cmap, colorbar, colormap, font, text_size, upscale

__all__ = [
    "MapGrid",
    "map_grid",
    "vector_strip",
    "probability_bars",
    "sample_sheet",
    "kernel_sheet",
    "diff_grid",
    "confusion_image",
]


def confusion_image(conf, classes: list[str], title: str = "", cell: int = 44) -> Image.Image:
    """Confusion matrix [true][pred] as a heat map with counts; the diagonal in blue."""
    m = np.asarray(conf, dtype=np.int64)
    k = len(classes)
    left, top = 110, 80
    w, h = left + k * cell + 30, top + k * cell + 30
    img = Image.new("RGB", (w, h), BG)
    d = ImageDraw.Draw(img)
    d.text((w // 2, 20), title or "confusion matrix", fill=FG, font=font(18), anchor="mm")
    d.text((left + k * cell // 2, 50), "predicted", fill=MUTED, font=font(13), anchor="mm")
    d.text((12, top + k * cell // 2), "true", fill=MUTED, font=font(13), anchor="lm")
    off = m - np.diag(np.diag(m))
    blues, reds = colormap("Blues"), colormap("Reds")
    dmax = max(1, int(np.diag(m).max(initial=0)))
    omax = max(1, int(off.max(initial=0)))
    for i in range(k):
        d.text(
            (left - 8, top + i * cell + cell // 2),
            classes[i][:10],
            fill=FG,
            font=font(12),
            anchor="rm",
        )
        d.text(
            (left + i * cell + cell // 2, top - 8),
            classes[i][:5],
            fill=FG,
            font=font(12),
            anchor="md",
        )
        for j in range(k):
            v = int(m[i, j])
            if i == j:
                c = apply_cmap(np.array(v), 0, dmax, blues)
            elif v:
                c = apply_cmap(np.array(np.sqrt(v)), 0, np.sqrt(omax) * 1.4, reds)
            else:
                c = np.array(BG)
            x, y = left + j * cell, top + i * cell
            d.rectangle(
                [x, y, x + cell - 1, y + cell - 1],
                fill=tuple(int(t) for t in c),
                outline=(230, 230, 235),
            )
            if v:
                dark = float(np.mean(c)) < 140
                d.text(
                    (x + cell // 2, y + cell // 2),
                    str(v),
                    font=font(12),
                    anchor="mm",
                    fill=(255, 255, 255) if dark else FG,
                )
    return img


TILE = 128  # target on-screen size of one activation map, px
GAP = 14  # space between tiles, px


def _title(d: ImageDraw.ImageDraw, x: int, lines: list[str]) -> None:
    d.text((x, 14), lines[0], fill=FG, font=font(20))
    for i, line in enumerate(lines[1:]):
        d.text((x, 42 + 18 * i), line, fill=MUTED, font=font(13))


def _gray(image: np.ndarray, size: int) -> Image.Image:
    g = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    k = max(1, size // g.shape[0])
    return Image.fromarray(upscale(g, k), "L").convert("RGB")


def input_panel(img: Image.Image, d: ImageDraw.ImageDraw, xy, image: np.ndarray, caption: str):
    """The 28x28 the model saw, enlarged, with a caption under it."""
    x, y = xy
    d.text((x, y - 6), "input (as the model sees it)", fill=MUTED, font=font(12), anchor="ls")
    img.paste(_gray(image, 168), (x, y))
    d.rectangle([x - 1, y - 1, x + 168, y + 168], outline=MUTED)
    for i, line in enumerate(caption.split("\n")):
        d.text((x, y + 180 + 18 * i), line, fill=FG if i == 0 else MUTED, font=font(14))


class MapGrid:
    """Layout of one layer's picture: input panel, a grid of channel maps, a colour bar.

    The parts shared by every input (title, channel labels, frames, kernels, colour bar) are
    drawn once; draw() copies that base and adds one input's image, caption and maps.
    shape: (C, H, W); kernels: (C, Cin, k, k) drawn under each map; bar: (vmin, vmax) of
    the colour bar, None when every map has its own range.
    """

    def __init__(self, shape, lut, title, kernels=None, bar=None, own_ranges=False):
        c, h, w = shape
        self.lut, self.own_ranges, self.c = lut, own_ranges, c
        # small maps (conv2, pool2: 8x8, 4x4) at 96 px: 12 px a value is plenty, and it keeps
        # the 16-channel picture small enough to compose and encode in a few ms
        self.k = max(1, (TILE if max(h, w) > 8 else 96) // max(h, w))
        self.th, self.tw = h * self.k, w * self.k
        cols = c if c <= 8 else int(np.ceil(c / 2)) if c <= 16 else int(np.ceil(np.sqrt(c * 2)))
        rows = int(np.ceil(c / cols))
        kern_h = 0
        if kernels is not None:
            ks = kernels.shape[-1]
            kscale = max(2, (self.tw - (kernels.shape[1] - 1) * 2) // (kernels.shape[1] * ks))
            kern_h = ks * kscale + 6
        cell_h = self.th + 22 + kern_h + 16
        left, grid_w = 210, cols * (self.tw + GAP)
        height = max(120 + rows * cell_h, 120 + 240) + 10
        self.pos = [
            (left + (i % cols) * (self.tw + GAP), 120 + (i // cols) * cell_h) for i in range(c)
        ]
        base = Image.new("RGB", (left + grid_w + 110, height), BG)
        d = ImageDraw.Draw(base)
        _title(d, 20, title)
        for i, (x, y) in enumerate(self.pos):
            d.text((x, y - 4), f"ch {i}", fill=FG, font=font(12), anchor="ls")
            d.rectangle([x - 1, y - 1, x + self.tw, y + self.th], outline=(200, 200, 205))
            if kernels is not None:
                _kernel_row(base, d, (x, y + self.th + 22), kernels[i], kscale)
        self.bar_at = (left + grid_w + 10, 130, min(240, rows * cell_h - 30))
        if bar is not None:
            colorbar(d, base, self.bar_at[:2], self.bar_at[2], *bar, lut)
        elif own_ranges:
            d.text(
                (left + grid_w + 10, 130), "each map:\nits own\nrange", fill=MUTED, font=font(12)
            )
        self.base = base

    def draw(self, image, maps, ranges, caption: str, dead=None, bar=None) -> Image.Image:
        """bar: (vmin, vmax) of a colour bar for this input only (one range per input)."""
        img = self.base.copy()
        d = ImageDraw.Draw(img)
        if bar is not None:
            colorbar(d, img, self.bar_at[:2], self.bar_at[2], *bar, self.lut)
        input_panel(img, d, (20, 120), image, caption)
        same = all(r == ranges[0] for r in ranges)
        colored = (
            apply_cmap(maps, *ranges[0], self.lut)
            if same
            else np.stack([apply_cmap(maps[i], *ranges[i], self.lut) for i in range(self.c)])
        )
        colored = colored.repeat(self.k, axis=1).repeat(self.k, axis=2)
        for i, (x, y) in enumerate(self.pos):
            img.paste(Image.fromarray(colored[i]), (x, y))
            if dead is not None and dead[i]:
                d.text((x, y - 4), f"ch {i}  dead", fill=ACCENT, font=font(12), anchor="ls")
                d.rectangle([x - 1, y - 1, x + self.tw, y + self.th], outline=ACCENT)
            if self.own_ranges:
                lo, hi = ranges[i]
                d.text((x, y + self.th + 4), f"{lo:.2g} .. {hi:.2g}", fill=MUTED, font=font(11))
        return img


def map_grid(image, maps, ranges, lut, title, caption, dead=None, kernels=None):
    """One layer's picture for one input (see MapGrid); no colour bar if the ranges differ."""
    own = any(r != ranges[0] for r in ranges)
    grid = MapGrid(maps.shape, lut, title, kernels, None if own else ranges[0], own)
    return grid.draw(image, maps, ranges, caption, dead)


def _kernel_row(img, d, xy, kern: np.ndarray, scale: int) -> None:
    """One output channel's kernels (Cin, k, k) on a signed scale, side by side."""
    lim = float(np.abs(kern).max()) or 1.0
    lut = colormap("RdBu_r")
    x, y = xy
    for j in range(kern.shape[0]):
        tile = upscale(apply_cmap(kern[j], -lim, lim, lut), scale)
        img.paste(Image.fromarray(tile), (x, y))
        x += tile.shape[1] + 2


def vector_strip(
    image: np.ndarray,
    values: np.ndarray,
    vrange: tuple[float, float],
    lut: np.ndarray,
    title: list[str],
    caption: str,
    labels: list[str] | None = None,
) -> Image.Image:
    """A vector layer as rows of labelled cells (index every 10), with a colour bar."""
    n = values.shape[0]
    per_row = 30 if n > 40 else n
    cell = 22 if labels is None else 40
    rows = int(np.ceil(n / per_row))
    left = 210
    width = left + per_row * cell + 120
    height = max(120 + rows * (cell + 22) + 20, 120 + 240)
    img = Image.new("RGB", (width, height), BG)
    d = ImageDraw.Draw(img)
    _title(d, 20, title)
    input_panel(img, d, (20, 120), image, caption)
    colors = apply_cmap(values, *vrange, lut)
    for i in range(n):
        r, q = divmod(i, per_row)
        x, y = left + q * cell, 130 + r * (cell + 22)
        d.rectangle([x, y, x + cell - 2, y + cell - 2], fill=tuple(int(v) for v in colors[i]))
        if labels is not None:
            d.text(
                (x + cell // 2, y + cell + 2), labels[i][:6], fill=FG, font=font(11), anchor="mt"
            )
        elif i % 10 == 0:
            d.text((x, y + cell + 2), str(i), fill=MUTED, font=font(10))

    colorbar(d, img, (left + per_row * cell + 14, 130), 200, *vrange, lut)
    return img


def probability_bars(
    image: np.ndarray,
    probs: np.ndarray,
    logits: np.ndarray,
    classes: list[str],
    title: list[str],
    caption: str,
    label: int | None = None,
) -> Image.Image:
    """fc3 as class probabilities: one bar per class, the prediction in the accent colour."""
    n = len(classes)
    left, bar_w, row = 330, 360, 26
    height = max(120 + n * row + 30, 120 + 240)
    img = Image.new("RGB", (left + bar_w + 250, height), BG)
    d = ImageDraw.Draw(img)
    _title(d, 20, title)
    input_panel(img, d, (20, 120), image, caption)
    pred = int(np.argmax(probs))
    d.text((left + bar_w + 240, 112), "logit", fill=MUTED, font=font(11), anchor="rs")
    for i in range(n):
        y = 120 + i * row
        color = ACCENT if i == pred else (90, 120, 200)
        d.text((left - 10, y + row // 2 - 2), classes[i][:14], fill=FG, font=font(14), anchor="rm")
        d.rectangle([left, y + 3, left + bar_w, y + row - 5], fill=(238, 238, 242))
        d.rectangle([left, y + 3, left + max(1, int(bar_w * probs[i])), y + row - 5], fill=color)
        text = f"{probs[i]:.1%}" + ("  predicted" if i == pred else "")
        text += "  (true)" if label is not None and i == label else ""
        d.text((left + bar_w + 8, y + row // 2 - 2), text, fill=FG, font=font(13), anchor="lm")
        d.text(
            (left + bar_w + 240, y + row // 2 - 2),
            f"{logits[i]:+.2f}",
            fill=MUTED,
            font=font(12),
            anchor="rm",
        )
    return img


def sample_sheet(images, captions: list[str], title: str, cols: int = 5) -> Image.Image:
    """Inputs in a grid (the original's 2x5 plot of the samples), a caption under each."""
    n = len(images)
    rows = int(np.ceil(n / cols))
    size, ch = 112, 186
    widest = max(text_size(line, 12)[0] for cap in captions for line in cap.split("\n"))
    cw = max(150, widest + 18)
    img = Image.new("RGB", (cols * cw + 20, 60 + rows * ch), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 16), title, fill=FG, font=font(20))
    for i, (im, cap) in enumerate(zip(images, captions, strict=True)):
        r, q = divmod(i, cols)
        x, y = 20 + q * cw, 56 + r * ch
        img.paste(_gray(im, size), (x, y))
        for j, line in enumerate(cap.split("\n")):
            d.text((x, y + size + 6 + 15 * j), line, fill=FG if j == 0 else MUTED, font=font(12))
    return img


def kernel_sheet(
    conv1: np.ndarray,
    conv2: np.ndarray,
    lut: np.ndarray,
    lim: float | None = None,
    title: str = "convolution kernels (weights)",
) -> Image.Image:
    """conv1's 6 and conv2's 16x6 filters, all on one signed scale centred on 0 (+-lim)."""
    if lim is None:
        lim = float(max(np.abs(conv1).max(), np.abs(conv2).max()))
    s1, s2, gap = 16, 9, 6
    k = conv1.shape[-1]
    w = 110 + conv2.shape[1] * (k * s2 + gap) + 120
    h = 90 + k * s1 + 70 + conv2.shape[0] * (k * s2 + gap) + 20
    img = Image.new("RGB", (max(w, 110 + 6 * (k * s1 + 10) + 120), h), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 14), title, fill=FG, font=font(20))
    d.text(
        (20, 42),
        f"one signed scale for both layers: blue < 0 < red, |w| <= {lim:.3g}",
        fill=MUTED,
        font=font(13),
    )
    y = 90
    d.text((20, y + k * s1 // 2), "conv1", fill=FG, font=font(14), anchor="lm")
    for i in range(conv1.shape[0]):
        x = 110 + i * (k * s1 + 10)
        d.text((x, y - 4), f"out {i}", fill=MUTED, font=font(11), anchor="ls")
        img.paste(Image.fromarray(upscale(apply_cmap(conv1[i, 0], -lim, lim, lut), s1)), (x, y))
    y += k * s1 + 50
    d.text((20, y - 6), "conv2", fill=FG, font=font(14), anchor="ls")
    for j in range(conv2.shape[1]):
        d.text((110 + j * (k * s2 + gap), y - 6), f"in {j}", fill=MUTED, font=font(11), anchor="ls")
    for i in range(conv2.shape[0]):
        yy = y + i * (k * s2 + gap)
        d.text((100, yy + k * s2 // 2), f"out {i}", fill=MUTED, font=font(11), anchor="rm")
        for j in range(conv2.shape[1]):
            tile = upscale(apply_cmap(conv2[i, j], -lim, lim, lut), s2)
            img.paste(Image.fromarray(tile), (110 + j * (k * s2 + gap), yy))

    colorbar(d, img, (img.width - 90, 100), 200, -lim, lim, lut)
    return img


def diff_grid(
    a_img: np.ndarray,
    b_img: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    names: tuple[str, str],
    title: list[str],
    lut: np.ndarray,
    lut_diff: np.ndarray,
    vrange: tuple[float, float],
) -> Image.Image:
    """Rows: A's maps, B's maps, A - B; per channel the cosine similarity of A and B."""
    c, h, w = a.shape
    k = max(1, 96 // max(h, w))
    t = h * k
    left, row_h = 40 + t, t + 40
    width = left + c * (t + 8) + 110
    img = Image.new("RGB", (max(width, 620), 110 + 3 * row_h + 10), BG)
    d = ImageDraw.Draw(img)
    _title(d, 20, title)
    diff = a - b
    lim = float(np.abs(diff).max()) or 1.0
    for r, (label, inp, maps) in enumerate(
        [(names[0], a_img, a), (names[1], b_img, b), ("A - B", None, diff)]
    ):
        y = 110 + r * row_h
        if inp is not None:
            img.paste(_gray(inp, t), (20, y))
        if inp is None:
            d.text((20, y + t // 2), label, fill=FG, font=font(12), anchor="lm")
        else:
            d.text((20, y + t + 4), label[:18], fill=FG, font=font(12))
        for i in range(c):
            x = left + i * (t + 8)
            rng = (-lim, lim) if r == 2 else vrange
            tile = apply_cmap(maps[i], *rng, lut_diff if r == 2 else lut)
            img.paste(Image.fromarray(upscale(tile, k)), (x, y))
            if r == 0:
                d.text((x, y - 4), f"ch {i}", fill=MUTED, font=font(11), anchor="ls")
            if r == 2:
                va, vb = a[i].ravel(), b[i].ravel()
                den = float(np.linalg.norm(va) * np.linalg.norm(vb))
                cos = float(va @ vb) / den if den > 0 else float("nan")
                d.text((x, y + t + 4), f"cos {cos:.2f}", fill=MUTED, font=font(11))
    return img
