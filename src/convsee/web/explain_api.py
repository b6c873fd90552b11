"""The page's teaching parts on the server: POST /api/explain (how one value was computed,
run/explain.py's Explanation as JSON), one plain sentence per layer for the layer cards
(`layer_words`: what the op does and where the output's size comes from), the first
convolution's settings and the control ranges of the playground (`teach_info`, merged into
/api/info).

/api/explain takes {input (as /api/activations takes it: "input", "png" or "image"), layer,
channel, row, col} for a map and {input, layer, index (or channel)} for a vector or the
pseudo-layer "softmax". The request guard (Host, Origin, Content-Type) covers it as every
/api/ route; the body is read with the same size cap and JSON depth limit; torch models run
under the server's torch lock. A bad request gets a 4xx with one sentence naming the key.
"""

from __future__ import annotations

import math

import anyio
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ConvseeError
from ..run.explain import SOFTMAX, explain_prepared
from ..run.playground import conv_output_size
from .keys import INPUT_KEYS, said
from .requests import BadRequest, describe, parse_json, query, read_body

__all__ = ["explain_payload", "layer_words", "teach_info", "explain_route", "PLAYGROUND"]

# the playground's controls (tests/test_playground.py checks every combination against conv2d)
PLAYGROUND = {
    "size": [1, 32],
    "kernel": [1, 7],
    "stride": [1, 4],
    "padding": [0, 1, 2, 3, "valid", "same"],
    "dilation": [1, 3],
}
ACTIVATION_WORDS = {
    "ReLU": "after ReLU: negatives set to 0, positives kept",
    "ReLU6": "after ReLU6: values clipped to 0..6",
    "LeakyReLU": "after LeakyReLU: negatives scaled down by a small slope, positives kept",
    "PReLU": "after PReLU: negatives scaled by a learned slope, positives kept",
    "ELU": "after ELU: negatives squashed towards −1, positives kept",
    "SELU": "after SELU: negatives squashed, everything scaled",
    "CELU": "after CELU: negatives squashed towards −α, positives kept",
    "GELU": "after GELU: x × (the chance a normal variable is below x): small negatives near 0",
    "SiLU": "after SiLU: x × sigmoid(x): negatives near 0",
    "Mish": "after Mish: x × tanh(softplus(x)): negatives near 0",
    "Hardswish": "after Hardswish: x × clip((x + 3) / 6, 0, 1)",
    "Hardsigmoid": "after Hardsigmoid: clip((x + 3) / 6, 0, 1)",
    "Hardtanh": "after Hardtanh: values clipped to a range",
    "Sigmoid": "after sigmoid: every value squashed into 0..1",
    "Tanh": "after tanh: every value squashed into −1..1",
    "Softplus": "after softplus: a smooth ReLU, log(1 + eˣ)",
}
PASS_WORDS = {
    "Identity": "passes its input through unchanged",
    "Dropout": "passes its input through unchanged (dropout only acts in training)",
    "Dropout2d": "passes its input through unchanged (dropout only acts in training)",
    "AlphaDropout": "passes its input through unchanged (dropout only acts in training)",
}


def _x(shape) -> str:
    return "×".join(str(v) for v in shape)


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


# ---------------------------------------------------------------------------------------------
# what each layer's module receives, and its settings
# ---------------------------------------------------------------------------------------------


def _torch_ops(net, lock) -> dict:
    """Any torch model: one pass on zeros with pre-hooks recording what each leaf module
    receives (shape, per call), and the modules' settings."""
    import torch
    from torch import nn

    out: dict = {}
    with lock:
        model = net.torch_model()
        modules = dict(model.named_modules())
        calls: dict = {}
        handles = []

        def pre(name):
            def hook(_m, args):
                calls[name] = calls.get(name, 0) + 1
                if args and isinstance(args[0], torch.Tensor):
                    out.setdefault((name, calls[name]), tuple(args[0].shape[1:]))

            return hook

        for name, m in modules.items():
            if name and not list(m.children()):
                handles.append(m.register_forward_pre_hook(pre(name)))
        try:
            x = np.zeros((1, *net.spec.input_shape), np.float32)
            with torch.no_grad():
                net.run(x)
        except Exception:  # noqa: BLE001 - the sentences only lose their input sizes
            pass
        finally:
            for h in handles:
                h.remove()
    ops = {}
    for layer in net.spec.layers:
        m = modules.get(layer.module)
        s = {"in": out.get((layer.module, layer.call)), "type": layer.type}
        if isinstance(m, nn.Conv2d):
            k, st, d = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
            if isinstance(m.padding, str):
                s["pad"] = m.padding
            else:
                s["pad"] = _pair(m.padding)
            s.update(kernel=k, stride=st, dilation=d, groups=int(m.groups))
            s.update(cin=int(m.in_channels), bias=m.bias is not None)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            k = _pair(m.kernel_size)
            st = k if m.stride in (None, (), []) else _pair(m.stride)
            s.update(kernel=k, stride=st, pad=_pair(m.padding))
            s.update(dilation=_pair(getattr(m, "dilation", 1)), ceil=bool(m.ceil_mode))
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            s["running"] = bool(m.track_running_stats and m.running_mean is not None)
        ops[layer.name] = s
    return ops


