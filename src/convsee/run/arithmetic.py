"""The arithmetic of one output value of each op a CNN is made of, in NumPy float64, with the
numbers a learner reads: the window and kernel of a convolution, the products and partial sums;
a pooling window and its winner or mean; BatchNorm's statistics; a Linear unit's largest terms;
which pixel a flattened unit is; softmax's exponentials and their sum; x -> f(x) for the
element-wise activations. Each function takes what the module received for one input (no batch
axis) and returns a Part: the value, the size of its terms (for a relative error that a sum
cancelling to near 0 does not inflate), a one-line formula and the numbers (NumPy arrays).

run/explain.py finds what a layer received and which of these it is; the window positions come
from run/playground.py, the one owner of the sliding-window arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .playground import window_taps

__all__ = [
    "Part",
    "Pool",
    "ACTIVATIONS",
    "SELU",
    "conv_unit",
    "pool_unit",
    "batchnorm_unit",
    "linear_unit",
    "flatten_unit",
    "softmax_unit",
    "activation_unit",
]


def _n(v: float) -> str:
    """A number as a formula shows it: 4 significant digits, no '-0'."""
    s = f"{float(v):.4g}"
    return "0" if s in ("-0", "0") else s


def _plus(v: float) -> str:
    return f" − {_n(-v)}" if v < 0 else f" + {_n(v)}"


@dataclass(frozen=True)
class Part:
    """One value of an op, taken apart."""

    op: str
    value: float
    scale: float  # the size of the terms, for the relative error
    formula: str
    data: dict


def _inside(idx: np.ndarray, n: int) -> np.ndarray:
    return (idx >= 0) & (idx < n)


def _padded_index(idx: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Where a padded position reads from in the unpadded axis of n pixels, as torch pads."""
    if mode == "reflect" and n > 1:
        period = 2 * (n - 1)
        m = np.mod(idx, period)
        return np.where(m < n, m, period - m)
    if mode == "circular":
        return np.mod(idx, n)
    return np.clip(idx, 0, n - 1)  # replicate; zeros: masked afterwards


def conv_unit(x: np.ndarray, p, unit) -> Part:
    """Output (c, i, j) of a convolution with parameters p (run/animate.ConvParams) on x
    (Cin, H, W). inputs, weights, products: (Cin/groups, kh, kw); partial_sums: (Cin/groups,)."""
    c, i, j = unit
    lo, hi = p.group_of(c)
    w = np.asarray(p.weight[c], np.float64)  # (Cin/groups, kh, kw)
    kh, kw = w.shape[-2:]
    top, _, left, _ = p.padding  # (top, bottom, left, right): windows start at -top, -left
    rows = np.array(window_taps(i, kh, p.stride[0], top, p.dilation[0]))
    cols = np.array(window_taps(j, kw, p.stride[1], left, p.dilation[1]))
    h, wd = x.shape[1:]
    padded = ~(_inside(rows, h)[:, None] & _inside(cols, wd)[None, :])  # (kh, kw)
    mode = p.padding_mode
    ri, ci = _padded_index(rows, h, mode), _padded_index(cols, wd, mode)
    window = np.asarray(x[lo:hi], np.float64)[:, ri][:, :, ci]  # (Cin/groups, kh, kw)
    if mode == "zeros":
        window = np.where(padded[None], 0.0, window)
    products = window * w
    partial = products.sum(axis=(1, 2))
    bias = float(p.bias[c]) if p.has_bias else None
    total = float(partial.sum())
    value = total + (bias or 0.0)
    n = hi - lo
    over = f"over {n} channels of" if n > 1 else "of the"
    formula = f"Σ {over} {kh}×{kw} window × kernel"
    if bias is None:
        formula += f" = {_n(value)} (no bias)"
    else:
        formula += f" + bias = {_n(total)}{_plus(bias)} = {_n(value)}"
    if padded.any():
        formula += f"; {int(padded.sum())} of {kh * kw} window positions are padding"
    data = {
        "channels": list(range(lo, hi)),  # the input channels the kernel reads (its group)
        "inputs": window,
        "weights": w,
        "products": products,
        "partial_sums": partial,
        "bias": bias,
        "sum": total,
        "rows": rows,  # the input rows under the kernel (outside 0..H-1: padding)
        "cols": cols,
        "padded": padded,  # (kh, kw): True where the window reads padding
        "input_shape": list(x.shape),
        "stride": list(p.stride),
        "padding": list(p.padding),  # top, bottom, left, right
        "dilation": list(p.dilation),
        "groups": int(p.groups),
        "padding_mode": mode,
    }
    return Part("conv2d", value, float(np.abs(products).sum() + abs(bias or 0.0)), formula, data)


