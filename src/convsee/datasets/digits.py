"""Bring any image into MNIST form, the way MNIST itself was made.

Grayscale; inverted when it is dark ink on a light background; cropped to the ink; scaled
to fit 20x20 keeping the aspect ratio; placed in 28x28 so its centre of mass is central.
The result is white ink on black, float32 in [0, 1].

Photos of handwriting on paper need more before the crop, so that only ink is cropped:
the polarity is read from how far the ink strays from the paper around it (a grey or
shadowed sheet is still paper); the paper's shading (lighting gradients, shadows, a grey
background) is estimated on small copies with morphological openings and taken out, dark
ink's contrast relative to the paper's brightness; ink is told from noise by a hysteresis
threshold (Otsu's level to find ink, a noise-based level to follow it) with soft edges;
specks, thin marks along the border and leftovers of shadows are dropped. Large inputs are
box-averaged first. A clean scan or drawing (a uniform border, flat paper, no noise) comes
out as before, except that specks far from the digit no longer widen the crop.
"""

from __future__ import annotations

import math
import os

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from ..errors import ConvseeError
from .images import open_image, reduce_to, to_gray

__all__ = ["preprocess", "preprocess_for", "save_gray_png"]

INK_THRESHOLD = 0.1  # fraction of full contrast that counts as ink when cropping
BLANK_CONTRAST = 0.08  # below this (ink - background), on [0, 1], the image is blank
WORK_PIXELS = 1_000_000  # larger inputs are box-averaged to at most this many pixels (speed)
COARSE_SIDE = 48  # px: long side of the copy for a first look at the paper's shading
BG_SIDE = 128  # px: long side of the copy on which uneven shading is estimated
DARKEST = 0.02  # added to brightness before taking ratios of it (sensor's black)
POLARITY_WINDOW = 1 / 3  # of the coarse copy's short side: the paper is the median there
COARSE_WINDOW = 1 / 2  # of the coarse copy's short side: wider than any digit's blobs
BG_WINDOW = 1 / 3  # of that copy's short side: narrower bright things are ink, wider shading
LABEL_SIDE = 128  # px: long side of the grid on which ink is split into connected parts
STROKE_WINDOW = 4.0  # strokes: the second shading window is this many stroke widths
MIN_PAPER = 0.1  # darkest paper brightness that dark ink's contrast is taken relative to
GUESS_STROKE = 1 / 24  # of the short side: strokes of a digit a third as tall, if unseen
NOISE_SIGMAS = 4.0  # ink is followed down to this many noise std above the paper
SOFT_SIGMAS = 2.0  # the soft edge of a stroke starts this many noise std above the paper
MIN_SNR = 6.0  # ink must stand this many noise std above the paper, or the image is blank
INK_LEVEL = 75  # percentile of the ink pixels that maps to full white (MNIST: saturated)
HOLD = 0.5  # a part is ink if it reaches this fraction of Otsu's level (and MIN_SNR)
SHADOW_CONTRAST = 0.5  # ink stands above the brightest paper around it by this much of
#   its contrast to the darkest; a shadow's leftover does not (ink-bright: shadows are bright)
MAJOR = 0.5  # parts at least this fraction of the largest part are kept wherever they are
SPECK = 0.02  # parts under this fraction of the largest part are dropped as specks
NEAR = 0.15  # ...and between the two kept if this close (fraction of the digit's size)
INNER = 0.1  # parts off the border are preferred if the largest is this fraction of any part
BORDER_BAND = 0.04  # parts lying within this fraction of the size along an edge: artefacts
MIN_BAND_SIDE = 16  # cells: images narrower than this have no such band


