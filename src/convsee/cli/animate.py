"""`convsee animate`."""

from __future__ import annotations

import time

import numpy as np

from ..draw.render import finish
from ..errors import ConvseeError
from .options import Formatter, add_data, add_out

HELP = "a kernel sliding over the input, or max pooling, frame by frame"


def add(sub) -> None:
    an = sub.add_parser("animate", help=HELP, description=HELP, formatter_class=Formatter)
    an.add_argument(
        "input", nargs="?", default="sample:3", metavar="INPUT", help="the input to animate"
    )
    an.add_argument(
        "--checkpoint", metavar="FILE", help="LeNet-5 weights (default: the shipped ones)"
    )
    add_data(an)
    an.add_argument("--layer", default="conv1", help="conv1, conv2, pool1 or pool2")
    an.add_argument("--channel", type=int, default=2, help="which output channel")
    an.add_argument("--frame-ms", type=int, default=150, help="milliseconds per GIF frame")
    add_out(an, "media")
    an.set_defaults(func=run)


def run(a) -> int:
    from ..draw.animate import conv_frame, pool_frame
    from ..draw.render import gif_bytes, png_bytes, sidecar
    from ..models.lenet_numpy import forward_all
    from ..run.animate import conv_steps, pool_steps, schedule
    from .options import network

    t0 = time.perf_counter()
    if a.layer not in ("conv1", "conv2", "pool1", "pool2"):
        raise ConvseeError(f"--layer must be conv1, conv2, pool1 or pool2, got {a.layer!r}")
    net = network(a)
    weights, meta = net.weights, net.meta
    [inp] = net.inputs([a.input], a.data, a.dataset)
    acts, _ = forward_all(weights, net.batch([inp]))
    n_ch = 6 if a.layer in ("conv1", "pool1") else 16
    if not 0 <= a.channel < n_ch:
        raise ConvseeError(f"--channel must be 0..{n_ch - 1} for {a.layer}, got {a.channel}")
    c = a.channel
    name = f"animate_{a.layer}_ch{c}"
    if a.layer.startswith("conv"):
        x = inp.x if a.layer == "conv1" else acts["pool1"][0]
        w, b = weights[f"{a.layer}.weight"][c], float(weights[f"{a.layer}.bias"][c])
        steps = conv_steps(x, w, b)
        title = f"{a.layer}, channel {c}, sliding over {inp.name}"
        sched = schedule(*steps[2].shape)
        frames = [conv_frame(x, w, b, steps, f, title) for f in sched]
        final = steps[2]
    else:
        src = acts["relu1" if a.layer == "pool1" else "relu2"][0][c]
        steps = pool_steps(src)
        title = f"{a.layer}, channel {c}: 2x2 max pooling of {inp.name}"
        sched = schedule(*steps[1].shape)
        frames = [pool_frame(src, steps, f, title) for f in sched]
        final = steps[1]
    luts = ("RdBu_r", "viridis")
    files = {f"{name}.gif": gif_bytes(frames, luts, a.frame_ms)}
    files[f"{name}.json"] = sidecar(
        meta,
        picture="animate",
        layer=a.layer,
        channel=c,
        input=inp.name,
        frames=len(frames),
        frame_ms=a.frame_ms,
        final_map=np.round(final, 5).tolist(),
    )
    for i, f in enumerate(frames):
        files[f"{name}_frames/{i:03d}.png"] = png_bytes(f, luts)
    files[f"{name}_frames/frames.json"] = sidecar(
        meta,
        picture="animate frames",
        layer=a.layer,
        channel=c,
        input=inp.name,
        pixels_filled=list(sched),
    )
    return finish(files, a.out, t0)
