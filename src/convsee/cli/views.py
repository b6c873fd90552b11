"""The `convsee` subcommands that look beyond activation maps (exemplars, optimize, animate,
evolution, sweep, attribution). Each writes PNGs and GIFs with JSON sidecars into --out and
runs on the shipped defaults with no arguments. A thin layer over the modules named."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..draw.render import finish
from ..errors import ConvseeError


def _ckpt(a):
    from . import checkpoint_arg

    return checkpoint_arg(a)


__all__ = ["add_view_commands"]


def _layers(text: str, allowed: tuple[str, ...]) -> list[str]:
    from ..models.lenet_layers import check_layers

    layers = check_layers(text)
    bad = [x for x in layers if x not in allowed]
    if bad:
        raise ConvseeError(f"layer {bad[0]!r} not supported here; valid: {', '.join(allowed)}")
    return layers


def cmd_exemplars(a) -> int:
    from ..datasets.idx import load_split
    from ..draw.render import png_bytes, sidecar
    from ..draw.views import exemplar_image
    from ..models.checkpoint import load_checkpoint
    from ..run.exemplars import top_exemplars

    t0 = time.perf_counter()
    layers = _layers(a.layers, ("conv1", "conv2", "fc1", "fc2", "fc3"))
    if not 1 <= a.k <= 64:
        raise ConvseeError(f"-k must be 1..64, got {a.k}")
    model, meta = load_checkpoint(_ckpt(a))
    test = load_split("test", a.data, dataset=a.dataset)
    files = {}
    for layer in layers:
        ex = top_exemplars(model, test.images, layer, a.k)
        n = len(test.images)
        img = exemplar_image(ex, f"{layer}: top {a.k} of {n:,} test images, per channel")
        files[f"exemplars_{layer}.png"] = png_bytes(img)
        files[f"exemplars_{layer}.json"] = sidecar(
            meta,
            picture="exemplars",
            layer=layer,
            k=a.k,
            dataset_split="test",
            indices=ex.indices.tolist(),
            values=np.round(ex.values, 5).tolist(),
            positions=ex.positions.tolist(),
        )
    return finish(files, a.out, t0)


def cmd_optimize(a) -> int:
    import torch

    from ..datasets.idx import MEAN, STD
    from ..draw.render import png_bytes, sidecar
    from ..draw.views import optimize_image
    from ..models.checkpoint import load_checkpoint
    from ..run.optimize import OptimizeConfig, maximize, target_value

    t0 = time.perf_counter()
    layers = _layers(a.layers, ("conv1", "conv2", "fc1", "fc2", "fc3"))
    model, meta = load_checkpoint(_ckpt(a))
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


def cmd_animate(a) -> int:
    from ..datasets.inputs import resolve_input
    from ..draw.animate import conv_frame, pool_frame
    from ..draw.render import gif_bytes, png_bytes, sidecar
    from ..models.checkpoint import load_weights
    from ..models.lenet_numpy import forward_all, normalize
    from ..run.animate import conv_steps, pool_steps, schedule

    t0 = time.perf_counter()
    if a.layer not in ("conv1", "conv2", "pool1", "pool2"):
        raise ConvseeError(f"--layer must be conv1, conv2, pool1 or pool2, got {a.layer!r}")
    weights, meta = load_weights(_ckpt(a))
    inp = resolve_input(a.input, a.data, a.dataset)
    acts, _ = forward_all(weights, [inp.image])
    n_ch = 6 if a.layer in ("conv1", "pool1") else 16
    if not 0 <= a.channel < n_ch:
        raise ConvseeError(f"--channel must be 0..{n_ch - 1} for {a.layer}, got {a.channel}")
    c = a.channel
    name = f"animate_{a.layer}_ch{c}"
    if a.layer.startswith("conv"):
        x = normalize([inp.image])[0] if a.layer == "conv1" else acts["pool1"][0]
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


def cmd_evolution(a) -> int:
    from ..datasets.inputs import resolve_input
    from ..draw.core import colormap
    from ..draw.figures import MapGrid, kernel_sheet
    from ..draw.render import gif_bytes, png_bytes, sidecar
    from ..models.checkpoint import default_checkpoint, load_weights
    from ..run.evolution import load_snapshots, snapshot_maps

    t0 = time.perf_counter()
    ckpt = Path(a.checkpoint) if a.checkpoint else default_checkpoint(a.dataset)
    _, meta = load_weights(ckpt)
    snaps = load_snapshots(ckpt)
    inp = resolve_input(a.input, a.data, a.dataset)
    spe = int(snaps.get("steps_per_epoch", 1))
    lut = colormap("RdBu_r")
    lim = float(max(np.abs(snaps["conv1.weight"]).max(), np.abs(snaps["conv2.weight"]).max()))
    labels = [
        f"step {s} (epoch {s / spe:.2f}) · test accuracy {acc:.2%}"
        for s, acc in zip(snaps["step"], snaps["accuracy"], strict=True)
    ]
    kframes = [
        kernel_sheet(
            snaps["conv1.weight"][i],
            snaps["conv2.weight"][i],
            lut,
            lim,
            f"kernels forming · {labels[i]}",
        )
        for i in range(len(labels))
    ]
    files = {
        "evolution_kernels.gif": gif_bytes(kframes, ("RdBu_r",), a.frame_ms),
        "evolution_kernels_final.png": png_bytes(kframes[-1], ("RdBu_r",)),
    }
    c1, c2 = snapshot_maps(snaps, inp.image)
    for layer, maps in (("conv1", c1), ("conv2", c2)):
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
        files[f"evolution_{layer}.gif"] = gif_bytes(frames, ("RdBu_r",), a.frame_ms)
    side = sidecar(
        meta,
        picture="evolution",
        input=inp.name,
        steps=snaps["step"].tolist(),
        test_accuracy=np.round(snaps["accuracy"], 5).tolist(),
        frame_ms=a.frame_ms,
    )
    files["evolution.json"] = side
    return finish(files, a.out, t0)


def cmd_sweep(a) -> int:
    from ..datasets.inputs import resolve_input
    from ..draw.core import colormap
    from ..draw.figures import MapGrid
    from ..draw.render import gif_bytes, sidecar
    from ..models.checkpoint import load_weights
    from ..models.lenet_layers import LAYER_INFO
    from ..models.lenet_numpy import forward_all
    from ..run.sweep import KINDS, channel_similarity, perturb

    t0 = time.perf_counter()
    kinds = KINDS if a.kind == "all" else [a.kind]
    layer = _layers(a.layer, ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2"))[0]
    weights, meta = load_weights(_ckpt(a))
    inp = resolve_input(a.input, a.data, a.dataset)
    classes = meta["classes"]
    signed = not LAYER_INFO[layer][1]
    lut = colormap("RdBu_r" if signed else "viridis")
    files = {}
    for kind in kinds:
        imgs, labels = perturb(inp.image, kind)
        acts, probs = forward_all(weights, imgs)
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


def cmd_attribution(a) -> int:
    from ..datasets.inputs import resolve_input
    from ..draw.render import png_bytes, sidecar
    from ..draw.views import attribution_image
    from ..models.checkpoint import load_checkpoint
    from ..run.attribution import grad_cam, saliency
    from ..run.predict import predict

    t0 = time.perf_counter()
    model, meta = load_checkpoint(_ckpt(a))
    classes = meta["classes"]
    inputs = [resolve_input(s, a.data, a.dataset) for s in (a.inputs or ["sample:3", "sample:7"])]
    files = {}
    for inp in inputs:
        pred = predict(model, [inp], dataset=a.dataset)[0]
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


def add_view_commands(sub, common) -> None:
    e = sub.add_parser("exemplars", help="top-k test patches for every channel")
    common(e, device=False)
    e.add_argument("--layers", default="conv1,conv2", help="conv1, conv2, fc1, fc2, fc3")
    e.add_argument("-k", type=int, default=9)
    e.set_defaults(func=cmd_exemplars)

    o = sub.add_parser("optimize", help="the input each channel or class wants most")
    common(o, data=False, device=False)
    o.add_argument("--layers", default="conv1,conv2,fc3")
    o.add_argument("--steps", type=int, default=150)
    o.add_argument("--seed", type=int, default=0)
    o.set_defaults(func=cmd_optimize)

    an = sub.add_parser("animate", help="a kernel sliding over the input, or max pooling")
    common(an, device=False)
    an.add_argument("input", nargs="?", default="sample:3", metavar="INPUT")
    an.add_argument("--layer", default="conv1", help="conv1, conv2, pool1 or pool2")
    an.add_argument("--channel", type=int, default=2)
    an.add_argument("--frame-ms", type=int, default=150)
    an.set_defaults(func=cmd_animate)

    ev = sub.add_parser("evolution", help="GIFs of the filters forming during training")
    common(ev, checkpoint=False, device=False)
    ev.add_argument("checkpoint", nargs="?", help="trained with --snapshots (default: shipped)")
    ev.add_argument("--input", default="sample:3")
    ev.add_argument("--frame-ms", type=int, default=400)
    ev.set_defaults(func=cmd_evolution)

    sw = sub.add_parser("sweep", help="maps as the input is blurred, shifted, rotated, ...")
    common(sw, device=False)
    sw.add_argument("input", nargs="?", default="sample:3", metavar="INPUT")
    sw.add_argument(
        "--kind", default="all", choices=["all", "blur", "shift", "rotate", "noise", "occlude"]
    )
    sw.add_argument("--layer", default="conv1")
    sw.add_argument("--frame-ms", type=int, default=500)
    sw.set_defaults(func=cmd_sweep)

    at = sub.add_parser("attribution", help="saliency and Grad-CAM for a class")
    common(at, device=False)
    at.add_argument("inputs", nargs="*", metavar="INPUT")
    at.add_argument("--target", type=int, help="class index (default: the prediction)")
    at.set_defaults(func=cmd_attribution)

    for sp in (e, o, an, ev, sw, at):
        sp.add_argument("--out", default="media", metavar="DIR")
