"""`convsee predict`: the class and probabilities for each input."""

from __future__ import annotations

import json
import sys

import numpy as np

from ..errors import ConvseeError
from .errors import said
from .options import Formatter, add_data, add_inputs, add_model, network, out_dir_ok

HELP = "classify images (default: the bundled samples)"


def add(sub) -> None:
    pr = sub.add_parser("predict", help=HELP, description=HELP, formatter_class=Formatter)
    add_inputs(pr)
    add_model(pr)
    add_data(pr, help_data="folder with the dataset's IDX files (for test:N, train:N)")
    pr.add_argument(
        "--show-input", metavar="DIR", help="save each input as the model sees it, as PNG, in DIR"
    )
    pr.add_argument("--json", action="store_true", help="one JSON object per input")
    pr.add_argument("--top", type=int, default=3, help="how many classes to list per input")
    pr.add_argument(
        "--map",
        metavar="DIR",
        help="for a model whose class scores are per position (a dense output, K x H x W, as "
        "MTCNN's PNet returns them): save each input's class-probability map as PNG (with a "
        "JSON sidecar of its values) in DIR",
    )
    pr.add_argument(
        "--map-class",
        metavar="K|NAME",
        help="the class --map draws (default: each input's predicted class)",
    )
    pr.set_defaults(func=run)


def run(a) -> int:
    from ..draw.render import stems, write_outputs

    if a.top < 1:
        raise ConvseeError(f"--top must be positive, got {a.top}")
    if a.show_input:
        out_dir_ok(a.show_input, "--show-input")  # before the work, and creating nothing
    if a.map:
        out_dir_ok(a.map, "--map")
    elif a.map_class is not None:
        raise ConvseeError("--map-class is for --map DIR")
    net = network(a)
    if a.map:
        _dense_or_refuse(net)
    failed = 0
    inputs = []
    specs = a.inputs or [None]
    for s in specs:
        try:
            inputs += net.inputs(None if s is None else [s], a.data, a.dataset)
        except ConvseeError as e:
            if len(specs) == 1:
                raise
            print(
                f"convsee: error: {s}: {said(e)}"
                if str(s) not in str(e)
                else f"convsee: error: {said(e)}",
                file=sys.stderr,
            )
            failed += 1
    if not inputs:
        raise ConvseeError(f"none of the {len(specs)} inputs could be read")
    preds = net.predict(inputs)
    if a.map:
        write_outputs(_maps(net, preds, stems(inputs), a.map_class), a.map)
    if a.show_input:
        from ..draw.figures import picture

        files = {}
        for p, stem in zip(preds, stems(inputs), strict=True):
            import io

            buf = io.BytesIO()
            img = p.input.image  # at the model's own resolution: gray (L) or RGB
            pic = picture(img, max(img.shape[:2]))
            (pic.convert("L") if img.ndim == 2 else pic).save(buf, "PNG")
            files[f"{stem}.png"] = buf.getvalue()
        write_outputs(files, a.show_input)  # all or nothing, before anything is printed
    for p in preds:
        if a.json:
            print(json.dumps(p.to_dict()))
            continue
        if p.prediction is None:
            print(f"{p.input.name}: the model's output is not class scores")
            continue
        names = p.classes
        label = (
            ""
            if p.input.label is None
            else f" (true {names[p.input.label] if p.input.label < len(names) else p.input.label})"
        )
        top = sorted(range(len(names)), key=lambda k: -p.probabilities[k])[: a.top]
        at = [f" at {q}" for q in p.positions] or [""] * len(names)
        others = ", ".join(f"{names[k]} {p.probabilities[k]:.1%}{at[k]}" for k in top)
        dense = ""
        if p.map is not None:
            r, c = p.where
            grid = "x".join(map(str, p.map.shape[1:]))
            dense = f" (max over {grid} positions, at row {r}, col {c})"
        print(f"{p.input.name}: {p.label}{label}{dense}  [{others}]")
    if a.show_input:
        n = len(preds)
        print(
            f"wrote {n} model input picture{'' if n == 1 else 's'} to {a.show_input}/",
            file=sys.stderr,
        )
    if a.map:
        n = len(preds)
        maps = f"{n} class-probability map{'' if n == 1 else 's'}"
        print(f"wrote {maps} to {a.map}/", file=sys.stderr)
    if failed:
        print(f"convsee: {failed} of {len(specs)} inputs could not be read", file=sys.stderr)
        return 2
    return 0


def _maps(net, preds, names, choice) -> dict:
    """{file: bytes}: each input's class-probability map (PNG) and its values (JSON)."""
    from ..draw.channel_views import png_rgb
    from ..draw.dense import dense_map_image

    want = net._scores_spec() if hasattr(net, "_scores_spec") else None
    field = getattr(want, "field", None)
    files = {}
    for p, stem in zip(preds, names, strict=True):
        k = p.prediction if choice is None else _class_index(choice, p.classes)
        prob = p.map[k]
        r, c = p.positions[k]
        name = p.classes[k] if k < len(p.classes) else str(k)
        title = f"{p.input.name}: p({name}) at every position"
        lines = [
            f"max {prob[r, c]:.1%} at row {r}, col {c} of {prob.shape[0]}x{prob.shape[1]}"
            + (
                f" (a window of {field.size[0]}x{field.size[1]} input pixels, centred at "
                f"({field.centre(r, c)[0]:g}, {field.centre(r, c)[1]:g}), stride "
                f"{field.stride[0]:g})"
                if field is not None and not field.whole
                else ""
            ),
        ]
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


def _dense_or_refuse(net) -> None:
    from ..spec import score_kind

    want = net._scores_spec() if hasattr(net, "_scores_spec") else net.spec.outputs[0]
    if score_kind(want) != "dense":
        out = net.spec.outputs
        shapes = ", ".join(f"{o.name or 'output'} {'x'.join(map(str, o.shape))}" for o in out)
        raise ConvseeError(
            "--map draws class scores given per position (K x H x W); this model's scores are "
            f"not (its outputs: {shapes}; choose one with --output)"
        )


def _class_index(choice: str, classes) -> int:
    names = list(classes)
    if choice in names:
        return names.index(choice)
    lower = [c.lower() for c in names]
    if choice.lower() in lower:
        return lower.index(choice.lower())
    if choice.isdigit() and int(choice) < len(names):
        return int(choice)
    raise ConvseeError(
        f"--map-class {choice!r} is not a class: {', '.join(names)} (or 0..{len(names) - 1})"
    )
