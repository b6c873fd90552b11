"""`convsee sweep`."""

from __future__ import annotations

import time

import numpy as np

from ..draw.render import finish
from ..errors import ConvseeError
from .options import Formatter, add_channels, add_data, add_model, add_out

HELP = "a layer's maps as the input is blurred, shifted, rotated, noised or occluded"
DESCRIPTION = """a layer's maps as the input is blurred, shifted, rotated, noised or occluded
by a mid-grey patch at every cell of a grid covering the picture, with the prediction on every
frame: OUT/sweep_{kind}_{layer}.gif and a JSON sidecar with each channel's cosine similarity
to the unperturbed maps."""


def add(sub) -> None:
    sw = sub.add_parser("sweep", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    sw.add_argument(
        "input", nargs="?", default="sample:3", metavar="INPUT", help="the input to perturb"
    )
    add_model(sw)
    add_data(sw, help_data="folder with the dataset's IDX files (for test:N, train:N)")
    sw.add_argument(
        "--kind",
        default="all",
        choices=["all", "blur", "shift", "rotate", "noise", "occlude"],
        help="which perturbation",
    )
    sw.add_argument(
        "--layer",
        metavar="L",
        help="a map layer from `convsee layers` (default: the first convolution; LeNet-5: conv1)",
    )
    add_channels(sw)
    sw.add_argument("--frame-ms", type=int, default=500, help="milliseconds per GIF frame")
    add_out(sw, "media")
    sw.set_defaults(func=run)


def pick_layer(spec, name):
    """The map layer to sweep: --layer, else the first convolution's output."""
    maps = [x for x in spec.layers if x.kind == "map"]
    if name:
        layer = spec.layer(name)
        if layer.kind != "map":
            shape = "x".join(map(str, layer.shape)) or "a scalar"
            some = ", ".join(x.name for x in maps[:8]) + (", ..." if len(maps) > 8 else "")
            raise ConvseeError(
                f"sweep shows maps (C,H,W); {layer.name} outputs {shape} per input; "
                f"map layers: {some or 'none'}"
            )
        return layer
    convs = [x for x in maps if x.kernel is not None]
    if convs:
        return convs[0]
    if maps:
        return maps[0]
    raise ConvseeError("sweep shows a layer's maps (C,H,W); the model has no map layer")


def run(a) -> int:
    from ..datasets.transforms import normalize
    from ..draw.core import colormap
    from ..draw.render import _safe, choose_channels, gif_bytes, sidecar
    from ..draw.sweep import SweepFrames, colour_palette, on_palette
    from ..run.sweep import KINDS, PATCH_VALUE, channel_similarity, occlusion_boxes, perturb
    from .options import network, out_dir_ok, parse_channels

    t0 = time.perf_counter()
    out_dir_ok(a.out)
    if a.frame_ms < 20 or a.frame_ms > 60000:
        raise ConvseeError(f"--frame-ms must be 20..60000, got {a.frame_ms}")
    kinds = KINDS if a.kind == "all" else [a.kind]
    net = network(a)
    layer = pick_layer(net.spec, a.layer)
    mode = parse_channels(a.channels, layer.channels, layer=layer.name)
    [inp] = net.inputs([a.input], a.data, a.dataset)
    signed = layer.signed
    lut_name = "RdBu_r" if signed else "viridis"
    lut = colormap(lut_name)
    if net.prep.resize in ("mnist", "fashion"):
        fill, fill_note = 0.0, "black (the background of this input form)"
    else:
        fill = tuple(float(v) for v in net.prep.channel_mean())
        fill_note = "the dataset mean colour (0 after normalisation)"
    files = {}
    lname = _safe(layer.name)
    for kind in kinds:
        imgs, labels = perturb(inp.image, kind, fill=fill)
        boxes = [None] * len(imgs)
        if kind == "occlude":
            boxes = [None, *occlusion_boxes(inp.image.shape[:2])]
        x = np.stack([normalize(i, net.prep) for i in imgs])
        acts, probs = net.run(x, [layer])
        maps = acts[layer.name]
        m = float(np.abs(maps).max()) or 1.0
        rng = (-m, m) if signed else (0.0, m)
        ref = len(imgs) // 2 if kind in ("shift", "rotate") else 0
        sim = channel_similarity(maps, ref)
        chans = choose_channels(maps[ref], mode)
        title = [f"{layer.name} of {inp.name} under {kind}", "one colour scale for all frames"]
        if kind == "occlude":
            side = boxes[1][2]
            title[1] += (
                f" · a mid-grey ({PATCH_VALUE:g}) {side}x{side} patch, outlined, at each of "
                f"{len(boxes) - 1} positions covering the picture"
            )
        elif kind in ("shift", "rotate"):
            title[1] += f" · uncovered pixels: {fill_note}"
        if len(chans) < maps.shape[1]:
            title.append(
                f"{len(chans)} of {maps.shape[1]} channels drawn; the colour range covers all"
            )
        frames_drawer = SweepFrames(
            (len(chans), *maps.shape[2:]), lut, title, rng, [f"ch {c}" for c in chans]
        )
        classes = net.class_names(probs.shape[1]) if probs is not None else []
        frames = []
        for i in range(len(imgs)):
            if probs is None:
                cap = f"{labels[i]}\nno class scores"
            else:
                p = int(probs[i].argmax())
                cap = f"{labels[i]}\npredicted {classes[p]} ({probs[i, p]:.1%})"
                if inp.label is not None:
                    cap += f"\ntrue {classes[inp.label]}: {probs[i, inp.label]:.1%}"
            frames.append(frames_drawer.draw(imgs[i], maps[i][chans], cap, boxes[i]))
        extra = {}
        if kind == "occlude" and probs is not None:
            p0 = int(probs[0].argmax())
            rows = sorted({b[0] for b in boxes[1:]})
            cols = sorted({b[1] for b in boxes[1:]})
            extra["occlusion_probability_of_unperturbed_prediction"] = {
                "class": p0,
                "rows": rows,
                "cols": cols,
                "grid": np.round(probs[1:, p0].reshape(len(rows), len(cols)), 5).tolist(),
            }
        if inp.image.ndim == 3:  # colour pictures: a palette that holds their colours too
            pal = colour_palette(lut_name, imgs)
            frames = [on_palette(f, pal) for f in frames]
        files[f"sweep_{kind}_{lname}.gif"] = gif_bytes(frames, (lut_name,), a.frame_ms)
        files[f"sweep_{kind}_{lname}.json"] = sidecar(
            net.meta,
            picture="sweep",
            kind=kind,
            layer=layer.name,
            input=inp.name,
            frames=labels,
            fill=fill if kind in ("shift", "rotate") else None,
            patch_value=PATCH_VALUE if kind == "occlude" else None,
            patches=[list(b) for b in boxes[1:]] if kind == "occlude" else None,
            value_range=list(rng),
            channels_drawn=chans,
            predictions=None if probs is None else [int(v) for v in probs.argmax(1)],
            probabilities=None if probs is None else np.round(probs, 5).tolist(),
            channel_cosine_to_reference=np.round(np.nan_to_num(sim), 4).tolist(),
            mean_cosine_per_channel=np.round(
                np.nan_to_num(np.nanmean(np.where(np.isnan(sim), 0, sim), 0)), 4
            ).tolist(),
            **extra,
        )
    return finish(files, a.out, t0)
