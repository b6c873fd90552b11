"""`sweep` as a library function: a layer's maps as the input is blurred, shifted, rotated,
noised or occluded, as Figures (one GIF and sidecar per kind)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datasets.inputs import Input
from ..draw.figure import Figures, from_files
from ..draw.render import _safe, choose_channels, gif_bytes, sidecar
from ..errors import ConvseeError
from ..spec import Layer
from ..values import parse_channels
from .common import check_frame_ms, one_input

__all__ = ["sweep", "pick_layer"]


def pick_layer(spec, name):
    """The map layer to sweep: the layer asked for, else the first convolution's output."""
    maps = [x for x in spec.layers if x.kind == "map"]
    if name:
        layer = spec.layer(name)
        if layer.kind != "map":
            shape = "x".join(map(str, layer.shape)) or "a scalar"
            some = ", ".join(x.name for x in maps[:8]) + (", ..." if len(maps) > 8 else "")
            raise ConvseeError(
                f"sweep shows maps (C,H,W); {layer.name} outputs {shape} per input; "
                f"map layers: {some or 'none'}",
                "layer",
            )
        return layer
    convs = [x for x in maps if x.kernel is not None]
    if convs:
        return convs[0]
    if maps:
        return maps[0]
    raise ConvseeError("sweep shows a layer's maps (C,H,W); the model has no map layer")


def sweep(
    net,
    input="sample:3",
    layer: str | None = None,
    kind: str = "all",
    channels=None,
    frame_ms: int = 500,
    *,
    data=None,
    dataset: str | None = None,
) -> Figures:
    """A map layer's channels (default: the first convolution) under each perturbation
    (kind: blur, shift, rotate, noise, occlude or all), with the prediction on every frame.
    Figures: sweep_{kind}_{layer}.gif, each sidecar with each channel's cosine similarity to
    the unperturbed maps."""
    from ..run.sweep import KINDS

    frame_ms = check_frame_ms(frame_ms)
    if kind != "all" and kind not in KINDS:
        raise ConvseeError(f"{{param}} is all or one of {', '.join(KINDS)}; got {kind!r}", "kind")
    kinds = KINDS if kind == "all" else [kind]
    layer = pick_layer(net.spec, layer)
    mode = parse_channels(channels, layer.channels, layer=layer.name)
    inp = one_input(net, input, data, dataset)
    if net.prep.resize in ("mnist", "fashion"):
        fill, fill_note = 0.0, "black (the background of this input form)"
    else:
        fill = tuple(float(v) for v in net.prep.channel_mean())
        fill_note = "the dataset mean colour (0 after normalisation)"
    sw = _Sweep(net, layer, inp, mode, fill, fill_note, frame_ms)
    files = {}
    for kind in kinds:
        files.update(_sweep_kind(sw, kind))
    return from_files(files)


@dataclass
class _Sweep:
    """What every kind of one sweep shares."""

    net: object
    layer: Layer
    inp: Input
    mode: tuple  # the channels to draw, as values.parse_channels gives them
    fill: float | tuple[float, ...]  # what shift and rotate uncover, on the [0, 1] scale
    fill_note: str
    frame_ms: int

    @property
    def lut_name(self) -> str:
        return "RdBu_r" if self.layer.signed else "viridis"


@dataclass
class _Perturbed:
    """One kind's frames: the perturbed inputs and what the layer made of them."""

    kind: str
    imgs: list[np.ndarray]  # the input as the model sees it, perturbed, one per frame
    labels: list[str]  # what each frame did to it
    boxes: list  # occlude: [None, (row, col, side) per patch]; else a None per frame
    maps: np.ndarray  # (frames, C, H, W) the layer's outputs
    probs: np.ndarray | None  # (frames, K) the class probabilities, or None

    @classmethod
    def of(cls, sw: _Sweep, kind: str) -> _Perturbed:
        from ..datasets.transforms import normalize
        from ..run.sweep import occlusion_boxes, perturb

        imgs, labels = perturb(sw.inp.image, kind, fill=sw.fill)
        boxes = [None] * len(imgs)
        if kind == "occlude":
            boxes = [None, *occlusion_boxes(sw.inp.image.shape[:2])]
        x = np.stack([normalize(i, sw.net.prep) for i in imgs])
        acts, probs = sw.net.run(x, [sw.layer])
        return cls(kind, imgs, labels, boxes, acts[sw.layer.name], probs)


