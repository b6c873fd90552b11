"""What a channel is invariant to: sweep a perturbation over an input and watch the maps.

Kinds: blur (Gaussian sigma 0 to 3), shift (-6 to +6 px horizontally), rotate (-60 to +60
degrees), noise (Gaussian, std 0 to 0.8, fixed seed), occlude (an 8x8 black patch sliding
over the digit). Each kind gives a sequence of 28x28 inputs; the caller runs them through
the model in one pass. Per channel, the cosine similarity of each frame's map to the
unperturbed one measures how invariant the channel is.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import ConvseeError
from .filters import blur_maps

__all__ = ["KINDS", "perturb", "channel_similarity"]

KINDS = ("blur", "shift", "rotate", "noise", "occlude")


def _shift(img, dx):
    out = np.zeros_like(img)
    if dx >= 0:
        out[:, dx:] = img[:, : 28 - dx]
    else:
        out[:, :dx] = img[:, -dx:]
    return out


def _rotate(img, deg):
    pil = Image.fromarray(img, mode="F")
    return np.asarray(pil.rotate(deg, resample=Image.Resampling.BILINEAR), np.float32)


def perturb(image: np.ndarray, kind: str, frames: int = 13, seed: int = 0):
    """(list of 28x28 inputs in [0, 1], list of parameter labels). Frame 0 is unperturbed
    for every kind but shift and rotate, whose middle frame is."""
    image = np.asarray(image, np.float32)
    if kind == "blur":
        params = np.linspace(0, 3, frames)
        imgs = [
            image if s == 0 else blur_maps(image, 2 * int(np.ceil(3 * s)) + 1, s) for s in params
        ]
        labels = [f"sigma {s:.2f}" for s in params]
    elif kind == "shift":
        params = np.round(np.linspace(-6, 6, frames)).astype(int)
        imgs = [_shift(image, int(d)) for d in params]
        labels = [f"shift {d:+d} px" for d in params]
    elif kind == "rotate":
        params = np.linspace(-60, 60, frames)
        imgs = [_rotate(image, float(a)) for a in params]
        labels = [f"rotate {a:+.0f} deg" for a in params]
    elif kind == "noise":
        params = np.linspace(0, 0.8, frames)
        rng = np.random.default_rng(seed)
        base = rng.standard_normal((28, 28)).astype(np.float32)  # one noise pattern, scaled
        imgs = [image + s * base for s in params]
        labels = [f"noise std {s:.2f}" for s in params]
    elif kind == "occlude":
        side = int(np.ceil(np.sqrt(frames - 1)))
        pos = np.linspace(2, 18, max(side, 2)).round().astype(int)
        imgs, labels = [image], ["no patch"]
        for r in pos:
            for c in pos:
                if len(imgs) < frames:
                    im = image.copy()
                    im[r : r + 8, c : c + 8] = 0
                    imgs.append(im)
                    labels.append(f"patch at ({r}, {c})")
    else:
        raise ConvseeError(f"unknown sweep kind {kind!r}; valid: {', '.join(KINDS)}")
    return [np.clip(i, 0, 1).astype(np.float32) for i in imgs], labels


def channel_similarity(maps: np.ndarray, ref: int) -> np.ndarray:
    """maps (F, C, H, W): cosine similarity of each frame's channel to frame ref, (F, C)."""
    a = maps.reshape(maps.shape[0], maps.shape[1], -1)
    r = a[ref]
    num = (a * r).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(r, axis=-1)
    return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
