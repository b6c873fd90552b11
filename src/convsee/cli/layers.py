"""`convsee layers`: every capturable layer of the model, in call order."""

from __future__ import annotations

import json

from ..datasets.registry import DATASETS
from .options import Formatter, add_model, network

HELP = "list the model's layers: names to use with --layers, shapes, receptive fields"


def add(sub) -> None:
    ly = sub.add_parser("layers", help=HELP, description=HELP, formatter_class=Formatter)
    add_model(ly)
    ly.add_argument(
        "--dataset",
        default="mnist",
        choices=list(DATASETS),
        help="picks LeNet's shipped checkpoint when no --model is given",
    )
    ly.add_argument("--json", action="store_true", help="a JSON list of layer objects")
    ly.set_defaults(func=run)


def run(a) -> int:
    net = network(a)
    spec = net.spec
    if a.json:
        rows = ",\n ".join(json.dumps(x.to_dict()) for x in spec.layers)
        print(f"[{rows}]" if spec.layers else "[]")
        return 0
    print(f"{spec.model_type}: input {net.prep.describe()}")
    frm = net.provenance.preprocess_from or {}
    if frm:
        width = max(len(k) for k in frm)
        print("preprocessing, where each value came from:")
        for k, v in frm.items():
            print(f"  {k.ljust(width)}  {v}")
    print(spec.table())
    if net.meta.get("hf_model"):
        from ..models.hf import stages

        found = stages(net)
        if found:
            width = max(len(name) for _, name, _ in found)
            print("\nStages (the model's output_hidden_states, the layer each one is):")
            for k, name, shape in found:
                print(f"  hidden_states.{k:<3} {name.ljust(width)}  {'x'.join(map(str, shape))}")
    return 0
