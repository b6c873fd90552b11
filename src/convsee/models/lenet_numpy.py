"""LeNet-5's forward pass in NumPy, every layer's output kept: the torch-free path that
`convsee render` uses so a whole render runs without importing torch (about 1.5 s of
start-up here). Tests check it against the torch model and F.conv2d on the same weights,
and check that `lenet_spec` equals what `spec.describe` derives from the torch model.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..spec import PIXEL, Layer, ModelSpec, Output, conv_field, pool_field
from .lenet_layers import LENET5, Row, trace

__all__ = ["OPS", "conv2d", "max_pool", "max_pool2", "forward_all", "lenet_spec"]

# the layers in order: name, module type (the torch model's children have these names)
OPS = tuple((r.name, r.op) for r in LENET5)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0):
    """Cross-correlation, as torch's conv2d: (N, Cin, H, W) * (Cout, Cin, k, k), zero padding."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    k = w.shape[-1]
    win = sliding_window_view(x, (k, k), axis=(2, 3))  # (N, Cin, H', W', k, k)
    if stride != 1:
        win = win[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True) + b[None, :, None, None]


def max_pool(x: np.ndarray, k: int = 2, stride: int | None = None) -> np.ndarray:
    """k x k max pooling (stride: k unless given), odd edges dropped as torch does."""
    s = k if stride is None else stride
    n, c, h, w = x.shape
    if s == k:  # non-overlapping windows: one reshape
        x = x[:, :, : h // k * k, : w // k * k]
        return x.reshape(n, c, h // k, k, w // k, k).max(axis=(3, 5))
    return sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s].max(axis=(4, 5))


def max_pool2(x: np.ndarray) -> np.ndarray:
    """2x2 max pooling with stride 2 (odd edges dropped, as torch does)."""
    return max_pool(x, 2, 2)


def apply(r: Row, h: np.ndarray, w: dict) -> np.ndarray:
    """One table row on a batch h, with the state dict w (float32 arrays)."""
    if r.op == "Conv2d":
        return conv2d(h, w[f"{r.name}.weight"], w[f"{r.name}.bias"], r.stride, r.padding)
    if r.op == "Linear":
        return h @ w[f"{r.name}.weight"].T + w[f"{r.name}.bias"]
    if r.op == "ReLU":
        return np.maximum(h, 0)
    if r.op == "MaxPool2d":
        return max_pool(h, r.kernel, r.stride)
    if r.op == "Flatten":
        return h.reshape(h.shape[0], -1)
    raise ValueError(f"LeNet table: unknown op {r.op!r} in row {r.name}")


def forward_all(weights: dict, x, rows: tuple[Row, ...] = LENET5) -> tuple[dict, np.ndarray]:
    """x: normalised (N, C, H, W). ({layer: output, batch first} for every row, the last
    row's output: the logits). rows: the table, or the part of it to run (its start)."""
    w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    out = {}
    h = np.asarray(x, np.float32)
    for r in rows:
        h = apply(r, h, w)
        out[r.name] = h.astype(np.float32)
    return out, out[rows[-1].name]


def lenet_spec(weights: dict, input_size=(1, 28, 28), rows: tuple[Row, ...] = LENET5):
    """The same description spec.describe derives from the torch LeNet5, without torch."""
    fld, nonneg, conv = PIXEL, False, None
    layers = []
    shape: tuple[int, ...] = tuple(input_size)
    for r, shape, wshape in trace(input_size, 0, weights, rows):
        kernel = None
        params = 0
        if r.op == "Conv2d":
            kernel = wshape
            fld = conv_field(fld, kernel[-1], r.stride, r.padding)
            nonneg, conv = False, r.name
        elif r.op == "MaxPool2d":
            fld = pool_field(fld, r.kernel, r.stride)
        elif r.op == "ReLU":
            nonneg = True
        elif r.op == "Linear":
            nonneg = False
        if r.params:
            params = math.prod(wshape) + int(np.asarray(weights[f"{r.name}.bias"]).size)
        is_map = len(shape) == 3
        layers.append(
            Layer(
                name=r.name,
                module=r.name,
                call=1,
                element="",
                type=r.op,
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
