"""`exemplars` as a library function: for every channel of a layer, the dataset inputs
that excite it most (cropped to the receptive field), as Figures."""

from __future__ import annotations

import re
import sys

import numpy as np

from ..draw.figure import Figures, from_files
from ..draw.render import sidecar
from ..errors import ConvseeError
from ..values import parse_channels

__all__ = ["exemplars", "default_layers", "safe", "progress_bar"]


def default_layers(net) -> str:
    return net.spec.default_layers("exemplars")


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.#-]+", "_", name).strip("_.") or "layer"


def progress_bar(total: int, quiet: bool, desc: str):
    """A tqdm bar on stderr, or None when quiet or stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False)


def exemplars(
    net,
    layers=None,
    k: int = 9,
    channels=None,
    *,
    data=None,
    dataset: str | None = None,
    batch_size: int = 256,
    limit: int | None = None,
    quiet: bool = True,
    device: str | None = None,
    say=None,
) -> Figures:
    """For every channel of each layer (default: LeNet-5's conv1,conv2, else the first and
    the last conv), the k dataset inputs that excite it most, each cropped to the receptive
    field of the unit where the channel peaks, and their mean. data: IDX files or a folder of
    images (default: the test set of dataset). say: called with one line per layer (the CLI
    prints it). Figures: exemplars_{layer}.png with sidecars."""
    from ..datasets.folder import open_source
    from ..draw.channel_views import OUTSIDE, exemplar_image, png_rgb
    from ..run.exemplars import exemplars as rank
    from ..run.units import check_layers

    say = say or (lambda line: None)
    if not 1 <= k <= 64:
        raise ConvseeError(f"{{param}} must be 1..64, got {k}", "k")
    if not 1 <= batch_size <= 65536:
        raise ConvseeError(f"{{param}} must be 1..65536, got {batch_size}", "batch_size")
    if limit is not None and limit < 1:
        raise ConvseeError(f"{{param}} must be at least 1, got {limit}", "limit")
    layers = net.select(layers, default_layers(net))

    check_layers(layers, "exemplars")
    choice = {x.name: parse_channels(channels, x.channels, layer=x.name) for x in layers}
    source = open_source(data, dataset=dataset or net.dataset or net.provenance.trained_on())
    n = len(source) if limit is None else min(limit, len(source))
    bar = progress_bar(n, quiet, "exemplars")
    try:
        results = rank(
            net,
            source,
            layers,
            k,
            choice,
            batch_size=batch_size,
            limit=limit,
            progress=bar.update if bar else None,
            device=device,
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
            notes.append(OUTSIDE)
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
            net.provenance,
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
        say(
            f"{layer.name}: top {ex.values.shape[1]} of {ex.seen:,} images for "
            f"{len(ex.channels)} channels ({'whole images' if ex.whole else f'{ph}x{pw} patches'})"
        )
    return from_files(files)
