"""`convsee evolution`."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..draw.render import finish
from ..errors import ConvseeError
from .options import Formatter, add_data, add_out

HELP = "GIFs of the filters forming during training"


def add(sub) -> None:
    ev = sub.add_parser("evolution", help=HELP, description=HELP, formatter_class=Formatter)
    ev.add_argument("checkpoint", nargs="?", help="trained with --snapshots (default: shipped)")
    ev.add_argument(
        "--model",
        metavar="SPEC",
        help="not supported: evolution replays the snapshots `convsee train --snapshots N` "
        "records, and convsee trains LeNet-5 only",
    )
    add_data(ev)
    ev.add_argument("--input", default="sample:3", help="whose maps to show forming")
    ev.add_argument("--frame-ms", type=int, default=400, help="milliseconds per GIF frame")
    add_out(ev, "media")
    ev.set_defaults(func=run)


def run(a) -> int:
    from ..draw.core import colormap
    from ..draw.figures import MapGrid, kernel_sheet
    from ..draw.render import gif_bytes, png_bytes, sidecar
    from ..models.checkpoint import default_checkpoint
    from ..models.load import load_network
    from ..run.evolution import load_snapshots, snapshot_maps

    t0 = time.perf_counter()
    if a.model:
        raise ConvseeError(
            "evolution needs the snapshots that `convsee train --snapshots N` records while it "
            "trains LeNet-5; it cannot apply to another model (--model)"
        )
    ckpt = Path(a.checkpoint) if a.checkpoint else default_checkpoint(a.dataset)
    if not ckpt.is_file():
        raise ConvseeError(f"checkpoint {str(ckpt)!r} does not exist")
    snaps = load_snapshots(ckpt)  # before the weights: a foreign checkpoint has none either
    net = load_network(None, ckpt, dataset=a.dataset)
    meta = net.meta
    [inp] = net.inputs([a.input], a.data, a.dataset)
    spe = int(snaps.get("steps_per_epoch", 1))
    lut = colormap("RdBu_r")
    lim = float(max(np.abs(snaps["conv1.weight"]).max(), np.abs(snaps["conv2.weight"]).max()))
    labels = [
        f"step {s} (epoch {s / spe:.2f}) · test accuracy {acc:.2%}"
        for s, acc in zip(snaps["step"], snaps["accuracy"], strict=True)
    ]
    kframes = [
        kernel_sheet(
            snaps["conv1.weight"][i],
            snaps["conv2.weight"][i],
            lut,
            lim,
            f"kernels forming · {labels[i]}",
        )
        for i in range(len(labels))
    ]
    files = {
        "evolution_kernels.gif": gif_bytes(kframes, ("RdBu_r",), a.frame_ms),
        "evolution_kernels_final.png": png_bytes(kframes[-1], ("RdBu_r",)),
    }
    c1, c2 = snapshot_maps(snaps, inp.x)
    for layer, maps in (("conv1", c1), ("conv2", c2)):
        m = float(np.abs(maps).max()) or 1.0
        grid = MapGrid(
            maps.shape[1:],
            lut,
            [f"{layer} of {inp.name} as training goes on", "one scale for all frames"],
            bar=(-m, m),
        )
        frames = [
            grid.draw(inp.image, maps[i], [(-m, m)] * maps.shape[1], labels[i].replace(" · ", "\n"))
            for i in range(len(labels))
        ]
        files[f"evolution_{layer}.gif"] = gif_bytes(frames, ("RdBu_r",), a.frame_ms)
    side = sidecar(
        meta,
        picture="evolution",
        input=inp.name,
        steps=snaps["step"].tolist(),
        test_accuracy=np.round(snaps["accuracy"], 5).tolist(),
        frame_ms=a.frame_ms,
    )
    files["evolution.json"] = side
    return finish(files, a.out, t0)
