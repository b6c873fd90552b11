"""The library names the parameter at fault (ConvseeError.param, its Python name); the server
names the JSON key of the request that set it. This table is the one place that says which key
that is (the CLI's is cli/errors.py FLAGS): every 4xx built from a ConvseeError says `said(e,
...)`, so an answer never speaks of a flag such as --layer.

A parameter may be set by one of several keys, depending on the request and the step that
failed: the input by "input", "png" or "image" (whichever was sent), a layer by /api/explain's
"layer", by /api/activations' "layers" (the maps asked for) or its "attribution_layer" (the
overlay's). Each caller says which keys the failing step reads (`takes`) and which the request
sent; the key named is the first of the parameter's KEYS among those read and sent, else among
those read. A parameter no request sets (the server's own settings: resize, output, ...) keeps
its Python name.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ConvseeError

__all__ = ["KEYS", "INPUT_KEYS", "key", "said"]

INPUT_KEYS = ("input", "png", "image")  # what the model sees: one of them per request

# parameter (Python name) -> the JSON keys that set it, in order of preference
KEYS: dict[str, tuple[str, ...]] = {
    "layer": ("layer", "attribution_layer", "layers"),
    "layers": ("layers", "layer"),
    # a unit: /api/explain's channel or index, /api/views' ?unit=, or /api/activations'
    # "channels" (given in a layer's options, under "layers")
    "channel": ("channel", "channels", "unit", "layers"),
    "channels": ("channels", "channel", "unit", "layers"),
    "unit": ("channel", "index", "unit", "channels", "layers"),
    "index": ("index", "channel", "unit", "layers"),
    "row": ("row",),
    "col": ("col",),
    "position": ("row", "col"),
    "method": ("attribution",),
    "attribution": ("attribution",),
    "blur": ("blur",),
    "sigma": ("blur",),
    "kernel": ("blur",),
    "encoding": ("encoding",),
    "keep": ("keep",),
    "order": ("layers",),
    "page": ("layers",),
    "input": INPUT_KEYS,
    "inputs": INPUT_KEYS,
    "x": INPUT_KEYS,
    "image": INPUT_KEYS,
    "input_size": INPUT_KEYS,  # the input does not fit the model's input size
}


def key(param: str, takes: Iterable[str] = (), sent: Iterable[str] = ()) -> str:
    """The key that names param in an answer, quoted as the server's messages quote keys
    ('layers'): the first of its KEYS that the failing step reads (takes) and the request sent,
    else the first it reads, else the parameter's own name (unquoted: no request sets it)."""
    keys = KEYS.get(param, (param,))
    takes = tuple(takes)
    read_sent = [k for k in takes if k in set(sent)]
    for pool in (read_sent, takes):
        for k in keys:
            if k in pool:
                return f"'{k}'"
    return param


def said(e: ConvseeError, takes: Iterable[str] = (), sent: Iterable[str] = ()) -> str:
    """The error's message as the server answers it: the parameter named by its JSON key
    (see key), on one line, at most 300 characters."""
    text = e.render(key(e.param, takes, sent)) if e.param else str(e)
    return " ".join(text.split())[:300]
