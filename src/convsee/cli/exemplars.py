"""`convsee exemplars`."""

from __future__ import annotations

from ..views.exemplars import exemplars
from .options import (
    Formatter,
    add_batch_size,
    add_channel_layers,
    add_data,
    add_model,
    add_out,
    add_quiet,
    picked,
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
    add_channel_layers(e, "conv1,conv2 for LeNet-5, else the first and the last conv layer")
    e.add_argument("-k", type=int, default=9, help="inputs per channel (1..64)")
    add_batch_size(e)
    e.add_argument("--limit", type=int, metavar="N", help="rank only the first N images")
    add_quiet(e)
    add_out(e, "media")
    e.set_defaults(func=run)


def run(a) -> int:
    flags = picked(a, "layers", "k", "channels", "data", "dataset", "batch_size", "limit", "quiet")
    return write_view(a, exemplars, **flags, device=a.device, say=print)
