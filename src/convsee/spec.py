"""The model description, derived once: every capturable layer, its output shape, its receptive
field, its channels. Commands, figures and the live page read this instead of tables.

`describe(model, input_shape)` runs the model once on a seeded dummy input with a forward hook
on every module (so each call of a module reused several times is its own layer, `NAME#2`) and
a torch-function mode that sees every op, functional ones included (`F.relu`, `x + y`,
`torch.flatten`). The op trace gives, for every tensor, its receptive field in the input
(size, stride between neighbouring outputs, where output pixel (0, 0) is centred), whether it
is known to be non-negative (after a ReLU, a softmax, pooling of non-negative maps), and the
convolution whose kernels made it. Receptive fields follow from the conv and pool parameters
(the arithmetic below); where an op makes them unknowable (upsampling, slicing) they are None.

Nothing here imports torch at module level: LeNet-5's torch-free path builds its description
with the same arithmetic (models/lenet_numpy.py).
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import asdict, dataclass, field, replace

from .capture import eval_mode
from .capture import flatten_output as _flatten_output
from .errors import ConvseeError

__all__ = [
    "Field",
    "Layer",
    "Output",
    "ModelSpec",
    "describe",
    "conv_field",
    "pool_field",
    "union_field",
    "whole_field",
]


# ---------------------------------------------------------------------------------------------
# receptive-field arithmetic, per spatial axis (rows, cols), in input pixels
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """The input region one output pixel sees. Pixel centres sit at integer coordinates."""

    size: tuple[int, int]  # input pixels covered (rows, cols)
    stride: tuple[float, float]  # input pixels between neighbouring output pixels
    start: tuple[float, float]  # input coordinate of the centre of output pixel (0, 0)
    whole: bool = False  # the field is the whole input (vectors, global pooling)

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1), inclusive, of output pixel (i, j); may leave the input."""
        out = []
        for axis, k in ((0, i), (1, j)):
            centre = self.start[axis] + k * self.stride[axis]
            half = (self.size[axis] - 1) / 2
            out += [math.floor(centre - half + 1e-6), math.floor(centre + half + 1e-6)]
        return out[0], out[1], out[2], out[3]

    def centre(self, i: int, j: int) -> tuple[float, float]:
        return self.start[0] + i * self.stride[0], self.start[1] + j * self.stride[1]

    def to_dict(self) -> dict:
        return {
            "size": list(self.size),
            "stride": list(self.stride),
            "start": list(self.start),
            "whole": self.whole,
        }


PIXEL = Field((1, 1), (1.0, 1.0), (0.0, 0.0))  # the input itself


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def conv_field(f: Field, kernel, stride=1, padding=0, dilation=1) -> Field:
    """The field after a convolution or pooling window: padding is the (top, left) padding."""
    if f.whole:
        return f
    k, s, p, d = _pair(kernel), _pair(stride), _pair(padding), _pair(dilation)
    size, jump, start = [], [], []
    for a in (0, 1):
        k_eff = d[a] * (k[a] - 1) + 1
        size.append(int(round(f.size[a] + (k_eff - 1) * f.stride[a])))
        start.append(f.start[a] + ((k_eff - 1) / 2 - p[a]) * f.stride[a])
        jump.append(f.stride[a] * s[a])
    return Field((size[0], size[1]), (jump[0], jump[1]), (start[0], start[1]))


def pool_field(f: Field, kernel, stride=None, padding=0, dilation=1) -> Field:
    return conv_field(f, kernel, kernel if stride in (None, [], ()) else stride, padding, dilation)


def union_field(a: Field | None, b: Field | None) -> Field | None:
    """What an element-wise op of two maps sees (x + y in a residual block): both fields."""
    if a is None or b is None:
        return None
    if a.whole or b.whole:
        return a if a.whole else b
    if any(abs(x - y) > 1e-9 for x, y in zip(a.stride, b.stride, strict=True)):
        return None
    size, start = [], []
    for ax in (0, 1):
        lo = min(a.start[ax] - (a.size[ax] - 1) / 2, b.start[ax] - (b.size[ax] - 1) / 2)
        hi = max(a.start[ax] + (a.size[ax] - 1) / 2, b.start[ax] + (b.size[ax] - 1) / 2)
        size.append(int(round(hi - lo + 1)))
        start.append((lo + hi) / 2)
    return Field((size[0], size[1]), a.stride, (start[0], start[1]))


