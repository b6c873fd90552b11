"""`convsee attribution`."""

from __future__ import annotations

import time

import numpy as np

from ..draw.render import finish
from ..errors import ConvseeError
from .options import Formatter, add_data, add_out

HELP = "which pixels decide a class: saliency and Grad-CAM"


def add(sub) -> None:
    at = sub.add_parser("attribution", help=HELP, description=HELP, formatter_class=Formatter)
    at.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="inputs (default: sample:3 sample:7)"
    )
    at.add_argument(
        "--checkpoint", metavar="FILE", help="LeNet-5 weights (default: the shipped ones)"
    )
    add_data(at)
    at.add_argument("--target", type=int, help="class index (default: the prediction)")
    add_out(at, "media")
    at.set_defaults(func=run)


def run(a) -> int:
    from ..draw.render import png_bytes, sidecar
    from ..draw.views import attribution_image
    from ..run.attribution import grad_cam, saliency
    from .options import network

    t0 = time.perf_counter()
    net = network(a)
    model, meta = net.torch_model(), net.meta
    classes = net.class_names(10)
    inputs = net.inputs(a.inputs or ["sample:3", "sample:7"], a.data, a.dataset)
    files = {}
    for inp in inputs:
        pred = net.predict([inp])[0]
        target = pred.prediction if a.target is None else a.target
        if not 0 <= target < len(classes):
            raise ConvseeError(f"--target must be 0..{len(classes) - 1}, got {target}")
        sal = saliency(model, inp.image, target)
        cam, big, alpha = grad_cam(model, inp.image, target)
        line = f"predicted {classes[pred.prediction]} ({max(pred.probabilities):.1%})"
        img = attribution_image(
            inp.image,
            sal,
            big,
            classes[target],
            line,
            f"what decides '{classes[target]}' for {inp.name}",
        )
        stem = f"attribution_{inp.name.replace(':', '_')}_{target}"
        files[f"{stem}.png"] = png_bytes(img, ("inferno",))
        files[f"{stem}.json"] = sidecar(
            meta,
            picture="attribution",
            input=inp.name,
            target=target,
            prediction=pred.prediction,
            grad_cam_8x8=np.round(cam, 5).tolist(),
            grad_cam_alpha=np.round(alpha, 6).tolist(),
        )
    return finish(files, a.out, t0)
