"""Bring any image into MNIST form, the way MNIST itself was made.

Grayscale; inverted when it is dark ink on a light background; cropped to the ink; scaled
to fit 20x20 keeping the aspect ratio; placed in 28x28 so its centre of mass is central.
The result is white ink on black, float32 in [0, 1].
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import ConvseeError
from .images import to_gray

__all__ = ["preprocess", "preprocess_for", "save_gray_png"]

INK_THRESHOLD = 0.1  # fraction of full contrast that counts as ink when cropping
BLANK_CONTRAST = 0.08  # below this (max - background), on [0, 1], the image is blank


def preprocess(image, *, size: int = 28, box: int = 20, center: str = "mass") -> np.ndarray:
    """MNIST-form float32 (28, 28) from a path, PIL image or array. Never modifies its input.

    center="mass" centres the centre of mass (MNIST); "box" centres the bounding box
    (Fashion-MNIST, whose items fill the 28x28: use box=28 with it).
    """
    g = to_gray(image).copy()
    if g.size == 0:
        raise ConvseeError("empty image")
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    if np.median(border) > 0.5:  # dark ink on a light background
        g = 1.0 - g
        border = 1.0 - border
    g = np.clip(g - np.median(border), 0, None)
    peak = float(g.max())
    if peak < BLANK_CONTRAST:
        raise ConvseeError("blank image: no ink found (nothing stands out from the background)")
    g /= peak
    rows = np.flatnonzero(g.max(1) > INK_THRESHOLD)
    cols = np.flatnonzero(g.max(0) > INK_THRESHOLD)
    g = g[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = g.shape
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
    """preprocess() the way the dataset's images were made."""
    if dataset == "fashion-mnist":
        return preprocess(image, box=28, center="box")
    return preprocess(image)


def save_gray_png(array: np.ndarray, dest) -> None:
    """Save a [0, 1] float image as an 8-bit grayscale PNG (path or file object)."""
    Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8), "L").save(dest, "PNG")
