"""What a channel is invariant to: sweep a perturbation over an input and watch the maps.

The perturbation acts on the picture the model sees ((H, W) gray or (H, W, 3) colour, values
in [0, 1]), which the caller then normalises and runs through the model in one pass. Sizes
scale with the picture (s = min(H, W) / 28, so a 28x28 digit gets the numbers below):

blur     Gaussian, sigma 0 to 3 s px
shift    -6 s to +6 s px horizontally; uncovered pixels take `fill`
rotate   -60 to +60 degrees about the centre; uncovered corners take `fill`
noise    Gaussian, std 0 to 0.8 (one fixed-seed pattern, scaled)
occlude  a mid-grey square (side min(H, W) / 4, 7 px on 28) at every cell of a grid that
         covers the whole picture (4 x 4 positions), after one unperturbed frame

Per channel, the cosine similarity of each frame's map to the unperturbed one measures how
invariant the channel is.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..errors import ConvseeError
from .filters import blur_maps

__all__ = ["KINDS", "PATCH_VALUE", "perturb", "occlusion_boxes", "channel_similarity"]

KINDS = ("blur", "shift", "rotate", "noise", "occlude")
PATCH_VALUE = 0.5  # mid-grey on the [0, 1] scale: visible over black background and white ink


def occlusion_boxes(hw) -> list[tuple[int, int, int]]:
    """(row, col, side) of every occlusion patch, row by row; together they cover the picture."""
    h, w = hw
    side = max(1, round(min(h, w) / 4))
    rows = np.linspace(0, h - side, max(1, math.ceil(h / side))).round().astype(int)
    cols = np.linspace(0, w - side, max(1, math.ceil(w / side))).round().astype(int)
    return [(int(r), int(c), side) for r in rows for c in cols]


def _channels_first(image):
    return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)


def _back(a, like):
    return a[0] if like.ndim == 2 else a.transpose(1, 2, 0)


def _fill_planes(image, fill) -> np.ndarray:
    c = 1 if image.ndim == 2 else image.shape[2]
    return np.resize(np.asarray(fill, np.float32), c)


def _shift(img, dx, fill):
    planes = _channels_first(img)
    out = np.empty_like(planes)
    out[:] = _fill_planes(img, fill)[:, None, None]
    w = planes.shape[-1]
    if dx >= 0:
        out[:, :, dx:] = planes[:, :, : w - dx]
    else:
        out[:, :, :dx] = planes[:, :, -dx:]
    return _back(out, img)


def _rotate(img, deg, fill):
    planes = _channels_first(img)
    fills = _fill_planes(img, fill)
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(p, mode="F").rotate(
                    deg, resample=Image.Resampling.BILINEAR, fillcolor=float(f)
                ),
                np.float32,
            )
            for p, f in zip(planes, fills, strict=True)
        ]
    )
    return _back(out, img)


def perturb(image: np.ndarray, kind: str, frames: int = 13, seed: int = 0, fill=0.0):
    """(list of perturbed pictures in [0, 1], list of parameter labels).

    image: (H, W) or (H, W, 3) in [0, 1]; fill: the value (or per-channel values) of pixels a
    shift or rotation uncovers. Frame 0 is unperturbed for every kind but shift and rotate,
    whose middle frame is. occlude ignores `frames`: one unperturbed frame, then one per patch
    position of occlusion_boxes."""
    image = np.asarray(image, np.float32)
    if image.ndim not in (2, 3):
        raise ConvseeError(f"expected a picture (H, W) or (H, W, C), got shape {image.shape}")
    s = min(image.shape[:2]) / 28
    if kind == "blur":
        params = np.linspace(0, 3 * s, frames)
        planes = _channels_first(image)
        imgs = []
        for sg in params:
            if sg == 0:
                imgs.append(image)
                continue
            k = min(2 * int(np.ceil(3 * sg)) + 1, 2 * (min(image.shape[:2]) // 2) - 1)
            imgs.append(_back(blur_maps(planes, max(k, 1), float(sg)), image))
        labels = [f"sigma {sg:.2f} px" for sg in params]
    elif kind == "shift":
        params = np.round(np.linspace(-6 * s, 6 * s, frames)).astype(int)
        imgs = [_shift(image, int(d), fill) for d in params]
        labels = [f"shift {d:+d} px" for d in params]
    elif kind == "rotate":
        params = np.linspace(-60, 60, frames)
        imgs = [_rotate(image, float(a), fill) for a in params]
        labels = [f"rotate {a:+.0f} deg" for a in params]
    elif kind == "noise":
        params = np.linspace(0, 0.8, frames)
        rng = np.random.default_rng(seed)
        base = rng.standard_normal(image.shape).astype(np.float32)  # one pattern, scaled
        imgs = [image + sd * base for sd in params]
        labels = [f"noise std {sd:.2f}" for sd in params]
    elif kind == "occlude":
        imgs, labels = [image], ["no patch"]
        for r, c, side in occlusion_boxes(image.shape[:2]):
            im = image.copy()
            im[r : r + side, c : c + side] = PATCH_VALUE
            imgs.append(im)
            labels.append(f"grey {side}x{side} patch at row {r}, col {c}")
    else:
        raise ConvseeError(f"unknown sweep {{param}} {kind!r}; valid: {', '.join(KINDS)}", "kind")
    return [np.clip(i, 0, 1).astype(np.float32) for i in imgs], labels


def channel_similarity(maps: np.ndarray, ref: int) -> np.ndarray:
    """maps (F, C, H, W): cosine similarity of each frame's channel to frame ref, (F, C)."""
    a = maps.reshape(maps.shape[0], maps.shape[1], -1).astype(np.float64)
    r = a[ref]
    num = (a * r).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(r, axis=-1)
    return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