def _ops(net, lock) -> dict:
    known = net.layer_settings()  # LeNet-5: from its table
    if known is not None:
        return known
    try:
        return _torch_ops(net, lock)
    except Exception:  # noqa: BLE001 - no sentences beats no page
        return {}


# ---------------------------------------------------------------------------------------------
# one sentence per layer
# ---------------------------------------------------------------------------------------------


def _size_words(n: int, k: int, s: int, p, d: int) -> str:
    """How output size follows along one axis, in the simplest words that are true."""
    if p == "same":
        return f"'same' padding keeps the size: {n} → {n}"
    if p == "valid":
        p = (0, 0)
    before, after = p if isinstance(p, tuple) else (p, p)
    try:
        out = conv_output_size(n, k, s, (before, after), d)
    except ConvseeError:
        return ""
    span = d * (k - 1) + 1
    if s == 1 and d == 1 and before == after == 0:
        return f"{n} − {k} + 1 = {out}"
    if s == 1 and d == 1:
        return f"{n} + {before + after} − {k} + 1 = {out}"
    if d == 1:
        return f"⌊({n} + {before + after} − {k}) / {s}⌋ + 1 = {out}"
    return f"⌊({n} + {before + after} − {span}) / {s}⌋ + 1 = {out} (a dilated kernel spans {span})"


def _conv_words(name, layer, s) -> str:
    kh, kw = s["kernel"]
    ksz = f"{kh}×{kw}"
    n_out = layer.shape[0]
    cin, groups = s.get("cin", 0), s.get("groups", 1)
    per = cin // max(groups, 1)
    what = f"{n_out} kernels of {ksz}"
    if per == 1 and groups == 1:
        what += " slide over the input"
    elif groups == 1:
        what += f", each summed over all {per} input channels"
    else:
        what += f" in {groups} groups, each summed over {per} input channel{'s' * (per > 1)}"
    what += ", plus a bias" if s.get("bias", True) else " (no bias)"
    what += ": one map per kernel"
    pad = s.get("pad", (0, 0))
    st, d = s.get("stride", (1, 1)), s.get("dilation", (1, 1))
    bits = []
    if pad == (0, 0) or pad == "valid":
        bits.append("no padding")
    elif pad == "same":
        bits.append("'same' padding")
    else:
        bits.append(f"padding {pad[0]}" if pad[0] == pad[1] else f"padding {pad[0]}/{pad[1]}")
    if st != (1, 1):
        bits.append(f"stride {st[0]}" if st[0] == st[1] else f"stride {st[0]}×{st[1]}")
    if d != (1, 1):
        bits.append(f"dilation {d[0]}")
    inp = s.get("in")
    size = ""
    if inp is not None and len(inp) == 3 and len(layer.shape) == 3:
        p = pad if isinstance(pad, str) else (pad[0], pad[0])
        size = _size_words(int(inp[1]), kh, st[0], p, d[0])
        if size and inp[1] != inp[2]:
            q = pad if isinstance(pad, str) else (pad[1], pad[1])
            size += "; across: " + _size_words(int(inp[2]), kw, st[1], q, d[1])
    return f"{what}. {', '.join(bits).capitalize()}" + (f": {size}" if size else "")


def _pool_words(layer, s, kind: str) -> str:
    kh, kw = s["kernel"]
    st, pad, d = s["stride"], s["pad"], s.get("dilation", (1, 1))
    inp = s.get("in")
    how = "max" if kind == "max" else "mean"
    if (kh, kw) == tuple(st) and pad == (0, 0) and d == (1, 1):
        text = f"{how} of each {kh}×{kw} block, channel by channel"
        if inp is not None and len(inp) == 3 and not s.get("ceil"):
            sizes = f"{inp[1]} → {layer.shape[1]}"
            if inp[1] != inp[2] or layer.shape[1] != layer.shape[2]:
                sizes += f" by {inp[2]} → {layer.shape[2]}"
            text += f": {sizes}"
        return text
    text = f"{how} over {kh}×{kw} windows, stride {st[0]}, padding {pad[0]}, channel by channel"
    if inp is not None and len(inp) == 3 and not s.get("ceil"):
        size = _size_words(int(inp[1]), kh, st[0], (pad[0], pad[0]), d[0])
        text += f": {size}" if size else ""
    return text


