"""How one captured value was computed from what its layer received, with the numbers: the data
behind the page's arithmetic panels and `Network.explain(input, layer, unit)`.

`explain` runs the model on one input, takes what the layer's module received (a forward
pre-hook, cloned at once: an in-place op such as ReLU(inplace=True) or `out += identity` may
follow) and recomputes the one value in float64 from it and the module's parameters (the
arithmetic of each op is in run/arithmetic.py):

- Conv2d (any stride, padding and padding mode, dilation, groups): the window of every input
  channel of the unit's group, the kernel slice, their products, each channel's partial sum,
  the bias; where the window sits in the input and which of its positions are padding;
- MaxPool2d, AvgPool2d and the adaptive pools: the window, the winner or the sum and divisor;
- BatchNorm in eval mode: x, the running mean and variance, eps, weight and bias;
- Linear: the largest contributions w·x (by |w·x|), the rest summed, the bias;
- Flatten (and Unflatten): which pixel of what it received this unit is;
- ReLU and the other element-wise activations (and Identity, Dropout): x -> f(x);
- softmax: the pseudo-layer "softmax" over the class scores (logits -> exp -> ÷ Σ), or a
  Softmax / LogSoftmax module.

The value is compared with the layer's activation as the page shows it (`captured`: Network.run
for LeNet-5; for torch models the hook capture of run/capture.py, in the same pass), and
`error` = |value − captured| / max(|captured|, scale), where scale is the size of the terms
summed (Σ|w·x| + |bias| for a convolution): float32 rounding grows with the terms, not with a
sum that cancels to near 0. `exact` is error <= TOLERANCE.

What the module received is matched to the layer that produced it (`source`: a layer name,
"input", or None). A module that received no layer's output (a functional op such as x + y or
F.relu came between), one changed in place after it was produced, or one reshaped (a
torch.flatten between a pool and a Linear) says so in `note`; a
container (a residual block) is explained as its last module when its output is that module's
output, and says so. LeNet-5 runs in NumPy as the page does (no torch); its layers form a
chain, each receiving the one before.

Forward hooks are set on the model for one pass: a server calls this under its torch lock.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import ConvseeError
from ..spec import Layer
from ..spec.field import pair
from .arithmetic import (
    SELU,
    Part,
    Pool,
    activation_unit,
    batchnorm_unit,
    conv_unit,
    flatten_unit,
    linear_unit,
    pool_unit,
    softmax_unit,
)

__all__ = [
    "SOFTMAX",
    "TOLERANCE",
    "Explanation",
    "explain",
    "explain_prepared",
    "check_unit",
]

SOFTMAX = "softmax"  # the pseudo-layer: softmax over the class scores
TOLERANCE = 1e-5  # relative error at which a value counts as reproduced


@dataclass(frozen=True)
class Explanation:
    """How `value` of unit `unit` of `layer` was computed. Op-specific numbers are in `data`
    (and read as attributes: e.products); to_dict() is the JSON form, every field at the top
    (arrays as nested lists, NaN as null). By op (shapes for one unit; positions are in what
    the module received, `input_shape`, which is the `source` layer's output):

    conv2d: channels [Cg] (the input channels of the unit's group), inputs / weights /
      products [Cg][kh][kw], partial_sums [Cg], bias (null: none), sum (Σ products), rows [kh],
      cols [kw] (outside 0..H-1 / 0..W-1: padding), padded [kh][kw] bool, input_shape [C, H, W],
      stride [2], padding [top, bottom, left, right], dilation [2], groups, padding_mode.
    max_pool2d / avg_pool2d / adaptive_*: channel, inputs [kh][kw] (max: null at padding; avg:
      0 there), rows, cols, padded, input_shape; max: winner [r, c] in the window, winner_at
      [row, col] in the input; avg: sum, count (the divisor); fixed windows: kernel, stride,
      padding [top, bottom, left, right], dilation; adaptive: output_size.
    batch_norm: inputs (x), mean, var, eps, std (√(var + eps)), normalised, weight, bias,
      statistics ("running" | "batch"), at (the unit).
    linear: indices [k] (largest |w·x| first), inputs / weights / products [k], rest (Σ of the
      other terms), rest_count, bias, sum, in_features, input_shape.
    flatten: inputs (x), at (its position in input_shape), input_shape.
    relu, leaky_relu, sigmoid, ... (an element-wise activation): inputs (x), function ("max(0,
      x)"), params (the module's numbers), at.
    softmax / log_softmax: inputs [K] (the logits), shift (max logit), exps [K] (e^(z − shift)),
      sum, share (value for softmax), classes [K].
    """

    layer: str
    type: str  # the module's class ("Conv2d"), or "softmax" for the pseudo-layer
    op: str  # conv2d, max_pool2d, avg_pool2d, adaptive_*, batch_norm, linear, flatten, relu, ...
    unit: tuple[int, ...]  # (channel, row, col) of a map, (index,) of a vector
    value: float  # recomputed here, float64
    captured: float  # the layer's activation as Network.run / the hooks capture it
    error: float  # |value − captured| / max(|captured|, scale of the terms)
    formula: str  # one line, e.g. "Σ over 6 channels of 5×5 window × kernel + bias = ..."
    source: str | None = None  # what the module received: "input", a layer, None (neither)
    op_layer: str = ""  # the layer whose module's op is shown (a container's last module)
    note: str = ""  # one line when the layer is not its module's op on a layer's output
    data: dict = field(default_factory=dict, repr=False)

    @property
    def exact(self) -> bool:
        return self.error <= TOLERANCE

    def __getattr__(self, name):
        data = self.__dict__.get("data") or {}
        if name in data:
            return data[name]
        raise AttributeError(f"an Explanation of op {self.__dict__.get('op')} has no {name!r}")

    def to_dict(self) -> dict:
        out = {
            "layer": self.layer,
            "type": self.type,
            "op": self.op,
            "unit": list(self.unit),
            "value": self.value,
            "captured": self.captured,
            "error": self.error,
            "exact": self.exact,
            "formula": self.formula,
            "source": self.source,
            "op_layer": self.op_layer,
            "note": self.note,
        }
        out.update(self.data)
        return {k: _json(v) for k, v in out.items()}  # plain JSON values, NumPy's too

    def __repr__(self) -> str:
        at = ", ".join(map(str, self.unit))
        return f"<Explanation {self.layer}[{at}]: {self.formula}>"


def _json(v):
    """NumPy values as JSON values; NaN and infinities (padding) as None."""
    if isinstance(v, np.ndarray):
        return _json(v.tolist())
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else None
    return v


def _error(value: float, captured: float, scale: float) -> float:
    if value == captured:
        return 0.0
    return abs(value - captured) / max(abs(captured), abs(scale), 1e-30)


# ---------------------------------------------------------------------------------------------
# the modules: which op a layer is, with its parameters
# ---------------------------------------------------------------------------------------------


def _np(t):
    return None if t is None else t.detach().double().cpu().numpy()


def _cannot(layer: Layer, why: str = "") -> ConvseeError:
    kinds = (
        "Conv2d, MaxPool2d, AvgPool2d, adaptive pools, BatchNorm, Linear, Flatten, "
        "element-wise activations and Softmax"
    )
    return ConvseeError(
        f"layer {layer.name} ({layer.type}) cannot be explained{why}: explain takes {kinds}",
        "layer",
    )


def _chain_op(net, layer: Layer, top: int):
    """The op function (x, unit, source) -> Part of a layer of a plain chain (LeNet-5)."""
    t = layer.type
    if t == "Conv2d":
        p = net.conv_params(layer)
        return lambda x, u, s: conv_unit(x, p, u)
    if t == "ReLU":
        return lambda x, u, s: activation_unit(x, "relu", {}, u)
    if t == "MaxPool2d":
        pp = net.pool_params(layer)
        pool = Pool("max", pp.kernel, pp.stride, pp.padding)
        return lambda x, u, s: pool_unit(x, pool, u)
    if t == "Flatten":
        return lambda x, u, s: flatten_unit(x, layer.shape, u, s)
    if t == "Linear":
        w, b = net.linear_params(layer)
        return lambda x, u, s: linear_unit(x, w, b, u, top)
    raise _cannot(layer)


def _activation_of(m) -> tuple[str, dict] | None:
    """(op, params) of an element-wise torch module, or None."""
    from torch import nn

    if isinstance(m, nn.ReLU):
        return "relu", {}
    if isinstance(m, nn.ReLU6):
        return "relu6", {}
    if isinstance(m, nn.Hardtanh):
        return "hardtanh", {"lo": float(m.min_val), "hi": float(m.max_val)}
    if isinstance(m, nn.LeakyReLU):
        return "leaky_relu", {"slope": float(m.negative_slope)}
    if isinstance(m, nn.RReLU):  # eval mode: the mean slope
        return "leaky_relu", {"slope": (float(m.lower) + float(m.upper)) / 2}
    if isinstance(m, nn.PReLU):
        w = _np(m.weight).reshape(-1)
        return "prelu", {"slope": w if w.size > 1 else float(w[0])}
    if isinstance(m, nn.ELU):
        return "elu", {"alpha": float(m.alpha)}
    if isinstance(m, nn.CELU):
        return "celu", {"alpha": float(m.alpha)}
    if isinstance(m, nn.GELU):
        return ("gelu_tanh" if m.approximate == "tanh" else "gelu"), {}
    if isinstance(m, nn.Softplus):
        return "softplus", {"beta": float(m.beta), "threshold": float(m.threshold)}
    if isinstance(m, nn.Threshold):
        return "threshold", {"threshold": float(m.threshold), "value": float(m.value)}
    if isinstance(m, nn.SELU):
        return "selu", dict(SELU)
    simple = {
        nn.SiLU: "silu",
        nn.Mish: "mish",
        nn.Sigmoid: "sigmoid",
        nn.Tanh: "tanh",
        nn.Hardswish: "hardswish",
        nn.Hardsigmoid: "hardsigmoid",
        nn.Softsign: "softsign",
        nn.Tanhshrink: "tanhshrink",
        nn.LogSigmoid: "log_sigmoid",
        nn.Identity: "identity",
        nn.Dropout: "identity",
        nn.Dropout1d: "identity",
        nn.Dropout2d: "identity",
        nn.Dropout3d: "identity",
        nn.AlphaDropout: "identity",
        nn.FeatureAlphaDropout: "identity",
    }
    for cls, op in simple.items():
        if isinstance(m, cls):
            return op, {}
    return None


def _softmax_axis(dim, ndim_sample: int) -> int:
    """The sample axis a Softmax module's dim names (dim counts the batch axis)."""
    if dim is None:  # torch's legacy choice for an implicit dim
        dim = 0 if ndim_sample + 1 in (0, 1, 3) else 1
    d = dim + ndim_sample + 1 if dim < 0 else dim
    return d - 1


def _torch_op(net, layer: Layer, top: int):
    """(op function (x, unit, source) -> Part, note) for a torch module's layer; the note
    says when the module is a subclass with its own forward (explained as its torch class)."""
    m = dict(net.torch_model().named_modules())[layer.module]
    if layer.element:
        raise _cannot(layer, f" (it is element {layer.element} of its module's output)")
    fn = _module_op(net, m, layer, top)
    base = next(c for c in type(m).__mro__ if c.__module__.startswith("torch.nn."))
    if type(m).forward is not base.forward:
        return fn, f"{type(m).__name__} has its own forward: explained as a plain {base.__name__}"
    return fn, ""


def _module_op(net, m, layer: Layer, top: int):
    """The op function (x, unit, source) -> Part of torch module m."""
    from torch import nn

    if isinstance(m, nn.Conv2d):
        p = net.conv_params(layer)
        return lambda x, u, s: conv_unit(x, p, u)
    if isinstance(m, nn.Linear):
        w, b = _np(m.weight), _np(m.bias)
        return lambda x, u, s: linear_unit(x, w, b, u, top)
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        k = pair(m.kernel_size)
        pool = Pool(
            "max" if isinstance(m, nn.MaxPool2d) else "avg",
            k,
            k if m.stride in (None, (), []) else pair(m.stride),
            pair(m.padding),
            pair(getattr(m, "dilation", 1)),
            bool(getattr(m, "count_include_pad", True)),
            getattr(m, "divisor_override", None),
        )
        return lambda x, u, s: pool_unit(x, pool, u)
    if isinstance(m, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)) and layer.kind == "map":
        kind = "max" if isinstance(m, nn.AdaptiveMaxPool2d) else "avg"
        pool = Pool(kind, adaptive=(layer.shape[1], layer.shape[2]))
        return lambda x, u, s: pool_unit(x, pool, u)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        running = m.track_running_stats and m.running_mean is not None
        stats = {
            "mean": _np(m.running_mean) if running else None,
            "var": _np(m.running_var) if running else None,
            "eps": m.eps,
            "weight": _np(m.weight),
            "bias": _np(m.bias),
        }
        return lambda x, u, s: batchnorm_unit(x, stats, u)
    if isinstance(m, (nn.Flatten, nn.Unflatten)):
        return lambda x, u, s: flatten_unit(x, layer.shape, u, s)
    if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
        log = isinstance(m, nn.LogSoftmax)

        def soft(x, u, s):
            a = _softmax_axis(m.dim, x.ndim)
            rest = tuple(v for i, v in enumerate(u) if i != a)
            z = np.moveaxis(x, a, -1)[rest]
            classes = net.class_names(len(z)) if x.ndim == 1 else None
            return softmax_unit(z, u[a], classes, log)

        return soft
    act = _activation_of(m)
    if act is not None:
        op, params = act
        name = type(m).__name__
        return lambda x, u, s: activation_unit(x, op, params, u, name)
    raise _cannot(layer)


# ---------------------------------------------------------------------------------------------
# what a module received, and from which layer
# ---------------------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised from a forward hook once the module asked for has run."""


@dataclass
class _Seen:
    x: np.ndarray | None = None  # what the module received (its first tensor), one input
    out: np.ndarray | None = None  # what the layer output (float32, as captured)
    source: str | None = None  # "input" or the layer that produced it, unchanged since
    changed: str | None = None  # the layer that produced it, changed in place since
    reshaped: bool = False  # it is the source's output reshaped (torch.flatten, .view)
    inner: str | None = None  # a container's output is the output of this leaf layer
    scores: object = None  # target None: the model's output read as class scores
    scores_source: str | None = None


def _version(t):
    try:
        return t._version  # bumped by every in-place op on the tensor
    except (AttributeError, RuntimeError):  # inference tensors keep no version
        return None


def _watch(net, x: np.ndarray, target: Layer | None) -> _Seen:
    """One forward pass of net's torch model on x (C, H, W), eval mode, no gradients, stopped
    after `target` ran. Every layer's output is noted (id and version) to tell which layer
    produced what the target received; hooks are always removed."""
    import torch

    from ..capture import eval_mode, flatten_output, select_output

    model = net.torch_model()
    layers = {(x_.module, x_.call, x_.element): x_ for x_ in net.spec.layers}
    made: dict[int, list[tuple]] = {}  # id -> [(layer, version, leaf, storage key)]
    keep: list = []  # ids are unique only while their tensors live
    calls: dict[str, int] = {}
    seen = _Seen()

    def key(t):
        """What a reshaped view (torch.flatten, .view) shares with its tensor."""
        try:
            ptr = t.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):
            return None
        return (ptr, t.storage_offset(), t.numel()) if t.is_contiguous() else None

    def origin(t):
        """(source, changed, reshaped): the layer whose output t is, unchanged since; or the
        layer whose output it is but changed in place since; or a reshaped view of one."""
        entries = made.get(id(t))
        if entries:
            name, version = entries[-1][:2]
            return (name, None, False) if version == _version(t) else (None, name, False)
        k = key(t)
        views = [e for es in made.values() for e in es if k is not None and e[3] == k]
        if views and views[-1][1] == _version(t):  # a view shares its tensor's version
            return views[-1][0], None, True
        return None, None, False

    def note(t, layer):
        made.setdefault(id(t), []).append((layer.name, _version(t), layer.leaf, key(t)))
        keep.append(t)

    def start(_m, _args):  # a new forward pass of the whole model: calls count from 1 again
        calls.clear()

    def pre(name):
        def hook(_m, args):
            calls[name] = calls.get(name, 0) + 1
            if target is not None and (name, calls[name]) == (target.module, target.call):
                t = args[0] if args and isinstance(args[0], torch.Tensor) else None
                if t is not None:
                    seen.x = t.detach()[0].to("cpu", torch.float64, copy=True).numpy()  # now
                    seen.source, seen.changed, seen.reshaped = origin(t)

        return hook

    def post(name):
        def hook(_m, _args, out):
            call = calls.get(name, 0)
            for path, t in flatten_output(out):
                layer = layers.get((name, call, path))
                if layer is None:
                    continue
                if target is not None and layer.name == target.name:
                    # captured as run/capture.py captures a layer: a copy, taken now
                    seen.out = t.detach()[0].to("cpu", torch.float32, copy=True).numpy()
                    leaves = [e for e in made.get(id(t), []) if e[2] and e[1] == _version(t)]
                    seen.inner = leaves[-1][0] if leaves and not layer.leaf else None
                note(t, layer)
            if target is not None and (name, call) == (target.module, target.call):
                raise _Stop

        return hook

    try:
        p = next(model.parameters())
        device, dtype = p.device, p.dtype if p.is_floating_point() else torch.float32
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None].to(device, dtype)
    made[id(xt)] = [("input", _version(xt), True, key(xt))]
    handles = [model.register_forward_pre_hook(start)]
    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_pre_hook(pre(name)))
                handles.append(module.register_forward_hook(post(name)))
        with eval_mode(model), torch.no_grad():
            try:
                out = model(xt)
            except _Stop:
                return seen
    except RuntimeError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ConvseeError(
            f"the model failed on an input of shape {tuple(xt.shape)}: {first}"
        ) from None
    finally:
        for h in handles:
            h.remove()
    if target is not None:
        raise ConvseeError(f"layer {target.name} did not run in the model's forward pass")
    seen.scores = select_output(out, net.output)
    seen.scores_source = origin(seen.scores)[0]
    return seen


