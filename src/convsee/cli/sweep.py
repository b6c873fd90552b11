"""`convsee sweep`."""

from __future__ import annotations

from ..views.sweep import sweep
from .options import (
    Formatter,
    add_channels,
    add_gif_out,
    add_input_and_model,
    add_layer,
    picked,
    write_view,
)

HELP = "a layer's maps as the input is blurred, shifted, rotated, noised or occluded"
DESCRIPTION = """a layer's maps as the input is blurred, shifted, rotated, noised or occluded
by a mid-grey patch at every cell of a grid covering the picture, with the prediction on every
frame: OUT/sweep_{kind}_{layer}.gif and a JSON sidecar with each channel's cosine similarity
to the unperturbed maps."""


def add(sub) -> None:
    sw = sub.add_parser("sweep", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    add_input_and_model(sw, "the input to perturb")
    sw.add_argument(
        "--kind",
        default="all",
        choices=["all", "blur", "shift", "rotate", "noise", "occlude"],
        help="which perturbation",
    )
    add_layer(sw, "a map layer from `convsee layers` (default: the first conv; LeNet-5: conv1)")
    add_channels(sw)
    add_gif_out(sw, 500)
    sw.set_defaults(func=run)


def run(a) -> int:
    flags = picked(a, "input", "layer", "kind", "channels", "frame_ms", "data", "dataset")
    return write_view(a, sweep, **flags)
