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


class ConvAnimation:
    """x (Cin_g, H, W): the input channels the kernel reads (unpadded); xp: padded; w
    (Cin_g, kh, kw); steps from run.animate.conv_steps; in_channels: their numbers in the
    layer's input; pad (top, bottom, left, right); stride, dilation (rows, cols)."""

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
        # b None: the layer has no bias, and no sentence adds one
        self.x, self.xp, self.w, self.b = x, xp, w, None if b is None else float(b)
        self.win, self.products, self.out = steps
        self.in_channels = list(in_channels)
        self.pad, self.stride, self.dilation = pad, stride, dilation
        self.padding_mode = padding_mode
        self.title, self.notes, self.background = title, notes, background
        cin, kh, kw = w.shape
        self.cin, self.kh, self.kw = cin, kh, kw
        self.partials = self.products.sum(axis=(3, 4))  # (H', W', Cin_g)
        self.gray = colormap("gray")
        self.signed = colormap("RdBu_r")
        self.lo, self.hi = float(x.min()), float(x.max())
        if self.hi <= self.lo:
            self.hi = self.lo + 1.0
        self.wl = float(np.abs(w).max()) or 1.0
        self.plim = float(np.abs(self.products).max()) or 1.0
        self.slim = float(np.abs(self.partials).max()) or 1.0
        m = float(np.abs(self.out).max()) or 1.0
        self.map = _Map(
            self.out, self.signed, (-m, m), f"output map {'x'.join(map(str, self.out.shape))}"
        )
        hp, wp = xp.shape[1:]
        self.pad_mask = np.ones((hp, wp), bool)
        t, _, left, _ = pad
        self.pad_mask[t : t + x.shape[1], left : left + x.shape[2]] = False
        self.view = (min(hp, MAX_VIEW), min(wp, MAX_VIEW))
        self.grids = cin <= 3 and max(kh, kw) <= 7
        self.n_panels = cin if cin <= 6 else 1
        big = 240 if self.n_panels == 1 else 150 if self.n_panels <= 3 else 100
        self.zin = max(1, big // max(self.view))
        self.cell = 30 if max(kh, kw) <= 5 else 24
        self._layout()

    # -- layout ----------------------------------------------------------------------------
    def _layout(self):
        vh, vw = self.view
        pw, ph = vw * self.zin, vh * self.zin
        cols = 1 if self.n_panels == 1 else min(3, self.n_panels)
        rows = int(np.ceil(self.n_panels / cols))
        self.panel_xy = [
            (20 + (i % cols) * (pw + 12), 150 + (i // cols) * (ph + 24))
            for i in range(self.n_panels)
        ]
        left_w = cols * (pw + 12) + 70  # + the input's colour bar
        left_h = rows * (ph + 24)
        self.zoom_y = 150 + left_h - 10  # the zoom note, under the input panels
        self.in_bar = (20 + cols * (pw + 12), 150, max(100, min(left_h - 24, 200)))
        self.mid_x = 20 + left_w + 10
        if self.grids:
            gw = self.kw * self.cell
            mid_w = 3 * (gw + 18)
            mid_h = self.cin * (self.kh * self.cell + 24) + 40
        else:
            n = min(self.cin, MAX_BARS)
            self.bar_w = max(5, min(40, 420 // n))
            mid_w = max(300, n * self.bar_w + 80)
            mid_h = 260
        self.map_x = self.mid_x + mid_w + 20
        width = self.map_x + self.map.w + 100
        height = 150 + max(left_h, mid_h, self.map.h + 30, 150) + 40
        self.size = (max(width, 900), height)
        self.pw, self.ph = pw, ph

    # -- parts -----------------------------------------------------------------------------
    def _window_box(self, r, c):
        """(row0, col0) of the window's top-left tap in padded coordinates, its extent."""
        sh, sw = self.stride
        dh, dw = self.dilation
        return r * sh, c * sw, dh * (self.kh - 1) + 1, dw * (self.kw - 1) + 1

    def _crop(self, r0, c0, eh, ew):
        hp, wp = self.xp.shape[1:]
        vh, vw = self.view
        top = int(np.clip(r0 + eh // 2 - vh // 2, 0, hp - vh))
        left = int(np.clip(c0 + ew // 2 - vw // 2, 0, wp - vw))
        return top, left

    def zoom(self, fr) -> str:
        """Which rows and columns of the input the panels show at fr ('' for all of it)."""
        r0, c0, eh, ew = self._window_box(*fr.pos)
        top, left = self._crop(r0, c0, eh, ew)
        t, _, pl, _ = self.pad
        return _zoomed(top - t, left - pl, self.view, self.x.shape[1:])

    def _input_panel(self, img, d, xy, j, r, c, label):
        r0, c0, eh, ew = self._window_box(r, c)
        top, left = self._crop(r0, c0, eh, ew)
        vh, vw = self.view
        part = self.xp[j, top : top + vh, left : left + vw]
        tint = self.pad_mask[top : top + vh, left : left + vw]
        pic = _cells(part, self.lo, self.hi, self.gray, self.zin, numbers=False, tint=tint)
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
        dh, dw = self.dilation
        if (dh, dw) != (1, 1) and z >= 4:  # mark the taps the dilated kernel reads
            for i in range(self.kh):
                for k in range(self.kw):
                    y, x = y0 + (rr + i * dh) * z, x0 + (cc + k * dw) * z
                    d.rectangle([x + 1, y + 1, x + z - 2, y + z - 2], outline=ACCENT)
        d.text((x0, y0 - 6), label, fill=FG, font=font(11), anchor="ls")

    def _grids(self, img, d, r, c):
        x0, y0 = self.mid_x, 150
        win, prod = self.win[r, c], self.products[r, c]
        r0, c0, _, _ = self._window_box(r, c)
        dh, dw = self.dilation
        taps = self.pad_mask[
            r0 : r0 + dh * (self.kh - 1) + 1 : dh, c0 : c0 + dw * (self.kw - 1) + 1 : dw
        ]
        gw = self.kw * self.cell
        for j in range(self.cin):
            y = y0 + j * (self.kh * self.cell + 24)
            parts = [
                ("window", win[j], self.lo, self.hi, self.gray, taps),
                ("x kernel", self.w[j], -self.wl, self.wl, self.signed, None),
                (
                    f"= products, sum {_fmt(float(prod[j].sum()))}",
                    prod[j],
                    -self.plim,
                    self.plim,
                    self.signed,
                    None,
                ),
            ]
            for i, (label, arr, lo, hi, lut, tint) in enumerate(parts):
                xx = x0 + i * (gw + 18)
                if self.cin > 1 and i == 0:
                    label = f"in {self.in_channels[j]}: window"
                d.text((xx, y - 5), label, fill=FG, font=font(11), anchor="ls")
                img.paste(_cells(arr, lo, hi, lut, self.cell, tint=tint), (xx, y))
        yb = y0 + self.cin * (self.kh * self.cell + 24)
        d.text(
            (x0, yb),
            f"kernel and products: blue < 0 < red (|kernel| <= {self.wl:.3g}, "
            f"|products| <= {self.plim:.3g})",
            fill=MUTED,
            font=font(11),
        )
        if self.pad_mask.any():
            d.text((x0, yb + 15), "tinted cells: padding", fill=MUTED, font=font(11))

    def _bars(self, img, d, r, c):
        x0, y0 = self.mid_x, 150
        part = self.partials[r, c]
        idx = np.arange(self.cin)
        if self.cin > MAX_BARS:
            idx = np.sort(np.argsort(-np.abs(part), kind="stable")[:MAX_BARS])
        n = len(idx)
        hh = 180
        zero = y0 + 18 + hh // 2
        title = f"sum(window x kernel) for each of the {self.cin} input channels"
        if n < self.cin:
            title += f" ({n} largest |sums| here)"
        d.text((x0, y0 - 5), title, fill=FG, font=font(11), anchor="ls")
        axis_x = x0 + 50
        d.line([axis_x, zero, axis_x + n * self.bar_w, zero], fill=MUTED)
        d.line([axis_x - 3, y0 + 18, axis_x - 3, y0 + 18 + hh], fill=MUTED)
        for v, yy in ((self.slim, y0 + 18), (0.0, zero), (-self.slim, y0 + 18 + hh)):
            d.text((axis_x - 6, yy), f"{v:.3g}", fill=FG, font=font(10), anchor="rm")
        top_j = int(np.argmax(np.abs(part)))
        for i, j in enumerate(idx):
            v = float(part[j])
            hgt = int(round(v / self.slim * (hh // 2)))
            xx = axis_x + i * self.bar_w
            col = (178, 24, 43) if v > 0 else (33, 102, 172)
            y_a, y_b = sorted((zero, zero - hgt))
            d.rectangle([xx + 1, y_a, xx + max(1, self.bar_w - 2), y_b], fill=col)
            if j == top_j:  # the channel drawn on the left
                d.rectangle(
                    [xx - 1, y_a - 2, xx + max(1, self.bar_w - 2) + 2, y_b + 2], outline=FG, width=2
                )
            if n <= 16 or i % 8 == 0:
                d.text(
                    (xx + self.bar_w // 2, y0 + 18 + hh + 12),
                    f"{'in ' if n <= 8 else ''}{self.in_channels[j] if n <= 16 else j}",
                    fill=FG,
                    font=font(10),
                    anchor="mm",
                )
                d.text(
                    (xx + self.bar_w // 2, y_a - 8 if v > 0 else y_b + 8),
                    _fmt(v),
                    fill=FG,
                    font=font(10),
                    anchor="mm",
                )
        d.text(
            (x0, y0 + 18 + hh + 26),
            f"sum {_fmt(float(part.sum()))}{self._equals(r, c)}"
            f"   (framed, the largest here: in {self.in_channels[top_j]}"
            + (", drawn on the left)" if self.n_panels == 1 else ")"),
            fill=FG,
            font=font(12),
        )

    # -- one frame -------------------------------------------------------------------------
    def frame(self, fr) -> Image.Image:
        r, c = fr.pos
        img = Image.new("RGB", self.size, BG)
        d = ImageDraw.Draw(img)
        d.text((20, 14), self.title, fill=FG, font=font(20))
        d.text((20, 44), self.headline(fr), fill=FG, font=font(14))
        d.text((20, 66), self.caption(fr), fill=ACCENT if fr.reason else MUTED, font=font(13))
        for i, line in enumerate(self.notes[:3]):
            d.text((20, 86 + 16 * i), line, fill=MUTED, font=font(12))
        if self.n_panels == 1:
            j = 0 if self.cin == 1 else int(np.argmax(np.abs(self.partials[r, c])))
            label = (
                "input"
                if self.cin == 1
                else f"input channel {self.in_channels[j]} (the largest sum here)"
            )
            self._input_panel(img, d, self.panel_xy[0], j, r, c, label)
        else:
            for j, xy in enumerate(self.panel_xy):
                self._input_panel(
                    img,
                    d,
                    xy,
                    j,
                    r,
                    c,
                    f"in {self.in_channels[j]}: {_fmt(float(self.partials[r, c, j]))}",
                )
        d.text((20, self.zoom_y), self.zoom(fr), fill=MUTED, font=font(11))
        bx, by, bh = self.in_bar
        colorbar(d, img, (bx, by), bh, self.lo, self.hi, self.gray, label="input")
        if self.grids:
            self._grids(img, d, r, c)
        else:
            self._bars(img, d, r, c)
        self.map.draw(img, d, (self.map_x, 150), fr.filled, fr.pos)
        return img

    def _equals(self, r, c) -> str:
        """What follows a sum: '+ bias B = V', or '= V (no bias)' for a layer without one."""
        v = _fmt(float(self.out[r, c]))
        return f" = {v} (no bias)" if self.b is None else f" + bias {_fmt(self.b)} = {v}"

    def headline(self, fr) -> str:
        """The line under the title: the output at fr as the sum of its products (+ bias)."""
        r, c = fr.pos
        total = float(self.products[r, c].sum())
        return (
            f"output ({r}, {c}) = sum of {self.products[r, c].size} products {_fmt(total)}"
            + self._equals(r, c)
        )

    def caption(self, fr) -> str:
        """The sentence under frame fr: why this position is shown, with its numbers."""
        r, c = fr.pos
        v = float(self.out[r, c])
        if fr.reason == "empty":
            vals = self.win[r, c].reshape(self.cin, -1)[:, 0]
            if self.cin == 1:
                text = (
                    f"an empty window: every value is {vals[0]:.2f}, so the output is "
                    f"{vals[0]:.2f} x {float(self.w.sum()):.3f} (the kernel's sum)"
                    + (" = " if self.b is None else " + bias = ")
                    + _fmt(v)
                )
            else:
                text = f"an empty window: each channel holds one value, so the output is {_fmt(v)}"
            if self.background:
                text += ", not 0: " + self.background
            return text
        if fr.reason == "along":
            return f"along the input's structure: {_fmt(v)}"
        if fr.reason == "max":
            return f"the strongest response of this channel: {_fmt(v)}"
        if fr.reason == "min":
            return f"the most negative response: {_fmt(v)} (a ReLU after it would make it 0)"
        done = int(fr.filled.sum())
        return f"the rest of the map, row by row: {done} of {fr.filled.size} pixels computed"


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