@dataclass(frozen=True)
class Pool:
    """A pooling window: max or avg, fixed (kernel, stride, padding, dilation) or adaptive."""

    kind: str  # "max" | "avg"
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int] = (0, 0)  # rows, cols on each side
    dilation: tuple[int, int] = (1, 1)
    count_include_pad: bool = True  # avg: padding counts in the divisor
    divisor_override: int | None = None  # avg
    adaptive: tuple[int, int] | None = None  # the output size of an adaptive pool


def _pool_axis(pool: Pool, a: int, i: int, n: int) -> tuple[np.ndarray, int]:
    """(input positions of window i along axis a, how many of them the avg divisor counts)."""
    if pool.adaptive is not None:
        out = pool.adaptive[a]
        start, end = (i * n) // out, -((-(i + 1) * n) // out)  # floor, ceil
        return np.arange(start, end), end - start
    k, s, p, d = pool.kernel[a], pool.stride[a], pool.padding[a], pool.dilation[a]
    taps = np.array(window_taps(i, k, s, p, d))
    start = i * s - p
    counted = min(start + k, n + p) - start  # torch: the window clipped to the padded input
    if not pool.count_include_pad:
        counted = min(start + k, n) - max(start, 0)
    return taps, counted


def pool_unit(x: np.ndarray, pool: Pool, unit) -> Part:
    """Output (c, i, j) of a pooling layer on x (C, H, W). inputs: (kh, kw), NaN where a max
    window reads padding (it never wins), 0 where an average counts padding."""
    c, i, j = unit
    h, w = x.shape[1:]
    rows, n_rows = _pool_axis(pool, 0, i, h)
    cols, n_cols = _pool_axis(pool, 1, j, w)
    padded = ~(_inside(rows, h)[:, None] & _inside(cols, w)[None, :])
    window = np.asarray(x[c], np.float64)[np.clip(rows, 0, h - 1)][:, np.clip(cols, 0, w - 1)]
    kh, kw = padded.shape
    prefix = "adaptive_" if pool.adaptive is not None else ""
    data = {
        "channel": int(c),
        "rows": rows,
        "cols": cols,
        "padded": padded,
        "input_shape": list(x.shape),
    }
    if pool.adaptive is None:
        data.update(kernel=list(pool.kernel), stride=list(pool.stride))
        ph, pw = pool.padding
        data.update(padding=[ph, ph, pw, pw], dilation=list(pool.dilation))  # top, bottom, ...
    else:
        data["output_size"] = list(pool.adaptive)
    if pool.kind == "max":
        scan = np.where(padded, -np.inf, window)
        r, q = np.unravel_index(int(np.argmax(scan)), scan.shape)  # the first maximum, as torch
        value = float(scan[r, q])
        data.update(inputs=np.where(padded, np.nan, window), winner=[int(r), int(q)])
        data["winner_at"] = [int(rows[r]), int(cols[q])]
        formula = f"max of the {kh}×{kw} window = {_n(value)} (row {rows[r]}, col {cols[q]})"
        return Part(f"{prefix}max_pool2d", value, abs(value), formula, data)
    window = np.where(padded, 0.0, window)
    total = float(window.sum())
    count = pool.divisor_override or n_rows * n_cols
    value = total / count
    data.update(inputs=window, sum=total, count=int(count))
    formula = f"mean of the {kh}×{kw} window = {_n(total)} / {count} = {_n(value)}"
    if padded.any() and pool.count_include_pad and pool.divisor_override is None:
        formula += " (padding counts as 0)"
    scale = float(np.abs(window).sum()) / count
    return Part(f"{prefix}avg_pool2d", value, scale, formula, data)


def batchnorm_unit(x: np.ndarray, stats: dict, unit) -> Part:
    """BatchNorm of unit (channel, ...) of x: stats holds mean, var (None: the batch's own, for
    a batch of one input), eps, weight, bias (None: 1 and 0)."""
    c = unit[0]
    v = float(x[tuple(unit)])
    if stats["mean"] is None:  # no running statistics: normalised by the input's own
        xs = np.asarray(x[c], np.float64)
        mean, var, kind = float(xs.mean()), float(xs.var()), "batch"
    else:
        mean, var, kind = float(stats["mean"][c]), float(stats["var"][c]), "running"
    eps = float(stats["eps"])
    gamma = 1.0 if stats["weight"] is None else float(stats["weight"][c])
    beta = 0.0 if stats["bias"] is None else float(stats["bias"][c])
    std = math.sqrt(var + eps)
    norm = (v - mean) / std
    value = norm * gamma + beta
    formula = (
        f"({_n(v)} − {_n(mean)}) / √({_n(var)} + {eps:g}) × {_n(gamma)}{_plus(beta)} = {_n(value)}"
    )
    data = {
        "inputs": v,
        "mean": mean,
        "var": var,
        "eps": eps,
        "std": std,
        "normalised": norm,
        "weight": gamma,
        "bias": beta,
        "statistics": kind,  # running (eval mode) | batch (the module keeps none)
        "at": list(unit),
    }
    return Part("batch_norm", value, abs(norm * gamma) + abs(beta), formula, data)


