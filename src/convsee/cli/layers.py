"""`convsee layers`: every capturable layer of the model, in call order."""

from __future__ import annotations

import json

from .options import Formatter, add_model, network

HELP = "list the model's layers: names to use with --layers, shapes, receptive fields"


def add(sub) -> None:
    ly = sub.add_parser("layers", help=HELP, description=HELP, formatter_class=Formatter)
    add_model(ly)
    ly.add_argument(
        "--dataset",
        default="mnist",
        choices=["mnist", "fashion-mnist"],
        help="picks LeNet's shipped checkpoint when no --model is given",
    )
    ly.add_argument("--json", action="store_true", help="a JSON list of layer objects")
    ly.set_defaults(func=run)


def _field(layer) -> str:
    f = layer.field
    if f is None:
        return "whole input" if layer.kind == "vector" else "-"
    if f.whole:
        return "whole input"
    size = f"{f.size[0]}x{f.size[1]}" if f.size[0] != f.size[1] else f"{f.size[0]}"
    s = f.stride
    stride = f"{s[0]:g}x{s[1]:g}" if s[0] != s[1] else f"{s[0]:g}"
    return f"{size} / {stride}"


def run(a) -> int:
    net = network(a)
    spec = net.spec
    if a.json:
        rows = ",\n ".join(json.dumps(x.to_dict()) for x in spec.layers)
        print(f"[{rows}]" if spec.layers else "[]")
        return 0
    print(f"{spec.model_type}: input {net.prep.describe()}")
    outs = ", ".join(
        f"{o.name or 'output'} {'x'.join(map(str, o.shape))}"
        + (" (probabilities)" if o.probabilities else "")
        for o in spec.outputs
    )
    print(f"outputs: {outs}")
    rows = [("name", "type", "output", "params", "field / stride", "runs")]
    for x in spec.layers:
        name = "  " * x.depth + x.name
        runs = f"{x.call} of {x.calls}" if x.calls > 1 else ""
        rows.append(
            (
                name,
                x.type,
                "x".join(map(str, x.shape)) or "-",
                f"{x.params:,}" if x.params else "",
                _field(x),
                runs,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip())
    print(
        f"\n{len(spec.layers)} layers. 'field / stride': the input pixels one output pixel sees "
        "and the step between neighbouring outputs."
    )
    if spec.functional:
        print(
            "Functional ops no module hook can see (capture the module around or after them): "
            + ", ".join(spec.functional)
        )
    return 0
