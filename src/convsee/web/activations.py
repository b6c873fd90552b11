"""The answer to POST /api/activations: one forward pass that captures only the layers asked
for, each layer's maps (the channels of its page, their ranges, the colour range to show them
in), the prediction, and an attribution overlay when asked for."""

from __future__ import annotations

import numpy as np

from ..datasets.inputs import Input
from ..datasets.transforms import normalize
from ..errors import ConvseeError
from ..run.filters import blur_maps
from .encoding import Out, encode_image, quantize, thumbnails
from .keys import INPUT_KEYS, said
from .requests import BadRequest, describe
from .schema import (
    ENCODINGS,
    INPUT_OVERLAYS,
    MAX_VALUES,
    OVERLAYS,
    PAGE_SIZE,
    VECTOR_MAX,
    LayerRequest,
    overlay_options,
    page_count,
    parse_blur,
    parse_image,
    parse_layers,
    parse_named,
    parse_png,
    sent_values,
)
from .served import TORCH_LOCK, Served, is_vector, reference

__all__ = ["activations_payload", "OVERLAYS"]


def _pick(a: np.ndarray, req: LayerRequest) -> list[int]:
    """The channels of (C, H, W) maps this answer carries, in channel order."""
    c = a.shape[0]
    if req.order == "list":
        return list(req.channels)
    lo = req.page * PAGE_SIZE
    if req.order == "index":
        return list(range(lo, min(c, lo + PAGE_SIZE)))
    mean = a.reshape(c, -1).mean(1)
    ranked = np.argsort(-mean, kind="stable")[lo : lo + PAGE_SIZE]
    return sorted(int(i) for i in ranked)


def _layer_payload(served: Served, req: LayerRequest, a: np.ndarray, blur, out: Out) -> dict:
    layer = req.layer
    ref = reference(served, layer, blur)
    entry = {
        "kind": "vector" if is_vector(layer) else "map",
        "shape": list(a.shape),
        "nonneg": layer.nonneg,
        "after_relu": layer.nonneg,
        "reference": ref,
    }
    if is_vector(layer):
        v = a.reshape(-1)
        units = None
        if v.size > VECTOR_MAX:
            units = sorted(int(i) for i in np.argsort(-v, kind="stable")[:VECTOR_MAX])
            v = v[units]
        lo, hi = float(a.min()), float(a.max())
        entry.update(
            min=lo,
            max=hi,
            global_range=ref or [lo, hi],
            channels=units,
            order="top" if units is not None else "index",
            page=0,
            pages=1,
            ranges=[[float(v.min()), float(v.max())]],
        )
        if out.encoding == "u8":
            entry["values"] = out.bytes(quantize(v[None], [v.min()], [v.max()])[0])
        else:
            entry["values"] = out.floats(v)
        return entry
    if blur is not None:
        a = blur_maps(a, *blur)  # every channel: the layer's range covers all of them
    chans = _pick(a, req)
    maps = a[chans]
    lo = maps.reshape(len(chans), -1).min(1)
    hi = maps.reshape(len(chans), -1).max(1)
    entry.update(
        min=float(a.min()),
        max=float(a.max()),
        global_range=ref or [float(a.min()), float(a.max())],
        channels=chans,
        order=req.order,
        page=req.page,
        pages=page_count(layer),
        ranges=[[float(x), float(y)] for x, y in zip(lo, hi, strict=True)],
    )
    if out.encoding == "u8":
        small, f = thumbnails(maps)
        entry["size"] = list(small.shape[1:])
        entry["factor"] = f
        entry["values"] = out.bytes(quantize(small, lo, hi))
    else:
        entry["size"] = list(maps.shape[1:])
        entry["factor"] = 1
        entry["values"] = out.floats(maps)
    return entry


def _attribution(served: Served, inp: Input, kind: str, layer_name: str, target: int, out: Out):
    from ..draw.attribution import nothing_speaks_for
    from ..run.attribution import attribute
    from ..run.network_attribution import attribute_network

    net = served.net
    layer = net.spec.layer(layer_name)
    want = net.output
    if kind not in ("saliency", "gradcam"):  # the others: the batch API, one input
        options = overlay_options(kind, layer, net.prep.input_size)
        if kind in INPUT_OVERLAYS:
            layer = None  # the input's own attribution: no layer
        with TORCH_LOCK:
            b = attribute_network(
                net, inp.x[None], method=kind, layer=layer, target=target, **options
            )
        m = b.maps[0]
        t = int(b.targets[0])
        shape = getattr(net.scores_output(), "shape", ())
        names = served.classes(int(shape[0]) if shape else 0)
        # signed: the part that speaks for the class is drawn; none: said in one sentence
        none = nothing_speaks_for(kind, m, b.quantity, names[t] if 0 <= t < len(names) else str(t))
        if kind in INPUT_OVERLAYS:
            m = np.maximum(m, 0) if not none else np.zeros_like(m)  # round-off is not drawn
        top = float(m.max())
        return {
            "kind": kind,
            "layer": b.layer,
            "target": t,
            "quantity": b.quantity,
            "max": top,
            "shape": list(m.shape),
            "field_known": b.field_known,
            "map": out.floats((m / top if top > 0 else m).astype(np.float32)),
            "none": none,
        }
    with TORCH_LOCK:
        r = attribute(
            served.torch_model(),
            inp.x,
            layer,
            target,
            output=want,
            output_spec=net.scores_output(),
            std=net.prep.channel_std(),
        )
    m = r.saliency if kind == "saliency" else r.placed
    top = float(m.max())
    norm = (m / top if top > 0 else m).astype(np.float32)
    return {
        "kind": kind,
        "layer": None if kind == "saliency" else r.layer,
        "target": r.target,
        "quantity": r.quantity,
        "max": top,
        "shape": list(m.shape),
        "field_known": r.field_known,
        "map": out.floats(norm),
    }