def _sweep_kind(sw: _Sweep, kind: str) -> dict:
    """{path: bytes}: one kind's GIF and sidecar."""
    from ..draw.sweep import colour_palette, on_palette
    from ..run.sweep import PATCH_VALUE, channel_similarity

    net, layer, inp = sw.net, sw.layer, sw.inp
    pt = _Perturbed.of(sw, kind)
    maps, probs, boxes = pt.maps, pt.probs, pt.boxes
    m = float(np.abs(maps).max()) or 1.0
    rng = (-m, m) if layer.signed else (0.0, m)
    ref = len(pt.imgs) // 2 if kind in ("shift", "rotate") else 0
    sim = channel_similarity(maps, ref)  # (frames, C)
    chans = choose_channels(maps[ref], sw.mode)
    frames = _frames(sw, pt, chans, rng)
    extra = {}
    if kind == "occlude" and probs is not None:
        extra["occlusion_probability_of_unperturbed_prediction"] = _occlusion_grid(probs, boxes)
    if inp.image.ndim == 3:  # colour pictures: a palette that holds their colours too
        pal = colour_palette(sw.lut_name, pt.imgs)
        frames = [on_palette(f, pal) for f in frames]
    lname = _safe(layer.name)
    return {
        f"sweep_{kind}_{lname}.gif": gif_bytes(frames, (sw.lut_name,), sw.frame_ms),
        f"sweep_{kind}_{lname}.json": sidecar(
            net.provenance,
            picture="sweep",
            kind=kind,
            layer=layer.name,
            input=inp.name,
            frames=pt.labels,
            fill=sw.fill if kind in ("shift", "rotate") else None,
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
        ),
    }


def _frames(sw: _Sweep, pt: _Perturbed, chans: list[int], rng) -> list:
    """One picture per frame: its input, the channels drawn on one colour range rng, the
    prediction."""
    from ..draw.core import colormap
    from ..draw.sweep import SweepFrames
    from ..run.sweep import PATCH_VALUE

    layer, inp, kind, boxes, maps, probs = sw.layer, sw.inp, pt.kind, pt.boxes, pt.maps, pt.probs
    title = [f"{layer.name} of {inp.name} under {kind}", "one colour scale for all frames"]
    if kind == "occlude":
        side = boxes[1][2]
        title[1] += (
            f" · a mid-grey ({PATCH_VALUE:g}) {side}x{side} patch, outlined, at each of "
            f"{len(boxes) - 1} positions covering the picture"
        )
    elif kind in ("shift", "rotate"):
        title[1] += f" · uncovered pixels: {sw.fill_note}"
    if len(chans) < maps.shape[1]:
        title.append(f"{len(chans)} of {maps.shape[1]} channels drawn; the colour range covers all")
    drawer = SweepFrames(
        (len(chans), *maps.shape[2:]),
        colormap(sw.lut_name),
        title,
        rng,
        [f"ch {c}" for c in chans],
    )
    classes = sw.net.class_names(probs.shape[1]) if probs is not None else []
    frames = []
    for i in range(len(pt.imgs)):
        if probs is None:
            cap = f"{pt.labels[i]}\nno class scores"
        else:
            p = int(probs[i].argmax())
            cap = f"{pt.labels[i]}\npredicted {classes[p]} ({probs[i, p]:.1%})"
            if inp.label is not None:
                cap += f"\ntrue {classes[inp.label]}: {probs[i, inp.label]:.1%}"
        frames.append(drawer.draw(pt.imgs[i], maps[i][chans], cap, boxes[i]))
    return frames


def _occlusion_grid(probs: np.ndarray, boxes) -> dict:
    """The unperturbed prediction's probability with the patch at each grid position;
    probs (1 + positions, K), boxes [None, (row, col, side), ...]."""
    p0 = int(probs[0].argmax())
    rows = sorted({b[0] for b in boxes[1:]})
    cols = sorted({b[1] for b in boxes[1:]})
    return {
        "class": p0,
        "rows": rows,
        "cols": cols,
        "grid": np.round(probs[1:, p0].reshape(len(rows), len(cols)), 5).tolist(),
    }
