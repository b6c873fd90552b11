"""`convsee sweep`."""

from __future__ import annotations

import time

from ..draw.render import finish
from ..views.sweep import sweep
from .options import (
    Formatter,
    add_channels,
    add_data,
    add_frame_ms,
    add_layer,
    add_model,
    add_out,
    network,
    out_dir_ok,
)

HELP = "a layer's maps as the input is blurred, shifted, rotated, noised or occluded"
DESCRIPTION = """a layer's maps as the input is blurred, shifted, rotated, noised or occluded
by a mid-grey patch at every cell of a grid covering the picture, with the prediction on every
frame: OUT/sweep_{kind}_{layer}.gif and a JSON sidecar with each channel's cosine similarity
to the unperturbed maps."""


def add(sub) -> None:
    sw = sub.add_parser("sweep", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    sw.add_argument(
        "input", nargs="?", default="sample:3", metavar="INPUT", help="the input to perturb"
    )
    add_model(sw)
    add_data(sw, help_data="folder with the dataset's IDX files (for test:N, train:N)")
    sw.add_argument(
        "--kind",
        default="all",
        choices=["all", "blur", "shift", "rotate", "noise", "occlude"],
        help="which perturbation",
    )
    add_layer(sw, "a map layer from `convsee layers` (default: the first conv; LeNet-5: conv1)")
    add_channels(sw)
    add_frame_ms(sw, 500)
    add_out(sw, "media")
    sw.set_defaults(func=run)


def run(a) -> int:
    t0 = time.perf_counter()
    out_dir_ok(a.out)
    net = network(a)
    figs = sweep(
        net, a.input, a.layer, a.kind, a.channels, a.frame_ms, data=a.data, dataset=a.dataset
    )
    return finish(figs.files(), a.out, t0)
