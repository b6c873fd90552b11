"""Figures composed from arrays: activation grids, vector strips, probabilities, kernels,
sample sheets and the confusion matrix. Inputs are NumPy arrays and plain values; outputs
are Pillow images. Nothing here runs a model.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .core import (
    ACCENT,
    BG,
    FG,
    MUTED,
    apply_cmap,
    colorbar,
    colorbar_width,
    colormap,
    font,
    text_right,
    text_size,
    upscale,
)

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


CONFUSION_LEFT, CONFUSION_TOP, CONFUSION_CELL = 110, 80, 44  # the matrix's place, cell px


def _correct_colour(v, dmax: int, blues: np.ndarray) -> np.ndarray:
    """A diagonal count: Blues from 0 to the largest diagonal count."""
    return apply_cmap(np.asarray(v), 0, dmax, blues)


def _error_colour(v, omax: int, reds: np.ndarray) -> np.ndarray:
    """An off-diagonal count >= 1: Reds on a square-root scale (a single error still shows),
    the largest error at 1/1.4 of the map so its number stays readable."""
    return apply_cmap(np.sqrt(np.asarray(v, np.float64)), 0, np.sqrt(omax) * 1.4, reds)


def _count_scale(img, d, xy, width, label, lo, hi, colour_of) -> None:
    """A horizontal bar of the colours counts lo..hi get, the two ends labelled."""
    x, y = xy
    d.text((x, y), label, fill=FG, font=font(12))
    y += 18
    counts = lo + (hi - lo) * np.linspace(0, 1, width)
    bar = np.repeat(colour_of(counts)[None], 12, axis=0).astype(np.uint8)
    img.paste(Image.fromarray(bar), (x, y))
    d.rectangle([x - 1, y - 1, x + width, y + 12], outline=MUTED)
    d.text((x, y + 16), str(lo), fill=FG, font=font(11))
    d.text((x + width, y + 16), str(hi), fill=FG, font=font(11), anchor="ra")


def confusion_image(
    conf, classes: list[str], title: str = "", cell: int = CONFUSION_CELL
) -> Image.Image:
    """Confusion matrix [true][pred] as a heat map with counts: the diagonal (correct) in
    blue, errors in red, no count white; under it the two colour scales with their counts."""
    m = np.asarray(conf, dtype=np.int64)
    k = len(classes)
    left, top = CONFUSION_LEFT, CONFUSION_TOP
    off = m - np.diag(np.diag(m))
    blues, reds = colormap("Blues"), colormap("Reds")
    dmax = max(1, int(np.diag(m).max(initial=0)))
    omax = int(off.max(initial=0))
    title = title or "confusion matrix"
    scales = [
        (
            "correct (the diagonal): blue, darker = more",
            0,
            dmax,
            lambda v: _correct_colour(v, dmax, blues),
        )
    ]
    if omax:
        scales.append(
            (
                "errors (off the diagonal): red, square-root scale; white: none",
                1,
                omax,
                lambda v: _error_colour(v, omax, reds),
            )
        )
    else:
        scales.append(("no errors (white: none)", None, None, None))
    bar_w = 240
    legend_w = max([bar_w] + [text_size(s[0], 12)[0] for s in scales])
    legend_y = top + k * cell + 24
    w = max(left + k * cell + 30, left + legend_w + 30, text_size(title, 18)[0] + 40)
    h = legend_y + 52 * len(scales) + 10
    img = Image.new("RGB", (w, h), BG)
    d = ImageDraw.Draw(img)
    d.text((w // 2, 20), title, fill=FG, font=font(18), anchor="mm")
    d.text((left + k * cell // 2, 50), "predicted", fill=MUTED, font=font(13), anchor="mm")
    d.text((12, top + k * cell // 2), "true", fill=MUTED, font=font(13), anchor="lm")
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
                c = _correct_colour(v, dmax, blues)
            elif v:
                c = _error_colour(v, omax, reds)
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
    for n, (label, lo, hi, colour_of) in enumerate(scales):
        if colour_of is None:
            d.text((left, legend_y + 52 * n), label, fill=FG, font=font(12))
        else:
            _count_scale(img, d, (left, legend_y + 52 * n), bar_w, label, lo, hi, colour_of)
    return img


TILE = 128  # target on-screen size of one activation map, px
GAP = 14  # space between tiles, px


def _title(d: ImageDraw.ImageDraw, x: int, lines: list[str]) -> None:
    d.text((x, 14), lines[0], fill=FG, font=font(20))
    for i, line in enumerate(lines[1:]):
        d.text((x, 42 + 18 * i), line, fill=MUTED, font=font(13))


def title_width(lines: list[str], x: int = 20) -> int:
    """The width a picture needs for _title's lines drawn at x, with as much room right."""
    sizes = [20] + [13] * (len(lines) - 1)
    return 2 * x + max(text_size(t, z)[0] for t, z in zip(lines, sizes, strict=True))


