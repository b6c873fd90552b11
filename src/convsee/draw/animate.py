"""Frames of the convolution and pooling animations: arrays in, Pillow images out.

ConvAnimation draws one output channel of a convolution being computed: the input (its
padding shown), the window under the kernel (every tap marked when the kernel is dilated),
window x kernel = products with their numbers (or, for many input channels, each input
channel's partial sum as a bar), the sum plus the bias, and the output map filling in with
its colour scale. PoolAnimation does the same for max pooling. Every frame of one animation
has the same size and scales, so a GIF compares.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .core import ACCENT, BG, FG, MUTED, apply_cmap, colorbar, colormap, font, upscale

__all__ = ["ConvAnimation", "PoolAnimation", "REASONS"]

PAD_TINT = np.array([90, 120, 200], np.float32)  # padding cells are tinted with this
UNFILLED = (235, 235, 240)
MAX_VIEW = 48  # input cells shown around the window when the input is larger
MAX_BARS = 64  # partial sums drawn as bars (the largest |value| when there are more)

REASONS = {
    "empty": "an empty window",
    "along": "along the input's structure",
    "max": "the strongest response",
    "min": "the most negative response",
}


def _fmt(v: float) -> str:
    return f"{v:+.3f}" if abs(v) < 1000 else f"{v:+.3g}"


def _cells(values, lo, hi, lut, cell, numbers=True, tint=None) -> Image.Image:
    rgb = apply_cmap(values, lo, hi, lut).astype(np.float32)
    if tint is not None:
        rgb[tint] = rgb[tint] * 0.6 + PAD_TINT * 0.4
    img = Image.fromarray(upscale(np.round(rgb).astype(np.uint8), cell))
    if numbers:
        d = ImageDraw.Draw(img)
        lum = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        for (r, c), v in np.ndenumerate(values):
            text = "-inf" if not np.isfinite(v) else f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"
            d.text(
                (c * cell + cell // 2, r * cell + cell // 2),
                text,
                anchor="mm",
                font=font(9),
                fill=(255, 255, 255) if lum[r, c] < 110 else FG,
            )
    return img


def _zoomed(top, left, view, size) -> str:
    """The note of an input panel that shows part of the input: 'zoomed: rows a-b, cols c-d
    of HxW' (rows and columns of the input, from 0, ends included; top and left may lie in
    the padding, which is not counted), '' when the whole input is shown."""
    (vh, vw), (h, w) = view, size
    rows = max(0, top), min(h, top + vh) - 1
    cols = max(0, left), min(w, left + vw) - 1
    if rows == (0, h - 1) and cols == (0, w - 1):
        return ""
    return f"zoomed: rows {rows[0]}-{rows[1]}, cols {cols[0]}-{cols[1]} of {h}x{w}"


class _Map:
    """The output map filling in, with its colour bar."""

    def __init__(self, out, lut, rng, label):
        self.out, self.lut, self.rng, self.label = out, lut, rng, label
        h, w = out.shape
        self.zoom = max(1, 192 // max(h, w))
        self.w, self.h = w * self.zoom, h * self.zoom
        self.colored = apply_cmap(out, *rng, lut)

    def draw(self, img, d, xy, filled, pos):
        x0, y0 = xy
        d.text((x0, y0 - 8), self.label, fill=FG, font=font(12), anchor="ls")
        rgb = self.colored.copy()
        rgb[~filled] = UNFILLED
        img.paste(Image.fromarray(upscale(rgb, self.zoom)), (x0, y0))
        d.rectangle([x0 - 1, y0 - 1, x0 + self.w, y0 + self.h], outline=(200, 200, 205))
        r, c = pos
        z = self.zoom
        d.rectangle(
            [x0 + c * z - 1, y0 + r * z - 1, x0 + (c + 1) * z, y0 + (r + 1) * z],
            outline=ACCENT,
            width=2,
        )
        colorbar(d, img, (x0 + self.w + 14, y0), max(120, self.h), *self.rng, self.lut)


class _Conv:
    """The numbers every frame of a ConvAnimation draws, and their shared colour scales.

    x (Cin_g, H, W) unpadded, xp (Cin_g, Hp, Wp) padded, w (Cin_g, kh, kw); win and products
    (H', W', Cin_g, kh, kw): each position's window and window x kernel; out (H', W');
    partials (H', W', Cin_g): each input channel's sum of products."""

    def __init__(self, x, xp, w, b, steps, in_channels, pad, stride, dilation):
        # b None: the layer has no bias, and no sentence adds one
        self.x, self.xp, self.w, self.b = x, xp, w, None if b is None else float(b)
        self.win, self.products, self.out = steps
        self.in_channels = list(in_channels)
        self.pad, self.stride, self.dilation = pad, stride, dilation
        self.cin, self.kh, self.kw = w.shape
        self.partials = self.products.sum(axis=(3, 4))  # (H', W', Cin_g)
        self.gray = colormap("gray")
        self.signed = colormap("RdBu_r")
        self.lo, self.hi = float(x.min()), float(x.max())
        if self.hi <= self.lo:
            self.hi = self.lo + 1.0
        self.wl = float(np.abs(w).max()) or 1.0
        self.plim = float(np.abs(self.products).max()) or 1.0
        self.slim = float(np.abs(self.partials).max()) or 1.0
        hp, wp = xp.shape[1:]
        self.pad_mask = np.ones((hp, wp), bool)  # (Hp, Wp): True on the padding
        t, _, left, _ = pad
        self.pad_mask[t : t + x.shape[1], left : left + x.shape[2]] = False

    def window_box(self, r, c):
        """(row0, col0) of the window's top-left tap in padded coordinates, its extent."""
        sh, sw = self.stride
        dh, dw = self.dilation
        return r * sh, c * sw, dh * (self.kh - 1) + 1, dw * (self.kw - 1) + 1

    def equals(self, r, c) -> str:
        """What follows a sum: '+ bias B = V', or '= V (no bias)' for a layer without one."""
        v = _fmt(float(self.out[r, c]))
        return f" = {v} (no bias)" if self.b is None else f" + bias {_fmt(self.b)} = {v}"