def _one_sentence(net, layer, s: dict | None, prev) -> str:
    t = layer.type
    s = s or {}
    shape = _x(layer.shape)
    inp = s.get("in")
    if t == "Conv2d" and "kernel" in s:
        text = _conv_words(layer.name, layer, s)
    elif t in ("MaxPool2d", "AvgPool2d") and "kernel" in s:
        text = _pool_words(layer, s, "max" if t == "MaxPool2d" else "avg")
    elif t in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        how = "mean" if "Avg" in t else "max"
        if len(layer.shape) == 3 and layer.shape[1] * layer.shape[2] == 1:
            text = f"the {how} of each whole map: one number per channel ({layer.shape[0]})"
        else:
            text = f"the {how} over blocks sized so that each map becomes {_x(layer.shape[1:])}"
    elif t in ACTIVATION_WORDS:
        text = ACTIVATION_WORDS[t] + ", value by value (same shape)"
    elif t in ("BatchNorm2d", "BatchNorm1d"):
        text = (
            "BatchNorm: each channel minus its mean over the training data, divided by its "
            "spread, then scaled and shifted by two learned numbers (same shape)"
        )
    elif t == "Linear":
        n_in = int(np.prod(inp)) if inp else None
        src = f"all {n_in} inputs" if n_in else "every input"
        text = (
            f"fully connected: each of the {layer.shape[-1]} units is a weighted sum of "
            f"{src} plus a bias"
        )
    elif t == "Flatten":
        text = (
            f"the {_x(inp)} maps laid out as one list of {shape} numbers (no arithmetic)"
            if inp
            else f"the maps laid out as one list of {shape} numbers (no arithmetic)"
        )
    elif t in PASS_WORDS:
        text = PASS_WORDS[t]
    elif t in ("Softmax", "LogSoftmax"):
        text = "softmax: e to each score, divided by their sum (they add up to 1)"
    elif not layer.leaf:
        text = f"a block of layers ({t}); its output, {shape}, is shown"
    else:
        text = f"{t}: output {shape}"
    prev_type = prev.type if prev is not None else None
    fits = prev is not None and (inp is None or tuple(inp) == tuple(prev.shape))
    if prev_type in ACTIVATION_WORDS and t not in ACTIVATION_WORDS and layer.leaf and fits:
        text += f"; its input is after {prev_type}"
        text += " (no negatives)" if prev_type in ("ReLU", "ReLU6") else ""
    return text[:1].upper() + text[1:] + "."


def layer_words(net, lock) -> dict:
    """{layer name: one plain sentence} for every layer of the model."""
    ops = _ops(net, lock)
    out, prev = {}, None
    for layer in net.spec.layers:
        try:
            out[layer.name] = _one_sentence(net, layer, ops.get(layer.name), prev)
        except Exception:  # noqa: BLE001 - an odd module: its type and shape still say something
            out[layer.name] = f"{layer.type}: output {_x(layer.shape)}."
        if layer.leaf:
            prev = layer
    return out


def teach_info(served, lock) -> dict:
    """Merged into /api/info: the layer sentences, the layers the page shows at first (LeNet-5:
    its ReLUs too), the first convolution's settings, the playground's control ranges."""
    net = served.net
    ops = _ops(net, lock)
    words = layer_words(net, lock)
    first = None
    for layer in net.spec.layers:
        s = ops.get(layer.name) or {}
        if layer.type == "Conv2d" and "kernel" in s and s.get("in") is not None:
            pad = s["pad"]
            first = {
                "layer": layer.name,
                "size": int(s["in"][1]),
                "kernel": int(s["kernel"][0]),
                "stride": int(s["stride"][0]),
                "padding": pad if isinstance(pad, str) else int(pad[0]),
                "dilation": int(s["dilation"][0]),
            }
            break
    shown = list(served.defaults)
    if net.also_shown:  # LeNet-5's ReLUs: what turns conv's signed maps non-negative
        shown = [n for n in net.spec.names() if n in shown or n in net.also_shown]
    return {
        "layer_words": words,
        "page_layers": shown,
        "first_conv": first,
        "playground": PLAYGROUND,
    }


# ---------------------------------------------------------------------------------------------
# POST /api/explain
# ---------------------------------------------------------------------------------------------


