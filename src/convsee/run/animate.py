"""How a convolution makes a map, and how 2x2 max pooling shrinks it, frame by frame.

conv_steps computes, for every output pixel, the window under the kernel, the element-wise
products, their sum plus the bias: the output map filled in raster order. pool_steps does
the same for 2x2 max pooling. frames() picks which states to show (every pixel of the first
rows, then a row at a time) and conv_frame / pool_frame draw one state.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["conv_steps", "pool_steps", "schedule"]


def conv_steps(x: np.ndarray, w: np.ndarray, b: float):
    """x (Cin, H, W), w (Cin, k, k): (windows (H', W', Cin, k, k), products, out (H', W')).

    out[i, j] = sum(products[i, j]) + b, the cross-correlation torch's conv2d computes.
    """
    k = w.shape[-1]
    win = sliding_window_view(x, (k, k), axis=(1, 2)).transpose(1, 2, 0, 3, 4)
    products = win * w[None, None]
    out = products.sum(axis=(2, 3, 4)) + b
    return win, products, out.astype(np.float32)


def pool_steps(x: np.ndarray):
    """x (H, W): (windows (H/2, W/2, 2, 2), out (H/2, W/2)) for 2x2 max pooling."""
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    win = x[:h, :w].reshape(h // 2, 2, w // 2, 2).transpose(0, 2, 1, 3)
    return win, win.max(axis=(2, 3))


def schedule(h: int, w: int, detail: int = 30) -> list[int]:
    """How many output pixels are filled in each frame: one by one for the first `detail`,
    then to the end of each row; the last frame is the whole map."""
    n = h * w
    steps = list(range(1, min(detail, n) + 1))
    nxt = (steps[-1] // w + 1) * w if steps else w
    while nxt <= n:
        if nxt > steps[-1]:
            steps.append(nxt)
        nxt += w
    if steps[-1] != n:
        steps.append(n)
    return steps