def preprocess(
    image, *, size: int = 28, box: int = 20, center: str = "mass", notes: list | None = None
) -> np.ndarray:
    """MNIST-form float32 (28, 28) from a path, PIL image or array. Never modifies its input.

    center="mass" centres the centre of mass (MNIST) and treats the image as strokes on
    paper, removing shading and noise; "box" centres the bounding box (Fashion-MNIST, whose
    items fill the 28x28: use box=28 with it) and treats it as one filled shape on a flat
    background (a shading estimate would take a large filled shape for shading).
    notes: a list to which what was done is appended, in words (for sidecars).
    """
    notes = [] if notes is None else notes
    g = _gray(image, notes)
    if g.size == 0:
        raise ConvseeError("empty image")
    if center == "mass":
        g = _strokes(g, notes)
    else:
        g = _flat(g, notes)
    rows = np.flatnonzero(g.max(1) > INK_THRESHOLD)
    cols = np.flatnonzero(g.max(0) > INK_THRESHOLD)
    if rows.size == 0:
        raise ConvseeError("blank image: no ink found (nothing stands out from the background)")
    g = g[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = g.shape
    notes.append(f"cropped to the ink ({w}x{h} px), scaled to fit {box}x{box}")
    s = box / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = Image.fromarray(g, mode="F").resize((nw, nh), Image.Resampling.LANCZOS)
    small = np.clip(np.asarray(small, dtype=np.float32), 0, 1)
    total = small.sum()
    if center == "box":
        cy, cx = (nh - 1) / 2, (nw - 1) / 2
    else:
        cy, cx = (np.indices(small.shape) * small).reshape(2, -1).sum(1) / max(total, 1e-8)
    centre = size / 2 if center == "mass" else (size - 1) / 2  # MNIST: mass at pixel (14, 14)
    top = int(np.clip(round(centre - cy), 0, size - nh))
    left = int(np.clip(round(centre - cx), 0, size - nw))
    out = np.zeros((size, size), np.float32)
    out[top : top + nh, left : left + nw] = small
    return out


def preprocess_for(image, dataset: str = "mnist") -> np.ndarray:
    """preprocess() the way the dataset's images were made (its registry entry's `resize`)."""
    from .registry import lookup

    if lookup(dataset).resize == "fashion":
        return preprocess(image, box=28, center="box")
    return preprocess(image)


def save_gray_png(array: np.ndarray, dest) -> None:
    """Save a [0, 1] float image as an 8-bit grayscale PNG (path or file object)."""
    Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8), "L").save(dest, "PNG")


# ---------- grayscale, shrunk early ----------


def _gray(image, notes: list) -> np.ndarray:
    """to_gray() of the input, box-averaged first to at most about WORK_PIXELS: a 12 MP
    photo is reduced while still 8-bit, before the float conversion that would cost most."""
    if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(
        image, "read"
    ):
        image = open_image(image)
    if isinstance(image, Image.Image):
        notes.extend(_source_notes(image))
        image = reduce_to(image, WORK_PIXELS)
    elif isinstance(image, np.ndarray) and image.dtype == np.uint8:
        k = _factor(image.shape[:2])
        if k >= 2 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
            image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).reduce(k))
    g = to_gray(image)
    k = _factor(g.shape)
    if k >= 2:  # other arrays are reduced only now
        g = np.asarray(Image.fromarray(np.ascontiguousarray(g, np.float32), "F").reduce(k))
    return g


def _source_notes(img: Image.Image) -> list[str]:
    """What reading this image into one gray channel does, in words."""
    w, h = img.size
    out = [f"a {w}x{h} {img.mode} image"]
    if img.info.get("convsee_turned"):
        out.append("turned upright as its EXIF orientation says")
    alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if alpha:  # as to_gray decides: where the alpha varies it is the ink
        a = (img if img.mode in ("RGBA", "LA") else img.convert("RGBA")).getchannel("A")
        lo, hi = a.getextrema()
        alpha = lo < hi
    if alpha:
        out.append("its alpha channel read as the ink (its transparency varies)")
    elif img.mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr"):
        out.append("colour read as luminance (0.299 R + 0.587 G + 0.114 B)")
    if w * h > WORK_PIXELS:
        out.append(f"box-averaged to at most {WORK_PIXELS // 1_000_000} megapixel first")
    return out


def _factor(shape) -> int:
    """The whole factor that brings an image of this (height, width) to WORK_PIXELS."""
    return math.ceil(math.sqrt(shape[0] * shape[1] / WORK_PIXELS)) if len(shape) > 1 else 1


