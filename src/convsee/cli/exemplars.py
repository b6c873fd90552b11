"""`convsee exemplars`."""

from __future__ import annotations

from ..views.exemplars import exemplars
from .options import (
    Formatter,
    add_channels,
    add_data,
    add_layers,
    add_model,
    add_out,
    add_quiet,
    write_view,
)

HELP = "for every channel, the dataset patches that excite it most"
DESCRIPTION = """for every channel of a layer, the k dataset inputs that excite it most, each
cropped to the receptive field of the unit where the channel peaks (whole images where one
unit sees the whole image), and their mean: OUT/exemplars_{layer}.png and a JSON sidecar.
The dataset is --data DIR: MNIST-style IDX files, or a folder of images searched
recursively (class subfolders optional); default: the test set of --dataset. It is read once
in batches, keeping only a running top-k per channel (memory stays flat)."""


def add(sub) -> None:
    e = sub.add_parser("exemplars", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    add_model(e)
    add_data(e, help_data="IDX files or a folder of images (class subfolders optional)")
    add_layers(
        e,
        None,
        "layers: names from `convsee layers`, globs, type:Conv2d (default: conv1,conv2 for "
        "LeNet-5, else the first and the last conv layer)",
        alias=True,
    )
    add_channels(e)
    e.add_argument("-k", type=int, default=9, help="inputs per channel (1..64)")
    e.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    e.add_argument("--limit", type=int, metavar="N", help="rank only the first N images")
    add_quiet(e)
    add_out(e, "media")
    e.set_defaults(func=run)


def run(a) -> int:
    return write_view(
        a,
        exemplars,
        layers=a.layers,
        k=a.k,
        channels=a.channels,
        data=a.data,
        dataset=a.dataset,
        batch_size=a.batch_size,
        limit=a.limit,
        quiet=a.quiet,
        device=getattr(a, "device", None),
        say=print,
    )
