"""`convsee render`: the original project's pictures (and more), truthful and fast.

Loads the weights once and runs every input in one NumPy forward pass (forward.py; no torch
import, which alone costs ~1.5 s here), then composes PNGs and GIFs from the arrays
(figures.py) with a JSON sidecar each. Everything is rendered in memory
first and only written once it all succeeded, so a bad input leaves no partial output; the
writing itself is all or nothing too (write_outputs), so a full disk leaves none either.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..datasets.inputs import Input
from ..errors import ConvseeError
from ..models.lenet_layers import LAYER_INFO, check_layers
from ..models.lenet_numpy import forward_all
from ..run.filters import blur_maps
from .core import colormap, save_gif, save_image, to_palette
from .figures import (
    MapGrid,
    diff_grid,
    kernel_sheet,
    probability_bars,
    sample_sheet,
    vector_strip,
)

__all__ = [
    "RenderOptions",
    "DEFAULT_BLUR",
    "layer_ranges",
    "render_set",
    "render_kernels",
    "render_diff",
    "write_outputs",
    "finish",
    "sidecar",
    "png_bytes",
    "gif_bytes",
]

DEFAULT_BLUR = {"conv1": (5, 3.0), "conv2": (3, 3.0)}  # the original's (kernel, sigma)
SCALES = ("map", "layer", "global")


@dataclass
class RenderOptions:
    layers: tuple[str, ...] = ("conv1", "conv2")
    scale: str | None = None  # map | layer | global (None: global, so pictures compare)
    cmap: str | None = None  # None: RdBu_r for signed maps, viridis for non-negative ones
    blur: tuple[int, float] | None = None  # (kernel, sigma); None: the original's per layer
    with_kernels: bool = False  # each channel's kernel beside its map
    gifs: bool = True


def _signed(layer: str) -> bool:
    return not LAYER_INFO[layer][1]


def _lut_name(layer: str, cmap: str | None) -> str:
    return cmap or ("RdBu_r" if _signed(layer) else "viridis")


def _lut(layer: str, cmap: str | None):
    return colormap(_lut_name(layer, cmap))


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


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace(":", "_")).strip("_") or "input"


def _caption(inp: Input, prob: np.ndarray, classes) -> str:
    p = int(prob.argmax())
    true = f"true {classes[inp.label]}" if inp.label is not None else "true label unknown"
    return f"{inp.name}\n{true}\npredicted {classes[p]} ({prob[p]:.1%})"


def sidecar(meta: dict, **fields) -> bytes:
    side = {
        "convsee_version": __version__,
        "checkpoint": meta.get("path"),
        "checkpoint_sha256": meta.get("sha256"),
        "checkpoint_test_accuracy": meta.get("test_accuracy"),
        **fields,
    }
    return (json.dumps(side, indent=2) + "\n").encode()


def png_bytes(img, luts=()) -> bytes:
    """PNG bytes on a fixed palette (3-4x faster to encode than RGB, same colours)."""
    buf = io.BytesIO()
    save_image(to_palette(img, luts), buf)
    return buf.getvalue()


def gif_bytes(frames, luts=(), duration_ms: int = 1000) -> bytes:
    buf = io.BytesIO()
    save_gif(frames, buf, duration_ms, luts)
    return buf.getvalue()


def _luts(layer: str, opts) -> tuple[str, ...]:
    main = _lut_name(layer, opts.cmap)
    return (main,) if not opts.with_kernels or main == "RdBu_r" else (main, "RdBu_r")


def render_set(weights, meta: dict, inputs: list[Input], opts: RenderOptions):
    """({relative path: bytes}, probabilities, {layer: arrays drawn}). Nothing is written.

    The arrays are exactly what the pictures were drawn from (before any blur).
    """
    layers = check_layers(opts.layers)
    if opts.scale is not None and opts.scale not in SCALES:
        raise ConvseeError(f"unknown scale {opts.scale!r}; valid: {', '.join(SCALES)}")
    for layer in layers:
        _lut(layer, opts.cmap)  # fail on a bad colormap before any work
    classes = meta["classes"]
    acts, probs = forward_all(weights, [i.image for i in inputs])
    all_samples = all(i.name.startswith("sample:") for i in inputs)
    names = [i.name.split(":")[1] if all_samples else _safe(i.name) for i in inputs]
    caps = [_caption(i, p, classes) for i, p in zip(inputs, probs, strict=True)]
    sheet = sample_sheet([i.image for i in inputs], caps, "the inputs, as the model sees them")
    files: dict[str, bytes] = {
        "samples.png": png_bytes(sheet),
        "samples.json": sidecar(meta, picture="samples", inputs=[i.name for i in inputs]),
    }
    gif = opts.gifs and len(inputs) > 1
    for layer in layers:
        blurs = [None]
        if LAYER_INFO[layer][0] == "map" and (opts.blur is not None or layer in DEFAULT_BLUR):
            blurs.append(opts.blur or DEFAULT_BLUR.get(layer, (3, 3.0)))
        for blur in blurs:
            a = acts[layer] if blur is None else blur_maps(acts[layer], *blur)
            signed = _signed(layer) or (blur is not None and a.min() < 0)
            g = layer_ranges(a.reshape(1, -1), "layer", signed)[0]  # over all inputs
            stem = layer + ("" if blur is None else "_blur")
            scale = opts.scale or "global"
            paint = _painter(weights, layer, a.shape[1:], classes, g, blur, opts, scale)
            frames = []
            for n, inp in enumerate(inputs):
                img, info = paint(a[n], inp, probs[n])
                pal = to_palette(img, _luts(layer, opts))
                buf = io.BytesIO()
                save_image(pal, buf)
                files[f"{layer}/{names[n]}{stem[len(layer) :]}.png"] = buf.getvalue()
                files[f"{layer}/{names[n]}{stem[len(layer) :]}.json"] = sidecar(
                    meta,
                    picture="layer",
                    layer=layer,
                    input=inp.name,
                    input_source=inp.source,
                    label=inp.label,
                    prediction=int(probs[n].argmax()),
                    **info,
                )
                frames.append(pal)
            if gif:
                buf = io.BytesIO()
                save_gif(frames, buf, 1000, _luts(layer, opts))
                files[f"{stem}.gif"] = buf.getvalue()
                files[f"{stem}.gif.json"] = sidecar(
                    meta,
                    picture="gif",
                    layer=layer,
                    inputs=[i.name for i in inputs],
                    frame_seconds=1.0,
                    scale=scale,
                    blur=list(blur) if blur else None,
                    value_range=list(g),
                )
    return files, probs, {k: acts[k] for k in layers}


def _painter(weights, layer, shape, classes, g, blur, opts, scale):
    """paint(maps of one input, Input, probabilities) -> (image, sidecar info) for a layer.

    g: the layer's value range over all inputs (used by the global scale).
    """
    kind, after_relu = LAYER_INFO[layer]
    relu = "after ReLU" if after_relu else "before ReLU"
    blur_txt = f" · Gaussian blur k={blur[0]} sigma={blur[1]:g}" if blur else ""
    title = [f"{layer} · {relu} · {'x'.join(map(str, shape))}", f"scale: {scale}{blur_txt}"]
    signed = g[0] < 0
    lut = _lut(layer, opts.cmap)
    grid = None
    if kind == "map":
        kernels = None
        if opts.with_kernels:
            conv = "conv1" if layer in ("conv1", "relu1", "pool1") else "conv2"
            kernels = weights[f"{conv}.weight"]
            title.append(
                f"under each map: the {kernels.shape[-1]}x{kernels.shape[-1]} kernels of "
                f"{conv} that made it, one per input "
                "channel (blue < 0 < red)"
            )
        fixed = g if scale == "global" else None
        grid = MapGrid(shape, lut, title, kernels, fixed, own_ranges=scale == "map")

    def paint(a, inp, prob):
        caption = _caption(inp, prob, classes)
        info = {
            "scale": scale,
            "blur": list(blur) if blur else None,
            "value_range": [float(a.min()), float(a.max())],
            "shape": list(a.shape),
            "after_relu": after_relu,
        }
        if layer == "fc3":
            t = [f"fc3 · logits and softmax probabilities · {a.shape[0]} classes", ""]
            return probability_bars(inp.image, prob, a, classes, t, caption, inp.label), info
        if kind == "vector":
            vr = layer_ranges(a[None], "global" if scale == "global" else "layer", signed, g)[0]
            return vector_strip(inp.image, a, vr, lut, title, caption), info
        ranges = layer_ranges(a, scale, signed, g)
        dead = ~a.reshape(a.shape[0], -1).any(1)
        info["dead_channels"] = [int(i) for i in np.flatnonzero(dead)]
        bar = ranges[0] if scale == "layer" else None
        info["display_range"] = None if scale == "map" else list(ranges[0])
        return grid.draw(inp.image, a, ranges, caption, dead, bar), info

    return paint


def render_kernels(weights, meta, cmap: str | None = None) -> dict:
    img = kernel_sheet(
        weights["conv1.weight"],
        weights["conv2.weight"],
        colormap(cmap or "RdBu_r"),
    )
    return {
        "kernels.png": png_bytes(img, (cmap or "RdBu_r",)),
        "kernels.json": sidecar(meta, picture="kernels"),
    }


def render_diff(weights, meta, a: Input, b: Input, layers, cmap=None) -> dict:
    layers = [x for x in check_layers(layers) if LAYER_INFO[x][0] == "map"]
    if not layers:
        raise ConvseeError("--diff needs at least one map layer (conv1 ... pool2)")
    acts, probs = forward_all(weights, [a.image, b.image])
    files = {}
    for layer in layers:
        x, y = acts[layer][0], acts[layer][1]
        cos = float((x.ravel() @ y.ravel()) / (np.linalg.norm(x) * np.linalg.norm(y) or 1))
        signed = _signed(layer)
        vr = layer_ranges(np.stack([x, y])[None].reshape(1, -1), "layer", signed)[0]
        title = [
            f"{layer}: {a.name} vs {b.name}",
            f"cosine similarity of the whole layer: {cos:.3f} · predicted "
            f"{meta['classes'][int(probs[0].argmax())]} vs "
            f"{meta['classes'][int(probs[1].argmax())]}",
        ]
        img = diff_grid(
            a.image,
            b.image,
            x,
            y,
            (a.name, b.name),
            title,
            _lut(layer, cmap),
            colormap("RdBu_r"),
            vr,
        )
        stem = f"diff_{layer}_{_safe(a.name)}_vs_{_safe(b.name)}"
        files[f"{stem}.png"] = png_bytes(img, (_lut_name(layer, cmap), "RdBu_r"))
        files[f"{stem}.json"] = sidecar(
            meta,
            picture="diff",
            layer=layer,
            inputs=[a.name, b.name],
            cosine_similarity=cos,
            value_range=list(vr),
        )
    return files


def finish(files: dict, out_dir, t0: float) -> int:
    """Write the files, say how many pictures went where and how long it all took."""
    import time

    pictures = [p for p in write_outputs(files, out_dir) if p.suffix in (".png", ".gif")]
    seconds = time.perf_counter() - t0
    print(f"wrote {len(pictures)} pictures (+ JSON sidecars) to {out_dir}/ in {seconds:.2f} s")
    return 0


def write_outputs(files: dict, out_dir) -> list[Path]:
    """Write every rendered file under out_dir, all or nothing.

    The set is written into a temporary folder inside out_dir, then each file is moved into
    place; a file it replaces is set aside until all moves succeeded. On any failure (a full
    disk, Ctrl-C) the new files and folders go and the replaced ones come back, so out_dir
    holds exactly what it held before.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConvseeError(f"cannot write into {out_dir}: it is a file, not a folder")
    made: list[Path] = []  # folders this call created, to remove on failure
    placed: list[tuple[Path, Path | None]] = []  # (file now in place, its predecessor aside)
    stage = None
    try:
        made += _make_dirs(out_dir)
        stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=".convsee-", suffix=".tmp"))
        for i, data in enumerate(files.values()):
            (stage / str(i)).write_bytes(data)
        for i, rel in enumerate(files):
            target = out_dir / rel
            made += _make_dirs(target.parent)
            aside = None
            if target.is_symlink() or target.exists():
                if target.is_dir():
                    raise ConvseeError(f"cannot write {target}: a folder is in its place")
                aside = stage / f"old{i}"
                os.replace(target, aside)
            placed.append((target, aside))
            os.replace(stage / str(i), target)
    except BaseException as e:
        _undo(placed, stage, made)
        if isinstance(e, OSError):
            raise ConvseeError(
                f"cannot write into {out_dir}: {e.strerror or e}; nothing of the new set was "
                "kept and the files there before are untouched"
            ) from None
        raise
    shutil.rmtree(stage, ignore_errors=True)  # the replaced files, now unneeded
    return [out_dir / rel for rel in files]


def _make_dirs(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (outermost first)."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        raise ConvseeError(f"cannot write into {folder}: it is a file, not a folder")
    made = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise ConvseeError(f"cannot write into {d}: it is a file, not a folder") from None
            continue
        made.append(d)
    return made


def _undo(placed, stage, made) -> None:
    """Put back what write_outputs replaced, remove what it added (files, then folders)."""
    for target, aside in reversed(placed):
        try:
            if aside is not None:
                os.replace(aside, target)  # over the new file, if it got there
            else:
                target.unlink(missing_ok=True)
        except OSError:
            pass
    if stage is not None:
        shutil.rmtree(stage, ignore_errors=True)
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            pass