# ---------------------------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------------------------


def _index(v, what: str, param: str = "unit") -> int:
    name = f"a unit's {what}" if param == "unit" else "{param}"
    if isinstance(v, (bool, np.bool_)):
        raise ConvseeError(f"{name} must be a whole number, not {v!r}", param)
    try:
        return operator.index(v)
    except TypeError:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        raise ConvseeError(f"{name} must be a whole number, not {str(v)[:20]!r}", param) from None


def check_unit(layer: Layer, unit) -> tuple[int, ...]:
    """unit as (channel, row, col) of a map or (index,) of a vector, checked against the
    layer's shape; ConvseeError naming the valid range."""
    shape, name = layer.shape, layer.name
    many = isinstance(unit, (tuple, list, np.ndarray))
    if layer.kind == "map":
        c, h, w = shape
        if not many or len(unit) != 3:
            raise ConvseeError(
                f"{name} is a map of {c}×{h}×{w}: give the unit as (channel, row, col)", "unit"
            )
        ch, r, q = (
            _index(v, what) for v, what in zip(unit, ("channel", "row", "col"), strict=True)
        )
        if not 0 <= ch < c:
            raise ConvseeError(
                f"channel {ch} does not exist: {name} has channels 0..{c - 1}", "unit"
            )
        if not (0 <= r < h and 0 <= q < w):
            raise ConvseeError(
                f"position ({r}, {q}) is outside {name}'s {h}×{w} map: "
                f"rows 0..{h - 1}, cols 0..{w - 1}",
                "unit",
            )
        return ch, r, q
    if layer.kind == "vector":
        if many and len(unit) != 1:
            raise ConvseeError(
                f"{name} is a vector of {shape[0]} units: give the unit as one index", "unit"
            )
        k = _index(unit[0] if many else unit, "index")
        if not 0 <= k < shape[0]:
            raise ConvseeError(
                f"unit {k} is out of range: {name} has units 0..{shape[0] - 1}", "unit"
            )
        return (k,)
    dims = "×".join(map(str, shape)) or "a scalar"
    raise ConvseeError(
        f"{name} outputs {dims} per input: explain takes maps (channel, row, col) and vectors",
        "layer",
    )