# ---------- a filled shape on a flat background (Fashion-MNIST) ----------


def _flat(g: np.ndarray, notes: list) -> np.ndarray:
    """Ink in [0, 1] (white on black): the background is the border's median level."""
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    if np.median(border) > 0.5:  # dark ink on a light background
        notes.append("dark on a light background: inverted")
        g = 1.0 - g
        border = 1.0 - border
    g = np.clip(g - np.median(border), 0, None)
    peak = float(g.max())
    if peak < BLANK_CONTRAST:
        raise ConvseeError("blank image: no ink found (nothing stands out from the background)")
    return g / peak


# ---------- strokes on paper (MNIST) ----------


def _strokes(g: np.ndarray, notes: list) -> np.ndarray:
    """Ink in [0, 1] (white on black, (H, W) like g): shading removed, noise and specks gone.

    The shading is the opening of a small copy: first with a window half the image wide on
    a coarse copy (safe for any stroke or blob of ink); then, where the paper is not flat,
    on a finer copy with a window a few strokes wide, which follows shadows closely."""
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    fine = None
    if border.min() == border.max():  # a clean drawing or scan: the border is the paper
        dark = float(border[0] - g.min()) > float(g.max() - border[0])
    else:
        fine, f = _copy(g, BG_SIDE)
        dark = _dark_ink(fine, _copy(g, COARSE_SIDE)[0], border)
    if dark:
        notes.append("dark ink on a light background: inverted")
        g = 1.0 - g
        fine = None if fine is None else 1.0 - fine
    small, fc = _copy(g, COARSE_SIDE)
    k = max(3, round(min(small.shape) * COARSE_WINDOW))
    ink, stroke, flat = _ink(g, small, fc, k, dark)
    if not flat:
        if ink is None or stroke == 0:  # all shadow, or ink merged with its leftover
            stroke = min(g.shape) * GUESS_STROKE
        if fine is None:
            fine, f = _copy(g, BG_SIDE)
        k = min(round(min(fine.shape) * BG_WINDOW), int(np.ceil(STROKE_WINDOW * stroke / f)))
        ink = _ink(g, fine, f, max(3, k), dark)[0]
    if ink is None:
        raise ConvseeError("blank image: no ink found (nothing stands out from the background)")
    notes.append(
        "background taken out: flat paper"
        if flat
        else "background taken out: uneven paper shading estimated and removed"
    )
    return ink