def whole_field(input_hw: tuple[int, int]) -> Field:
    h, w = input_hw
    return Field((h, w), (float(h), float(w)), ((h - 1) / 2, (w - 1) / 2), whole=True)


# ---------------------------------------------------------------------------------------------
# the description
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One capturable output: a module call (or one element of a module's tuple output)."""

    name: str  # what users type: "layer1.0.conv1", "relu#2" (second call), "heads.0" (element)
    module: str  # qualified module name, state-dict style
    call: int  # which call of the module in one forward pass, from 1
    element: str  # path into a tuple/dict output ("" for a plain tensor), e.g. "0" or "logits"
    type: str  # the module's class name, e.g. "Conv2d"
    shape: tuple[int, ...]  # one sample's output shape, no batch axis
    params: int  # parameters of the module (with its children)
    calls: int  # how many times the module runs in one forward pass
    depth: int  # nesting depth of the module (0: a child of the model)
    leaf: bool  # the module has no child modules
    nonneg: bool  # output known to be >= 0 (after ReLU, softmax, pooling of such maps)
    field: Field | None  # receptive field of one output pixel (None: unknown or not a map)
    conv: str | None  # the conv layer whose kernels made this map (through element-wise ops)
    kernel: tuple[int, ...] | None = None  # conv weight shape (out, in/groups, kh, kw)
    # the module outputs (N, H, W, C), as after x.permute(0, 2, 3, 1) (ConvNeXt's pwconv1):
    # shape is given as (C, H, W) and capture permutes the values to it (run/capture.py)
    channels_last: bool = False

    @property
    def kind(self) -> str:
        """'map' (C, H, W), 'vector' (N,), or 'other' (sequences, 3-D maps, scalars)."""
        if len(self.shape) == 3:
            return "map"
        if len(self.shape) == 1:
            return "vector"
        return "other"

    @property
    def signed(self) -> bool:
        return not self.nonneg

    @property
    def channels(self) -> int:
        return self.shape[0] if self.shape else 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["field"] = None if self.field is None else self.field.to_dict()
        d["kernel"] = None if self.kernel is None else list(self.kernel)
        d["kind"] = self.kind
        return d


@dataclass(frozen=True)
class Output:
    """One element of the model's output (a tuple, list or dict is split)."""

    name: str  # "" for a plain tensor; "0", "1" or a key otherwise
    shape: tuple[int, ...]
    probabilities: bool  # produced by softmax (or exp of log_softmax): not softmaxed again
    log_probabilities: bool = False
    field: Field | None = None  # a map output's receptive field (dense scores: where each sits)


@dataclass
class ModelSpec:
    input_shape: tuple[int, int, int]  # (C, H, W)
    layers: list[Layer]
    outputs: list[Output]
    functional: list[str] = field(default_factory=list)  # ops no module hook can see
    model_type: str = ""

    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def layer(self, name: str) -> Layer:
        name = name.strip()
        for layer in self.layers:
            if layer.name == name:
                return layer
        # plain NAME names the first call of a module run several times
        for layer in self.layers:
            if layer.call == 1 and layer.calls > 1 and _plain(layer) == name:
                return layer
        close = [n for n in self.names() if name.split(".")[-1] in n][:6]
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ConvseeError(
            f"unknown layer {name!r}{hint}; `convsee layers` lists the {len(self.layers)} "
            "valid names"
        )

    def select(self, text, default=None) -> list[Layer]:
        """Layers from a comma-separated list of names, NAME#k, glob patterns ('layer1.*'),
        'all', or 'type:Conv2d'. Whitespace around names is ignored; duplicates dropped."""
        if text is None:
            text = default
        items = text if isinstance(text, (list, tuple)) else str(text).split(",")
        items = [str(x).strip() for x in items if str(x).strip()]
        if not items:
            raise ConvseeError("no layers given; `convsee layers` lists the valid names")
        out: list[Layer] = []
        for item in items:
            if item == "all":
                found = list(self.layers)
            elif item.startswith("type:"):
                want = item[5:].lower()
                found = [x for x in self.layers if x.type.lower() == want]
                if not found:
                    types = sorted({x.type for x in self.layers})
                    raise ConvseeError(f"no layer of type {item[5:]!r}; types: {', '.join(types)}")
            elif any(c in item for c in "*?["):
                found = [x for x in self.layers if fnmatch.fnmatchcase(x.name, item)]
                if not found:
                    raise ConvseeError(
                        f"no layer matches {item!r}; `convsee layers` lists the valid names"
                    )
            else:
                found = [self.layer(item)]
            for layer in found:
                if layer not in out:
                    out.append(layer)
        return out

    def maps(self) -> list[Layer]:
        return [x for x in self.layers if x.kind == "map"]

    def convs(self) -> list[Layer]:
        return [x for x in self.layers if x.kernel is not None and x.kind == "map"]

    def default_layers(self, purpose: str = "render", output: str | None = None) -> str:
        """The layers a view shows when none are asked for, as select() text. render: every
        Conv2d (else every map layer); exemplars: the first and the last conv (else map,
        else the last vector layer); optimize: the first and the last conv (else map) and
        the layer holding the class scores. (LeNet-5: conv1,conv2, and fc3 to optimize.)"""
        convs = [x.name for x in self.layers if x.type == "Conv2d" and x.kind == "map"]
        maps = [x.name for x in self.maps()]
        if purpose == "render":
            if convs:
                return "type:Conv2d"
            if not maps:
                raise ConvseeError("the model has no layer with map outputs (C, H, W) to draw")
            return ",".join(maps)
        ends = [convs[0], convs[-1]] if convs else [maps[0], maps[-1]] if maps else []
        if purpose == "exemplars":
            vectors = [x.name for x in self.layers if x.kind == "vector"]
            if not ends and not vectors:
                raise ConvseeError("the model has no map or vector layer to rank inputs by")
            return ",".join(dict.fromkeys(ends or vectors[-1:]))
        if purpose == "optimize":
            scores = self.scores_layer(output)
            out = ends + ([scores] if scores else [])
            if not out:
                raise ConvseeError("the model has no map or vector layer: name one", "layers")
            return ",".join(dict.fromkeys(out))
        raise ValueError(f"no default layers for {purpose!r}")

    def scores_layer(self, output: str | None = None) -> str | None:
        """The layer that holds the class scores (its logits, drawn as probabilities): the
        last vector layer shaped like the model's output (output: which one; default the
        first), or None when that output is not one vector per input."""
        out = next((o for o in self.outputs if o.name == output), None)
        out = out or (self.outputs[0] if self.outputs else None)
        if out is None or len(out.shape) != 1:
            return None
        found = [x.name for x in self.layers if x.kind == "vector" and x.shape == out.shape]
        return found[-1] if found else None

    def to_dict(self) -> dict:
        return {
            "model_type": self.model_type,
            "input_shape": list(self.input_shape),
            "layers": [x.to_dict() for x in self.layers],
            "outputs": [
                {"name": o.name, "shape": list(o.shape), "probabilities": o.probabilities}
                for o in self.outputs
            ],
            "functional": list(self.functional),
        }

    def table(self) -> str:
        """The layers as `convsee layers` prints them: outputs, one row per layer, notes."""
        outs = ", ".join(
            f"{o.name or 'output'} {'x'.join(map(str, o.shape))}"
            + (" (probabilities)" if o.probabilities else "")
            for o in self.outputs
        )
        rows = [("name", "type", "output", "params", "field / stride", "runs")]
        for x in self.layers:
            rows.append(
                (
                    "  " * x.depth + x.name,
                    x.type,
                    "x".join(map(str, x.shape)) or "-",
                    f"{x.params:,}" if x.params else "",
                    _field_text(x),
                    f"{x.call} of {x.calls}" if x.calls > 1 else "",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"outputs: {outs}"]
        lines += ["  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() for r in rows]
        lines.append(
            f"\n{len(self.layers)} layers. 'field / stride': the input pixels one output pixel "
            "sees and the step between neighbouring outputs."
        )
        last = [x.name for x in self.layers if x.channels_last]
        if last:
            lines.append(
                f"Channels-last (N,H,W,C) outputs, shown and drawn as CxHxW maps: {', '.join(last)}"
            )
        if self.functional:
            lines.append(
                "Functional ops no module hook can see (capture the module around or after "
                "them): " + ", ".join(self.functional)
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        size = "x".join(map(str, self.input_shape))
        return f"{self.model_type or 'model'}: input {size}\n{self.table()}"


def _field_text(layer: Layer) -> str:
    """'5 / 1' (size / stride), '9x5 / 2x1', 'whole input' or '-'."""
    f = layer.field
    if f is None:
        return "whole input" if layer.kind == "vector" else "-"
    if f.whole:
        return "whole input"
    size = f"{f.size[0]}x{f.size[1]}" if f.size[0] != f.size[1] else f"{f.size[0]}"
    s = f.stride
    stride = f"{s[0]:g}x{s[1]:g}" if s[0] != s[1] else f"{s[0]:g}"
    return f"{size} / {stride}"


def select_channels(choice, n: int, means=None, name: str = "the layer") -> list[int]:
    """The channels to show of a layer with n channels: choice is None (all), a list of
    numbers, or ('all'|'top'|'list', arg) as cli.options.parse_channels gives it; for 'top',
    means() returns each channel's mean activation (called only then), and the K highest are
    kept, in channel order. The one selection rule of render, the views and the page."""
    if choice is None:
        return list(range(n))
    if isinstance(choice, tuple) and len(choice) == 2 and isinstance(choice[0], str):
        kind, arg = choice
        if kind == "all":
            return list(range(n))
        if kind == "top":
            import numpy as np

            k = min(int(arg), n)
            order = np.argsort(-np.asarray(means(), np.float64), kind="stable")[:k]
            return sorted(int(c) for c in order)
        choice = arg
    chans = [int(c) for c in choice]
    bad = [c for c in chans if not 0 <= c < n]
    if bad:
        raise ConvseeError(f"channel {bad[0]} is out of range: {name} has 0..{n - 1}")
    return chans


def _plain(layer: Layer) -> str:
    return layer.module + (f".{layer.element}" if layer.element else "")


def _layer_name(module: str, call: int, calls: int, element: str) -> str:
    name = module + (f"#{call}" if calls > 1 else "")
    return name + (f".{element}" if element else "")


# ---------------------------------------------------------------------------------------------
# deriving it from a torch model
# ---------------------------------------------------------------------------------------------

# ops whose output is >= 0 whatever their input
_NONNEG_MAKERS = {
    "relu",
    "relu_",
    "relu6",
    "sigmoid",
    "sigmoid_",
    "softmax",
    "hardsigmoid",
    "abs",
    "abs_",
    "exp",
    "softplus",
    "threshold",
}
# ops that keep a non-negative input non-negative (with non-negative scalars)
_NONNEG_KEEPERS = {
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "_max_pool2d",
    "max_pool2d_with_indices",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "add",
    "add_",
    "__add__",
    "__iadd__",
    "__radd__",
    "mul",
    "mul_",
    "__mul__",
    "__rmul__",
    "__imul__",
    "cat",
    "concat",
    "flatten",
    "view",
    "reshape",
    "dropout",
    "dropout2d",
    "clone",
    "contiguous",
    "__getitem__",
    "squeeze",
    "unsqueeze",
    "permute",
    "transpose",
    "mean",
    "sum",
    "interpolate",
    "upsample",
    "pad",
    "identity",
    "to",
    "float",
}
_CONV = {"conv2d"}
_POOL = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "lp_pool2d"}
_ADAPTIVE = {"adaptive_avg_pool2d", "adaptive_max_pool2d"}
# ops that say nothing about values (shape queries and the like)
_IGNORED = {"size", "dim", "numel", "__get__", "_set_grad_enabled", "__len__", "is_floating_point"}


@dataclass
class _Info:
    field: Field | None
    nonneg: bool
    conv: str | None
    producer: str
    last: bool = False  # a 4-D tensor laid out (N, H, W, C): see _layout


def _arg(args, kwargs, i, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


class _Tracer:
    """Propagates _Info through every torch op (a TorchFunctionMode, built lazily)."""

    def __init__(self, x, weights: dict[int, str]):
        import torch
        from torch.overrides import TorchFunctionMode

        self.torch = torch
        self.info: dict[int, _Info] = {id(x): _Info(PIXEL, False, None, "input")}
        self.keep = [x]  # ids are only unique while the tensors live
        self.weights = weights  # id(conv weight) -> module name
        self.input_hw = tuple(x.shape[-2:])
        self.module_stack: list[tuple[str, bool]] = []  # (name, is_leaf)
        self.functional: list[str] = []
        tracer = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                try:
                    tracer.op(func, args, kwargs, out)
                except Exception:  # noqa: BLE001 - the trace must never break a forward pass
                    pass
                return out

        self.mode = Mode()

    def get(self, t) -> _Info | None:
        return self.info.get(id(t))

    def tensors(self, args, kwargs):
        out = []

        def walk(v):
            if isinstance(v, self.torch.Tensor):
                out.append(v)
            elif isinstance(v, (list, tuple)):
                for x in v:
                    walk(x)

        for a in args:
            walk(a)
        for v in kwargs.values():
            walk(v)
        return out

    def op(self, func, args, kwargs, out):
        name = getattr(func, "__name__", str(func))
        if name in _IGNORED:
            return
        outs = [out] if isinstance(out, self.torch.Tensor) else []
        if isinstance(out, (tuple, list)):  # max_pool with indices: the values come first
            outs = [o for o in out[:1] if isinstance(o, self.torch.Tensor)]
        if not outs:
            return
        o = outs[0]
        ins = [t for t in self.tensors(args, kwargs) if id(t) in self.info]
        if not ins:
            return  # parameters, buffers, constants
        src = ins[0]
        si = self.info[id(src)]
        fld: Field | None
        conv = None
        if name in _CONV:
            w = _arg(args, kwargs, 1, "weight")
            k = tuple(w.shape[-2:])
            pad = _arg(args, kwargs, 4, "padding", 0)
            dil = _pair(_arg(args, kwargs, 5, "dilation", 1))
            if isinstance(pad, str):  # 'valid' or 'same'
                pad = (
                    (0, 0)
                    if pad == "valid"
                    else tuple((d * (kk - 1)) // 2 for d, kk in zip(dil, k, strict=True))
                )
            fld = (
                None
                if si.field is None
                else conv_field(si.field, k, _arg(args, kwargs, 3, "stride", 1), pad, dil)
            )
            conv = self.weights.get(id(w))
            nonneg = False
        elif name in _POOL:
            kern = _arg(args, kwargs, 1, "kernel_size")
            stride = _arg(args, kwargs, 2, "stride", None)
            pad = _arg(args, kwargs, 3, "padding", 0)
            dil = _arg(args, kwargs, 4, "dilation", 1) if "max" in name else 1
            fld = None if si.field is None else pool_field(si.field, kern, stride, pad, dil)
            conv, nonneg = si.conv, si.nonneg
        elif name in _ADAPTIVE:
            fld = self._adaptive(si.field, tuple(src.shape[-2:]), tuple(o.shape[-2:]))
            conv, nonneg = si.conv, si.nonneg
        elif _layout(name, args, kwargs, o, si) is not None:
            last = _layout(name, args, kwargs, o, si)
            self.info[id(o)] = _Info(si.field, si.nonneg, si.conv, name, last)
            self.keep.append(o)
            return
        elif name == "pad" and o.dim() == src.dim() and o.dim() >= 2:
            p = list(_arg(args, kwargs, 1, "pad", ()))
            left, top = (p + [0, 0, 0, 0])[0], (p + [0, 0, 0, 0])[2]
            f = si.field
            fld = (
                None
                if f is None
                else Field(
                    f.size,
                    f.stride,
                    (f.start[0] - top * f.stride[0], f.start[1] - left * f.stride[1]),
                    f.whole,
                )
            )
            conv, nonneg = si.conv, si.nonneg
        else:
            fld, nonneg, conv = self._elementwise(name, o, ins, args, kwargs)
        last = o.dim() == 4 and any(self.info[id(t)].last for t in ins if t.dim() == 4)
        self.info[id(o)] = _Info(fld, nonneg, conv, name, last)
        self.keep.append(o)
        stack = self.module_stack
        if not stack or not stack[-1][1]:  # an op outside any leaf module: invisible to hooks
            where = f" in {stack[-1][0]}" if stack and stack[-1][0] else ""
            label = f"{name}{where}"
            if label not in self.functional:
                self.functional.append(label)

    def _adaptive(self, f, hw_in, hw_out):
        if f is None:
            return None
        if hw_out == (1, 1):
            return whole_field(self.input_hw)
        if hw_in == hw_out:
            return f
        k, s = [], []
        for a in (0, 1):
            s.append(hw_in[a] // hw_out[a])
            k.append(math.ceil(hw_in[a] / hw_out[a]))
        return pool_field(f, tuple(k), tuple(s))

    def _elementwise(self, name, o, ins, args, kwargs):
        torch = self.torch
        infos = [self.info[id(t)] for t in ins]
        scalars = [a for a in list(args) + list(kwargs.values()) if isinstance(a, (int, float))]
        if name in _NONNEG_MAKERS:
            nonneg = True
        elif name in _NONNEG_KEEPERS:
            arithmetic = name.strip("_").rstrip("_") in (
                "add",
                "iadd",
                "radd",
                "mul",
                "imul",
                "rmul",
            )
            nonneg = all(i.nonneg for i in infos) and (
                not arithmetic or all(s >= 0 for s in scalars)
            )
        else:
            nonneg = False
        last = o.dim() == 4 and any(i.last for t, i in zip(ins, infos, strict=True) if t.dim() == 4)
        same = [
            (t, i)
            for t, i in zip(ins, infos, strict=True)
            if t.dim() >= 3
            and o.dim() == t.dim()
            and i.last == last
            and _spatial(t, i.last) == _spatial(o, last)
        ]
        if o.dim() <= 2 and any(i.field is not None for i in infos):
            return whole_field(self.input_hw), nonneg, None  # vectors see the whole input
        if not same:
            return None, nonneg, None
        fld = same[0][1].field
        for _, i in same[1:]:
            fld = union_field(fld, i.field)
        convs = {i.conv for _, i in same}
        conv = convs.pop() if len(convs) == 1 else None
        if isinstance(o, torch.Tensor) and len(same) < len([t for t in ins if t.dim() >= 3]):
            fld = None  # mixes maps of other sizes: unknown
        return fld, nonneg, conv


def output_names(out) -> list[str]:
    """Names of a model output's elements: '' for one tensor, indices, keys, namedtuple fields."""
    return [p for p, _ in _flatten_output(out)]


def describe(model, input_shape, device: str | None = None) -> ModelSpec:
    """Run the model once on a seeded dummy input (1, C, H, W) and describe every layer.

    Eval mode during the pass (mode restored after), no gradients, hooks always removed,
    BatchNorm statistics untouched.
    """
    import torch

    c, h, w = (int(v) for v in input_shape)
    if isinstance(model, torch.jit.ScriptModule):
        return _describe_script(model, (c, h, w), device)
    try:
        p = next(model.parameters())
        device, dtype = device or p.device, p.dtype if p.is_floating_point() else torch.float32
    except StopIteration:
        device, dtype = device or "cpu", torch.float32
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, c, h, w, generator=g).to(device=device, dtype=dtype)
    names = {m: n for n, m in model.named_modules()}
    weights = {
        id(m.weight): n
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d) and m.weight is not None
    }
    tracer = _Tracer(x, weights)
    calls: dict[str, int] = {}
    records = []  # (module name, call, [(element, shape, info)]) in call order
    order: list[int] = []  # index into records, by call start
    handles = []

    def pre(m, _inp):
        n = names[m]
        calls[n] = calls.get(n, 0) + 1
        tracer.module_stack.append((n, not any(True for _ in m.children())))
        records.append([n, calls[n], None])
        order.append(len(records) - 1)
        m._convsee_rec = len(records) - 1  # noqa: SLF001 - removed below

    def post(m, _inp, out):
        idx = m._convsee_rec  # noqa: SLF001
        tracer.module_stack.pop()
        elems = []
        for path, t in _flatten_output(out):
            i = tracer.get(t)
            elems.append((path, tuple(t.shape[1:]), i))
        records[idx][2] = elems

    modules = [m for m in model.modules() if m is not model]
    try:
        for m in modules:
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
        with eval_mode(model), torch.no_grad(), tracer.mode:
            out = model(x)
    except ConvseeError:
        raise
    except Exception as e:  # noqa: BLE001 - a user's model can raise anything
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConvseeError(
            f"the model does not run on an input of shape (1, {c}, {h}, {w}): "
            f"{type(e).__name__}: {first[:300]} (set the input size with {{param}} C,H,W)",
            "input_size",
        ) from None
    finally:
        for hd in handles:
            hd.remove()
        for m in modules:
            if hasattr(m, "_convsee_rec"):
                del m._convsee_rec
    total_calls = dict(calls)
    layers = []
    by_name = dict(model.named_modules())
    for idx in order:
        mod, call, elems = records[idx]
        if not elems:
            continue
        m = by_name[mod]
        n_calls = total_calls[mod]
        kernel = None
        if isinstance(m, torch.nn.Conv2d):
            kernel = tuple(m.weight.shape)
        for element, shape, info in elems:
            last = bool(info is not None and info.last and len(shape) == 3)
            if last:  # (H, W, C) as the module returns it: described as the map (C, H, W)
                shape = (shape[2], shape[0], shape[1])
            layers.append(
                Layer(
                    name=_layer_name(mod, call, n_calls, element),
                    module=mod,
                    call=call,
                    element=element,
                    type=type(m).__name__,
                    shape=shape,
                    params=sum(p.numel() for p in m.parameters()),
                    calls=n_calls,
                    depth=mod.count("."),
                    leaf=not any(True for _ in m.children()),
                    nonneg=bool(info and info.nonneg),
                    field=info.field if info is not None and len(shape) == 3 else None,
                    conv=info.conv if info is not None and len(shape) == 3 else None,
                    kernel=kernel if element == "" else None,
                    channels_last=last,
                )
            )
    outputs = []
    for path, t in _flatten_output(out):
        i = tracer.get(t)
        producer = i.producer if i else ""
        outputs.append(
            Output(
                path,
                tuple(t.shape[1:]),
                producer in ("softmax", "Softmax"),
                producer == "log_softmax",
                i.field if i is not None and t.dim() == 4 and not i.last else None,
            )
        )
    if not outputs:
        raise ConvseeError(
            f"the model's output is a {type(out).__name__}, not a tensor or a tuple/dict of tensors"
        )
    functional = [f for f in tracer.functional if not f.startswith(("__get", "_"))]
    return ModelSpec((c, h, w), layers, outputs, functional, type(model).__name__)


def _describe_script(model, shape, device) -> ModelSpec:
    """A TorchScript program takes no hooks: its outputs only, no layers."""
    import torch

    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0)).to(device or "cpu")
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as e:  # noqa: BLE001
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConvseeError(
            f"the program does not run on an input of shape (1, {', '.join(map(str, shape))}): "
            f"{first[:300]} (set the input size with {{param}} C,H,W)",
            "input_size",
        ) from None
    outputs = [Output(p, tuple(t.shape[1:]), False) for p, t in _flatten_output(out)]
    return ModelSpec(tuple(shape), [], outputs, [], f"TorchScript {type(model).__name__}")


def with_fields(spec: ModelSpec, fields: dict[str, Field | None]) -> ModelSpec:
    """A copy with some layers' fields replaced (used by tests)."""
    layers = [replace(x, field=fields.get(x.name, x.field)) for x in spec.layers]
    return ModelSpec(spec.input_shape, layers, spec.outputs, spec.functional, spec.model_type)


_NAME_RE = re.compile(r"^[A-Za-z0-9_.#\-]+$")


# ---------------------------------------------------------------------------------------------
# tensor layouts and output kinds, from the traced shapes
# ---------------------------------------------------------------------------------------------


def _dims(args, kwargs) -> tuple[int, ...] | None:
    """The permutation of x.permute(0, 2, 3, 1), x.permute((0, 2, 3, 1)), torch.permute(x, ...)."""
    rest = list(args[1:]) if len(args) > 1 else []
    if "dims" in kwargs:
        rest = [kwargs["dims"]]
    if len(rest) == 1 and isinstance(rest[0], (tuple, list)):
        rest = list(rest[0])
    try:
        return tuple(int(d) % 4 for d in rest)
    except (TypeError, ValueError):
        return None


def _layout(name, args, kwargs, out, src: _Info) -> bool | None:
    """Whether a permute makes a 4-D map channels-last (True: (N, C, H, W) -> (N, H, W, C)) or
    back (False); None for any other op (whose layout follows its inputs')."""
    if name != "permute" or out.dim() != 4:
        return None
    dims = _dims(args, kwargs)
    if dims == (0, 2, 3, 1) and not src.last:
        return True
    if dims == (0, 3, 1, 2) and src.last:
        return False
    return None


def _spatial(t, last: bool) -> tuple[int, ...]:
    """(H, W) of a map tensor in either layout."""
    return tuple(t.shape[1:3]) if last else tuple(t.shape[-2:])


# names an output of class scores does not have (box regression, landmarks, embeddings ...)
_NOT_SCORES = re.compile(
    r"(box|bbox|reg|landmark|keypoint|point|offset|coord|embed|feature|hidden|mask|depth)",
    re.I,
)
_SCORES = re.compile(r"(logit|score|prob|class|cls|pred)", re.I)


def score_kind(o: Output) -> str:
    """How an output reads as class scores: 'vector' (K scores per input), 'dense' (K scores
    per position, (K, H, W), as a fully convolutional detector returns them), or 'no' (a
    name saying otherwise, a scalar, 1-vectors, other ranks)."""
    if _NOT_SCORES.search(o.name or "") and not _SCORES.search(o.name or ""):
        return "no"
    if len(o.shape) == 1 and o.shape[0] >= 2:
        return "vector"
    if len(o.shape) == 3 and o.shape[0] >= 2:
        return "dense"
    return "no"


def output_warning(spec: ModelSpec, chosen: str | None) -> str | None:
    """A one-line warning when the output read as class scores (the first, unless chosen) is
    not plausibly class scores while another output is: it lists the outputs (index, name,
    shape) and how to choose one. None when the choice looks right or nothing looks better."""
    outs = spec.outputs
    if len(outs) < 2 or chosen not in (None, ""):
        return None
    first = outs[0]
    better = [o for o in outs[1:] if score_kind(o) != "no"]
    why = _not_scores_why(first, better)
    if why is None:
        return None
    listed = "; ".join(
        f"{i}: {'x'.join(map(str, o.shape)) or 'scalar'}"
        + (" (probabilities)" if o.probabilities else "")
        + (f" '{o.name}'" if o.name and o.name != str(i) else "")
        for i, o in enumerate(outs)
    )
    pick = better[0].name if better else outs[1].name
    return (
        f"the first output ({'x'.join(map(str, first.shape)) or 'a scalar'}) is read as the class "
        f"scores, but {why}; the outputs: {listed}; choose one with --output K|NAME "
        f"(--output {pick}; in Python output={pick!r})"
    )


def _not_scores_why(first: Output, better: list[Output]) -> str | None:
    kind = score_kind(first)
    if kind == "no":
        if _NOT_SCORES.search(first.name or "") and not _SCORES.search(first.name or ""):
            return f"its name {first.name!r} says it is not"
        return "it is not a vector of scores per input"
    # a plain vector: suspicious only beside an output that is probabilities and the first not
    probs = [o for o in better if o.probabilities and o.shape[:1] != first.shape[:1]]
    if not first.probabilities and probs and kind == score_kind(probs[0]):
        return f"output {probs[0].name} ends in a softmax and it does not"
    return None