def _finish(layer, type_, part: Part, unit, captured, source, op_layer, note) -> Explanation:
    return Explanation(
        layer=layer,
        type=type_,
        op=part.op,
        unit=tuple(int(v) for v in unit),
        value=float(part.value),
        captured=float(captured),
        error=_error(part.value, float(captured), part.scale),
        formula=part.formula,
        source=source,
        op_layer=op_layer,
        note=note,
        data=part.data,
    )


def _softmax(net, x: np.ndarray, unit, top: int) -> Explanation:
    """The pseudo-layer softmax: the class probabilities from the class scores."""
    out = net.scores_output()
    if len(out.shape) != 1:
        raise ConvseeError("the model's output is not class scores: there is no softmax to explain")
    k = out.shape[0]
    many = isinstance(unit, (tuple, list, np.ndarray))
    if many and len(unit) != 1:
        raise ConvseeError(
            f"softmax is a vector of {k} classes: give the unit as one class index", "unit"
        )
    c = _index(unit[0] if many else unit, "class")
    if not 0 <= c < k:
        raise ConvseeError(f"class {c} is out of range: softmax has classes 0..{k - 1}", "unit")
    if net.logits_layer is not None:
        source = net.logits_layer
        acts, probs = net.run(x[None], [net.spec.layer(source)])
        z, note = acts[source][0], ""
    else:
        seen = _watch(net, x, None)
        _, probs = net.run(x[None])
        source = seen.scores_source
        if out.probabilities:  # the model ends in its own softmax: explain that layer
            layer = net.spec.layer(source) if source else None
            if layer is None or layer.type != "Softmax":
                raise ConvseeError(
                    "the model's output is already probabilities (its own softmax makes them) "
                    "and its logits are no layer's output: there is no softmax to explain"
                )
            e = explain_prepared(net, x, layer.name, (c,), top=top)
            note = f"the model's own softmax layer {layer.name} makes the probabilities"
            return replace(e, layer=SOFTMAX, note=note)
        z = seen.scores.detach()[0].double().cpu().numpy()
        note = (
            "the scores are log-probabilities: softmax gives back their probabilities"
            if (out.log_probabilities)
            else ""
        )
    part = softmax_unit(z, c, net.class_names(k))
    return _finish(SOFTMAX, "softmax", part, (c,), probs[0][c], source, SOFTMAX, note)


