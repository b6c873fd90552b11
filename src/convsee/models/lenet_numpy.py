"""LeNet-5's forward pass in NumPy, every layer's output kept: the torch-free path that
`convsee render` uses so a whole render runs without importing torch (about 1.5 s of
start-up here). Tests check it against the torch model and F.conv2d on the same weights,
and check that `lenet_spec` equals what `spec.describe` derives from the torch model.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..spec import PIXEL, Layer, ModelSpec, Output, conv_field, pool_field

__all__ = ["OPS", "conv2d", "max_pool2", "forward_all", "lenet_spec"]

# the layers in order: name, module type (the torch model's children have these names)
OPS = (
    ("conv1", "Conv2d"),
    ("relu1", "ReLU"),
    ("pool1", "MaxPool2d"),
    ("conv2", "Conv2d"),
    ("relu2", "ReLU"),
    ("pool2", "MaxPool2d"),
    ("flatten", "Flatten"),
    ("fc1", "Linear"),
    ("relu3", "ReLU"),
    ("fc2", "Linear"),
    ("relu4", "ReLU"),
    ("fc3", "Linear"),
)


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


def forward_all(weights: dict, x) -> tuple[dict, np.ndarray]:
    """x: normalised (N, C, H, W). ({layer: output, batch first} for every layer, logits)."""
    w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    out = {}
    h = np.asarray(x, np.float32)
    for name, kind in OPS:
        if kind == "Conv2d":
            h = conv2d(h, w[f"{name}.weight"], w[f"{name}.bias"])
        elif kind == "Linear":
            h = h @ w[f"{name}.weight"].T + w[f"{name}.bias"]
        elif kind == "ReLU":
            h = np.maximum(h, 0)
        elif kind == "MaxPool2d":
            h = max_pool2(h)
        else:  # Flatten
            h = h.reshape(h.shape[0], -1)
        out[name] = h.astype(np.float32)
    return out, out["fc3"]


def lenet_spec(weights: dict, input_size=(1, 28, 28)) -> ModelSpec:
    """The same description spec.describe derives from the torch LeNet5, without torch."""
    c, h, w = input_size
    shape: tuple[int, ...] = (c, h, w)
    fld, nonneg, conv = PIXEL, False, None
    layers = []
    for name, kind in OPS:
        kernel = None
        params = 0
        if kind == "Conv2d":
            wt = weights[f"{name}.weight"]
            kernel = tuple(int(v) for v in wt.shape)
            k = kernel[-1]
            shape = (kernel[0], shape[1] - k + 1, shape[2] - k + 1)
            fld, nonneg, conv = conv_field(fld, k), False, name
            params = int(wt.size + weights[f"{name}.bias"].size)
        elif kind == "MaxPool2d":
            shape = (shape[0], shape[1] // 2, shape[2] // 2)
            fld = pool_field(fld, 2)
        elif kind == "ReLU":
            nonneg = True
        elif kind == "Flatten":
            shape = (int(np.prod(shape)),)
        else:  # Linear
            wt = weights[f"{name}.weight"]
            shape, nonneg = (int(wt.shape[0]),), False
            params = int(wt.size + weights[f"{name}.bias"].size)
        is_map = len(shape) == 3
        layers.append(
            Layer(
                name=name,
                module=name,
                call=1,
                element="",
                type=kind,
                shape=shape,
                params=params,
                calls=1,
                depth=0,
                leaf=True,
                nonneg=nonneg,
                field=fld if is_map else None,
                conv=conv if is_map else None,
                kernel=kernel,
            )
        )
    return ModelSpec(tuple(input_size), layers, [Output("", shape, False)], [], "LeNet5")
