"""`convsee render`: what every layer of a network outputs, as pictures with sidecars.

Runs every input in one forward pass (for LeNet-5 in NumPy: no torch import, which alone
costs ~1.5 s here), then composes PNGs and GIFs from the arrays (figures.py) with a JSON
sidecar each. Any network: maps (C, H, W) as channel grids on one truthful colour scale,
vectors as strips, the class scores as probabilities; wide layers draw a chosen subset of
channels while the colour range still covers all of them. Everything is rendered in memory
first and only written once it all succeeded, so a bad input leaves no partial output; the
writing itself is all or nothing too (write_outputs), so a full disk leaves none either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..datasets.inputs import Input
from ..errors import ConvseeError
from ..files import write_outputs
from ..models.provenance import Provenance
from ..run.filters import blur_maps
from ..spec import Layer, select_channels
from ..values import parse_channels
from .core import colormap, encode_gif, encode_png, to_palette
from .figure import sidecar_bytes
from .figures import (
    MapGrid,
    diff_grid,
    kernel_grid,
    kernel_sheet,
    probability_bars,
    sample_sheet,
    vector_strip,
)

__all__ = [
    "RenderOptions",
    "layer_ranges",
    "default_layers",
    "drawable",
    "choose_channels",
    "render_set",
    "render_kernels",
    "render_diff",
    "write_outputs",
    "finish",
    "sidecar",
    "png_bytes",
    "gif_bytes",
    "stems",
]

SCALES = ("map", "layer", "global")
TOP_DEFAULT = 64  # wider layers draw their top 64 channels unless told otherwise


@dataclass
class RenderOptions:
    layers: str | tuple[str, ...] | None = None  # None: see default_layers
    scale: str | None = None  # map | layer | global (None: global, so pictures compare)
    cmap: str | None = None  # None: RdBu_r for signed maps, viridis for non-negative ones
    blur: tuple[int, float] | None = None  # (kernel, sigma); None: the original's, LeNet only
    with_kernels: bool = False  # each channel's kernel slices under its map
    channels: str | None = None  # all | top:K | A-B | i,j,... (None: all up to 64, else top:64)
    gifs: bool = True
    default_blur: bool = True  # LeNet-5 without blur: also the original's blurred maps


def default_layers(net) -> str:
    """LeNet-5: conv1,conv2 (the original's pictures); any other network: every Conv2d."""
    return net.spec.default_layers("render")


def drawable(layers: list[Layer]) -> list[Layer]:
    for layer in layers:
        if layer.kind == "other":
            shape = "x".join(map(str, layer.shape)) or "a scalar"
            raise ConvseeError(
                f"layer {layer.name} outputs {shape} per input, a sequence or volume, not maps "
                "(C,H,W) or a vector: convsee cannot draw it",
                "layers",
            )
    return layers


def _lut_name(layer: Layer, cmap: str | None) -> str:
    return cmap or ("viridis" if layer.nonneg else "RdBu_r")


def layer_ranges(a: np.ndarray, scale: str, signed: bool, global_range=None):
    """(vmin, vmax) per channel of a (C, ...) array for one input under a scale mode."""

    def rng(x):
        lo, hi = float(x.min()), float(x.max())
        if signed:
            m = max(abs(lo), abs(hi)) or 1e-6
            return -m, m
        return 0.0, hi if hi > 0 else 1e-6

    if scale == "map":
        return [rng(a[i]) for i in range(a.shape[0])]
    r = global_range if scale == "global" else rng(a)
    return [r] * a.shape[0]


def _value_range(a: np.ndarray, signed: bool) -> tuple[float, float]:
    return layer_ranges(a.reshape(1, -1), "layer", signed)[0]


def choose_channels(a: np.ndarray, mode) -> list[int]:
    """Channels to draw of one input's (C, H, W) maps (spec.select_channels; 'top' by their
    mean over the map)."""
    c = a.shape[0]
    return select_channels(mode, c, lambda: a.reshape(c, -1).mean(1))


def _channel_mode(text, c: int, layer: str | None = None):
    return parse_channels(text, c, TOP_DEFAULT, layer)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.#-]+", "_", name.replace(":", "_")).strip("_.") or "input"


def stems(inputs: list[Input]) -> list[str]:
    """File names for inputs: the digit for bundled samples, else the name without its
    extension (photo.jpg -> photo), made unique."""
    if all(i.name.startswith("sample:") for i in inputs):
        names = [i.name.split(":")[1] for i in inputs]
    else:
        names = []
        for i in inputs:
            n = i.name
            if i.source and "." in Path(n).name and not n.startswith(("test:", "train:")):
                n = Path(n).stem
            names.append(_safe(n))
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def _caption(inp: Input, prob, classes) -> str:
    true = (
        f"true {classes[inp.label]}"
        if inp.label is not None and inp.label < len(classes)
        else "true label unknown"
    )
    if prob is None:
        return f"{inp.name}\n{true}\nno class scores"
    p = int(prob.argmax())
    return f"{inp.name}\n{true}\npredicted {classes[p]} ({prob[p]:.1%})"


def sidecar(provenance: Provenance, **fields) -> bytes:
    """A picture's JSON sidecar: convsee's version, where the network came from (a
    Network's provenance) and the picture's own fields."""
    return sidecar_bytes({"convsee_version": __version__, **provenance.to_dict(), **fields})


def png_bytes(img, luts=()) -> bytes:
    """PNG bytes on a fixed palette (3-4x faster to encode than RGB): exact only when every
    colour drawn is in the palette (the luts' colormaps and the drawing greys); any other
    colour snaps to the nearest, so a picture with others must pass "colour" among the luts
    (the PNG then keeps every colour) or use channel_views.png_rgb."""
    return encode_png(img.convert("RGB") if "colour" in luts else to_palette(img, luts))


def gif_bytes(frames, luts=(), duration_ms: int = 1000) -> bytes:
    return encode_gif(frames, duration_ms, luts)


def reference_range(net, layer: Layer, blur=None):
    """The checkpoint's fixed range for a layer (stored with the weights), or None."""
    if blur is not None:
        return None
    ref = (net.meta.get("reference_ranges") or {}).get(layer.name)
    if ref is None:
        return None
    lo, hi = float(ref[0]), float(ref[1])
    return (lo, hi) if hi > lo else None


def scores_layer(net, probs) -> str | None:
    """The layer that holds the class scores (drawn as probabilities): the last vector layer
    shaped like the scores."""
    return None if probs is None else net.spec.scores_layer(getattr(net, "output", None))


def render_set(net, inputs: list[Input], opts: RenderOptions):
    """({relative path: bytes}, probabilities, {layer: arrays drawn}). Nothing is written.

    The arrays are exactly what the pictures were drawn from (before any blur).
    """
    layers = drawable(net.select(opts.layers or default_layers(net)))
    if opts.scale is not None and opts.scale not in SCALES:
        raise ConvseeError(f"unknown {{param}} {opts.scale!r}; valid: {', '.join(SCALES)}", "scale")
    for layer in layers:
        colormap(_lut_name(layer, opts.cmap))  # fail on a bad colormap before any work
        if layer.kind == "map":
            _channel_mode(opts.channels, layer.channels, layer.name)  # and on bad channels
    acts, probs = net.run(net.batch(inputs), layers)
    k = probs.shape[1] if probs is not None else 0
    classes = net.class_names(k) if k else []
    gif = opts.gifs and len(inputs) > 1
    batch = _Batch(net, inputs, probs, classes, stems(inputs), opts, gif, scores_layer(net, probs))
    sheet = sample_sheet(
        [i.image for i in inputs],
        [batch.caption(n) for n in range(len(inputs))],
        "the inputs, as the model sees them",
    )
    files: dict[str, bytes] = {
        "samples.png": png_bytes(sheet, ("colour",) if _colour(inputs) else ()),
        "samples.json": sidecar(
            net.provenance,
            picture="samples",
            inputs=[i.name for i in inputs],
            preprocessing_notes={i.name: list(i.notes) for i in inputs if i.notes},
        ),
    }
    for layer in layers:
        blurs = [None]
        if layer.kind == "map":
            if opts.blur is not None:
                blurs.append(opts.blur)
            elif opts.default_blur and net.default_blur(layer) is not None:
                blurs.append(net.default_blur(layer))
        for blur in blurs:
            a = acts[layer.name] if blur is None else blur_maps(acts[layer.name], *blur)
            files.update(_render_layer(batch, _Look.of(batch, layer, a, blur), a))
    return files, probs, {k: acts[k] for k in acts}


@dataclass
class _Batch:
    """What every layer of one render_set shares: the inputs, their scores, the options."""

    net: object
    inputs: list[Input]
    probs: np.ndarray | None  # (N, K) class probabilities, or None
    classes: list[str]
    names: list[str]  # file stems, one per input
    opts: RenderOptions
    gif: bool  # several inputs and GIFs wanted: one GIF per layer too
    score_name: str | None  # the layer drawn as probabilities

    def caption(self, n: int) -> str:
        return _caption(self.inputs[n], None if self.probs is None else self.probs[n], self.classes)


@dataclass
class _Look:
    """How one layer (blurred or not) is drawn: its colour range, palette and title."""

    layer: Layer
    blur: tuple[int, float] | None
    signed: bool
    scale: str  # map | layer | global
    g: tuple[float, float]  # the global range: the checkpoint's reference, else these inputs'
    g_note: str  # where g came from, for the sidecars
    lut: np.ndarray
    luts: tuple[str, ...]  # the palette's colormaps (and "colour" for colour inputs)
    title: list[str]

    @classmethod
    def of(cls, batch: _Batch, layer: Layer, a: np.ndarray, blur) -> _Look:
        """a: the layer's outputs for every input, (N, C, H, W) or (N, D)."""
        net, opts = batch.net, batch.opts
        signed = layer.signed or (blur is not None and a.min() < 0)
        scale = opts.scale or "global"
        ref = reference_range(net, layer, blur)
        g = ref or _value_range(a, signed)
        g_note = (
            f"the checkpoint's reference range: {net.meta.get('reference_ranges_from', 'stored')}"
            if ref
            else f"the range over the {len(batch.inputs)} input(s) rendered together (no "
            "reference range stored with this checkpoint)"
        )
        lut_name = _lut_name(layer, opts.cmap)
        luts = (
            (lut_name,) if not opts.with_kernels or lut_name == "RdBu_r" else (lut_name, "RdBu_r")
        )
        if _colour(batch.inputs):
            luts = (*luts, "colour")
        relu = "non-negative" if layer.nonneg else "signed"
        blur_txt = f" · Gaussian blur k={blur[0]} sigma={blur[1]:g}" if blur else ""
        shape = "x".join(map(str, a.shape[1:]))
        scale_txt = f"scale: {scale}" + (
            (
                " (the checkpoint's reference range; brighter values saturate)"
                if ref
                else " (over these inputs)"
            )
            if scale == "global"
            else ""
        )
        title = [f"{layer.name} · {layer.type} · {relu} · {shape}", f"{scale_txt}{blur_txt}"]
        return cls(layer, blur, signed, scale, g, g_note, colormap(lut_name), luts, title)

    def ranges(self, m: np.ndarray) -> list:
        """(vmin, vmax) per channel of one input's (C, ...) outputs."""
        return layer_ranges(m, self.scale, self.signed, self.g)


def _render_layer(batch: _Batch, look: _Look, a: np.ndarray) -> dict:
    """{path: bytes} of one layer: a picture and sidecar per input, a GIF of them all."""
    if look.layer.kind == "map":
        per_input, frames = _MapPictures(batch, look, a).draw(a)
    else:
        per_input, frames = _vector_pictures(batch, look, a), []
    return _layer_files(batch, look, a, per_input, frames)


class _MapPictures:
    """Channel grids of a map layer, (N, C, H, W): one MapGrid per channel set drawn."""

    def __init__(self, batch: _Batch, look: _Look, a: np.ndarray):
        self.batch, self.look, self.c = batch, look, a.shape[1]
        self.hw = a.shape[2:]
        self.mode = _channel_mode(batch.opts.channels, self.c, look.layer.name)
        self.kernels, self.klim, knote = _kernels_for(batch.net, look.layer, batch.opts)
        self.title = [*look.title, knote] if knote else list(look.title)
        self.fixed_labels = self.mode[0] != "top"
        self.grids: dict = {}

    def grid_for(self, chans: list[int]) -> MapGrid:
        key = tuple(chans) if not self.fixed_labels else "fixed"
        if key not in self.grids:
            look = self.look
            t = list(self.title)
            if len(chans) < self.c:
                how = "chosen" if self.mode[0] == "list" else "top by mean activation"
                t.append(
                    f"{len(chans)} of {self.c} channels drawn ({how}); the colour range covers all"
                )
            self.grids[key] = MapGrid(
                (len(chans), *self.hw),
                look.lut,
                t,
                None if self.kernels is None else self.kernels[chans],
                look.g if look.scale == "global" else None,
                look.scale == "map",
                [f"ch {c}" for c in chans] if self.fixed_labels else "per-input",
                self.klim,
            )
        return self.grids[key]

    def picture(self, n: int, m: np.ndarray, chans: list[int]):
        """(image, ranges of the channels drawn, dead mask) of input n's maps m (C, H, W)."""
        ranges_all = self.look.ranges(m)
        ranges = [ranges_all[c] for c in chans]
        sub = m[chans]
        dead = ~sub.reshape(len(chans), -1).any(1)
        bar = ranges[0] if self.look.scale == "layer" else None
        img = self.grid_for(chans).draw(
            self.batch.inputs[n].image,
            sub,
            ranges,
            self.batch.caption(n),
            dead,
            bar,
            [f"ch {c}" for c in chans],
        )
        return img, ranges, dead

    def draw(self, a: np.ndarray):
        """([(image, sidecar fields)] per input, GIF frames or [] when each picture is one)."""
        look, per_input, frames = self.look, [], []
        for n in range(len(self.batch.inputs)):
            chans = choose_channels(a[n], self.mode)
            img, ranges, dead = self.picture(n, a[n], chans)
            info = {
                "scale": look.scale,
                "global_range": list(look.g) if look.scale == "global" else None,
                "global_range_from": look.g_note if look.scale == "global" else None,
                "display_range": None if look.scale == "map" else list(ranges[0]),
                "channels_drawn": chans,
                "dead_channels": [int(chans[i]) for i in np.flatnonzero(dead)],
            }
            per_input.append((img, info))
        if self.batch.gif and self.mode[0] == "top":
            # frames share one channel set: top by mean over inputs
            chans = choose_channels(a.mean(0), self.mode)
            for n in range(len(self.batch.inputs)):
                frames.append(to_palette(self.picture(n, a[n], chans)[0], look.luts))
        return per_input, frames


def _vector_pictures(batch: _Batch, look: _Look, a: np.ndarray) -> list:
    """[(image, sidecar fields)] per input of a vector layer, a: (N, D)."""
    layer, scale, per_input = look.layer, look.scale, []
    for n, inp in enumerate(batch.inputs):
        cap = batch.caption(n)
        v = a[n]
        if layer.name == batch.score_name:
            t = [f"{layer.name} · class scores and probabilities · {v.shape[0]} classes", ""]
            value = "probability" if layer.nonneg else "logit"
            img = probability_bars(
                inp.image, batch.probs[n], v, batch.classes, t, cap, inp.label, value
            )
        else:
            vr = look.g if scale == "global" else _value_range(v, look.signed)
            img = vector_strip(inp.image, v, vr, look.lut, look.title, cap)
        per_input.append(
            (img, {"scale": scale, "global_range": list(look.g) if scale == "global" else None})
        )
    return per_input


def _layer_files(batch: _Batch, look: _Look, a: np.ndarray, per_input, frames) -> dict:
    """The encoded pictures and sidecars; frames: the GIF's, or [] to use the pictures."""
    net, layer, blur, luts = batch.net, look.layer, look.blur, look.luts
    suffix = "" if blur is None else "_blur"
    files = {}
    shared_frames = bool(frames)  # map layers in top mode drew their GIF frames already
    for n, (inp, (img, info)) in enumerate(zip(batch.inputs, per_input, strict=True)):
        pal = to_palette(img, luts)
        path = f"{layer.name}/{batch.names[n]}{suffix}"
        files[f"{path}.png"] = png_bytes(img, luts) if "colour" in luts else _encode(pal)
        files[f"{path}.json"] = sidecar(
            net.provenance,
            picture="layer",
            layer=layer.name,
            layer_type=layer.type,
            input=inp.name,
            input_source=inp.source,
            preprocessing_notes=list(inp.notes),
            label=inp.label,
            prediction=None if batch.probs is None else int(batch.probs[n].argmax()),
            blur=list(blur) if blur else None,
            value_range=[float(a[n].min()), float(a[n].max())],
            shape=list(a.shape[1:]),
            nonneg=layer.nonneg,
            **info,
        )
        if batch.gif and not shared_frames:
            frames.append(pal)
    if batch.gif:
        stem = layer.name + suffix
        files[f"{stem}.gif"] = encode_gif(frames, 1000, luts)
        files[f"{stem}.gif.json"] = sidecar(
            net.provenance,
            picture="gif",
            layer=layer.name,
            inputs=[i.name for i in batch.inputs],
            frame_seconds=1.0,
            scale=look.scale,
            blur=list(blur) if blur else None,
            value_range=list(look.g),
            value_range_from=look.g_note,
        )
    return files


def _colour(inputs) -> bool:
    return any(i.image.ndim == 3 for i in inputs)


def _encode(pal) -> bytes:
    return encode_png(pal)


def _kernels_for(net, layer: Layer, opts):
    """(kernels (C, Cin, k, k) for the layer's channels, their shared limit, a note) or Nones."""
    if not opts.with_kernels:
        return None, None, ""
    if layer.conv is None:
        return None, None, "kernels not drawn: no single convolution made this layer"
    w = net.kernel(layer.conv)
    if w is None or w.ndim != 4 or w.shape[0] != layer.channels:
        return None, None, "kernels not drawn: the layer's channels are not one conv's outputs"
    if w.shape[1] > 16:
        return None, None, f"kernels not drawn: {w.shape[1]} input channels per map (at most 16)"
    k = w.shape[-1]
    lim = float(np.abs(w).max()) or 1.0
    note = (
        f"under each map: the {k}x{k} kernels of {layer.conv} that made it, one per input "
        f"channel, on one scale for the layer (|w| <= {lim:.3g}; blue < 0 < red)"
    )
    return w, lim, note


def render_kernels(net, cmap: str | None = None) -> dict:
    """Every conv layer's kernels on one signed scale per picture."""
    lut_name = cmap or "RdBu_r"
    lut = colormap(lut_name)
    files = {}
    if net.kernel_sheet is not None:
        img = kernel_sheet(*(net.kernel(name) for name in net.kernel_sheet), lut)
        files["kernels.png"] = png_bytes(img, (lut_name,))
        files["kernels.json"] = sidecar(
            net.provenance, picture="kernels", layers=list(net.kernel_sheet)
        )
        return files
    convs = [x for x in net.spec.layers if x.kernel is not None and x.call == 1]
    drawn = []
    for layer in convs:
        w = net.kernel(layer.name)
        if w is None or w.shape[0] * w.shape[1] > 4096:
            continue
        img = kernel_grid(layer.name, w, lut)
        files[f"kernels/{layer.name}.png"] = png_bytes(img, (lut_name,))
        files[f"kernels/{layer.name}.json"] = sidecar(
            net.provenance,
            picture="kernels",
            layer=layer.name,
            shape=list(w.shape),
            value_limit=float(np.abs(w).max()),
        )
        drawn.append(layer.name)
    if not drawn:
        raise ConvseeError("the model has no convolution with at most 4096 kernel slices to draw")
    return files


def render_diff(net, a: Input, b: Input, layers_text, cmap=None, channels=None) -> dict:
    layers = [
        x for x in drawable(net.select(layers_text or default_layers(net))) if x.kind == "map"
    ]
    if not layers:
        raise ConvseeError("{param} needs at least one layer with maps (C, H, W)", "diff")
    acts, probs = net.run(net.batch([a, b]), layers)
    k = probs.shape[1] if probs is not None else 0
    classes = net.class_names(k) if k else []
    files = {}
    for layer in layers:
        x, y = acts[layer.name][0], acts[layer.name][1]
        cos = float((x.ravel() @ y.ravel()) / (np.linalg.norm(x) * np.linalg.norm(y) or 1))
        signed = layer.signed
        mode = _channel_mode(channels, x.shape[0], layer.name)
        chans = choose_channels(np.abs(x - y), mode)
        vr = _value_range(np.stack([x, y]), signed)
        pred = ""
        if probs is not None:
            pred = (
                f" · predicted {classes[int(probs[0].argmax())]} vs "
                f"{classes[int(probs[1].argmax())]}"
            )
        title = [
            f"{layer.name}: {a.name} vs {b.name}",
            f"cosine similarity of the whole layer: {cos:.3f}{pred}",
        ]
        if len(chans) < x.shape[0]:
            title[1] += f" · {len(chans)} of {x.shape[0]} channels (largest |A - B|)"
        img = diff_grid(
            a.image,
            b.image,
            x[chans],
            y[chans],
            (a.name, b.name),
            title,
            colormap(_lut_name(layer, cmap)),
            colormap("RdBu_r"),
            vr,
            chans,
        )
        stem = f"diff_{_safe(layer.name)}_{_safe(a.name)}_vs_{_safe(b.name)}"
        files[f"{stem}.png"] = png_bytes(img, (_lut_name(layer, cmap), "RdBu_r"))
        files[f"{stem}.json"] = sidecar(
            net.provenance,
            picture="diff",
            layer=layer.name,
            inputs=[a.name, b.name],
            cosine_similarity=cos,
            value_range=list(vr),
            difference_limit=float(np.abs(x - y).max()),
            channels_drawn=chans,
        )
    return files


def finish(files: dict, out_dir, t0: float) -> int:
    """Write the files, say how many pictures went where and how long it all took."""
    import time

    pictures = [p for p in write_outputs(files, out_dir) if p.suffix in (".png", ".gif")]
    seconds = time.perf_counter() - t0
    n = len(pictures)
    what = "picture" if n == 1 else "pictures"
    print(f"wrote {n} {what} (+ JSON sidecars) to {out_dir}/ in {seconds:.2f} s")
    return 0