def explain(net, input, layer: str, unit, *, top: int = 10) -> Explanation:
    """How the value of `unit` of `layer` was computed for `input` (an INPUT spec such as
    "sample:3", a Pillow image, an image array or an Input), with its numbers.

    unit: (channel, row, col) of a map, an index (or (index,)) of a vector. layer "softmax"
    (when no layer has that name): the class probabilities over the class scores.
    top: how many of a Linear unit's largest terms w·x are listed (the rest are summed)."""
    inputs = net._as_inputs(input)  # noqa: SLF001 - the one rule for what an input may be
    if len(inputs) != 1:
        raise ConvseeError(f"explain takes one input, not {len(inputs)}", "input")
    return explain_prepared(net, inputs[0].x, layer, unit, top=top)


def explain_prepared(net, x, layer: str, unit, *, top: int = 10) -> Explanation:
    """explain for x (C, H, W) float32 exactly as the model takes it (normalised)."""
    top = _index(top, "top", "top")
    if top < 1:
        raise ConvseeError(f"{{param}} must be at least 1, not {top}", "top")
    x = np.asarray(x, np.float32)
    if tuple(x.shape) != tuple(net.spec.input_shape):
        want = "×".join(map(str, net.spec.input_shape))
        raise ConvseeError(f"the input has shape {tuple(x.shape)}; the model takes {want}", "input")
    name = str(layer).strip()
    if name == SOFTMAX and SOFTMAX not in net.spec.names():
        return _softmax(net, x, unit, top)
    target = net.spec.layer(name)
    unit = check_unit(target, unit)
    if net.plain_chain:
        return _explain_chain(net, x, target, unit, top)
    return _explain_torch(net, x, target, unit, top)


