"""`convsee animate`."""

from __future__ import annotations

from ..views.animate import HOLD, animate
from .options import (
    Formatter,
    add_data,
    add_frame_ms,
    add_input,
    add_layer,
    add_model,
    add_out,
    write_view,
)

HELP = "a kernel sliding over the input, or max pooling, frame by frame"
DESCRIPTION = """how one channel of a convolution (or max pooling) is computed: the window
under the kernel, window x kernel = products, their sum plus the bias, the map filling in.
The frames show the positions that teach (an empty window, the input's structure, the
strongest and the most negative response), then the rest of the map. Writes
OUT/animate_{layer}_ch{C}.gif, its frames as PNGs, and JSON sidecars."""


def add(sub) -> None:
    an = sub.add_parser("animate", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    add_input(an, "the input to animate")
    add_model(an)
    add_data(an, help_data="folder with the dataset's IDX files (for test:N, train:N)")
    add_layer(an, "a Conv2d or MaxPool2d layer from `convsee layers` (default: the first conv)")
    an.add_argument(
        "--channel",
        type=int,
        help="which output channel (default: 2 for LeNet-5, else the channel with the "
        "strongest response to the input)",
    )
    add_frame_ms(
        an, 150, f"milliseconds per frame while the map fills in (teaching frames: {HOLD}x)"
    )
    add_out(an, "media")
    an.set_defaults(func=run)


def run(a) -> int:
    where = {"data": a.data, "dataset": a.dataset}
    return write_view(
        a, animate, input=a.input, layer=a.layer, channel=a.channel, frame_ms=a.frame_ms, **where
    )
