"""`convsee sweep`."""

from __future__ import annotations

import time

import numpy as np

from ..draw.render import finish
from .options import Formatter, add_data, add_out
from .views_common import lenet_layers

HELP = "a layer's maps as the input is blurred, shifted, rotated, noised or occluded"


def add(sub) -> None:
    sw = sub.add_parser("sweep", help=HELP, description=HELP, formatter_class=Formatter)
    sw.add_argument(
        "input", nargs="?", default="sample:3", metavar="INPUT", help="the input to perturb"
    )
    sw.add_argument(
        "--checkpoint", metavar="FILE", help="LeNet-5 weights (default: the shipped ones)"
    )
    add_data(sw)
    sw.add_argument(
        "--kind",
        default="all",
        choices=["all", "blur", "shift", "rotate", "noise", "occlude"],
        help="which perturbation",
    )
    sw.add_argument("--layer", default="conv1", help="conv1, relu1, pool1, conv2, relu2 or pool2")
    sw.add_argument("--frame-ms", type=int, default=500, help="milliseconds per GIF frame")
    add_out(sw, "media")
    sw.set_defaults(func=run)


def run(a) -> int:
    from ..datasets.transforms import normalize
    from ..draw.core import colormap
    from ..draw.figures import MapGrid
    from ..draw.render import gif_bytes, sidecar
    from ..models.lenet_numpy import forward_all
    from ..models.network import softmax
    from ..run.sweep import KINDS, channel_similarity, perturb
    from .options import network

    t0 = time.perf_counter()
    kinds = KINDS if a.kind == "all" else [a.kind]
    layer = lenet_layers(a.layer, ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2"))[0]
    net = network(a)
    weights, meta = net.weights, net.meta
    [inp] = net.inputs([a.input], a.data, a.dataset)
    classes = net.class_names(10)
    signed = net.spec.layer(layer).signed
    lut = colormap("RdBu_r" if signed else "viridis")
    files = {}
    for kind in kinds:
        imgs, labels = perturb(inp.image, kind)
        acts, logits = forward_all(weights, np.stack([normalize(i, net.prep) for i in imgs]))
        probs = softmax(logits)
        maps = acts[layer]
        m = float(np.abs(maps).max()) or 1.0
        rng = (-m, m) if signed else (0.0, m)
        ref = len(imgs) // 2 if kind in ("shift", "rotate") else 0
        sim = channel_similarity(maps, ref)
        grid = MapGrid(
            maps.shape[1:],
            lut,
            [f"{layer} of {inp.name} under {kind}", "one scale for all frames"],
            bar=rng,
        )
        frames = []
        for i in range(len(imgs)):
            p = int(probs[i].argmax())
            cap = f"{labels[i]}\npredicted {classes[p]} ({probs[i, p]:.1%})"
            if inp.label is not None:
                cap += f"\ntrue {classes[inp.label]}: {probs[i, inp.label]:.1%}"
            frames.append(grid.draw(imgs[i], maps[i], [rng] * maps.shape[1], cap))
        luts = ("RdBu_r",) if signed else ("viridis",)
        files[f"sweep_{kind}_{layer}.gif"] = gif_bytes(frames, luts, a.frame_ms)
        files[f"sweep_{kind}_{layer}.json"] = sidecar(
            meta,
            picture="sweep",
            kind=kind,
            layer=layer,
            input=inp.name,
            frames=labels,
            predictions=[int(x) for x in probs.argmax(1)],
            probabilities=np.round(probs, 5).tolist(),
            channel_cosine_to_reference=np.round(np.nan_to_num(sim), 4).tolist(),
            mean_cosine_per_channel=np.round(np.nanmean(sim, 0), 4).tolist(),
        )
    return finish(files, a.out, t0)