def linear_unit(x: np.ndarray, weight, bias, unit, top: int = 10) -> Part:
    """Output `unit` of a Linear layer on x (..., in): the `top` largest terms w·x by |w·x|
    (inputs, weights, products, indices), the rest summed, the bias."""
    xs = np.asarray(x[tuple(unit[:-1])], np.float64)  # (in,)
    w = np.asarray(weight[unit[-1]], np.float64)
    products = xs * w
    order = np.argsort(-np.abs(products), kind="stable")
    k = min(top, len(order))
    best = order[:k]
    rest = float(products[order[k:]].sum())
    b = None if bias is None else float(bias[unit[-1]])
    total = float(products.sum())
    value = total + (b or 0.0)
    head = float(products[best].sum())
    n = len(xs)
    formula = f"Σ of {n} inputs × weights"
    formula += f" + bias = {_n(total)}{_plus(b)}" if b is not None else ""
    formula += f" = {_n(value)}"
    if k < n:
        formula += f"; the top {k} terms give {_n(head)}, the other {n - k} {_n(rest)}"
    data = {
        "indices": best,  # the inputs of the largest |w·x|, largest first
        "inputs": xs[best],
        "weights": w[best],
        "products": products[best],
        "rest": rest,
        "rest_count": n - k,
        "bias": b,
        "sum": total,
        "in_features": n,
        "input_shape": list(x.shape),
    }
    return Part("linear", value, float(np.abs(products).sum() + abs(b or 0.0)), formula, data)


def flatten_unit(x: np.ndarray, out_shape, unit, source: str | None) -> Part:
    """Unit `unit` of a reshaping op (Flatten, Unflatten): the element of x it is."""
    flat = int(np.ravel_multi_index(tuple(unit), tuple(out_shape)))
    at = [int(v) for v in np.unravel_index(flat, x.shape)]
    value = float(x[tuple(at)])
    what = source or "what it received"
    if len(at) == 3:
        place = f"channel {at[0]}, row {at[1]}, col {at[2]} of {what}"
    else:
        place = f"position ({', '.join(map(str, at))}) of {what}"
    shape = "×".join(map(str, x.shape))
    formula = f"unit {', '.join(map(str, unit))} is {place} ({shape}) = {_n(value)}"
    data = {"inputs": value, "at": at, "input_shape": list(x.shape)}
    return Part("flatten", value, abs(value), formula, data)


def softmax_unit(z, k: int, classes=None, log: bool = False) -> Part:
    """Share k of softmax over the scores z (K,): e^(z_k − max z) / Σ e^(z − max z)."""
    z = np.asarray(z, np.float64)
    top = float(z.max())
    exps = np.exp(z - top)
    total = float(exps.sum())
    p = float(exps[k] / total)
    name = f"class {classes[k]}" if classes and k < len(classes) else f"class {k}"
    formula = (
        f"{name}: e^({_n(z[k])} − {_n(top)}) / Σ e^(z − {_n(top)}) "
        f"= {_n(exps[k])} / {_n(total)} = {_n(p)}"
    )
    data = {
        "inputs": z,  # the logits
        "shift": top,  # subtracted before exp (the largest logit): the shares do not change
        "exps": exps,
        "sum": total,
        "share": p,
        "classes": list(classes) if classes else [str(i) for i in range(len(z))],
    }
    if log:
        value = float(z[k] - top - math.log(total))
        formula = f"log of {formula} = {_n(value)}"
        return Part("log_softmax", value, abs(z[k] - top) + abs(math.log(total)), formula, data)
    return Part("softmax", p, p, formula, data)


# element-wise activations: op -> (f as a template: {x} the input, {nx} its negative, other
# names the module's parameters; f in float64 of (x, parameters))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _softplus(x: float, beta: float = 1.0, threshold: float = 20.0) -> float:
    """torch's softplus: ln(1 + e^(beta x)) / beta, x itself above the threshold."""
    if x * beta > threshold:
        return x
    return (math.log1p(math.exp(-abs(beta * x))) + max(beta * x, 0.0)) / beta


