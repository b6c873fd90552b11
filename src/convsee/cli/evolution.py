"""`convsee evolution`."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..draw.render import finish
from ..errors import ConvseeError, no_file
from .options import Formatter, add_data, add_device, add_out, device, out_dir_ok

HELP = "GIFs of the filters forming during training"


def add(sub) -> None:
    ev = sub.add_parser("evolution", help=HELP, description=HELP, formatter_class=Formatter)
    ev.add_argument("checkpoint", nargs="?", help="trained with --snapshots (default: shipped)")
    ev.add_argument(
        "--model",
        metavar="SPEC",
        help="the model the checkpoint was trained as (`convsee train --model SPEC --snapshots N`)",
    )
    add_device(ev)
    add_data(ev)
    ev.add_argument(
        "--layers",
        metavar="L1,L2,...",
        help="map layers to show forming (default: conv1,conv2 for LeNet-5, else the first "
        "and the last conv)",
    )
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
    out_dir_ok(a.out)  # before the work, not after every frame is drawn
    if a.model:
        return run_model(a, t0)
    ckpt = Path(a.checkpoint) if a.checkpoint else default_checkpoint(a.dataset)
    if not ckpt.is_file():
        raise ConvseeError(f"checkpoint {ckpt}{no_file(ckpt, ' does not exist')}")
    snaps = load_snapshots(ckpt)  # before the weights: a foreign checkpoint has none either
    net = load_network(None, ckpt, dataset=a.dataset, device=device(a.device))
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


def run_model(a, t0) -> int:
    """A model other than LeNet-5 that `convsee train --model ... --snapshots N` trained."""
    from ..draw.core import colormap
    from ..draw.figures import MapGrid, kernel_grid
    from ..draw.render import gif_bytes, png_bytes, sidecar
    from ..models.load import load_network
    from ..run.evolution import load_snapshots, replay

    if not a.checkpoint:
        raise ConvseeError("evolution --model needs the checkpoint `convsee train` wrote")
    ckpt = Path(a.checkpoint)
    if not ckpt.is_file():
        raise ConvseeError(f"checkpoint {ckpt}{no_file(ckpt, ' does not exist')}")
    snaps = load_snapshots(ckpt, lenet=False)
    net = load_network(a.model, ckpt, dataset=a.dataset, device=device(a.device))
    convs = [x for x in net.spec.layers if x.kernel is not None and x.kind == "map"]
    if not convs:
        raise ConvseeError("the model has no conv layer whose kernels could be shown forming")
    if a.layers:
        layers = [x for x in net.select(a.layers)]
        bad = [x.name for x in layers if x.kind != "map"]
        if bad:
            raise ConvseeError(f"evolution shows maps; {bad[0]} is not a map layer")
    else:
        layers = [convs[0]] if len(convs) == 1 else [convs[0], convs[-1]]
    [inp] = net.inputs([a.input], a.data, a.dataset)
    per_step, params = replay(net, snaps, inp.x, layers)
    spe = int(snaps.get("steps_per_epoch", 1))
    labels = [
        f"step {s} (epoch {s / spe:.2f}) · test accuracy {acc:.2%}"
        for s, acc in zip(snaps["step"], snaps["accuracy"], strict=True)
    ]
    lut = colormap("RdBu_r")
    files = {}
    first = convs[0]
    w = params.get(f"{first.module}.weight")
    if w is not None and w.shape[1] * w.shape[2] <= 4096:
        lim = float(np.abs(w).max()) or 1.0  # one scale for every frame
        kframes = []
        for i in range(len(labels)):
            img = kernel_grid(f"{first.name} forming · {labels[i]}", w[i], lut, lim)
            kframes.append(img)
        files["evolution_kernels.gif"] = gif_bytes(kframes, ("RdBu_r",), a.frame_ms)
        files["evolution_kernels_final.png"] = png_bytes(kframes[-1], ("RdBu_r",))
    for layer in layers:
        maps = np.stack([s[layer.name] for s in per_step])  # (S, C, H, W)
        maps = maps[:, :64]
        m = float(np.abs(maps).max()) or 1.0
        rng = (0.0, m) if layer.nonneg else (-m, m)
        lut_l = colormap("viridis" if layer.nonneg else "RdBu_r")
        title = [f"{layer.name} of {inp.name} as training goes on", "one scale for all frames"]
        if layer.channels > 64:
            title.append(f"channels 0-63 of {layer.channels}")
        grid = MapGrid(maps.shape[1:], lut_l, title, bar=rng)
        frames = [
            grid.draw(inp.image, maps[i], [rng] * maps.shape[1], labels[i].replace(" · ", "\n"))
            for i in range(len(labels))
        ]
        luts = ("viridis" if layer.nonneg else "RdBu_r",)
        if inp.image.ndim == 3:
            luts = (*luts, "colour")
        files[f"evolution_{layer.name}.gif"] = gif_bytes(frames, luts, a.frame_ms)
    files["evolution.json"] = sidecar(
        net.meta,
        picture="evolution",
        input=inp.name,
        layers=[x.name for x in layers],
        steps=snaps["step"].tolist(),
        test_accuracy=np.round(snaps["accuracy"], 5).tolist(),
        frame_ms=a.frame_ms,
    )
    return finish(files, a.out, t0)
