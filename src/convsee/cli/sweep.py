"""`convsee sweep`."""

from __future__ import annotations

from ..views.sweep import sweep
from .options import (
    Formatter,
    add_channels,
    add_data,
    add_frame_ms,
    add_input,
    add_layer,
    add_model,
    add_out,
    write_view,
)

HELP = "a layer's maps as the input is blurred, shifted, rotated, noised or occluded"
DESCRIPTION = """a layer's maps as the input is blurred, shifted, rotated, noised or occluded
by a mid-grey patch at every cell of a grid covering the picture, with the prediction on every
frame: OUT/sweep_{kind}_{layer}.gif and a JSON sidecar with each channel's cosine similarity
to the unperturbed maps."""


def add(sub) -> None:
    sw = sub.add_parser("sweep", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    add_input(sw, "the input to perturb")
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
    where = {"data": a.data, "dataset": a.dataset}
    return write_view(
        a,
        sweep,
        input=a.input,
        layer=a.layer,
        kind=a.kind,
        channels=a.channels,
        frame_ms=a.frame_ms,
        **where,
    )
