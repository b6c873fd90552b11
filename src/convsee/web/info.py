"""What GET /api/info tells the page about the model: its layers (the spec), preprocessing and
classes, what inputs and overlays it can offer, the small conv kernels shown on hover and the
colour maps. Built once when the app starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import __version__
from .encoding import THUMB
from .schema import MAX_BODY, PAGE_SIZE, VECTOR_MAX
from .served import Served

__all__ = ["page_info", "CMAPS", "KERNEL_MAX_IN", "KERNEL_MAX_SIDE", "KERNEL_VALUES"]

CMAPS = ("RdBu_r", "viridis", "magma", "inferno", "gray", "coolwarm")
KERNEL_MAX_IN = 16  # kernels shown on hover: at most this many input channels ...
KERNEL_MAX_SIDE = 7  # ... of at most 7x7
KERNEL_VALUES = 200_000  # and at most this many weights in /api/info altogether


def _lut_lists():
    from ..draw.core import colormap

    return {name: colormap(name).tolist() for name in CMAPS}


def _kernels(served: Served) -> dict:
    """Small conv kernels ((out, in, k, k), at most KERNEL_MAX_IN input channels of at most
    KERNEL_MAX_SIDE px), for the hover; at most KERNEL_VALUES weights in all."""
    out, used = {}, 0
    for layer in served.spec.layers:
        k = layer.kernel
        if k is None or layer.element or layer.name in out:
            continue
        if k[1] > KERNEL_MAX_IN or max(k[2:]) > KERNEL_MAX_SIDE:
            continue
        n = int(np.prod(k))
        if used + n > KERNEL_VALUES:
            continue
        w = served.net.kernel(layer.name)
        if w is None:
            continue
        out[layer.name] = np.round(np.asarray(w, np.float64), 5).tolist()
        used += n
    return out


def page_info(served: Served) -> dict:
    from ..datasets.registry import lookup

    net, spec, prep = served.net, served.spec, served.prep
    prov = net.provenance
    outs = spec.outputs
    k = outs[0].shape[0] if outs and len(outs[0].shape) == 1 else 0
    if served.scores is not None:
        k = next(x.shape[0] for x in spec.layers if x.name == served.scores)
    c = prep.input_size[0]
    src = served.source
    fits = served.dataset_fits()
    if src is not None:
        kind = "test" if hasattr(src, "split_name") else "data"
        random_info = {"available": True, "kind": kind, "count": len(src), "what": src.name}
    else:
        random_info = {"available": False, "why": served.source_why}
    checkpoint = prov.checkpoint
    model = str(prov.model or spec.model_type)
    target, sep, name = model.rpartition(":")
    if sep and ("/" in target or "\\" in target):  # FILE.py:Name: the file's name is enough
        model = f"{Path(target).name}:{name}"
    elif not sep and model.endswith(".py"):  # FILE.py alone (its one nn.Module class)
        model = Path(model).name
    names = list(lookup(served.dataset).classes)
    return {
        "convsee_version": __version__,
        "model": model,
        "model_type": spec.model_type,
        "checkpoint": Path(checkpoint).name if checkpoint else None,
        "checkpoint_sha256": prov.checkpoint_sha256,
        "test_accuracy": prov.test_accuracy,
        "preprocess": prep.to_dict(),
        "preprocess_text": prep.describe(),
        "preprocess_from": prov.preprocess_from,  # an hf: model: where each value came from
        "spec": spec.to_dict(),
        "classes": served.classes(k) if k else [],
        "scores_layer": served.scores,
        "default_layers": served.defaults,
        "page_size": PAGE_SIZE,
        "thumb": THUMB,
        "vector_max": VECTOR_MAX,
        "inputs": {
            "draw": c == 1,
            "digit_form": prep.resize in ("mnist", "fashion"),
            "samples": [
                {"name": s.name, "label": names[s.label] if s.label < len(names) else s.name}
                for s in (served.sample_items if fits else [])
            ],
            "random": random_info,
            "upload_side": 1024,
            "max_body": MAX_BODY,
        },
        "overlays": {
            "available": bool(served.cam_layers) and k > 0,
            "layers": served.cam_layers,
            "default": served.cam_default,
        },
        "exemplars": {
            "available": src is not None,
            "source": None if src is None else src.name,
            "why": "" if src is not None else served.source_why,
        },
        "kernels": _kernels(served),
        "colormaps": _lut_lists(),
        "has_test_set": src is not None,
        "dataset": served.dataset,
    }
