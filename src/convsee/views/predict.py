"""What `convsee predict` shows besides the predictions themselves: each prediction as a
line of text, each input as the model sees it, and the class-probability maps of a model whose
scores are per position (a dense K x H x W output) with their JSON sidecars."""

from __future__ import annotations

import json

import numpy as np

from ..errors import ConvseeError

__all__ = [
    "read_each",
    "prediction_line",
    "model_input_files",
    "check_dense",
    "class_index",
    "probability_maps",
]


def read_each(net, specs, data=None, dataset=None):
    """(inputs, failures) for INPUT specs read one by one (None: the bundled samples), so that
    one unreadable input does not stop the others; failures: (spec, ConvseeError). With one
    spec its error is raised."""
    specs = list(specs) or [None]
    inputs, failed = [], []
    for s in specs:
        try:
            inputs += net.inputs(None if s is None else [s], data, dataset)
        except ConvseeError as e:
            if len(specs) == 1:
                raise
            failed.append((s, e))
    if not inputs:
        raise ConvseeError(f"none of the {len(specs)} inputs could be read")
    return inputs, failed


def prediction_line(p, top: int = 3) -> str:
    """ "name: label (true T)  [c1 p1, c2 p2, c3 p3]" for one Prediction, with where a dense
    output peaks."""
    if p.prediction is None:
        return f"{p.input.name}: the model's output is not class scores"
    names = p.classes
    truth = p.input.label
    label = "" if truth is None else f" (true {names[truth] if truth < len(names) else truth})"
    best = sorted(range(len(names)), key=lambda k: -p.probabilities[k])[:top]
    at = [f" at {q}" for q in p.positions] or [""] * len(names)
    others = ", ".join(f"{names[k]} {p.probabilities[k]:.1%}{at[k]}" for k in best)
    dense = ""
    if p.map is not None:
        r, c = p.where
        grid = "x".join(map(str, p.map.shape[1:]))
        dense = f" (max over {grid} positions, at row {r}, col {c})"
    return f"{p.input.name}: {p.label}{label}{dense}  [{others}]"


def model_input_files(preds, names) -> dict:
    """{name.png: PNG} of each prediction's input at the model's own resolution (gray or RGB)."""
    import io

    from ..draw.figures import picture

    files = {}
    for p, stem in zip(preds, names, strict=True):
        buf = io.BytesIO()
        img = p.input.image
        pic = picture(img, max(img.shape[:2]))
        (pic.convert("L") if img.ndim == 2 else pic).save(buf, "PNG")
        files[f"{stem}.png"] = buf.getvalue()
    return files


def check_dense(net) -> None:
    """Refuse, in one line, a model whose class scores are not per position."""
    from ..spec import score_kind

    if score_kind(net.scores_output()) != "dense":
        out = net.spec.outputs
        shapes = ", ".join(f"{o.name or 'output'} {'x'.join(map(str, o.shape))}" for o in out)
        raise ConvseeError(
            "{param} draws class scores given per position (K x H x W); this model's scores "
            f"are not (its outputs: {shapes}; choose one when the model is loaded: output)",
            "map",
        )


def class_index(choice: str, classes) -> int:
    """The class a name (any case) or an index names."""
    names = list(classes)
    if choice in names:
        return names.index(choice)
    lower = [c.lower() for c in names]
    if choice.lower() in lower:
        return lower.index(choice.lower())
    if choice.isdigit() and int(choice) < len(names):
        return int(choice)
    raise ConvseeError(
        f"{{param}} {choice!r} is not a class: {', '.join(names)} (or 0..{len(names) - 1})",
        "map_class",
    )


def probability_maps(net, preds, names, choice=None) -> dict:
    """{file: bytes}: each input's class-probability map (PNG) and its values (JSON), for the
    predicted class or choice (a class name or index)."""
    from ..draw.channel_views import png_rgb
    from ..draw.dense import dense_map_image

    field = getattr(net.scores_output(), "field", None)
    files = {}
    for p, stem in zip(preds, names, strict=True):
        k = p.prediction if choice is None else class_index(choice, p.classes)
        prob = p.map[k]
        r, c = p.positions[k]
        name = p.classes[k] if k < len(p.classes) else str(k)
        title = f"{p.input.name}: p({name}) at every position"
        where = ""
        if field is not None and not field.whole:
            cy, cx = field.centre(r, c)
            where = (
                f" (a window of {field.size[0]}x{field.size[1]} input pixels, centred at "
                f"({cy:g}, {cx:g}), stride {field.stride[0]:g})"
            )
        lines = [f"max {prob[r, c]:.1%} at row {r}, col {c} of {prob.shape[0]}x{prob.shape[1]}"]
        lines[0] += where
        img = dense_map_image(p.input.image, prob, field, title, lines)
        files[f"{stem}.png"] = png_rgb(img)
        side = {
            "input": p.input.name,
            "class": name,
            "class_index": int(k),
            "shape": list(prob.shape),
            "max": round(float(prob[r, c]), 6),
            "at": [int(r), int(c)],
            "field": None if field is None else field.to_dict(),
            "probabilities": np.round(prob.astype(np.float64), 6).tolist(),
        }
        files[f"{stem}.json"] = (json.dumps(side, indent=1) + "\n").encode()
    return files
