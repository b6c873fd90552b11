"""The `convsee` command: a thin layer over the Python API.

Every user-caused error ends as one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ConvseeError

__all__ = ["main"]


def _device(name: str) -> str:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise ConvseeError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConvseeError("--device mps: no MPS device is available")
    return name


def checkpoint_arg(a):
    """--checkpoint, or the shipped checkpoint of --dataset."""
    from ..models.checkpoint import default_checkpoint

    return a.checkpoint or default_checkpoint(getattr(a, "dataset", "mnist"))


def cmd_train(a) -> int:
    from ..run.train import Interrupted, TrainConfig, train

    cfg = TrainConfig(augment=a.augment, device=_device(a.device))
    for field in ("epochs", "batch_size", "lr", "seed"):
        if getattr(a, field) is not None:
            setattr(cfg, field, getattr(a, field))
    try:
        _, meta = train(
            cfg,
            a.data,
            a.out,
            resume=a.resume,
            progress=not a.quiet,
            snapshots=a.snapshots,
            dataset=a.dataset,
        )
    except Interrupted as e:
        hint = "; run the same command with --resume to continue" if e.resumable else ""
        raise ConvseeError(f"{e}{hint}") from None
    print(
        f"test accuracy {meta['test_accuracy']:.2%} after {meta['epochs_done']} epochs "
        f"({meta['wall_seconds']:.1f} s); wrote {a.out} and {Path(a.out).with_suffix('.json')}"
    )
    return 0


def cmd_evaluate(a) -> int:
    import io

    from ..datasets.idx import load_split
    from ..draw.core import save_image
    from ..draw.figures import confusion_image
    from ..models.checkpoint import atomic_write, check_writable
    from ..run.predict import load_model
    from ..run.train import evaluate

    if a.out:
        check_writable(a.out)  # before the work, not after it
    model, meta = load_model(checkpoint_arg(a), _device(a.device))
    test = load_split("test", a.data, dataset=a.dataset)
    acc, per_class, conf = evaluate(model, test, device=a.device)
    classes = meta["classes"]
    w = max(5, max(len(c) for c in classes) + 1)
    print(f"checkpoint {meta['path']}\ntest accuracy {acc:.2%}\n")
    print("true\\pred".ljust(w + 2) + "".join(c[:w].rjust(w) for c in classes) + "   accuracy")
    for i, row in enumerate(conf):
        print(
            classes[i][:w].ljust(w + 2)
            + "".join(str(v).rjust(w) for v in row)
            + f"   {per_class[i]:.2%}"
        )
    if a.out:
        buf = io.BytesIO()
        save_image(confusion_image(conf, classes, f"test accuracy {acc:.2%}"), buf)
        try:
            atomic_write(a.out, buf.getvalue())
        except OSError as e:
            raise ConvseeError(f"cannot write {a.out}: {e.strerror or e}") from None
        print(f"\nwrote {a.out}")
    return 0


def cmd_predict(a) -> int:
    from ..datasets.digits import save_gray_png
    from ..run.predict import load_model, predict

    model, meta = load_model(checkpoint_arg(a), _device(a.device))
    preds = predict(model, a.images or None, a.data, a.device, a.dataset)
    classes = meta["classes"]
    if a.show_input:
        Path(a.show_input).mkdir(parents=True, exist_ok=True)
    for p in preds:
        if a.show_input:
            stem = p.input.name.replace(":", "_").rsplit(".", 1)[0]
            save_gray_png(p.input.image, Path(a.show_input) / f"{stem}.png")
        if a.json:
            print(json.dumps(p.to_dict()))
            continue
        label = "" if p.input.label is None else f" (true {classes[p.input.label]})"
        top = sorted(range(len(classes)), key=lambda k: -p.probabilities[k])[:3]
        others = ", ".join(f"{classes[k]} {p.probabilities[k]:.1%}" for k in top)
        print(f"{p.input.name}: {classes[p.prediction]}{label}  [{others}]")
    return 0


def _blur(text: str | None):
    if text is None:
        return None
    try:
        k, sigma = text.split(",")
        return int(k), float(sigma)
    except ValueError:
        raise ConvseeError(f"--blur takes KERNEL,SIGMA such as 5,3; got {text!r}") from None


def cmd_render(a) -> int:
    import time

    from ..datasets.inputs import resolve_input, resolve_inputs
    from ..draw.render import RenderOptions, finish, render_diff, render_kernels, render_set
    from ..models.checkpoint import load_weights

    t0 = time.perf_counter()
    opts = RenderOptions(
        layers=tuple(x for x in a.layers.split(",") if x),
        scale=a.scale,
        cmap=a.cmap,
        blur=_blur(a.blur),
        with_kernels=a.with_kernels,
    )
    weights, meta = load_weights(checkpoint_arg(a))  # NumPy: rendering never imports torch
    if a.kernels:
        files = render_kernels(weights, meta, a.cmap)
    elif a.diff:
        x, y = (resolve_input(s, a.data, a.dataset) for s in a.diff)
        files = render_diff(weights, meta, x, y, opts.layers, a.cmap)
    else:
        inputs = resolve_inputs(a.inputs, a.data, a.dataset)
        files, probs, _ = render_set(weights, meta, inputs, opts)
        classes = meta["classes"]
        for inp, p in zip(inputs, probs, strict=True):
            true = "" if inp.label is None else f" (true {classes[inp.label]})"
            print(f"{inp.name}: predicted {classes[int(p.argmax())]} {p.max():.1%}{true}")
    return finish(files, a.out, t0)


def cmd_activations(a) -> int:
    import io

    import numpy as np

    from ..datasets.inputs import resolve_inputs
    from ..models.checkpoint import atomic_write
    from ..run.capture import activations, check_layers
    from ..run.predict import batch, load_model

    layers = check_layers(a.layers)
    if not a.output.endswith(".npz"):
        raise ConvseeError(f"-o must end in .npz, got {a.output!r}")
    model, meta = load_model(checkpoint_arg(a), _device(a.device))
    inputs = resolve_inputs(a.inputs, a.data, a.dataset)
    acts, probs = activations(model, batch([i.image for i in inputs], a.device), layers)
    buf = io.BytesIO()
    np.savez(buf, **acts, input=np.stack([i.image for i in inputs]), probabilities=probs)
    atomic_write(a.output, buf.getvalue())
    shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in acts.items())
    print(
        f"wrote {a.output}: {shapes} (batch axis first; inputs: "
        f"{', '.join(i.name for i in inputs)})"
    )
    return 0


def cmd_serve(a) -> int:
    import socket

    import uvicorn

    from ..web.server import create_app

    with socket.socket() as s:  # fail with one clear line, not a server traceback
        try:
            s.bind((a.host, a.port))
        except OSError as e:
            raise ConvseeError(f"cannot listen on {a.host}:{a.port}: {e.strerror}") from None
    app = create_app(checkpoint_arg(a), a.data, a.dataset)
    print(f"convsee: serving on http://{a.host}:{a.port}/  (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    p = argparse.ArgumentParser(prog="convsee", description="What does a convolution see?")
    p.add_argument("--version", action="version", version=f"convsee {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp, data=True, checkpoint=True, device=True):
        if data:
            sp.add_argument("--data", metavar="DIR", help="folder with the MNIST IDX files")
            sp.add_argument(
                "--dataset",
                default="mnist",
                choices=["mnist", "fashion-mnist"],
                help="also picks the shipped checkpoint and the samples",
            )
        if checkpoint:
            sp.add_argument("--checkpoint", metavar="F", help=".safetensors or .pth state dict")
        if device:
            sp.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps"])

    t = sub.add_parser("train", help="train LeNet-5 on MNIST")
    common(t, checkpoint=False)
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="peak learning rate")
    t.add_argument("--seed", type=int)
    t.add_argument("--augment", action="store_true", help="random affine distortions")
    t.add_argument("--out", default="lenet5.safetensors", metavar="FILE.safetensors")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument(
        "--snapshots",
        type=int,
        default=0,
        metavar="N",
        help="record the conv layers N times for `convsee evolution`",
    )
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="test accuracy and confusion matrix")
    common(e)
    e.add_argument("--out", default="confusion.png", help="confusion matrix PNG")
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="classify images (default: the ten samples)")
    common(pr)
    pr.add_argument("images", nargs="*", metavar="INPUT", help="image file, sample:D, test:N")
    pr.add_argument("--show-input", metavar="DIR", help="save the 28x28 the model saw")
    pr.add_argument("--json", action="store_true", help="one JSON object per image")
    pr.set_defaults(func=cmd_predict)
    from ..models.lenet_layers import LAYERS

    r = sub.add_parser("render", help="pictures of what each layer sees")
    common(r, device=False)  # rendering runs in NumPy on the CPU
    r.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="image file, sample:D, test:N or train:N (default: the ten samples)",
    )
    r.add_argument("--out", default="media", metavar="DIR")
    r.add_argument("--layers", default="conv1,conv2", help=f"comma-separated: {','.join(LAYERS)}")
    r.add_argument(
        "--scale",
        choices=["map", "layer", "global"],
        help="colour range per map, per layer and input, or per layer across inputs "
        "(default: global, so pictures and GIF frames compare)",
    )
    r.add_argument("--cmap", help="matplotlib colormap (default: RdBu_r signed, viridis >= 0)")
    r.add_argument("--blur", metavar="K,SIGMA", help="Gaussian blur for the _blur pictures")
    r.add_argument("--kernels", action="store_true", help="draw the conv kernels only")
    r.add_argument("--with-kernels", action="store_true", help="each channel's kernel too")
    r.add_argument("--diff", nargs=2, metavar=("A", "B"), help="compare two inputs' maps")
    r.set_defaults(func=cmd_render)

    ac = sub.add_parser("activations", help="save every layer's output as arrays (.npz)")
    common(ac)
    ac.add_argument("inputs", nargs="+", metavar="INPUT")
    ac.add_argument("--layers", default=",".join(LAYERS))
    ac.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    ac.set_defaults(func=cmd_activations)
    from .views import add_view_commands

    add_view_commands(sub, common)

    sv = sub.add_parser("serve", help="a live page: draw a digit, watch every layer")
    common(sv, device=False)
    sv.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    sv.add_argument("--port", type=int, default=8000)
    sv.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..run.threads import start

    start(args.command)  # torch commands: threads by how busy the machine is (run/threads.py)
    try:
        return args.func(args)
    except ConvseeError as e:
        print(f"convsee: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convsee: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