# the keys of POST /api/explain's body
EXPLAIN_KEYS = ("layer", "channel", "row", "col", "index", *INPUT_KEYS)


def _whole(body: dict, key: str, lo: int, hi: int, what: str) -> int:
    if key not in body:
        raise BadRequest(f"'{key}' is missing ({what})")
    v = body[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer():
        raise BadRequest(f"'{key}' must be a whole number, got {describe(v)}")
    v = int(v)
    if not lo <= v <= hi:
        raise BadRequest(f"'{key}' must be {lo}..{hi} ({what}), got {v}", 422)
    return v


def _unit(body: dict, served, name: str):
    """(layer name, unit) from the request's layer / channel, row, col / index."""
    spec = served.spec
    if name == SOFTMAX and SOFTMAX not in spec.names():
        if served.scores is None:
            raise BadRequest("'layer': this model's output is not class scores (no softmax)", 422)
        k = next(x.shape[0] for x in spec.layers if x.name == served.scores)
        key = "index" if "index" in body else "channel"
        return name, (_whole(body, key, 0, k - 1, f"the class, of {k}"),)
    layer = next((x for x in spec.layers if x.name == name), None)
    if layer is None:
        raise BadRequest("'layer' names no layer of this model (see /api/info)", 404)
    if layer.kind == "map":
        c, h, w = layer.shape
        ch = _whole(body, "channel", 0, c - 1, f"{name} has {c} channels")
        r = _whole(body, "row", 0, h - 1, f"{name}'s maps have {h} rows")
        q = _whole(body, "col", 0, w - 1, f"{name}'s maps have {w} columns")
        return name, (ch, r, q)
    if layer.kind == "vector":
        n = layer.shape[0]
        key = "index" if "index" in body else "channel"
        return name, (_whole(body, key, 0, n - 1, f"{name} has {n} units"),)
    raise BadRequest(f"'layer': {name} is neither a map nor a vector; explain takes those", 422)


def explain_payload(served, body, lock) -> dict:
    """The answer to POST /api/explain for the parsed JSON body (BadRequest when it is bad);
    its input is read as /api/activations reads it (schema.py)."""
    from ..datasets.inputs import Input
    from ..datasets.transforms import normalize
    from .schema import parse_image, parse_named, parse_png

    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {describe(body)}")
    name = body.get("layer")
    if not isinstance(name, str) or not name or len(name) > 200:
        raise BadRequest(f"'layer' must be a layer name (see /api/info), got {describe(name)}")
    layer, unit = _unit(body, served, name)
    given = [k for k in ("input", "png", "image") if k in body]
    if len(given) != 1:
        raise BadRequest("give exactly one of 'input', 'png' or 'image' (as /api/activations)")
    if "image" in body:
        img = parse_image(body["image"], served.prep)
        inp = Input("image", img, x=normalize(img, served.prep))
    elif "png" in body:
        inp = parse_png(body["png"], served.prep)
    else:
        inp = parse_named(body["input"], served)
    net = served.net
    try:
        if net.thread_safe:  # no hooks on a shared torch module
            e = explain_prepared(net, inp.x, layer, unit)
        else:
            with lock:
                e = explain_prepared(net, inp.x, layer, unit)
    except ConvseeError as err:
        raise BadRequest(said(err, EXPLAIN_KEYS, body), 422) from None
    out = e.to_dict()
    out["input_name"] = inp.name
    return out


def _clean(v):
    """NaN / inf as null (JSON has neither); NumPy scalars as Python's."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    return v


def explain_route(served, lock, limit: int, limiter) -> Route:
    """The route POST /api/explain; limiter(): the server's worker CapacityLimiter."""

    def compute(raw: bytes) -> Response:
        import json

        body = parse_json(raw)
        try:
            out = _clean(explain_payload(served, body, lock))
        except ConvseeError as e:  # a library error on the way: named as the request names it
            raise BadRequest(
                said(e, EXPLAIN_KEYS, body if isinstance(body, dict) else ()), 422
            ) from None
        return Response(
            json.dumps(out, separators=(",", ":"), allow_nan=False).encode(),
            media_type="application/json",
        )

    async def api_explain(request: Request) -> Response:
        try:
            raw = await read_body(request, limit)
            query(request.query_params)  # after the body: the connection stays usable
            return await anyio.to_thread.run_sync(compute, raw, limiter=limiter())
        except BadRequest as e:
            headers = {"connection": "close"} if e.close else None
            return JSONResponse({"error": str(e)}, e.status, headers=headers)

    return Route("/api/explain", api_explain, methods=["POST"])