class ConvAnimation:
    """x (Cin_g, H, W): the input channels the kernel reads (unpadded); xp: padded; w
    (Cin_g, kh, kw); steps from run.animate.conv_steps; in_channels: their numbers in the
    layer's input; pad (top, bottom, left, right); stride, dilation (rows, cols).

    A frame: a header, the input panels on the left, the window x kernel in the middle (as
    grids of numbers for few small kernels, else as bars of partial sums), the output map."""

    def __init__(
        self,
        x,
        xp,
        w,
        b,
        steps,
        *,
        in_channels,
        pad,
        stride,
        dilation,
        padding_mode,
        title,
        notes,
        background=None,
    ):
        self.conv = cv = _Conv(x, xp, w, b, steps, in_channels, pad, stride, dilation)
        self.padding_mode = padding_mode
        self.title, self.notes, self.background = title, notes, background
        m = float(np.abs(cv.out).max()) or 1.0
        self.map = _Map(
            cv.out, cv.signed, (-m, m), f"output map {'x'.join(map(str, cv.out.shape))}"
        )
        self.left = _InputPanels(cv)
        grids = cv.cin <= 3 and max(cv.kh, cv.kw) <= 7
        self.middle = _ProductGrids(cv) if grids else _PartialBars(cv, self.left.n == 1)
        self.mid_x = 20 + self.left.width + 10
        self.map_x = self.mid_x + self.middle.width + 20
        width = self.map_x + self.map.w + 100
        height = 150 + max(self.left.height, self.middle.height, self.map.h + 30, 150) + 40
        self.size = (max(width, 900), height)

    def frame(self, fr) -> Image.Image:
        r, c = fr.pos
        img = Image.new("RGB", self.size, BG)
        d = ImageDraw.Draw(img)
        self._header(d, fr)
        self.left.draw(img, d, r, c)
        self.middle.draw(img, d, (self.mid_x, 150), r, c)
        self.map.draw(img, d, (self.map_x, 150), fr.filled, fr.pos)
        return img

    def _header(self, d, fr):
        """The title, the sum at this position, the caption and up to three notes."""
        d.text((20, 14), self.title, fill=FG, font=font(20))
        d.text((20, 44), self.headline(fr), fill=FG, font=font(14))
        d.text((20, 66), self.caption(fr), fill=ACCENT if fr.reason else MUTED, font=font(13))
        for i, line in enumerate(self.notes[:3]):
            d.text((20, 86 + 16 * i), line, fill=MUTED, font=font(12))

    def headline(self, fr) -> str:
        """The line under the title: the output at fr as the sum of its products (+ bias)."""
        cv = self.conv
        r, c = fr.pos
        total = float(cv.products[r, c].sum())
        return (
            f"output ({r}, {c}) = sum of {cv.products[r, c].size} products {_fmt(total)}"
            + cv.equals(r, c)
        )

    def zoom(self, fr) -> str:
        """Which rows and columns of the input the panels show at fr ('' for all of it)."""
        return self.left.zoom(*fr.pos)

    def caption(self, fr) -> str:
        """The sentence under frame fr: why this position is shown, with its numbers."""
        return _conv_caption(self.conv, fr, self.background)


