"""`convsee evolution`."""

from __future__ import annotations

import time

from ..draw.render import finish
from ..errors import ConvseeError
from ..views.evolution import evolution
from .options import Formatter, add_data, add_device, add_out, device, out_dir_ok

HELP = "GIFs of the filters forming during training"


def add(sub) -> None:
    ev = sub.add_parser("evolution", help=HELP, description=HELP, formatter_class=Formatter)
    ev.add_argument("checkpoint", nargs="?", help="trained with --snapshots (default: shipped)")
    ev.add_argument(
        "--model",
        metavar="SPEC",
        help="the model the checkpoint was trained as (`convsee train --model SPEC --snapshots N`)",
    )
    add_device(ev)
    add_data(ev)
    ev.add_argument(
        "--layers",
        metavar="L1,L2,...",
        help="map layers to show forming (default: conv1,conv2 for LeNet-5, else the first "
        "and the last conv)",
    )
    ev.add_argument("--input", default="sample:3", help="whose maps to show forming")
    ev.add_argument("--frame-ms", type=int, default=400, help="milliseconds per GIF frame")
    add_out(ev, "media")
    ev.set_defaults(func=run)


def run(a) -> int:
    t0 = time.perf_counter()
    out_dir_ok(a.out)  # before the work, not after every frame is drawn
    if a.model and not a.checkpoint:
        raise ConvseeError("evolution --model needs the checkpoint `convsee train` wrote")
    figs = evolution(
        a.checkpoint,
        a.model,
        a.layers,
        a.input,
        a.frame_ms,
        data=a.data,
        dataset=a.dataset,
        device=device(a.device),
    )
    return finish(figs.files(), a.out, t0)
