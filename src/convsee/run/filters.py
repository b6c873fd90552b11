"""Gaussian blur of activation maps in NumPy, as the original project blurred them
(torchvision's gaussian_blur: a normalised separable kernel, reflect padding)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConvseeError

__all__ = ["MAX_KERNEL", "gaussian_kernel1d", "blur_maps"]

# taps: 63 already spans twice the largest map convsee draws (28x28); each extra tap costs a
# pass over the maps, and a kernel of 99999 would once have padded every map to 100023^2
MAX_KERNEL = 63


def _show(x) -> str:
    """A number for a message, never a long one."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool) and abs(x) < 10**9:
        return str(int(x))
    if isinstance(x, (float, np.floating)) and (not math.isfinite(x) or abs(x) < 1e9):
        return f"{float(x):g}"
    return "a number out of range" if isinstance(x, (int, float, np.number)) else "not a number"


def gaussian_kernel1d(size: int, sigma: float) -> np.ndarray:
    ok_size = isinstance(size, (int, np.integer)) and 1 <= size <= MAX_KERNEL and size % 2 == 1
    ok_sigma = isinstance(sigma, (int, float, np.number)) and math.isfinite(sigma) and sigma > 0
    if not (ok_size and ok_sigma):
        raise ConvseeError(
            f"blur kernel must be odd, 1 to {MAX_KERNEL}, and sigma a finite number > 0; "
            f"got {_show(size)}, {_show(sigma)}",
            "blur",
        )
    half = (size - 1) / 2
    g = np.exp(-0.5 * (np.linspace(-half, half, size) / sigma) ** 2)
    return (g / g.sum()).astype(np.float32)


def blur_maps(maps: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Blur every (H, W) map of (..., H, W); reflect padding (replicate if the map is tiny).

    Memory: the padded maps and two outputs, whatever the kernel size (one pass per tap).
    """
    g = gaussian_kernel1d(size, sigma)
    a = np.asarray(maps, np.float32)
    h, w = a.shape[-2:]
    pad = size // 2
    mode = "reflect" if pad < min(h, w) else "edge"
    widths = [(0, 0)] * (a.ndim - 2) + [(pad, pad), (pad, pad)]
    p = np.pad(a, widths, mode=mode)
    rows = np.zeros(p.shape[:-1] + (w,), np.float32)  # along W
    for k in range(size):
        rows += g[k] * p[..., k : k + w]
    out = np.zeros(a.shape, np.float32)  # along H
    for k in range(size):
        out += g[k] * rows[..., k : k + h, :]
    return out