def activations_payload(served: Served, body) -> tuple[dict, list[bytes]]:
    """(the answer's JSON part, its data blobs (8-bit encoding only)) for one request body.

    Raises BadRequest for anything wrong with it; the cheap checks come before any decoding
    or computing."""
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {describe(body)}")
    given = [k for k in ("image", "png", "input") if k in body]
    if len(given) != 1:
        raise BadRequest(
            "send exactly one of 'image' (the model's picture as numbers in [0, 1]), 'png' "
            "(an image file) or 'input' (sample:D, test:N, data:N, upload:ID)"
        )
    encoding = body.get("encoding", "list")
    if encoding not in ENCODINGS:
        raise BadRequest(f"'encoding' must be 'list', 'f32' or 'u8', got {describe(encoding)}")
    attribution = body.get("attribution")
    if attribution is not None and attribution not in OVERLAYS:
        raise BadRequest(
            f"'attribution' must be one of {', '.join(OVERLAYS)}, got {describe(attribution)}"
        )
    cam = body.get("attribution_layer")
    if attribution is not None:
        if not served.cam_layers:
            raise BadRequest("this model has no map layer to attribute at", 422)
        if cam is None:
            cam = served.cam_default
        elif not isinstance(cam, str) or cam not in served.cam_layers:
            raise BadRequest("'attribution_layer' must be one of the map layers /api/info lists")
        overlay_options(attribution, served.net.spec.layer(cam), served.prep.input_size)
    blur = parse_blur(body.get("blur"))
    keep = body.get("keep", False)
    if not isinstance(keep, bool):
        raise BadRequest(f"'keep' must be true or false, got {describe(keep)}")
    requests = parse_layers(body.get("layers"), served)
    total = sum(sent_values(r, encoding) for r in requests)
    if total > MAX_VALUES[encoding]:
        fit = [
            e
            for e in ("u8", "f32")
            if e != encoding and sum(sent_values(r, e) for r in requests) <= MAX_VALUES[e]
        ]
        instead = f", or send 'encoding': {' or '.join(map(repr, fit))}, which fit" if fit else ""
        raise BadRequest(
            f"the layers asked for hold {total:,} values; at most {MAX_VALUES[encoding]:,} per "
            f"answer in encoding {encoding}: ask for fewer layers{instead}"
        )
    # the input last: the cheap checks above fail before any decoding
    if "image" in body:
        img = parse_image(body["image"], served.prep)
        inp = Input("image", img, x=normalize(img, served.prep))
    elif "png" in body:  # keep: named upload:ID in the answer, for the updates that follow
        inp = parse_png(body["png"], served.prep, served if keep else None)
    else:
        inp = parse_named(body["input"], served)
    net = served.net
    layers = [r.layer for r in requests]
    x = inp.x[None].astype(np.float32)
    try:
        if net.thread_safe:
            acts, probs = net.run(x, layers)
        else:
            with TORCH_LOCK:  # hooks on the one torch model
                acts, probs = net.run(x, layers)
    except ConvseeError as e:
        raise BadRequest(said(e, (*INPUT_KEYS, "layers"), body), 422) from None
    out = Out(encoding)
    head: dict = {
        "input_name": inp.name,
        "input_source": inp.source or None,
        "input_label": inp.label,
        "input_notes": list(inp.notes),
        "input_shape": list(inp.image.shape),
        "input": encode_image(inp.image, out),
    }
    if probs is not None:
        p = probs[0]
        k = int(p.argmax())
        names = served.classes(len(p))
        head.update(
            prediction=k,
            label=names[k],
            probabilities=[round(float(v), 6) for v in p],
        )
    else:
        head.update(prediction=None, label=None, probabilities=None)
    head["layers"] = {
        r.layer.name: _layer_payload(served, r, acts[r.layer.name][0], blur, out) for r in requests
    }
    if attribution is not None and probs is not None:
        try:
            target = head["prediction"]
            head["attribution"] = _attribution(served, inp, attribution, cam, target, out)
        except ConvseeError as e:
            takes = (*INPUT_KEYS, "attribution", "attribution_layer")
            raise BadRequest(said(e, takes, body), 422) from None
    return head, out.blobs
