"""Gaussian blur of activation maps in NumPy, as the original project blurred them
(torchvision's gaussian_blur: a normalised separable kernel, reflect padding)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ConvseeError

__all__ = ["gaussian_kernel1d", "blur_maps"]


def gaussian_kernel1d(size: int, sigma: float) -> np.ndarray:
    if size < 1 or size % 2 == 0 or not sigma > 0:
        raise ConvseeError(f"blur kernel must be odd and positive, sigma > 0; got {size}, {sigma}")
    half = (size - 1) / 2
    g = np.exp(-0.5 * (np.linspace(-half, half, size) / sigma) ** 2)
    return (g / g.sum()).astype(np.float32)


def blur_maps(maps: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Blur every (H, W) map of (..., H, W); reflect padding (replicate if the map is tiny)."""
    g = gaussian_kernel1d(size, sigma)
    a = np.asarray(maps, np.float32)
    pad = size // 2
    mode = "reflect" if pad < min(a.shape[-2:]) else "edge"
    widths = [(0, 0)] * (a.ndim - 2) + [(pad, pad), (pad, pad)]
    p = np.pad(a, widths, mode=mode)
    p = sliding_window_view(p, size, axis=-1) @ g  # along W
    p = np.swapaxes(sliding_window_view(np.swapaxes(p, -1, -2), size, axis=-1) @ g, -1, -2)
    return p.astype(np.float32)