def _explain_chain(net, x, target: Layer, unit, top: int) -> Explanation:
    """A plain chain (LeNet-5 in NumPy): each layer receiving the one before (the first the
    input), its ops from the Network's conv_params, pool_params and linear_params."""
    names = net.spec.names()
    i = names.index(target.name)
    acts, _ = net.run(x[None], net.spec.layers[: i + 1])
    xin = x if i == 0 else acts[names[i - 1]][0]
    source = "input" if i == 0 else names[i - 1]
    part = _chain_op(net, target, top)(np.asarray(xin, np.float64), unit, source)
    captured = acts[target.name][0][unit]
    return _finish(target.name, target.type, part, unit, captured, source, target.name, "")


def _explain_torch(net, x, target: Layer, unit, top: int) -> Explanation:
    notes = []
    shown = target
    if not target.leaf:
        seen = _watch(net, x, target)
        if seen.inner is None:
            raise ConvseeError(
                f"layer {target.name} ({target.type}) holds other modules and its output is "
                "not the output of one of them (an op outside any module makes it): explain "
                "the layers inside it",
                "layer",
            )
        shown = net.spec.layer(seen.inner)
        notes.append(
            f"{target.name} ({target.type}) holds other modules: its output is the output of "
            f"its last module, {shown.name}, whose op is shown"
        )
    fn, note = _torch_op(net, shown, top)
    seen = _watch(net, x, shown)
    if seen.x is None:
        raise _cannot(shown, " (its module received no tensor)")
    if note:
        notes.append(note)
    if seen.changed:
        notes.append(
            f"{shown.name} received {seen.changed}'s output changed in place after it was "
            "made (e.g. out += identity): explained on the value it received"
        )
    elif seen.reshaped:
        was = net.spec.input_shape if seen.source == "input" else net.spec.layer(seen.source).shape
        shape = "×".join(map(str, was))
        into = "×".join(map(str, seen.x.shape))
        notes.append(
            f"{shown.name} received {seen.source}'s output reshaped from {shape} to {into} "
            "(by an op outside any module, such as torch.flatten)"
        )
    elif seen.source is None:
        notes.append(
            f"{shown.name} received a value that is no layer's output (a functional op such "
            "as x + y or F.relu comes before it): explained on the value it received"
        )
    part = fn(seen.x, unit, seen.source)
    captured = seen.out[unit]  # a container's output is this very tensor (same version)
    return _finish(
        target.name, target.type, part, unit, captured, seen.source, shown.name, "; ".join(notes)
    )
