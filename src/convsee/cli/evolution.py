"""`convsee evolution`."""

from __future__ import annotations

import argparse
import time

from ..errors import ConvseeError
from ..views.evolution import evolution
from .options import (
    Formatter,
    add_data,
    add_device,
    add_gif_out,
    add_layers,
    device,
    finish,
    out_dir_ok,
    picked,
)

HELP = "GIFs of the filters forming during training"


class _Once(argparse.Action):
    """--checkpoint FILE, or the older positional CHECKPOINT (hidden); given twice, refused."""

    def __call__(self, parser, ns, values, option_string=None):
        if values is None:  # the positional, absent
            return
        if getattr(ns, "checkpoint", None) not in (None, values):
            parser.error("give the checkpoint once, as --checkpoint FILE")
        ns.checkpoint = values


def add(sub) -> None:
    ev = sub.add_parser("evolution", help=HELP, description=HELP, formatter_class=Formatter)
    ev.add_argument(
        "--checkpoint",
        metavar="FILE",
        action=_Once,
        help="a checkpoint `convsee train --snapshots N` wrote (default: the shipped LeNet-5's)",
    )
    ev.add_argument("old_checkpoint", nargs="?", action=_Once, help=argparse.SUPPRESS)
    ev.add_argument(
        "--model",
        metavar="SPEC",
        help="the model the checkpoint was trained as (`convsee train --model SPEC --snapshots N`)",
    )
    add_device(ev)
    add_data(ev)
    add_layers(
        ev,
        None,
        "map layers to show forming (default: conv1,conv2 for LeNet-5, else the first and the "
        "last conv)",
    )
    ev.add_argument("--input", default="sample:3", help="whose maps to show forming")
    add_gif_out(ev, 400)
    ev.set_defaults(func=run)


def run(a) -> int:
    t0 = time.perf_counter()
    out_dir_ok(a.out)  # before the work, not after every frame is drawn
    if a.model and not a.checkpoint:
        raise ConvseeError(
            "evolution --model needs the checkpoint `convsee train` wrote (--checkpoint FILE)"
        )
    where = picked(a, "data", "dataset")
    figs = evolution(
        a.checkpoint, a.model, a.layers, a.input, a.frame_ms, device=device(a.device), **where
    )
    return finish(figs.files(), a.out, t0)
