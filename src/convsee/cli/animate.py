"""`convsee animate`."""

from __future__ import annotations

from ..views.animate import HOLD, animate
from .options import Formatter, add_gif_out, add_input_and_model, add_layer, picked, write_view

HELP = "a kernel sliding over the input, or max pooling, frame by frame"
DESCRIPTION = """how one channel of a convolution (or max pooling) is computed: the window
under the kernel, window x kernel = products, their sum plus the bias, the map filling in.
The frames show the positions that teach (an empty window, the input's structure, the
strongest and the most negative response), then the rest of the map. Writes
OUT/animate_{layer}_ch{C}.gif, its frames as PNGs, and JSON sidecars."""


def add(sub) -> None:
    an = sub.add_parser("animate", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    add_input_and_model(an, "the input to animate")
    add_layer(an, "a Conv2d or MaxPool2d layer from `convsee layers` (default: the first conv)")
    an.add_argument(
        "--channel",
        type=int,
        help="which output channel (default: 2 for LeNet-5, else the channel with the "
        "strongest response to the input)",
    )
    add_gif_out(
        an, 150, f"milliseconds per frame while the map fills in (teaching frames: {HOLD}x)"
    )
    an.set_defaults(func=run)


def run(a) -> int:
    flags = picked(a, "input", "layer", "channel", "frame_ms", "data", "dataset")
    return write_view(a, animate, **flags)
