"""`convsee exemplars`."""

from __future__ import annotations

import re
import sys
import time

import numpy as np

from ..errors import ConvseeError
from .options import (
    Formatter,
    add_channels,
    add_data,
    add_layers,
    add_model,
    add_out,
    network,
    out_dir_ok,
    parse_channels,
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
    )
    e.add_argument("--layer", dest="layers", metavar="L", help="the same as --layers")
    add_channels(e)
    e.add_argument("-k", type=int, default=9, help="inputs per channel (1..64)")
    e.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    e.add_argument("--limit", type=int, metavar="N", help="rank only the first N images")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    add_out(e, "media")
    e.set_defaults(func=run)


def default_layers(net) -> str:
    if net.kind == "lenet":
        return "conv1,conv2"
    convs = [x.name for x in net.spec.layers if x.type == "Conv2d" and x.kind == "map"]
    if convs:
        return ",".join(dict.fromkeys([convs[0], convs[-1]]))
    maps = [x.name for x in net.spec.layers if x.kind == "map"]
    if maps:
        return ",".join(dict.fromkeys([maps[0], maps[-1]]))
    vectors = [x.name for x in net.spec.layers if x.kind == "vector"]
    if not vectors:
        raise ConvseeError("the model has no map or vector layer to rank inputs by")
    return vectors[-1]


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.#-]+", "_", name).strip("_.") or "layer"


def progress_bar(total: int, quiet: bool, desc: str):
    """A tqdm bar on stderr, or None when quiet or stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False)


def run(a) -> int:
    from ..datasets.folder import open_source
    from ..draw.channel_views import exemplar_image, png_rgb
    from ..draw.render import finish, sidecar
    from ..run.exemplars import exemplars

    t0 = time.perf_counter()
    if not 1 <= a.k <= 64:
        raise ConvseeError(f"-k must be 1..64, got {a.k}")
    if not 1 <= a.batch_size <= 65536:
        raise ConvseeError(f"--batch-size must be 1..65536, got {a.batch_size}")
    if a.limit is not None and a.limit < 1:
        raise ConvseeError(f"--limit must be at least 1, got {a.limit}")
    out_dir_ok(a.out)
    net = network(a)
    layers = net.select(a.layers, default_layers(net))
    from ..run.units import check_layers

    check_layers(layers, "exemplars")
    choice = {x.name: parse_channels(a.channels, x.channels, layer=x.name) for x in layers}
    source = open_source(a.data, dataset=a.dataset)
    n = len(source) if a.limit is None else min(a.limit, len(source))
    bar = progress_bar(n, a.quiet, "exemplars")
    try:
        results = exemplars(
            net,
            source,
            layers,
            a.k,
            choice,
            batch_size=a.batch_size,
            limit=a.limit,
            progress=bar.update if bar else None,
            device=getattr(a, "device", None),
        )
    finally:
        if bar is not None:
            bar.close()
    c, h, w = net.prep.input_size
    files = {}
    for layer, ex in zip(layers, results, strict=True):
        ph, pw = ex.size
        if ex.whole:
            where = (
                f"one {layer.name} unit sees the whole {h}x{w} input: whole images, ranked by "
                + ("the unit" if layer.kind == "vector" else "the channel's peak")
            )
        else:
            where = (
                f"receptive field {ph}x{pw} px of the {h}x{w} input, cut where the channel peaks"
            )
        notes = [where]
        if ex.padded:
            notes.append("parts of a field outside the image: shown in the mean colour")
        if len(ex.channels) < layer.channels:
            notes.append(f"{len(ex.channels)} of {layer.channels} channels shown")
        what = f"{ex.source} images" if len(ex.source) <= 24 else "images"
        if len(ex.source) > 24:
            notes.append(f"dataset: {ex.source[-80:]}")
        title = f"{layer.name}: top {ex.values.shape[1]} of {ex.seen:,} {what}, per channel"
        files[f"exemplars_{safe(layer.name)}.png"] = png_rgb(
            exemplar_image(ex, title, notes, "its value" if layer.kind == "vector" else "its peak")
        )
        files[f"exemplars_{safe(layer.name)}.json"] = sidecar(
            net.meta,
            picture="exemplars",
            layer=layer.name,
            k=int(ex.values.shape[1]),
            dataset=ex.source,
            images_ranked=ex.seen,
            field={
                "whole_image": ex.whole,
                "patch_size": [ph, pw],
                "layer_field": None if layer.field is None else layer.field.to_dict(),
            },
            channels=ex.channels,
            indices=ex.indices.tolist(),
            names=ex.names,
            values=np.round(ex.values, 5).tolist(),
            positions=ex.positions.tolist(),
            boxes=ex.boxes.tolist(),
        )
        print(
            f"{layer.name}: top {ex.values.shape[1]} of {ex.seen:,} images for "
            f"{len(ex.channels)} channels ({'whole images' if ex.whole else f'{ph}x{pw} patches'})"
        )
    return finish(files, a.out, t0)
