"""`evolution` as a library function: the filters and maps forming during training, from
the snapshots `train` recorded (snapshots=N), as Figures (GIFs sharing one sidecar)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..draw.core import colormap
from ..draw.figure import Figures, from_files
from ..draw.render import gif_bytes, png_bytes, sidecar
from ..errors import ConvseeError, no_file
from .common import check_frame_ms, one_input

__all__ = ["evolution"]


def evolution(
    checkpoint=None,
    model: str | None = None,
    layers=None,
    input="sample:3",
    frame_ms: int = 400,
    *,
    data=None,
    dataset: str | None = None,
    device: str = "cpu",
    net=None,
) -> Figures:
    """GIFs of the kernels and of an input's maps as training went on, one frame per
    snapshot of checkpoint (default: LeNet-5's shipped one). model: the model a checkpoint
    other than LeNet-5's was trained as (as `load` takes it); net: the Network of checkpoint,
    when it is loaded already. layers: map layers to show (LeNet-5: conv1, conv2; else the
    first and the last conv). Figures: evolution_*.gif sharing the sidecar evolution.json."""
    from ..models.checkpoint import default_checkpoint

    frame_ms = check_frame_ms(frame_ms)
    lenet = model is None and (net is None or bool(net.snapshot_convs))
    if checkpoint is None and not lenet:
        raise ConvseeError(
            "{param} is needed for a model other than LeNet-5: the one `train` wrote", "checkpoint"
        )
    ckpt = Path(checkpoint) if checkpoint else default_checkpoint(dataset or "mnist")
    if not ckpt.is_file():
        raise ConvseeError(f"{{param}} {ckpt}{no_file(ckpt, ' does not exist')}", "checkpoint")
    if lenet:
        return _lenet(net, ckpt, layers, input, frame_ms, data, dataset, device)
    return _model(net, model, ckpt, layers, input, frame_ms, data, dataset, device)


def _lenet(net, ckpt, layers, input, frame_ms, data, dataset, device) -> Figures:
    from ..draw.figures import MapGrid, kernel_sheet
    from ..models.load import load_network
    from ..run.evolution import load_snapshots, snapshot_maps

    snaps = load_snapshots(ckpt)  # before the weights: a foreign checkpoint has none either
    if net is None:
        net = load_network(None, ckpt, dataset=dataset or "mnist", device=device)
    inp = one_input(net, input, data, dataset)
    spe = int(snaps.get("steps_per_epoch", 1))
    lut = colormap("RdBu_r")
    sheet = [f"{name}.weight" for name in net.kernel_sheet or net.snapshot_convs[:2]]
    lim = float(max(np.abs(snaps[k]).max() for k in sheet))
    labels = [
        f"step {s} (epoch {s / spe:.2f}) · test accuracy {acc:.2%}"
        for s, acc in zip(snaps["step"], snaps["accuracy"], strict=True)
    ]
    kframes = [
        kernel_sheet(
            *(snaps[k][i] for k in sheet),
            lut,
            lim,
            f"kernels forming · {labels[i]}",
        )
        for i in range(len(labels))
    ]
    files = {
        "evolution_kernels.gif": gif_bytes(kframes, ("RdBu_r",), frame_ms),
        "evolution_kernels_final.png": png_bytes(kframes[-1], ("RdBu_r",)),
    }
    recorded = net.snapshot_convs  # the layers the snapshots can replay
    wanted = tuple(x.name for x in net.select(layers)) if layers else recorded  # unknown: one line
    other = ", ".join(n for n in wanted if n not in recorded)
    if other:
        replay = " and ".join(recorded)
        raise ConvseeError(f"{{param}}: LeNet-5's snapshots replay {replay}, not {other}", "layers")
    for layer, maps in zip(recorded, snapshot_maps(snaps, inp.x), strict=True):
        if layer not in wanted:
            continue
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
        files[f"evolution_{layer}.gif"] = gif_bytes(frames, ("RdBu_r",), frame_ms)
    side = sidecar(
        net.provenance,
        picture="evolution",
        input=inp.name,
        steps=snaps["step"].tolist(),
        test_accuracy=np.round(snaps["accuracy"], 5).tolist(),
        frame_ms=frame_ms,
    )
    files["evolution.json"] = side
    return from_files(files, shared="evolution.json")


def _model(net, model, ckpt, layers, input, frame_ms, data, dataset, device) -> Figures:
    """A model other than LeNet-5 that `train` (model=..., snapshots=N) trained."""
    from ..draw.figures import MapGrid, kernel_grid
    from ..models.load import load_network
    from ..run.evolution import load_snapshots, replay

    snaps = load_snapshots(ckpt, lenet=False)
    if net is None:
        net = load_network(model, ckpt, dataset=dataset or "mnist", device=device)
    convs = [x for x in net.spec.layers if x.kernel is not None and x.kind == "map"]
    if not convs:
        raise ConvseeError("the model has no conv layer whose kernels could be shown forming")
    if layers:
        layers = [x for x in net.select(layers)]
        bad = [x.name for x in layers if x.kind != "map"]
        if bad:
            raise ConvseeError(f"evolution shows maps; {bad[0]} is not a map layer", "layers")
    else:
        layers = [convs[0]] if len(convs) == 1 else [convs[0], convs[-1]]
    inp = one_input(net, input, data, dataset)
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
        files["evolution_kernels.gif"] = gif_bytes(kframes, ("RdBu_r",), frame_ms)
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
        files[f"evolution_{layer.name}.gif"] = gif_bytes(frames, luts, frame_ms)
    files["evolution.json"] = sidecar(
        net.provenance,
        picture="evolution",
        input=inp.name,
        layers=[x.name for x in layers],
        steps=snaps["step"].tolist(),
        test_accuracy=np.round(snaps["accuracy"], 5).tolist(),
        frame_ms=frame_ms,
    )
    return from_files(files, shared="evolution.json")
