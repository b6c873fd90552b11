"""Pictures of what each channel looks for: its top dataset patches (exemplars) and the input
it responds to most (optimize). Arrays in, Pillow images out; nothing here runs a model.

Patches may be grayscale (h, w) or colour (h, w, 3), any size: small ones are enlarged by
whole pixels (nearest), large ones scaled down to the tile.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .core import ACCENT, BG, FG, MUTED, encode_png, font, text_size

__all__ = ["tile", "hatched", "exemplar_image", "optimize_image", "png_rgb", "HATCH", "OUTSIDE"]

FRAME = (200, 200, 205)  # tile outline, one of the UI colours
ROWS_PER_BLOCK = 16  # channels per column block in the exemplars picture
# the part of a patch outside the image: diagonal stripes of two greys, a pattern no image
# has (a flat fill, the mean colour or white, reads as background or ink)
HATCH = (0.38, 0.62)
OUTSIDE = "parts of a field outside the image: hatched grey (no image there)"


def hatched(patch: np.ndarray, off: np.ndarray | None) -> np.ndarray:
    """The patch (h, w) or (h, w, 3) in [0, 1] with its pixels where off is True striped in
    HATCH's greys (stripes about a seventh of the patch wide, at least 2 px)."""
    p = np.array(patch, np.float32)
    if off is None or not off.any():
        return p
    h, w = p.shape[:2]
    width = max(2, max(h, w) // 7)
    i, j = np.indices((h, w))
    grey = np.where(((i + j) // width) % 2 == 0, HATCH[0], HATCH[1]).astype(np.float32)
    p[off] = grey[off][:, None] if p.ndim == 3 else grey[off]
    return p


def tile(patch: np.ndarray, side: int) -> Image.Image:
    """A patch in [0, 1], (h, w) or (h, w, 3), as an RGB picture at most side x side px:
    enlarged by a whole factor (nearest) when small, scaled down (Lanczos) when large."""
    p = np.clip(np.nan_to_num(np.asarray(patch, np.float32)), 0, 1)
    if p.ndim == 3 and p.shape[2] != 3:
        p = p.mean(2)
    g = np.round(p * 255).astype(np.uint8)
    img = Image.fromarray(g, "L" if g.ndim == 2 else "RGB").convert("RGB")
    h, w = g.shape[:2]
    z = side // max(h, w)
    if z >= 1:
        return img.resize((w * z, h * z), Image.Resampling.NEAREST)
    f = side / max(h, w)
    return img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.LANCZOS)


def _framed(img: Image.Image, d: ImageDraw.ImageDraw, t: Image.Image, x: int, y: int) -> None:
    """Paste a tile with a thin frame, so white edges do not melt into the page."""
    img.paste(t, (x, y))
    d.rectangle([x - 1, y - 1, x + t.width, y + t.height], outline=FRAME)


def _text_width(title: str, lines: list[str]) -> int:
    """Room for the title (20 px) and the note lines (13 px), with margins; at least 640."""
    widths = [text_size(title, 20)[0], *(text_size(x, 13)[0] for x in lines)]
    return max(640, 40 + max(widths))


def _tile_shape(t: int, h: int, w: int) -> tuple[int, int]:
    """(rows, cols) in px of the tile of an h x w patch at side t, as tile() makes it."""
    return max(1, round(t * h / max(h, w))), max(1, round(t * w / max(h, w)))


def _page(width: int, height: int, title: str, lines: list[str]):
    """A blank picture at least as wide as its text, with the title and the note lines
    drawn: (image, its ImageDraw)."""
    img = Image.new("RGB", (max(width, _text_width(title, lines)), height), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 14), title, fill=FG, font=font(20))
    for i, line in enumerate(lines):
        d.text((20, 42 + 18 * i), line, fill=MUTED, font=font(13))
    return img, d


def _patch_side(h: int, w: int) -> int:
    """Tile side for patches of h x w px: about 56 px, enlarged by whole pixels."""
    m = max(h, w)
    if m <= 6:
        return m * 10
    if m <= 56:
        return m * max(2, 56 // m)
    return 96


def _mean_inside(patches: np.ndarray, off: np.ndarray | None) -> np.ndarray:
    """The mean of k patches (k, h, w[, 3]) over those inside the image at each pixel;
    hatched where none is."""
    if off is None:
        return patches.mean(0)
    inside = ~off
    wgt = inside.reshape(*inside.shape, *([1] * (patches.ndim - 3))).astype(np.float32)
    n = wgt.sum(0)
    mean = (patches * wgt).sum(0) / np.maximum(n, 1)
    return hatched(mean, ~inside.any(0))


def exemplar_image(
    ex, title: str, notes: list[str] | None = None, value: str = "its peak value"
) -> Image.Image:
    """Rows: channels (their numbers kept); columns: the top patches (value under each), then
    their mean. More than 16 channels: blocks of 16 rows side by side."""
    c, k = ex.patches.shape[:2]
    h, w = ex.patches.shape[2:4]
    t = _patch_side(h, w)
    th, tw = _tile_shape(t, h, w)
    left, gap, row_h = 70, 6, th + 22
    blocks = max(1, math.ceil(c / ROWS_PER_BLOCK))
    rows = min(c, ROWS_PER_BLOCK)
    block_w = left + (k + 1) * (tw + gap) + gap + 20
    lines = [
        f"each row: the top {k} for one channel ({value} under each), then their mean",
        *(notes or []),
    ]
    top = 48 + 18 * len(lines)
    img, d = _page(20 + blocks * block_w, top + rows * row_h + 10, title, lines)
    off = getattr(ex, "outside", None)
    for row, ch in enumerate(ex.channels):
        bx = 20 + (row // ROWS_PER_BLOCK) * block_w - 20
        y = top + (row % ROWS_PER_BLOCK) * row_h
        d.text((bx + left - 10, y + th // 2), f"ch {ch}", fill=FG, font=font(12), anchor="rm")
        for j in range(k + 1):
            x = bx + left + j * (tw + gap) + (gap if j == k else 0)
            if j < k:
                p = ex.patches[row, j] if off is None else hatched(ex.patches[row, j], off[row, j])
            else:
                p = _mean_inside(ex.patches[row], None if off is None else off[row])
            _framed(img, d, tile(p, t), x, y)
            label = "mean" if j == k else f"{ex.values[row, j]:.3g}"
            d.text((x, y + th + 2), label, fill=MUTED, font=font(10))
    return img


def optimize_image(
    patches: np.ndarray,
    units: list[int],
    values,
    random_best,
    data_best=None,
    title: str = "",
    notes: list[str] | None = None,
    labels=None,
    random_mean=None,
    rounds=None,
    excited=None,
    outside=None,
) -> Image.Image:
    """A grid of optimised inputs (or the part of them the objective sees), each with the
    value reached and the baselines under it; a unit that did not beat them is marked, one
    that needed more than one round says so. outside: (U, h, w) bool or None, the part of
    each patch off the image, hatched (the caller adds the OUTSIDE note)."""
    n = len(patches)
    h, w = patches.shape[1:3] if n else (1, 1)
    cols = min(max(n, 1), 8)
    rows = math.ceil(n / cols) if n else 0
    m = max(h, w)
    t = m * max(1, round(112 / m)) if m <= 112 else 112  # about 112 px, whole pixels when small
    th, tw = _tile_shape(t, h, w)
    lines = list(notes or [])
    top = 52 + 18 * len(lines)
    cell_w, cell_h = max(tw, 126) + 16, th + 48
    img, d = _page(20 + cols * cell_w, top + rows * cell_h + 10, title, lines)
    for i in range(n):
        x, y = 20 + (i % cols) * cell_w, top + (i // cols) * cell_h
        p = patches[i] if outside is None else hatched(patches[i], outside[i])
        _framed(img, d, tile(p, t), x, y)
        name = labels[i] if labels else f"ch {units[i]}"
        below = values[i] <= random_best[i] or (data_best is not None and values[i] <= data_best[i])
        d.text(
            (x, y + th + 3), f"{name}: {values[i]:.3g}", fill=ACCENT if below else FG, font=font(11)
        )
        base = f"rand. best {random_best[i]:.3g}"
        if data_best is not None:
            base += f" · data {data_best[i]:.3g}"
        d.text((x, y + th + 17), base, fill=MUTED, font=font(10))
        if excited is not None and not excited[i]:
            d.text((x, y + th + 30), "not excited (<= random)", fill=ACCENT, font=font(10))
        elif below:
            d.text((x, y + th + 30), "below a baseline", fill=ACCENT, font=font(10))
        elif rounds is not None and rounds[i] > 1:
            d.text((x, y + th + 30), f"after {rounds[i]} rounds", fill=MUTED, font=font(10))
        elif random_mean is not None:
            d.text((x, y + th + 30), f"rand. mean {random_mean[i]:.3g}", fill=MUTED, font=font(10))
    return img


def png_rgb(img: Image.Image) -> bytes:
    """PNG bytes in full colour: photos and exact grays (the shared 256-colour palette of
    draw.render.png_bytes would band them)."""
    return encode_png(img.convert("RGB"), compress_level=6)


def optimize_files(net, layer, res, base, cfg, data_note=None, scores=None) -> dict:
    """{"optimize_{layer}.png": PNG, "optimize_{layer}.json": sidecar} of one optimised layer
    (run.optimize: an Optimized and its Baselines), as `convsee optimize` writes them."""
    from ..draw.render import sidecar
    from ..run.optimize import excited, field_patches

    c, h, w = net.prep.input_size
    units = res.units
    below = [u for u, v, b in zip(units, res.values, base.bar(), strict=True) if not v > b]
    good = excited(res, base)
    failed = [u for u, ok in zip(units, good, strict=True) if not ok]
    classes = layer.name == scores
    labels = None
    if classes:
        names = net.class_names(layer.channels)
        labels = [names[u] for u in units]
    if res.whole:
        shown = f"the whole {h}x{w} input"
    elif len(units):
        bh, bw = res.boxes[0, 1] - res.boxes[0, 0] + 1, res.boxes[0, 3] - res.boxes[0, 2] + 1
        shown = f"the {bh}x{bw} receptive field of that neuron, cut from the {h}x{w} input"
    else:
        shown = "nothing (stopped before the first channel)"
    steps = sorted({int(s) for s in res.steps}) if res.steps is not None and len(units) else []
    ran = f"{steps[0]}" if len(steps) == 1 else f"{steps[0]}-{steps[-1]}" if steps else "0"
    notes = [
        f"objective: {res.objective}; shown: {shown}",
        *([OUTSIDE] if res.outside is not None else []),  # that part: hatched
        f"{res.param} parameterisation, {ran} steps with random shift, scale and rotation, "
        f"{cfg.restarts} start(s) a round, best kept; seed {cfg.seed}",
        "under each: value reached; best of "
        f"{base.n_random} random inputs"
        + (f" and of {data_note}" if base.data_best is not None else ""),
        f"{int(good.sum())} of {len(units)} beat the best of {base.n_random} random inputs",
    ]
    if res.redirected:
        notes.append(f"where a unit was 0 after its ReLU, the optimisation raised {res.redirected}")
    if failed:
        notes.append(
            f"not excited (at or below the best random input): {_few(failed, labels, units)}"
        )
    if res.stopped:
        notes.append(f"stopped early ({res.stopped}): {len(units)} channels done")
    if len(units) < layer.channels:
        notes.append(f"{len(units)} of {layer.channels} channels shown")
    if (res.rounds > 1).any():
        notes.append(
            "a channel below a baseline gets another round: twice the steps, weaker transforms "
            "(the last round: none, and free pixels)"
        )
    what = "class" if classes else "channel" if layer.kind == "map" else "unit"
    img = optimize_image(
        res.images if res.whole else field_patches(res, net.prep),
        units,
        res.values,
        base.random_best,
        base.data_best,
        f"{layer.name}: the input each {what} wants most",
        notes,
        labels,
        base.random_mean,
        res.rounds,
        excited=good,
        outside=res.outside,
    )
    safe = _safe(layer.name)
    side = sidecar(
        net.provenance,
        picture="optimize",
        layer=layer.name,
        objective=res.objective,
        config=vars(cfg),
        param=res.param,
        seconds=round(res.seconds, 3),
        units=units,
        values=np.round(res.values, 5).tolist(),
        random_mean=np.round(base.random_mean, 5).tolist(),
        random_best=np.round(base.random_best, 5).tolist(),
        random_inputs=base.n_random,
        dataset_best=None if base.data_best is None else np.round(base.data_best, 5).tolist(),
        dataset_sample=base.n_data,
        dataset=data_note,
        rounds=res.rounds.tolist(),
        steps=None if res.steps is None else res.steps.tolist(),
        below_baseline=below,
        excited=good.tolist(),
        not_excited=failed,
        beat_random=int(good.sum()),
        pre_activation=res.redirected,
        stopped=res.stopped,
        field_box=res.boxes[0].tolist() if len(units) else None,
    )
    return {f"optimize_{safe}.png": png_rgb(img), f"optimize_{safe}.json": side}


def _few(failed, labels, units, k: int = 8) -> str:
    names = [labels[units.index(u)] if labels else f"ch {u}" for u in failed]
    more = f" and {len(names) - k} more" if len(names) > k else ""
    return ", ".join(names[:k]) + more


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.#-]+", "_", name).strip("_.") or "layer"
