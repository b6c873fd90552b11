"""The tracer: a model's description (spec/model.py) derived from one forward pass.

`describe(model, input_shape)` runs the model once on a seeded dummy input with a forward hook
on every module (so each call of a module reused several times is its own layer, `NAME#2`) and
a torch-function mode that sees every op, functional ones included (`F.relu`, `x + y`,
`torch.flatten`). The op trace gives, for every tensor, its receptive field in the input
(size, stride between neighbouring outputs, where output pixel (0, 0) is centred), whether it
is known to be non-negative (after a ReLU, a softmax, pooling of non-negative maps), and the
convolution whose kernels made it. Each op is handled by the entry of a dispatch table
(_Tracer.HANDLERS: op name -> handler; every other op is element-wise). Receptive fields
follow from the conv and pool parameters (spec/field.py); where an op makes them unknowable
(upsampling, slicing) they are None.

Nothing here imports torch at module level: LeNet-5's torch-free path builds its description
with the same arithmetic (models/lenet_numpy.py) and never reaches this module's functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..capture import eval_mode, flatten_output
from ..errors import ConvseeError, first_line
from .field import PIXEL, Field, conv_field, pair, pool_field, union_field, whole_field
from .model import Layer, ModelSpec, Output, layer_name

__all__ = ["describe", "output_names"]

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


# a layout change computes nothing: a permute that makes a map channels-last (or back) is not
# listed among the functional ops
_RELAYOUT = {"permute"}


class _Tracer:
    """Propagates _Info through every torch op (a TorchFunctionMode, built lazily): the op's
    handler in HANDLERS when it has one (and it applies), else _elementwise."""

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
        handler = self.HANDLERS.get(name)
        info = handler(self, name, args, kwargs, o, ins) if handler else None
        relayout = info is not None and name in _RELAYOUT
        if info is None:
            info = self._elementwise(name, args, kwargs, o, ins)
        self.info[id(o)] = info
        self.keep.append(o)
        if not relayout:
            self._note_functional(name)

    def _note_functional(self, name: str) -> None:
        stack = self.module_stack
        if not stack or not stack[-1][1]:  # an op outside any leaf module: invisible to hooks
            where = f" in {stack[-1][0]}" if stack and stack[-1][0] else ""
            label = f"{name}{where}"
            if label not in self.functional:
                self.functional.append(label)

    def _last(self, o, ins) -> bool:
        """A 4-D output is channels-last when a 4-D input is (the layout follows the inputs)."""
        return o.dim() == 4 and any(self.info[id(t)].last for t in ins if t.dim() == 4)

    # -- the handlers: (name, args, kwargs, output, traced inputs) -> _Info, or None when the
    # -- op is to be treated as element-wise after all

    def _conv(self, name, args, kwargs, o, ins):
        si = self.info[id(ins[0])]
        w = _arg(args, kwargs, 1, "weight")
        k = tuple(w.shape[-2:])
        pad = _arg(args, kwargs, 4, "padding", 0)
        dil = pair(_arg(args, kwargs, 5, "dilation", 1))
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
        return _Info(fld, False, self.weights.get(id(w)), name, self._last(o, ins))

    def _pool(self, name, args, kwargs, o, ins):
        si = self.info[id(ins[0])]
        kern = _arg(args, kwargs, 1, "kernel_size")
        stride = _arg(args, kwargs, 2, "stride", None)
        pad = _arg(args, kwargs, 3, "padding", 0)
        dil = _arg(args, kwargs, 4, "dilation", 1) if "max" in name else 1
        fld = None if si.field is None else pool_field(si.field, kern, stride, pad, dil)
        return _Info(fld, si.nonneg, si.conv, name, self._last(o, ins))

    def _adaptive_pool(self, name, args, kwargs, o, ins):
        src = ins[0]
        si = self.info[id(src)]
        fld = self._adaptive(si.field, tuple(src.shape[-2:]), tuple(o.shape[-2:]))
        return _Info(fld, si.nonneg, si.conv, name, self._last(o, ins))

    def _permute(self, name, args, kwargs, o, ins):
        si = self.info[id(ins[0])]
        last = _layout(name, args, kwargs, o, si)
        if last is None:
            return None
        return _Info(si.field, si.nonneg, si.conv, name, last)

    def _pad(self, name, args, kwargs, o, ins):
        src = ins[0]
        if not (o.dim() == src.dim() and o.dim() >= 2):
            return None
        si = self.info[id(src)]
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
        return _Info(fld, si.nonneg, si.conv, name, self._last(o, ins))

    HANDLERS = {
        "conv2d": _conv,
        **dict.fromkeys(_POOL, _pool),
        **dict.fromkeys(_ADAPTIVE, _adaptive_pool),
        "permute": _permute,
        "pad": _pad,
    }

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

    def _elementwise(self, name, args, kwargs, o, ins) -> _Info:
        """Every op without a handler: non-negativity by the op's kind, the field of the
        inputs of the output's spatial size joined (vectors: the whole input)."""
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
        last = self._last(o, ins)
        same = [
            (t, i)
            for t, i in zip(ins, infos, strict=True)
            if t.dim() >= 3
            and o.dim() == t.dim()
            and i.last == last
            and _spatial(t, i.last) == _spatial(o, last)
        ]
        if o.dim() <= 2 and any(i.field is not None for i in infos):
            # vectors see the whole input
            return _Info(whole_field(self.input_hw), nonneg, None, name, last)
        if not same:
            return _Info(None, nonneg, None, name, last)
        fld = same[0][1].field
        for _, i in same[1:]:
            fld = union_field(fld, i.field)
        convs = {i.conv for _, i in same}
        conv = convs.pop() if len(convs) == 1 else None
        if isinstance(o, torch.Tensor) and len(same) < len([t for t in ins if t.dim() >= 3]):
            fld = None  # mixes maps of other sizes: unknown
        return _Info(fld, nonneg, conv, name, last)