def picture(image: np.ndarray, size: int) -> Image.Image:
    """An input as the model sees it, (H, W) gray or (H, W, 3) colour in [0, 1], as an RGB
    image whose longer side is about `size` px: enlarged by a whole factor (sharp pixels) or
    reduced smoothly."""
    a = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    h, w = a.shape[:2]
    k = size // max(h, w)
    if k >= 1:
        a = upscale(a, k)
        im = Image.fromarray(a, "L" if a.ndim == 2 else "RGB")
    else:
        im = Image.fromarray(a, "L" if a.ndim == 2 else "RGB")
        s = size / max(h, w)
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
    return im.convert("RGB")


def _gray(image: np.ndarray, size: int) -> Image.Image:
    return picture(image, size)


PANEL = 168  # px, the input panel beside every layer picture


def input_panel(img: Image.Image, d: ImageDraw.ImageDraw, xy, image: np.ndarray, caption: str):
    """The input the model saw, enlarged (or reduced) to the panel, with a caption under it."""
    x, y = xy
    d.text((x, y - 6), "input (as the model sees it)", fill=MUTED, font=font(12), anchor="ls")
    pic = picture(image, PANEL)
    img.paste(pic, (x, y))
    d.rectangle([x - 1, y - 1, x + pic.width, y + pic.height], outline=MUTED)
    i = 0
    for k, line in enumerate(caption.split("\n")):
        for part in wrap(line, 14, PANEL + 16):  # the maps start 42 px right of the panel
            d.text(
                (x, y + pic.height + 12 + 18 * i), part, fill=FG if k == 0 else MUTED, font=font(14)
            )
            i += 1


def wrap(text: str, size: int, width: int) -> list[str]:
    """text in lines of at most width px at this font size, broken between words."""
    lines, line = [], ""
    for word in text.split(" "):
        longer = f"{line} {word}" if line else word
        if line and text_size(longer, size)[0] > width:
            lines.append(line)
            line = word
        else:
            line = longer
    return [*lines, line]


