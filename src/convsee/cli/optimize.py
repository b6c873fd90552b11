"""`convsee optimize`."""

from __future__ import annotations

import time

import numpy as np

from ..draw.render import finish
from .options import Formatter, add_data, add_out
from .views_common import ckpt, lenet_layers

HELP = "the input each channel or class responds to most"


def add(sub) -> None:
    o = sub.add_parser("optimize", help=HELP, description=HELP, formatter_class=Formatter)
    o.add_argument(
        "--checkpoint", metavar="FILE", help="LeNet-5 weights (default: the shipped ones)"
    )
    add_data(o)
    o.add_argument("--layers", default="conv1,conv2,fc3", help="conv1, conv2, fc1, fc2, fc3")
    o.add_argument("--steps", type=int, default=150, help="gradient-ascent steps")
    o.add_argument("--seed", type=int, default=0, help="the starting noise and the jitter")
    add_out(o, "media")
    o.set_defaults(func=run)


def run(a) -> int:
    import torch

    from ..datasets.idx import MEAN, STD
    from ..draw.render import png_bytes, sidecar
    from ..draw.views import optimize_image
    from ..models.checkpoint import load_checkpoint
    from ..run.optimize import OptimizeConfig, maximize, target_value

    t0 = time.perf_counter()
    layers = lenet_layers(a.layers, ("conv1", "conv2", "fc1", "fc2", "fc3"))
    model, meta = load_checkpoint(ckpt(a))
    cfg = OptimizeConfig(steps=a.steps, seed=a.seed)
    files = {}
    for layer in layers:
        mod = getattr(model, layer)
        units = mod.out_channels if hasattr(mod, "out_channels") else mod.out_features
        t = time.perf_counter()
        images, values = maximize(model, layer, units, cfg)
        seconds = time.perf_counter() - t
        g = torch.Generator().manual_seed(cfg.seed + 1)
        rand = torch.rand(32, units, 1, 28, 28, generator=g)  # 32 random inputs per unit
        with torch.no_grad():
            base = torch.stack([target_value(model, (r - MEAN) / STD, layer) for r in rand])
        baseline = base.mean(0).numpy()
        labels = meta["classes"] if layer == "fc3" else None
        title = f"{layer}: the input each {'class' if layer == 'fc3' else 'unit'} wants most"
        files[f"optimize_{layer}.png"] = png_bytes(
            optimize_image(images, values, baseline, title, labels)
        )
        files[f"optimize_{layer}.json"] = sidecar(
            meta,
            picture="optimize",
            layer=layer,
            config=vars(cfg),
            seconds=seconds,
            values=np.round(values, 5).tolist(),
            random_mean=np.round(baseline, 5).tolist(),
            objective="centre neuron of each channel" if layer.startswith("conv") else "unit",
        )
        print(f"{layer}: {units} inputs optimised in {seconds:.2f} s")
    return finish(files, a.out, t0)