SELU = {"alpha": 1.6732632423543772848170429916717, "scale": 1.0507009873554804934193349852946}
_GELU_C = math.sqrt(2 / math.pi)

ACTIVATIONS = {
    "relu": ("max(0, {x})", lambda x, a: max(x, 0.0)),
    "relu6": ("min(max(0, {x}), 6)", lambda x, a: min(max(x, 0.0), 6.0)),
    "hardtanh": ("min(max({lo}, {x}), {hi})", lambda x, a: min(max(x, a["lo"]), a["hi"])),
    "leaky_relu": (
        "{x} if {x} > 0 else {slope} × {x}",
        lambda x, a: x if x > 0 else a["slope"] * x,
    ),
    "prelu": ("{x} if {x} > 0 else {slope} × {x}", lambda x, a: x if x > 0 else a["slope"] * x),
    "elu": (
        "{x} if {x} > 0 else {alpha} × (e^({x}) − 1)",
        lambda x, a: x if x > 0 else a["alpha"] * math.expm1(x),
    ),
    "celu": (
        "max(0, {x}) + min(0, {alpha} × (e^({x} / {alpha}) − 1))",
        lambda x, a: max(x, 0.0) + min(0.0, a["alpha"] * math.expm1(x / a["alpha"])),
    ),
    "selu": (
        "{scale} × ({x} if {x} > 0 else {alpha} × (e^({x}) − 1))",
        lambda x, a: a["scale"] * (x if x > 0 else a["alpha"] * math.expm1(x)),
    ),
    "gelu": ("{x} × Φ({x})", lambda x, a: 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))),
    "gelu_tanh": (
        "0.5 × {x} × (1 + tanh(√(2/π) × ({x} + 0.044715 × {x}³)))",
        lambda x, a: 0.5 * x * (1 + math.tanh(_GELU_C * (x + 0.044715 * x**3))),
    ),
    "silu": ("{x} / (1 + e^({nx}))", lambda x, a: x * _sigmoid(x)),
    "mish": ("{x} × tanh(ln(1 + e^({x})))", lambda x, a: x * math.tanh(_softplus(x))),
    "sigmoid": ("1 / (1 + e^({nx}))", lambda x, a: _sigmoid(x)),
    "tanh": ("tanh({x})", lambda x, a: math.tanh(x)),
    "hardswish": (
        "{x} × min(max(0, {x} + 3), 6) / 6",
        lambda x, a: x * min(max(x + 3, 0.0), 6.0) / 6,
    ),
    "hardsigmoid": ("min(max(0, {x} + 3), 6) / 6", lambda x, a: min(max(x + 3, 0.0), 6.0) / 6),
    "softplus": (
        "ln(1 + e^({beta} × {x})) / {beta}",
        lambda x, a: _softplus(x, a["beta"], a["threshold"]),
    ),
    "softsign": ("{x} / (1 + |{x}|)", lambda x, a: x / (1 + abs(x))),
    "tanhshrink": ("{x} − tanh({x})", lambda x, a: x - math.tanh(x)),
    "log_sigmoid": ("−ln(1 + e^({nx}))", lambda x, a: -_softplus(-x)),
    "threshold": (
        "{x} if {x} > {threshold} else {value}",
        lambda x, a: x if x > a["threshold"] else a["value"],
    ),
    "identity": ("{x}", lambda x, a: x),
}


def activation_unit(x: np.ndarray, op: str, params: dict, unit, type_name: str = "") -> Part:
    """Unit `unit` of an element-wise activation on x (same shape): x -> f(x). params holds
    the module's numbers (an array of one per channel for PReLU)."""
    text, fn = ACTIVATIONS[op]
    v = float(x[tuple(unit)])
    a = {k: (float(p[unit[0]]) if isinstance(p, np.ndarray) else p) for k, p in params.items()}
    value = float(fn(v, a))
    symbolic = text.format(x="x", nx="−x", **{k: k for k in a})
    formula = text.format(x=_n(v), nx=_n(-v), **{k: _n(p) for k, p in a.items()})
    formula += f" = {_n(value)}"
    if op == "identity":
        symbolic = "x"
        formula = f"{type_name or 'the layer'} passes its input on unchanged in eval mode: {_n(v)}"
    data = {"inputs": v, "function": symbolic, "params": a, "at": list(unit)}
    return Part(op, value, max(abs(value), abs(v)), formula, data)
