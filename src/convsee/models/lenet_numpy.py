"""LeNet-5's forward pass in NumPy, every layer's output kept: the torch-free path that
`convsee render` uses so a whole render runs without importing torch (about 1.5 s of
start-up here). Tests check it against the torch model and F.conv2d on the same weights.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..datasets.idx import MEAN, STD
from .lenet_layers import LAYER_INFO

__all__ = ["normalize", "conv2d", "max_pool2", "forward_all"]


def normalize(images) -> np.ndarray:
    """[0, 1] images (N, 28, 28) -> float32 (N, 1, 28, 28), MNIST-normalised."""
    x = np.asarray(images, np.float32)
    return ((x - MEAN) / STD)[:, None]


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Valid cross-correlation, as torch's conv2d: (N, Cin, H, W) * (Cout, Cin, k, k)."""
    k = w.shape[-1]
    win = sliding_window_view(x, (k, k), axis=(2, 3))  # (N, Cin, H', W', k, k)
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True) + b[None, :, None, None]


def max_pool2(x: np.ndarray) -> np.ndarray:
    """2x2 max pooling with stride 2 (odd edges dropped, as torch does)."""
    n, c, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def forward_all(weights: dict, images) -> tuple[dict, np.ndarray]:
    """({layer: output, batch first} for every layer, softmax probabilities)."""
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    out = {}
    h = normalize(images)
    for name in LAYER_INFO:
        if name.startswith("conv"):
            h = conv2d(h, w[f"{name}.weight"], w[f"{name}.bias"])
        elif name.startswith("fc"):
            h = h @ w[f"{name}.weight"].T + w[f"{name}.bias"]
        elif name.startswith("relu"):
            h = relu(h)
        elif name.startswith("pool"):
            h = max_pool2(h)
        elif name == "flatten":
            h = h.reshape(h.shape[0], -1)
        out[name] = h.astype(np.float32)
    z = h - h.max(1, keepdims=True)
    p = np.exp(z)
    return out, (p / p.sum(1, keepdims=True)).astype(np.float32)
