"""`convsee attribution`."""

from __future__ import annotations

import time

from ..errors import ConvseeError
from .options import (
    Formatter,
    add_inputs_and_model,
    add_layer,
    add_out,
    check_ranges,
    finish,
    network,
    out_dir_ok,
    picked,
)

HELP = "which pixels decide a class: Grad-CAM and eight other attribution methods"
DESCRIPTION = """which pixels decide a class: a CAM at a map layer (gradcam, gradcam++,
xgradcam, layercam, scorecam, eigencam) or an input attribution (saliency, integrated-gradients,
occlusion), optionally smoothed with a noise tunnel, for the predicted class or --target, drawn
over the input with its colour scale. Writes OUT/attribution_{input}_{class}.png (class: its
index) for gradcam, OUT/attribution_{input}_{class}_{method}.png for the others, and a JSON
sidecar each with the numbers (method, what was differentiated, the placement)."""


def add(sub) -> None:
    from ..run.attribution import METHODS

    at = sub.add_parser(
        "attribution", help=HELP, description=DESCRIPTION, formatter_class=Formatter
    )
    add_inputs_and_model(at, default_help="sample:3 sample:7")
    at.add_argument("--method", choices=METHODS, default="gradcam", help="attribution method")
    add_layer(
        at,
        "CAM layer: a map layer (C,H,W) or a token layer (T,C) with a square grid, from "
        "`convsee layers` (default: the last one with a non-negligible gradient)",
    )
    at.add_argument("--target", type=int, help="class index (default: the prediction)")
    at.add_argument(
        "--quantity",
        choices=("logit", "probability"),
        help="what is differentiated (default: the logit, also before a final Softmax module)",
    )
    at.add_argument(
        "--position",
        metavar="ROW,COL",
        help="a dense (K,h,w) output: the position whose score is differentiated "
        "(default: the sum over positions)",
    )
    at.add_argument(
        "--placement",
        choices=("field", "stretch"),
        default="field",
        help="CAM maps on the input: at each pixel's receptive-field centre, or stretched "
        "bilinearly as other libraries draw them",
    )
    at.add_argument("--steps", type=int, default=50, help="integrated-gradients steps")
    at.add_argument("--window", type=int, help="occlusion patch side in px (default: H/8)")
    at.add_argument("--noise", type=int, default=0, metavar="N", help="noise-tunnel samples")
    at.add_argument(
        "--noise-sigma", type=float, default=0.15, help="noise std on the [0, 1] pixel scale"
    )
    add_out(at, "media")
    at.set_defaults(func=run)


def run(a) -> int:
    from ..draw.figure import Figures
    from ..views.attribution import attribution

    t0 = time.perf_counter()
    out_dir_ok(a.out)
    net = network(a, need_torch=True)
    position = None
    if a.position:
        try:
            r, c = (int(v) for v in a.position.split(","))
        except ValueError:
            raise ConvseeError(f"--position must be ROW,COL, got {a.position!r}") from None
        position = (r, c)
    check_ranges(("--steps", a.steps, 1, None))
    if a.noise < 0 or a.noise_sigma <= 0:
        raise ConvseeError("--noise must be >= 0 and --noise-sigma > 0")
    options = picked(a, "quantity", "placement", "steps", "window", "noise", "noise_sigma")
    where = picked(a, "data", "dataset")
    res = attribution(
        net, a.inputs, a.layer, a.method, a.target, position=position, **options, **where
    )
    return finish(Figures(res.figures).files(), a.out, t0)