def output_names(out) -> list[str]:
    """Names of a model output's elements: '' for one tensor, indices, keys, namedtuple fields."""
    return [p for p, _ in flatten_output(out)]


def describe(model, input_shape, device: str | None = None) -> ModelSpec:
    """Run the model once on a seeded dummy input (1, C, H, W) and describe every layer.

    Eval mode during the pass (mode restored after), no gradients, hooks always removed,
    BatchNorm statistics untouched.
    """
    import torch

    c, h, w = (int(v) for v in input_shape)
    if isinstance(model, torch.jit.ScriptModule):
        return _describe_script(model, (c, h, w), device)
    x = _dummy_input(model, (c, h, w), device)
    weights = {
        id(m.weight): n
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d) and m.weight is not None
    }
    tracer = _Tracer(x, weights)
    out, records = _trace(model, x, tracer)
    outputs = _outputs(out, tracer)
    if not outputs:
        raise ConvseeError(
            f"the model's output is a {type(out).__name__}, not a tensor or a tuple/dict of "
            "tensors",
            "model",
        )
    functional = [f for f in tracer.functional if not f.startswith(("__get", "_"))]
    return ModelSpec((c, h, w), _layers(model, records), outputs, functional, type(model).__name__)


def _dummy_input(model, shape: tuple[int, int, int], device):
    """A seeded standard-normal batch of one, on the model's device in its float type."""
    import torch

    try:
        p = next(model.parameters())
        device, dtype = device or p.device, p.dtype if p.is_floating_point() else torch.float32
    except StopIteration:
        device, dtype = device or "cpu", torch.float32
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, *shape, generator=g).to(device=device, dtype=dtype)


def _trace(model, x, tracer: _Tracer):
    """One forward pass under the tracer with a pre- and a post-hook on every module: the
    model's output and, in call-start order, (module name, call, calls of the module in the
    pass, [(element, shape, _Info)]) for every module call."""
    import torch

    names = {m: n for n, m in model.named_modules()}
    calls: dict[str, int] = {}
    records = []  # [module name, call, [(element, shape, info)]] in call order
    handles = []

    def pre(m, _inp):
        n = names[m]
        calls[n] = calls.get(n, 0) + 1
        tracer.module_stack.append((n, not any(True for _ in m.children())))
        records.append([n, calls[n], None])
        m._convsee_rec = len(records) - 1  # noqa: SLF001 - removed below

    def post(m, _inp, out):
        idx = m._convsee_rec  # noqa: SLF001
        tracer.module_stack.pop()
        elems = []
        for path, t in flatten_output(out):
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
        raise _does_not_run("model", tuple(x.shape[1:]), e, with_type=True) from None
    finally:
        for hd in handles:
            hd.remove()
        for m in modules:
            if hasattr(m, "_convsee_rec"):
                del m._convsee_rec
    return out, [(mod, call, calls[mod], elems) for mod, call, elems in records]


def _does_not_run(what: str, shape, e: Exception, with_type: bool) -> ConvseeError:
    """The error of a model (or program) that raised e on the dummy input."""
    said = f"{type(e).__name__}: {first_line(e)}" if with_type else first_line(e)
    return ConvseeError(
        f"the {what} does not run on an input of shape (1, {', '.join(map(str, shape))}): "
        f"{said} (set the input size with {{param}} C,H,W)",
        "input_size",
    )


def _layers(model, records) -> list[Layer]:
    """One Layer per element of every module call's output (a call that returned nothing
    traceable has none)."""
    import torch

    layers = []
    by_name = dict(model.named_modules())
    for mod, call, n_calls, elems in records:
        if not elems:
            continue
        m = by_name[mod]
        kernel = tuple(m.weight.shape) if isinstance(m, torch.nn.Conv2d) else None
        for element, shape, info in elems:
            last = bool(info is not None and info.last and len(shape) == 3)
            if last:  # (H, W, C) as the module returns it: described as the map (C, H, W)
                shape = (shape[2], shape[0], shape[1])
            layers.append(
                Layer(
                    name=layer_name(mod, call, n_calls, element),
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
    return layers


def _outputs(out, tracer: _Tracer) -> list[Output]:
    outputs = []
    for path, t in flatten_output(out):
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
    return outputs


def _describe_script(model, shape, device) -> ModelSpec:
    """A TorchScript program takes no hooks: its outputs only, no layers."""
    import torch

    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0)).to(device or "cpu")
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as e:  # noqa: BLE001
        raise _does_not_run("program", shape, e, with_type=False) from None
    outputs = [Output(p, tuple(t.shape[1:]), False) for p, t in flatten_output(out)]
    return ModelSpec(tuple(shape), [], outputs, [], f"TorchScript {type(model).__name__}")


# ---------------------------------------------------------------------------------------------
# tensor layouts, from the traced shapes
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