def _conv_caption(cv: _Conv, fr, background) -> str:
    r, c = fr.pos
    v = float(cv.out[r, c])
    if fr.reason == "empty":
        vals = cv.win[r, c].reshape(cv.cin, -1)[:, 0]
        if cv.cin == 1:
            text = (
                f"an empty window: every value is {vals[0]:.2f}, so the output is "
                f"{vals[0]:.2f} x {float(cv.w.sum()):.3f} (the kernel's sum)"
                + (" = " if cv.b is None else " + bias = ")
                + _fmt(v)
            )
        else:
            text = f"an empty window: each channel holds one value, so the output is {_fmt(v)}"
        if background:
            text += ", not 0: " + background
        return text
    if fr.reason == "along":
        return f"along the input's structure: {_fmt(v)}"
    if fr.reason == "max":
        return f"the strongest response of this channel: {_fmt(v)}"
    if fr.reason == "min":
        return f"the most negative response: {_fmt(v)} (a ReLU after it would make it 0)"
    done = int(fr.filled.sum())
    return f"the rest of the map, row by row: {done} of {fr.filled.size} pixels computed"


class _InputPanels:
    """The left of a frame: every input channel the kernel reads (up to 6; else the one with
    the largest partial sum here), at most MAX_VIEW cells around the window, which is framed;
    then the input's colour bar."""

    def __init__(self, cv: _Conv):
        self.cv = cv
        hp, wp = cv.xp.shape[1:]
        self.view = (min(hp, MAX_VIEW), min(wp, MAX_VIEW))
        self.n = cv.cin if cv.cin <= 6 else 1  # panels drawn
        big = 240 if self.n == 1 else 150 if self.n <= 3 else 100
        self.zin = max(1, big // max(self.view))
        self.panel = _WindowPanel(cv, self.view, self.zin)
        vh, vw = self.view
        pw, ph = vw * self.zin, vh * self.zin
        cols = 1 if self.n == 1 else min(3, self.n)
        rows = int(np.ceil(self.n / cols))
        self.xy = [
            (20 + (i % cols) * (pw + 12), 150 + (i // cols) * (ph + 24)) for i in range(self.n)
        ]
        self.width = cols * (pw + 12) + 70  # + the input's colour bar
        self.height = rows * (ph + 24)
        self.zoom_y = 150 + self.height - 10  # the zoom note, under the panels
        self.bar = (20 + cols * (pw + 12), 150, max(100, min(self.height - 24, 200)))

    def draw(self, img, d, r, c):
        cv = self.cv
        if self.n == 1:
            j = 0 if cv.cin == 1 else int(np.argmax(np.abs(cv.partials[r, c])))
            label = (
                "input"
                if cv.cin == 1
                else f"input channel {cv.in_channels[j]} (the largest sum here)"
            )
            self.panel.draw(img, d, self.xy[0], j, r, c, label)
        else:
            for j, xy in enumerate(self.xy):
                label = f"in {cv.in_channels[j]}: {_fmt(float(cv.partials[r, c, j]))}"
                self.panel.draw(img, d, xy, j, r, c, label)
        d.text((20, self.zoom_y), self.zoom(r, c), fill=MUTED, font=font(11))
        bx, by, bh = self.bar
        colorbar(d, img, (bx, by), bh, cv.lo, cv.hi, cv.gray, label="input")

    def zoom(self, r, c) -> str:
        """Which rows and columns of the input the panels show at (r, c) ('' for all)."""
        cv = self.cv
        top, left = self.panel._crop(*cv.window_box(r, c))
        t, _, pl, _ = cv.pad
        return _zoomed(top - t, left - pl, self.view, cv.x.shape[1:])


class _WindowPanel:
    """One input channel around the window: view (rows, cols) cells of zin pixels, padding
    tinted, the window framed (and, when dilated, each tap it reads)."""

    def __init__(self, cv: _Conv, view, zin):
        self.cv, self.view, self.zin = cv, view, zin

    def _crop(self, r0, c0, eh, ew):
        """(top, left) of the view around a window at (r0, c0) of extent (eh, ew)."""
        hp, wp = self.cv.xp.shape[1:]
        vh, vw = self.view
        top = int(np.clip(r0 + eh // 2 - vh // 2, 0, hp - vh))
        left = int(np.clip(c0 + ew // 2 - vw // 2, 0, wp - vw))
        return top, left

    def draw(self, img, d, xy, j, r, c, label):
        cv = self.cv
        r0, c0, eh, ew = cv.window_box(r, c)
        top, left = self._crop(r0, c0, eh, ew)
        vh, vw = self.view
        part = cv.xp[j, top : top + vh, left : left + vw]
        tint = cv.pad_mask[top : top + vh, left : left + vw]
        pic = _cells(part, cv.lo, cv.hi, cv.gray, self.zin, numbers=False, tint=tint)
        x0, y0 = xy
        img.paste(pic, (x0, y0))
        d.rectangle([x0 - 1, y0 - 1, x0 + pic.width, y0 + pic.height], outline=(200, 200, 205))
        z = self.zin
        rr, cc = r0 - top, c0 - left
        d.rectangle(
            [x0 + cc * z, y0 + rr * z, x0 + (cc + ew) * z - 1, y0 + (rr + eh) * z - 1],
            outline=ACCENT,
            width=2,
        )
        dh, dw = cv.dilation
        if (dh, dw) != (1, 1) and z >= 4:  # mark the taps the dilated kernel reads
            for i in range(cv.kh):
                for k in range(cv.kw):
                    y, x = y0 + (rr + i * dh) * z, x0 + (cc + k * dw) * z
                    d.rectangle([x + 1, y + 1, x + z - 2, y + z - 2], outline=ACCENT)
        d.text((x0, y0 - 6), label, fill=FG, font=font(11), anchor="ls")


class _ProductGrids:
    """The middle for few small kernels: per input channel, window x kernel = products, as
    grids of numbers."""

    def __init__(self, cv: _Conv):
        self.cv = cv
        self.cell = 30 if max(cv.kh, cv.kw) <= 5 else 24
        self.width = 3 * (cv.kw * self.cell + 18)
        self.height = cv.cin * (cv.kh * self.cell + 24) + 40

    def draw(self, img, d, xy, r, c):
        cv, cell = self.cv, self.cell
        x0, y0 = xy
        win, prod = cv.win[r, c], cv.products[r, c]  # (Cin_g, kh, kw) each
        r0, c0, _, _ = cv.window_box(r, c)
        dh, dw = cv.dilation
        taps = cv.pad_mask[r0 : r0 + dh * (cv.kh - 1) + 1 : dh, c0 : c0 + dw * (cv.kw - 1) + 1 : dw]
        gw = cv.kw * cell
        for j in range(cv.cin):
            y = y0 + j * (cv.kh * cell + 24)
            parts = [
                ("window", win[j], cv.lo, cv.hi, cv.gray, taps),
                ("x kernel", cv.w[j], -cv.wl, cv.wl, cv.signed, None),
                (
                    f"= products, sum {_fmt(float(prod[j].sum()))}",
                    prod[j],
                    -cv.plim,
                    cv.plim,
                    cv.signed,
                    None,
                ),
            ]
            for i, (label, arr, lo, hi, lut, tint) in enumerate(parts):
                xx = x0 + i * (gw + 18)
                if cv.cin > 1 and i == 0:
                    label = f"in {cv.in_channels[j]}: window"
                d.text((xx, y - 5), label, fill=FG, font=font(11), anchor="ls")
                img.paste(_cells(arr, lo, hi, lut, cell, tint=tint), (xx, y))
        yb = y0 + cv.cin * (cv.kh * cell + 24)
        d.text(
            (x0, yb),
            f"kernel and products: blue < 0 < red (|kernel| <= {cv.wl:.3g}, "
            f"|products| <= {cv.plim:.3g})",
            fill=MUTED,
            font=font(11),
        )
        if cv.pad_mask.any():
            d.text((x0, yb + 15), "tinted cells: padding", fill=MUTED, font=font(11))


class _PartialBars:
    """The middle for many input channels: each one's sum of window x kernel as a bar (the
    MAX_BARS largest |sums| when there are more); one_panel: the left shows only the largest."""

    def __init__(self, cv: _Conv, one_panel: bool):
        self.cv, self.one_panel = cv, one_panel
        n = min(cv.cin, MAX_BARS)
        self.bar_w = max(5, min(40, 420 // n))
        self.width = max(300, n * self.bar_w + 80)
        self.height = 260

    def draw(self, img, d, xy, r, c):
        cv, bw = self.cv, self.bar_w
        x0, y0 = xy
        part = cv.partials[r, c]  # (Cin_g,)
        idx = np.arange(cv.cin)
        if cv.cin > MAX_BARS:
            idx = np.sort(np.argsort(-np.abs(part), kind="stable")[:MAX_BARS])
        n = len(idx)
        hh = 180
        zero = y0 + 18 + hh // 2
        title = f"sum(window x kernel) for each of the {cv.cin} input channels"
        if n < cv.cin:
            title += f" ({n} largest |sums| here)"
        d.text((x0, y0 - 5), title, fill=FG, font=font(11), anchor="ls")
        axis_x = x0 + 50
        d.line([axis_x, zero, axis_x + n * bw, zero], fill=MUTED)
        d.line([axis_x - 3, y0 + 18, axis_x - 3, y0 + 18 + hh], fill=MUTED)
        for v, yy in ((cv.slim, y0 + 18), (0.0, zero), (-cv.slim, y0 + 18 + hh)):
            d.text((axis_x - 6, yy), f"{v:.3g}", fill=FG, font=font(10), anchor="rm")
        top_j = int(np.argmax(np.abs(part)))
        for i, j in enumerate(idx):
            v = float(part[j])
            xx = axis_x + i * bw
            y_a, y_b = sorted((zero, zero - int(round(v / cv.slim * (hh // 2)))))
            col = (178, 24, 43) if v > 0 else (33, 102, 172)
            d.rectangle([xx + 1, y_a, xx + max(1, bw - 2), y_b], fill=col)
            if j == top_j:  # the channel drawn on the left
                d.rectangle(
                    [xx - 1, y_a - 2, xx + max(1, bw - 2) + 2, y_b + 2], outline=FG, width=2
                )
            if n <= 16 or i % 8 == 0:
                name = f"{'in ' if n <= 8 else ''}{cv.in_channels[j] if n <= 16 else j}"
                xm = xx + bw // 2
                d.text((xm, y0 + 18 + hh + 12), name, fill=FG, font=font(10), anchor="mm")
                yv = y_a - 8 if v > 0 else y_b + 8
                d.text((xm, yv), _fmt(v), fill=FG, font=font(10), anchor="mm")
        d.text(
            (x0, y0 + 18 + hh + 26),
            f"sum {_fmt(float(part.sum()))}{cv.equals(r, c)}"
            f"   (framed, the largest here: in {cv.in_channels[top_j]}"
            + (", drawn on the left)" if self.one_panel else ")"),
            fill=FG,
            font=font(12),
        )


class PoolAnimation:
    """Max pooling of one channel x (H, W) with windows and out from run.animate.pool_steps."""

    def __init__(self, x, steps, *, kernel, stride, padding, title, notes):
        self.x = x
        self.win, self.out = steps
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.title, self.notes = title, notes
        self.lut = colormap("viridis")
        lo = min(0.0, float(x.min()))
        hi = float(x.max())
        self.rng = (lo, hi if hi > lo else lo + 1.0)
        self.view = (min(x.shape[0], MAX_VIEW), min(x.shape[1], MAX_VIEW))
        self.z = max(1, 240 // max(self.view))
        self.cell = max(14, min(40, 200 // max(kernel)))
        self.map = _Map(
            self.out, self.lut, self.rng, f"pooled map {'x'.join(map(str, self.out.shape))}"
        )
        self.grid_x = 20 + self.view[1] * self.z + 90
        self.map_x = self.grid_x + kernel[1] * self.cell + 40
        width = self.map_x + self.map.w + 100
        height = 150 + max(self.view[0] * self.z, kernel[0] * self.cell, self.map.h, 150) + 40
        self.size = (max(width, 860), height)

    def frame(self, fr) -> Image.Image:
        r, c = fr.pos
        img = Image.new("RGB", self.size, BG)
        d = ImageDraw.Draw(img)
        d.text((20, 14), self.title, fill=FG, font=font(20))
        kh, kw = self.kernel
        d.text(
            (20, 44),
            f"output ({r}, {c}) = max of the {kh}x{kw} window = {float(self.out[r, c]):.3f}",
            fill=FG,
            font=font(14),
        )
        reason = {
            "empty": "a window of equal values (e.g. all 0): the max is that value",
            "along": "along the map's structure",
            "max": "the largest value of the map survives pooling",
        }.get(fr.reason, f"the rest, row by row: {int(fr.filled.sum())} of {fr.filled.size}")
        d.text((20, 66), reason, fill=ACCENT if fr.reason else MUTED, font=font(13))
        for i, line in enumerate(self.notes[:3]):
            d.text((20, 86 + 16 * i), line, fill=MUTED, font=font(12))
        sh, sw = self.stride
        ph, pw = self.padding
        r0, c0 = r * sh - ph, c * sw - pw  # in unpadded input coordinates
        h, w = self.x.shape
        vh, vw = self.view
        top = int(np.clip(r0 + kh // 2 - vh // 2, 0, h - vh))
        left = int(np.clip(c0 + kw // 2 - vw // 2, 0, w - vw))
        part = self.x[top : top + vh, left : left + vw]
        x0, y0 = 20, 150
        zoom = _zoomed(top, left, self.view, self.x.shape)
        label = "input map" + (f", {zoom}" if zoom else "")
        d.text((x0, y0 - 6), label, fill=FG, font=font(11), anchor="ls")
        img.paste(Image.fromarray(upscale(apply_cmap(part, *self.rng, self.lut), self.z)), (x0, y0))
        z = self.z
        d.rectangle(
            [
                x0 + (c0 - left) * z,
                y0 + (r0 - top) * z,
                x0 + (c0 - left + kw) * z - 1,
                y0 + (r0 - top + kh) * z - 1,
            ],
            outline=ACCENT,
            width=2,
        )
        colorbar(d, img, (x0 + vw * z + 12, y0), 160, *self.rng, self.lut)
        d.text((self.grid_x, y0 - 6), "window", fill=FG, font=font(11), anchor="ls")
        img.paste(_cells(self.win[r, c], *self.rng, self.lut, self.cell), (self.grid_x, y0))
        self.map.draw(img, d, (self.map_x, y0), fr.filled, fr.pos)
        return img
