"""The one hook utility: capture what layers output, right.

A leaf module (it imports only errors, and torch inside its functions): the description of
a model (spec), the networks (models) and the views (run) all use it.

- Values are cloned the moment a module produces them, so an in-place op that follows
  (`ReLU(inplace=True)`, `out += identity`) cannot change what was captured.
- A module run several times in one forward pass has one layer per call (`relu#2`); each
  forward pass of the model starts the count again.
- Tuple, list and dict outputs are captured per element (`heads.0`, `heads.logits`).
- A channels-last map (N, H, W, C, as after `x.permute(0, 2, 3, 1)`) is captured permuted to
  (N, C, H, W), the shape its spec.Layer gives, so it is drawn as C maps.
- Eval mode during capture with every module's mode restored afterwards (so BatchNorm's
  running statistics are never touched), hooks always removed, no gradients kept unless asked.

With grad=True the captured tensors stay in the autograd graph (for Grad-CAM): the hook hands a
clone to the rest of the network, so later in-place ops act on the clone, never on the
captured value.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .errors import ConvseeError

__all__ = [
    "eval_mode",
    "flatten_output",
    "capture",
    "activations",
    "select_output",
    "get_element",
    "replace_element",
]


@contextlib.contextmanager
def eval_mode(model):
    """model.eval() for the block; every module's own mode restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def flatten_output(out, prefix: str = ""):
    """[(element path, tensor)] of a module's output: a tensor, or tuples/lists/dicts of them."""
    import torch

    if isinstance(out, torch.Tensor):
        return [(prefix, out)]
    items = []
    if isinstance(out, dict):
        pairs = [(str(k), v) for k, v in out.items()]
    elif isinstance(out, (tuple, list)):
        pairs = [(str(i), v) for i, v in enumerate(out)]
    else:
        return []
    for k, v in pairs:
        items += flatten_output(v, f"{prefix}.{k}" if prefix else k)
    return items


def get_element(out, path: str):
    if not path:
        return out
    head, _, rest = path.partition(".")
    if isinstance(out, dict):
        key = head if head in out else next(k for k in out if str(k) == head)
        return get_element(out[key], rest)
    return get_element(out[int(head)], rest)


def replace_element(out, path: str, value):
    """out with the element at path replaced by value (tuples, lists, dicts, namedtuples)."""
    if not path:
        return value
    head, _, rest = path.partition(".")
    if isinstance(out, dict):
        key = head if head in out else next(k for k in out if str(k) == head)
        new = type(out)(out) if not hasattr(out, "_fields") else dict(out)
        new[key] = replace_element(out[key], rest, value)
        return new
    items = list(out)
    items[int(head)] = replace_element(items[int(head)], rest, value)
    if hasattr(out, "_fields"):  # namedtuple
        return type(out)(*items)
    return type(out)(items)


@contextlib.contextmanager
def capture(model, layers, *, grad: bool = False, leaf: bool = False):
    """Yield a dict {layer name: tensor}, filled while the model runs.

    leaf (with grad): a captured tensor that needs no gradient yet (the first layer reached,
    when the input and the parameters need none) becomes a leaf of the graph, so a backward
    pass stops there (attribution to a layer, run/cams.py).

    layers: spec.Layer objects (from ModelSpec.select). Hooks are removed on exit, also when
    the forward pass raises.
    """
    import torch

    modules = dict(model.named_modules())
    wanted: dict[str, list] = {}
    for layer in layers:
        if layer.module not in modules:
            raise ConvseeError(f"the model has no module {layer.module!r}")
        wanted.setdefault(layer.module, []).append(layer)
    out: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys(wanted, 0)

    def start(_m, _inp):  # a new forward pass of the whole model: calls count from 1 again
        for k in counts:
            counts[k] = 0

    def make_hook(name):
        def hook(_m, _inp, o):
            counts[name] += 1
            result = o
            for layer in wanted[name]:
                if layer.call != counts[name]:
                    continue
                try:
                    t = get_element(o, layer.element)
                except (KeyError, IndexError, ValueError, TypeError, StopIteration):
                    raise ConvseeError(
                        f"layer {layer.name}: the module's output has no element {layer.element!r}"
                    ) from None
                # a channels-last map (N, H, W, C) is captured as the map (N, C, H, W)
                as_map = (lambda v: v.permute(0, 3, 1, 2)) if layer.channels_last else None
                if grad:
                    if leaf and not t.requires_grad:
                        t = t.detach().requires_grad_(True)
                    out[layer.name] = as_map(t) if as_map else t
                    result = replace_element(result, layer.element, t.clone())
                else:
                    v = t.detach()
                    out[layer.name] = (as_map(v) if as_map else v).clone()
            return result if grad and result is not o else None

        return hook

    handles = [model.register_forward_pre_hook(start)]
    try:
        for name in wanted:
            handles.append(modules[name].register_forward_hook(make_hook(name)))
        yield out
    finally:
        for h in handles:
            h.remove()


def select_output(out, which: str | int | None = None):
    """The model output read as class scores: the tensor itself, or element `which` of a
    tuple/list/dict (default: the first)."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    items = flatten_output(out)
    if not items:
        raise ConvseeError(f"the model's output is a {type(out).__name__}, not tensors")
    if which is None or which == "":
        return items[0][1]
    key = str(which)
    for path, t in items:
        if path == key:
            return t
    if hasattr(out, "_fields") and key in out._fields:
        return getattr(out, key)
    names = ", ".join(p for p, _ in items)
    raise ConvseeError(f"the model has no output {key!r}; its outputs: {names}", "output")


def activations(model, x, layers, *, output=None):
    """Run one batch: ({layer name: float32 array, batch first}, chosen output as a tensor)."""
    import torch

    layers = list(layers)
    if not layers:  # nothing to capture: no hooks (TorchScript programs take none)
        with eval_mode(model), torch.no_grad():
            return {}, select_output(model(x), output)
    with eval_mode(model), torch.no_grad(), capture(model, layers) as acts:
        out = model(x)
    scores = select_output(out, output)
    return {k: v.float().cpu().numpy().astype(np.float32) for k, v in acts.items()}, scores
