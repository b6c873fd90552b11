"""`convsee animate`."""

from __future__ import annotations

import time

from ..draw.render import finish
from ..views.animate import HOLD, animate
from .options import (
    Formatter,
    add_data,
    add_frame_ms,
    add_layer,
    add_model,
    add_out,
    network,
    out_dir_ok,
)

HELP = "a kernel sliding over the input, or max pooling, frame by frame"
DESCRIPTION = """how one channel of a convolution (or max pooling) is computed: the window
under the kernel, window x kernel = products, their sum plus the bias, the map filling in.
The frames show the positions that teach (an empty window, the input's structure, the
strongest and the most negative response), then the rest of the map. Writes
OUT/animate_{layer}_ch{C}.gif, its frames as PNGs, and JSON sidecars."""


def add(sub) -> None:
    an = sub.add_parser("animate", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    an.add_argument(
        "input", nargs="?", default="sample:3", metavar="INPUT", help="the input to animate"
    )
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
    t0 = time.perf_counter()
    out_dir_ok(a.out)
    net = network(a)
    figs = animate(net, a.input, a.layer, a.channel, a.frame_ms, data=a.data, dataset=a.dataset)
    return finish(figs.files(), a.out, t0)