def tile_size(n: int, h: int, w: int) -> int:
    """Enlargement factor of one map: ~128 px for a few channels, smaller for many."""
    if n <= 16:
        target = 96 if max(h, w) <= 8 else TILE
    else:
        target = 96 if n <= 64 else 64 if n <= 256 else 48
    return max(1, target // max(h, w))


def grid_columns(n: int) -> int:
    return n if n <= 8 else int(np.ceil(n / 2)) if n <= 16 else int(np.ceil(np.sqrt(n * 2)))


OWN_RANGE = ("each map:", "its own", "range")  # beside the maps when each has its own range


class MapGrid:
    """Layout of one layer's picture: input panel, a grid of channel maps, a colour bar.

    The parts shared by every input (title, frames, kernels, colour bar, channel labels when
    they do not change) are drawn once; draw() copies that base and adds one input's image,
    caption and maps. n maps of (h, w); labels: one per tile (default "ch 0" ...), drawn in
    the base, or labels="per-input" to pass them to every draw(); kernels: (n, Cin, k, k)
    drawn under each map on one signed scale +-kernel_lim; bar: (vmin, vmax) of the colour
    bar, None when every map has its own range.
    """

    def __init__(
        self,
        shape,
        lut,
        title,
        kernels=None,
        bar=None,
        own_ranges=False,
        labels=None,
        kernel_lim=None,
    ):
        c, h, w = shape
        self.lut, self.own_ranges, self.c = lut, own_ranges, c
        self.k = tile_size(c, h, w)
        self.th, self.tw = h * self.k, w * self.k
        self.small = self.tw < 56
        cols = grid_columns(c)
        rows = int(np.ceil(c / cols))
        kern_h, per_row, kpx, kern_w = 0, 1, 1, 0
        if kernels is not None:
            kh, kw = kernels.shape[-2:]
            cin = kernels.shape[1]
            # slices wrap under the map, at least 6 px a weight so they can be read
            per_row = max(1, min(cin, (self.tw + 3) // (kw * 6 + 3)))
            kpx = max(6, min(14, (self.tw - (per_row - 1) * 3) // (per_row * kw)))
            kern_rows = int(np.ceil(cin / per_row))
            kern_h = kern_rows * (kh * kpx + 3) + 6
            kern_w = per_row * (kw * kpx + 3)
            if kernel_lim is None:
                kernel_lim = float(np.abs(kernels).max()) or 1.0
        under = 16 if own_ranges and not self.small else 0  # each map's range, under it
        cell_h = self.th + 22 + kern_h + (under or 4)
        cell_w = max(self.tw, kern_w) + GAP
        left, grid_w = PANEL + 42, cols * cell_w
        bar_h = min(240, max(120, rows * cell_h - 30))
        height = max(120 + rows * cell_h, 120 + PANEL + 120) + 10
        second = 75 if kernels is not None else 0  # the kernels' colour bar, beside the maps'
        self.pos = [(left + (i % cols) * cell_w, 120 + (i // cols) * cell_h) for i in range(c)]
        # the colour bars and their numbers (or the own-range note), then the usual 20 px
        # margin; a bar drawn per input (its range not known yet) keeps room for any number
        bar_x = left + grid_w + 10
        if bar is not None:
            right = bar_x + colorbar_width(*bar, label=self._bar_label(kernels))
        else:
            right = bar_x + (text_right(OWN_RANGE[0], 12) if own_ranges else 100)
        if kernels is not None:
            right = max(
                right, bar_x + second + colorbar_width(-kernel_lim, kernel_lim, label="kernels")
            )
        width = max(right + 20, title_width(title))  # titles never cut
        base = Image.new("RGB", (width, height), BG)
        d = ImageDraw.Draw(base)
        _title(d, 20, title)
        if labels is None:
            labels = [f"ch {i}" for i in range(c)]
        self.labels = None if labels == "per-input" else labels
        for i, (x, y) in enumerate(self.pos):
            d.rectangle([x - 1, y - 1, x + self.tw, y + self.th], outline=(200, 200, 205))
            if self.labels is not None:
                self._label(d, i, self.labels[i], FG)
            if kernels is not None:
                _kernel_block(
                    base, (x, y + self.th + 10 + under), kernels[i], kpx, per_row, kernel_lim
                )
        self.bar_at = (left + grid_w + 10, 130, bar_h)
        self.bar_label = self._bar_label(kernels)
        if kernels is not None:
            at = (left + grid_w + 10 + second, 130)
            colorbar(
                d, base, at, bar_h, -kernel_lim, kernel_lim, colormap("RdBu_r"), label="kernels"
            )
        if bar is not None:
            colorbar(d, base, self.bar_at[:2], self.bar_at[2], *bar, lut, label=self.bar_label)
        elif own_ranges:
            d.text((bar_x, 130), "\n".join(OWN_RANGE), fill=MUTED, font=font(12))
        self.base = base

    @staticmethod
    def _bar_label(kernels) -> str:
        return "maps" if kernels is not None else ""

    def _label(self, d, i, text, fill):
        x, y = self.pos[i]
        d.text((x, y - 4), text, fill=fill, font=font(10 if self.small else 12), anchor="ls")

    def draw(
        self, image, maps, ranges, caption: str, dead=None, bar=None, labels=None
    ) -> Image.Image:
        """bar: (vmin, vmax) of a colour bar for this input only (one range per input)."""
        img = self.base.copy()
        d = ImageDraw.Draw(img)
        if bar is not None:
            colorbar(d, img, self.bar_at[:2], self.bar_at[2], *bar, self.lut, label=self.bar_label)
        input_panel(img, d, (20, 120), image, caption)
        same = all(r == ranges[0] for r in ranges)
        colored = (
            apply_cmap(maps, *ranges[0], self.lut)
            if same
            else np.stack([apply_cmap(maps[i], *ranges[i], self.lut) for i in range(self.c)])
        )
        colored = colored.repeat(self.k, axis=1).repeat(self.k, axis=2)
        labels = labels if labels is not None else self.labels
        for i, (x, y) in enumerate(self.pos):
            img.paste(Image.fromarray(colored[i]), (x, y))
            is_dead = dead is not None and dead[i]
            if labels is not None and (is_dead or self.labels is None):
                self._label(
                    d, i, labels[i] + ("  dead" if is_dead else ""), ACCENT if is_dead else FG
                )
            if is_dead:
                d.rectangle([x - 1, y - 1, x + self.tw, y + self.th], outline=ACCENT)
            if self.own_ranges and not self.small:
                lo, hi = ranges[i]
                d.text((x, y + self.th + 4), f"{lo:.2g} .. {hi:.2g}", fill=MUTED, font=font(11))
        return img


def map_grid(image, maps, ranges, lut, title, caption, dead=None, kernels=None):
    """One layer's picture for one input (see MapGrid); no colour bar if the ranges differ."""
    own = any(r != ranges[0] for r in ranges)
    labels = [f"ch {i}" for i in range(maps.shape[0])]
    grid = MapGrid(maps.shape, lut, title, kernels, None if own else ranges[0], own, labels)
    return grid.draw(image, maps, ranges, caption, dead)


def _kernel_block(img, xy, kern: np.ndarray, px: int, per_row: int, lim: float) -> None:
    """One output channel's kernel slices (Cin, kh, kw), `per_row` to a row, on the layer's
    signed scale +-lim (blue < 0 < red)."""
    lut = colormap("RdBu_r")
    x0, y0 = xy
    kh, kw = kern.shape[-2:]
    for j in range(kern.shape[0]):
        r, q = divmod(j, per_row)
        tile = upscale(apply_cmap(kern[j], -lim, lim, lut), px)
        img.paste(Image.fromarray(tile), (x0 + q * (kw * px + 3), y0 + r * (kh * px + 3)))


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
    cell = 40 if labels is not None else 22 if n <= 160 else 14 if n <= 1024 else 8
    per_row = n if n <= 40 else 30 if cell >= 22 else 48 if cell == 14 else 96
    rows = int(np.ceil(n / per_row))
    left = PANEL + 42
    step = 10 if cell >= 14 else 32
    width = max(left + per_row * cell + 120, title_width(title))
    height = max(120 + rows * (cell + 22) + 20, 120 + PANEL + 120)
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
        elif i % step == 0:
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
    value_name: str = "logit",
    top: int = 15,
) -> Image.Image:
    """Class probabilities: one bar per class (the top `top` when there are over 20), the
    prediction in the accent colour, the layer's own value (e.g. the logit) beside each."""
    k = len(classes)
    order = list(range(k)) if k <= 20 else [int(i) for i in np.argsort(-probs)[:top]]
    n = len(order)
    left, bar_w, row = 330, 360, 26
    height = max(120 + n * row + 30, 120 + 240)
    img = Image.new("RGB", (max(left + bar_w + 250, title_width(title)), height), BG)
    d = ImageDraw.Draw(img)
    _title(d, 20, title)
    input_panel(img, d, (20, 120), image, caption)
    pred = int(np.argmax(probs))
    head = value_name if k <= 20 else f"{value_name} (top {n} of {k} classes)"
    d.text((left + bar_w + 240, 112), head, fill=MUTED, font=font(11), anchor="rs")
    for r, i in enumerate(order):
        y = 120 + r * row
        color = ACCENT if i == pred else (90, 120, 200)
        d.text((left - 10, y + row // 2 - 2), classes[i][:22], fill=FG, font=font(14), anchor="rm")
        d.rectangle([left, y + 3, left + bar_w, y + row - 5], fill=(238, 238, 242))
        d.rectangle([left, y + 3, left + max(1, int(bar_w * probs[i])), y + row - 5], fill=color)
        text = f"{probs[i]:.1%}" + ("  predicted" if i == pred else "")
        text += "  (true)" if label is not None and i == label else ""
        d.text((left + bar_w + 8, y + row // 2 - 2), text, fill=FG, font=font(13), anchor="lm")
        d.text(
            (left + bar_w + 240, y + row // 2 - 2),
            f"{logits[i]:+.3g}",
            fill=MUTED,
            font=font(12),
            anchor="rm",
        )
    return img


def sample_sheet(images, captions: list[str], title: str, cols: int = 5) -> Image.Image:
    """Inputs in a grid (the original's 2x5 plot of the samples), a caption under each."""
    n = len(images)
    cols = max(1, min(cols, n))  # fewer inputs than columns: no empty columns
    rows = int(np.ceil(n / cols))
    pics = [_gray(im, 112) for im in images]  # about 112 px, whole pixels when enlarged
    size = max([p.height for p in pics] or [112])
    ch = size + 74  # the picture and three lines of caption
    widest = max(text_size(line, 12)[0] for cap in captions for line in cap.split("\n"))
    cw = max(150, widest + 18)
    width = max(cols * cw + 20, 40 + text_size(title, 20)[0])  # one input: the title fits
    img = Image.new("RGB", (width, 60 + rows * ch), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 16), title, fill=FG, font=font(20))
    for i, (pic, cap) in enumerate(zip(pics, captions, strict=True)):
        r, q = divmod(i, cols)
        x, y = 20 + q * cw, 56 + r * ch
        img.paste(pic, (x, y))
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


def kernel_grid(name: str, w: np.ndarray, lut: np.ndarray, lim: float | None = None) -> Image.Image:
    """One conv layer's kernels (out, in, kh, kw) on one signed scale centred on 0 (+-lim,
    default the largest |w|), with its colour bar: a row per output channel and a column per
    input channel, or for one input channel the output channels side by side."""
    cout, cin, kh, kw = w.shape
    lim = lim or float(np.abs(w).max()) or 1.0
    s = max(2, min(16, 60 // max(kh, kw)))
    gap = 4 if s > 3 else 2
    tw, th = kw * s + gap, kh * s + gap
    one = cin == 1
    cols = min(cout, 16) if one else cin
    rows = int(np.ceil(cout / cols)) if one else cout
    left, top = (20 if one else 70), 96
    colored = apply_cmap(w, -lim, lim, lut)  # (out, in, kh, kw, 3)
    title = f"{name}: {cout} x {cin} kernels of {kh}x{kw}"
    what = (
        "output channels side by side" if one else "rows: output channels · columns: input channels"
    )
    note = f"{what} · one signed scale, |w| <= {lim:.3g}"
    text_w = max(text_size(title, 20)[0], text_size(note, 13)[0]) + 40
    label_h = 14 if one else 0
    width = max(left + cols * tw + 140, text_w, 420)
    height = max(top + rows * (th + label_h) + 30, top + 240)
    img = Image.new("RGB", (width, height), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 14), title, fill=FG, font=font(20))
    d.text((20, 42), note, fill=MUTED, font=font(13))
    for i in range(cout):
        for j in range(cin):
            if one:
                r, q = divmod(i, cols)
                x, y = left + q * tw, top + r * (th + label_h) + label_h
                d.text((x, y - 2), f"{i}", fill=MUTED, font=font(10), anchor="ls")
            else:
                x, y = left + j * tw, top + i * th
            img.paste(Image.fromarray(upscale(colored[i, j], s)), (x, y))
        if not one and (cout <= 64 or i % 8 == 0):
            d.text(
                (left - 8, top + i * th + kh * s // 2),
                f"out {i}",
                fill=MUTED,
                font=font(10),
                anchor="rm",
            )
    if not one:
        for j in range(cin):
            if cin <= 32 or j % 8 == 0:
                d.text((left + j * tw, top - 6), f"in {j}", fill=MUTED, font=font(10), anchor="ls")
    colorbar(d, img, (left + cols * tw + 20, top + 10), 200, -lim, lim, lut)
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
    channels: list[int] | None = None,
) -> Image.Image:
    """Rows: A's maps, B's maps, A - B; per channel the cosine similarity of A and B. The
    first two rows share one colour range (bar on the right), the difference has its own."""
    c, h, w = a.shape
    channels = list(range(c)) if channels is None else channels
    k = max(1, 96 // max(h, w)) if c <= 16 else max(1, 48 // max(h, w))
    t = h * k
    per_row = c if c <= 16 else 16
    blocks = int(np.ceil(c / per_row))
    left, row_h = 40 + max(t, 96), t + 40
    width = left + per_row * (w * k + 8) + 130
    width = max(width, 620, title_width(title))
    img = Image.new("RGB", (width, 110 + blocks * (3 * row_h + 20) + 10), BG)
    d = ImageDraw.Draw(img)
    _title(d, 20, title)
    diff = a - b
    lim = float(np.abs(diff).max()) or 1.0
    for blk in range(blocks):
        idx = range(blk * per_row, min(c, (blk + 1) * per_row))
        for r, (label, inp, maps) in enumerate(
            [(names[0], a_img, a), (names[1], b_img, b), ("A - B", None, diff)]
        ):
            y = 110 + blk * (3 * row_h + 20) + r * row_h
            if inp is not None and blk == 0:
                img.paste(picture(inp, max(t, 96)), (20, y))
                d.text((20, y + max(t, 96) + 2), label[:18], fill=FG, font=font(12))
            elif inp is None:
                d.text((20, y + t // 2), label, fill=FG, font=font(12), anchor="lm")
            for q, i in enumerate(idx):
                x = left + q * (w * k + 8)
                rng = (-lim, lim) if r == 2 else vrange
                tile = apply_cmap(maps[i], *rng, lut_diff if r == 2 else lut)
                img.paste(Image.fromarray(upscale(tile, k)), (x, y))
                if r == 0:
                    d.text((x, y - 4), f"ch {channels[i]}", fill=MUTED, font=font(11), anchor="ls")
                if r == 2:
                    va, vb = a[i].ravel(), b[i].ravel()
                    den = float(np.linalg.norm(va) * np.linalg.norm(vb))
                    cos = float(va @ vb) / den if den > 0 else float("nan")
                    d.text((x, y + t + 4), f"cos {cos:.2f}", fill=MUTED, font=font(11))
    bx = img.width - 110
    colorbar(d, img, (bx, 130), max(60, 2 * row_h - 40), *vrange, lut, label="A, B")
    colorbar(
        d, img, (bx, 110 + 2 * row_h + 20), max(40, row_h - 20), -lim, lim, lut_diff, label="A - B"
    )
    return img