def _copy(g: np.ndarray, side: int):
    """(box-averaged copy of g at most `side` long, the factor f it is smaller by)."""
    h, w = g.shape
    f = max(1, -(-max(h, w) // side))  # ceil
    if f == 1:
        return g, 1
    return _resize(g, (max(1, round(h / f)), max(1, round(w / f))), Image.Resampling.BOX), f


def _ink(g: np.ndarray, small: np.ndarray, f: int, k: int, dark: bool):
    """(ink (H, W) in [0, 1] or None if there is none, stroke width in px (0 on flat paper),
    whether the paper is flat) for ink-bright g and its small copy (f times smaller), with
    the shading the opening of window k cells. dark: g is dark ink on paper, inverted; on
    shaded paper its contrast is then taken relative to the paper's brightness, so that
    ink in a shadow is as dark as in the light (light multiplies)."""
    h, w = g.shape
    shade = _filter(_filter(small, k, np.minimum), k, np.maximum)  # the paper under the ink
    flat = float(shade.max() - shade.min()) < BLANK_CONTRAST / 4
    if flat:  # one level of paper
        shade = np.float32(np.median(shade))
    elif f > 1:  # a cell's worth of dilation first: no false ink along a shadow's sharp edge
        shade = _resize(_grow(shade), (h, w), Image.Resampling.BILINEAR)
    r = g - shade  # ink above the paper (H, W); paper ~ 0 with noise
    if dark and not flat:
        r /= np.maximum(1.0 - shade, MIN_PAPER)
    paper, sigma = _paper(r)
    r -= paper
    rs = _blur3(r)  # for finding ink: noise down ~3x, strokes kept
    sigma_s = _paper(rs)[1]
    high = max(_otsu(rs), NOISE_SIGMAS * sigma_s)  # ink surely
    low = max(min(NOISE_SIGMAS * sigma_s, 0.5 * high), 0.25 * high)  # ink if joined to ink
    strong = rs > high
    if not strong.any():
        return None, 0.0, flat
    level = float(np.percentile(r[strong], INK_LEVEL))
    if level < BLANK_CONTRAST or level < MIN_SNR * sigma:
        return None, 0.0, flat
    hold = rs > max(HOLD * high, MIN_SNR * sigma_s)
    keep = _ink_parts(rs > low, hold, strong, None if flat else g)
    if keep is None:
        return None, 0.0, flat
    floor = min(SOFT_SIGMAS * sigma, 0.5 * low)
    ink = np.clip((r - floor) / max(level - floor, 1e-6), 0, 1) * keep
    return ink, 0.0 if flat else _stroke_width(strong & (keep > 0)), flat


def _stroke_width(mask: np.ndarray) -> float:
    """Mean width of the strokes in a mask, in px: area over half the perimeter."""
    edges = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    return 2 * np.count_nonzero(mask) / max(edges, 1)


def _dark_ink(fine: np.ndarray, coarse: np.ndarray, border: np.ndarray) -> bool:
    """Whether the ink is darker than the paper, from a fine and a coarse copy of the image
    and its border's pixels. Paper is usually light (the border's median above mid-grey),
    but grey or shadowed paper is still paper: the ink is dark too if it strays below the
    paper clearly further than anything strays above it, either as a brightness ratio to
    the local median of the coarse copy (which follows shadows; light multiplies, so ink in
    a shadow is still ink) or from a plane fitted to the coarse copy (a lighting gradient;
    a bold digit that fills the median's window). Neither ever makes ink bright: a bold
    digit's holes stray above the median, a lit corner above the plane."""
    k = max(3, round(min(coarse.shape) * POLARITY_WINDOW))
    paper = _median(coarse, k)
    if paper.shape != fine.shape:
        paper = _resize(paper, fine.shape, Image.Resampling.BILINEAR)
    ratio = np.log((fine + DARKEST) / (paper + DARKEST))
    if -ratio.min() > 1.5 * ratio.max():
        return True
    h, w = coarse.shape
    y = np.arange(h, dtype=np.float32) - (h - 1) / 2  # centred: the fit is three means
    x = np.arange(w, dtype=np.float32) - (w - 1) / 2
    res = coarse - coarse.mean()
    if h > 1:
        res = res - np.outer(y, np.ones(w, np.float32)) * (y @ coarse.sum(1)) / (w * (y @ y))
    if w > 1:
        res = res - x * (coarse.sum(0) @ x) / (h * (x @ x))
    return bool(-res.min() > 1.5 * res.max() or np.median(border) > 0.5)


def _ink_parts(low, hold, sure, shaded: np.ndarray | None):
    """(H, W) float mask of the ink worth keeping, or None. The digit is the largest
    connected part of `low` (bool (H, W), like hold and sure) that has some `sure` pixel,
    with the parts as large, and the smaller ones near it that have some `hold` pixel; not
    specks, thin marks along the border, or leftovers of shadows. `shaded`: where the paper
    is not flat, the ink-bright image (H, W), to tell leftovers of shadows (which run into
    the border) from ink. Parts are found on a grid of at most LABEL_SIDE cells a side;
    the kept cells are grown by one."""
    h, w = low.shape
    f = max(1, -(-max(h, w) // LABEL_SIDE))
    cells_low, cells_hold, cells_sure = _pool(low, f), _pool(hold, f), _pool(sure, f)
    ch, cw = cells_low.shape
    ys, xs = np.nonzero(cells_low)
    lab = _label(ys, xs, ch, cw)
    _, comp, area = np.unique(lab, return_inverse=True, return_counts=True)
    order = np.argsort(comp, kind="stable")
    starts = np.concatenate([[0], np.cumsum(area)[:-1]])
    top, bottom = np.minimum.reduceat(ys[order], starts), np.maximum.reduceat(ys[order], starts)
    left, right = np.minimum.reduceat(xs[order], starts), np.maximum.reduceat(xs[order], starts)
    holds = np.maximum.reduceat(cells_hold[ys, xs][order], starts)
    sure = np.maximum.reduceat(cells_sure[ys, xs][order], starts)
    band_y, band_x = max(1, round(BORDER_BAND * ch)), max(1, round(BORDER_BAND * cw))
    hugs = np.zeros(area.shape, bool)
    if ch >= MIN_BAND_SIDE:  # (in a tiny image, everything is near the border)
        hugs |= ((top == 0) & (bottom < band_y)) | ((bottom == ch - 1) & (top >= ch - band_y))
    if cw >= MIN_BAND_SIDE:
        hugs |= ((left == 0) & (right < band_x)) | ((right == cw - 1) & (left >= cw - band_x))
    ok = holds & ~hugs
    touches = (top == 0) | (left == 0) | (bottom == ch - 1) | (right == cw - 1)
    if shaded is not None:
        ok &= ~(touches & _shadowy(shaded, f, cells_low, ys, xs, comp, ok & touches))
    seeds = ok & sure
    if not seeds.any():
        return None
    if shaded is not None:  # and a digit seldom runs into the border, a leftover does
        inner = seeds & ~touches
        if inner.any() and area[inner].max() >= INNER * area[seeds].max():
            seeds = inner
    biggest = area[seeds].max()
    kept = seeds & (area >= MAJOR * biggest)
    maybe = ok & ~kept & (area >= SPECK * biggest)
    while maybe.any():  # add small parts near the kept ones (a detached bar of a 5 or a 7)
        t, b, l_, r_ = top[kept].min(), bottom[kept].max(), left[kept].min(), right[kept].max()
        m = NEAR * max(b - t + 1, r_ - l_ + 1)
        near = maybe & (bottom >= t - m) & (top <= b + m) & (right >= l_ - m) & (left <= r_ + m)
        if not near.any():
            break
        kept |= near
        maybe &= ~near
    cells = np.zeros((ch, cw), bool)
    cells[ys, xs] = kept[comp]
    cells = _grow(cells)  # one cell more, for the strokes' soft edges
    if f > 1:
        cells = np.repeat(np.repeat(cells, f, 0), f, 1)[:h, :w]
    return cells.astype(np.float32)


def _shadowy(g, f, cells_low, ys, xs, comp, which) -> np.ndarray:
    """Which parts (bool per part; only those in `which` are looked at) are leftovers of a
    shadow rather than ink: ink is brighter (in ink-bright g) than all the paper around it,
    while the corner of a shadow that the opening missed is as bright as the rest of that
    shadow, which lies next to it."""
    out = np.zeros(which.shape, bool)
    if not which.any():
        return out
    ch, cw = cells_low.shape
    p = np.pad(g, ((0, ch * f - g.shape[0]), (0, cw * f - g.shape[1])), mode="edge")
    means = p.reshape(ch, f, cw, f).mean(axis=(1, 3))  # g per cell (ch, cw)
    for c in np.flatnonzero(which):
        part = np.zeros((ch, cw), bool)
        part[ys[comp == c], xs[comp == c]] = True
        ring = _grow(_grow(part)) & ~cells_low  # paper within two cells of the part
        if not ring.any():
            continue
        ink = np.percentile(means[part], 75)
        lo, hi = np.percentile(means[ring], [10, 90])
        out[c] = ink - hi < SHADOW_CONTRAST * (ink - lo)
    return out


# ---------- small array tools (NumPy and Pillow only) ----------


def _resize(a: np.ndarray, shape, resample) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(a, np.float32), "F")
    return np.asarray(img.resize((shape[1], shape[0]), resample))


def _filter(a: np.ndarray, k: int, op) -> np.ndarray:
    """k x k flat min or max filter (op = np.minimum or np.maximum), edges repeated; same
    shape. Per axis, extremes over windows of 1, 2, 4, ... up to k, then two overlapping
    windows: about log2(k) array operations rather than k."""
    lo, hi = k // 2, k - 1 - k // 2
    for axis in (0, 1):
        p = np.pad(a, ((lo, hi), (0, 0)) if axis == 0 else ((0, 0), (lo, hi)), mode="edge")
        n, span = a.shape[axis], 1
        while 2 * span <= k:  # p -> extremes over windows of 2 * span
            if axis == 0:
                p = op(p[:-span], p[span:])
            else:
                p = op(p[:, :-span], p[:, span:])
            span *= 2
        if axis == 0:
            a = op(p[:n], p[k - span : k - span + n])
        else:
            a = op(p[:, :n], p[:, k - span : k - span + n])
    return a


def _median(a: np.ndarray, k: int) -> np.ndarray:
    """k x k median filter, edges repeated; same shape."""
    p = np.pad(a, ((k // 2, k - 1 - k // 2),) * 2, mode="edge")
    return np.median(sliding_window_view(p, (k, k)).reshape(*a.shape, k * k), axis=-1)


def _blur3(a: np.ndarray) -> np.ndarray:
    """3x3 mean, edges repeated."""
    p = np.pad(a, 1, mode="edge")
    p = p[:-2] + p[1:-1] + p[2:]
    return (p[:, :-2] + p[:, 1:-1] + p[:, 2:]) / 9


def _paper(a: np.ndarray, samples: int = 8192):
    """(median, robust standard deviation: 1.4826 x MAD) of the background, which is most
    of the pixels; from an even spread of about `samples` of them (the median is costly)."""
    a = a.ravel()[:: max(1, a.size // samples)]
    m = float(np.median(a))
    return m, float(1.4826 * np.median(np.abs(a - m)))


def _otsu(a: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a's positive values (the background is around 0), from an even
    spread of some 16384 of them."""
    top = float(a.max())
    a = a.ravel()[:: max(1, a.size // 16384)]
    if top <= 0:
        return 0.0
    q = np.clip(a * ((bins - 1) / top), 0, bins - 1).astype(np.intp)
    hist = np.bincount(q, minlength=bins).astype(np.float64)
    centres = (np.arange(bins) + 0.5) * (top / (bins - 1))
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * centres)
    total, mean = w0[-1], m0[-1]
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean * w0 - total * m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1
    return float((np.argmax(between) + 1) * (top / (bins - 1)))


def _pool(mask: np.ndarray, f: int) -> np.ndarray:
    """Any-pooling of a bool mask in f x f cells (the last cells may be partial)."""
    if f == 1:
        return mask
    h, w = mask.shape
    out = np.zeros((-(-h // f), -(-w // f)), bool)
    for i in range(f):
        for j in range(f):
            part = mask[i::f, j::f]
            out[: part.shape[0], : part.shape[1]] |= part
    return out


def _grow(a: np.ndarray) -> np.ndarray:
    """3x3 max filter, edges repeated (cheaper than _filter for this size)."""
    p = np.pad(a, 1, mode="edge")
    p = np.maximum(np.maximum(p[:-2], p[1:-1]), p[2:])
    return np.maximum(np.maximum(p[:, :-2], p[:, 1:-1]), p[:, 2:])


def _label(ys: np.ndarray, xs: np.ndarray, h: int, w: int) -> np.ndarray:
    """8-connected component of each listed pixel, as the smallest index in it (n,).

    Each pixel takes the smallest label among its neighbours, then follows its label's
    label to the root (pointer jumping), until nothing changes: a few passes, not one per
    pixel."""
    n = ys.size
    index = np.full((h + 2, w + 2), -1, np.intp)
    index[ys + 1, xs + 1] = np.arange(n)
    own = np.arange(n)
    nbrs = np.stack([index[ys + 1 + dy, xs + 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 1)
    nbrs = np.where(nbrs < 0, own[:, None], nbrs)  # (n, 9)
    lab = own
    while True:
        new = lab[nbrs].min(1)
        while True:  # follow labels to their roots
            root = new[new]
            if np.array_equal(root, new):
                break
            new = root
        if np.array_equal(new, lab):
            return lab
        lab = new
