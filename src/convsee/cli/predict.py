"""`convsee predict`: the class and probabilities for each input."""

from __future__ import annotations

import json
import sys

from ..errors import ConvseeError
from .errors import prefix, said
from .options import Formatter, add_inputs_and_model, check_ranges, network, out_dir_ok

HELP = "classify images (default: the bundled samples)"


def add(sub) -> None:
    pr = sub.add_parser("predict", help=HELP, description=HELP, formatter_class=Formatter)
    add_inputs_and_model(pr)
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
    from ..draw.render import stems
    from ..files import write_outputs
    from ..views import predict as v

    check_ranges(("--top", a.top, 1, None))
    if a.show_input:
        out_dir_ok(a.show_input, "--show-input")  # before the work, and creating nothing
    if a.map:
        out_dir_ok(a.map, "--map")
    elif a.map_class is not None:
        raise ConvseeError("--map-class is for --map DIR")
    net = network(a)
    if a.map:
        v.check_dense(net)
    inputs, failed = v.read_each(net, a.inputs, a.data, a.dataset)
    for s, e in failed:
        print(
            f"{prefix(a.command)}{'' if str(s) in str(e) else f'{s}: '}{said(e)}", file=sys.stderr
        )
    preds = net.predict(inputs)
    if a.map:
        write_outputs(v.probability_maps(net, preds, stems(inputs), a.map_class), a.map)
    if a.show_input:  # all or nothing, before anything is printed
        write_outputs(v.model_input_files(preds, stems(inputs)), a.show_input)
    for p in preds:
        print(json.dumps(p.to_dict()) if a.json else v.prediction_line(p, a.top))
    n, s = len(preds), "" if len(preds) == 1 else "s"
    if a.show_input:
        print(f"wrote {n} model input picture{s} to {a.show_input}/", file=sys.stderr)
    if a.map:
        print(f"wrote {n} class-probability map{s} to {a.map}/", file=sys.stderr)
    if failed:
        k = len(a.inputs or [None])
        print(f"convsee: {len(failed)} of {k} inputs could not be read", file=sys.stderr)
        return 2
    return 0
