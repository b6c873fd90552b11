"""Options shared by the commands, defined once so every command spells them the same way,
turned into library calls. The grammars of their values (channels, blur, sizes) are the
library's (convsee.values); errors name parameters, which cli/errors.py turns into flags.

Only this package speaks of flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..datasets.registry import DATASETS, trained_on
from ..errors import ConvseeError
from ..files import out_dir_ok, out_file_ok, write_file
from ..values import MAX_BLUR_KERNEL, parse_blur, parse_channels, parse_floats, parse_size

__all__ = [
    "Formatter",
    "add_model",
    "add_device",
    "add_data",
    "add_out",
    "add_layers",
    "add_layer",
    "add_channels",
    "add_channel_layers",
    "add_batch_size",
    "add_gif_out",
    "add_input_and_model",
    "write_view",
    "picked",
    "finish",
    "wrote",
    "add_quiet",
    "check_ranges",
    "add_inputs_and_model",
    "network",
    "parse_blur",
    "parse_channels",
    "MAX_BLUR_KERNEL",
    "out_dir_ok",
    "out_file_ok",
    "write_file",
]


class Formatter(argparse.RawDescriptionHelpFormatter):
    """--help shows each option's default (unless its help says it already, or there is
    none), and descriptions keep their line breaks."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            "default:" not in text
            and (action.option_strings or action.nargs == "?")
            and action.default not in (None, False, argparse.SUPPRESS)
        ):
            text += " (default: %(default)s)"
        return text


def add_model(p, *, device: bool = True, checkpoint_help: str | None = None) -> None:
    g = p.add_argument_group("model (default: LeNet-5 with the shipped weights of --dataset)")
    g.add_argument(
        "--model",
        metavar="SPEC",
        help="your model: hf:DIR_OR_ID (a Hugging Face image classifier: its folder or hub ID; "
        "its preprocessing and class names come with it), FILE.py:Name or package.module:Name "
        "(an nn.Module class or a function returning one, called with no arguments), or "
        "FILE.py alone for the one nn.Module class it defines",
    )
    g.add_argument(
        "--checkpoint",
        metavar="FILE",
        help=checkpoint_help
        or "weights: .safetensors, or a .pth/.pt state dict (read without running code)",
    )
    g.add_argument(
        "--trust",
        action="store_true",
        help="allow a TorchScript or torch.export file as --checkpoint (these can run code)",
    )
    g.add_argument(
        "--output",
        metavar="K|NAME",
        help="which output of a model returning a tuple or dict holds the class scores "
        "(default: the first)",
    )
    g.add_argument(
        "--input-size",
        metavar="C,H,W",
        help="the input the model takes, e.g. 3,224,224 (default: from the checkpoint)",
    )
    g.add_argument(
        "--mean",
        metavar="M[,M,M]",
        help="per-channel mean on the [0, 1] pixel scale (default: from the checkpoint)",
    )
    g.add_argument(
        "--std",
        metavar="S[,S,S]",
        help="per-channel std on the [0, 1] pixel scale (default: from the checkpoint)",
    )
    g.add_argument(
        "--resize",
        choices=["crop", "stretch", "pad", "none", "mnist", "fashion"],
        help="how an image of another size is fitted: crop (shorter side, centre cut), "
        "stretch, pad, none, or the digit/item forms mnist and fashion",
    )
    g.add_argument("--labels", metavar="FILE", help="class names, one a line")
    g.add_argument(
        "--preprocess",
        metavar="FILE.json",
        help="the preprocessing fields (input_size, mean, std, resize, crop_pct, resize_size, "
        "interpolation, labels) as JSON",
    )
    if device:
        add_device(g)


def add_device(p) -> None:
    p.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda", "mps"], help="where torch runs"
    )


def add_data(p, *, help_data: str = "folder with the dataset's IDX files") -> None:
    p.add_argument("--data", metavar="DIR", help=help_data)
    p.add_argument(
        "--dataset",
        default=None,
        choices=list(DATASETS),
        help="picks the data, the samples and LeNet's shipped checkpoint (default: the "
        "dataset a given checkpoint records, else mnist)",
    )


def add_out(p, default: str, *, kind: str = "DIR", help: str | None = None) -> None:
    p.add_argument(
        "--out",
        default=default,
        metavar=kind,
        help=help
        or ("folder for the pictures and their JSON sidecars" if kind == "DIR" else "file"),
    )


def add_layers(p, default: str | None, help: str, *, alias: bool = False) -> None:
    """--layers L1,L2,...; alias: also --layer, hidden (the older spelling of some commands)."""
    p.add_argument("--layers", default=default, metavar="L1,L2,...", help=help)
    if alias:
        p.add_argument("--layer", dest="layers", help=argparse.SUPPRESS)


def _one_layer(value: str) -> str:
    if "," in value:
        raise argparse.ArgumentTypeError(f"this command draws one layer, got {value[:80]!r}")
    return value


def add_channel_layers(p, default: str) -> None:
    """--layers (and the older --layer) and --channels of a command that shows every channel of
    some layers; default: which layers it shows without --layers."""
    add_layers(
        p,
        None,
        f"layers: names from `convsee layers`, globs, type:Conv2d (default: {default})",
        alias=True,
    )
    add_channels(p)


def add_layer(p, help: str) -> None:
    """--layers L for a command that shows one layer (spelt as the commands taking several
    are), into a.layer; --layer, its older spelling, still works but is not listed."""
    p.add_argument("--layers", dest="layer", metavar="L", type=_one_layer, help=help)
    p.add_argument("--layer", dest="layer", type=_one_layer, help=argparse.SUPPRESS)


def add_input_and_model(p, help: str, default: str = "sample:3") -> None:
    """The one INPUT of a command that shows one input, then the model options and --data
    (_model_reading)."""
    p.add_argument("input", nargs="?", default=default, metavar="INPUT", help=help)
    _model_reading(p)


def add_gif_out(p, frame_ms: int, help: str = "milliseconds per GIF frame") -> None:
    """--frame-ms (default: frame_ms) and --out of a command writing GIFs."""
    p.add_argument("--frame-ms", type=int, default=frame_ms, help=help)
    add_out(p, "media")


def add_batch_size(p) -> None:
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass")


def add_quiet(p) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def check_ranges(*checks) -> None:
    """Each (flag, value, lo, hi) in range, else one line naming the flag (hi None: no top)."""
    for flag, v, lo, hi in checks:
        if v is None:
            continue
        if hi is None and not v >= lo:
            raise ConvseeError(f"{flag} must be >= {lo}, got {v}")
        if hi is not None and not lo <= v <= hi:
            raise ConvseeError(f"{flag} must be {lo}..{hi}, got {v}")


def add_channels(p) -> None:
    p.add_argument(
        "--channels",
        metavar="all|top:K|A-B|i,j",
        help="which channels of a wide layer to draw (default: all up to 64, else top:64 by "
        "mean activation); the colour range always covers every channel",
    )


def add_inputs_and_model(p, nargs: str = "*", default_help: str = "the bundled samples") -> None:
    """The INPUTs of a command, then the model options and --data (_model_reading)."""
    from ..datasets.inputs import INPUT_FORMS

    p.add_argument(
        "inputs", nargs=nargs, metavar="INPUT", help=f"{INPUT_FORMS} (default: {default_help})"
    )
    _model_reading(p)


def _model_reading(p) -> None:
    """The model that reads a command's INPUTs (add_model; --device is where a torch model
    runs, LeNet-5 alone runs in NumPy) and --data/--dataset, where test:N and train:N come
    from: the same for every command taking INPUTs."""
    add_model(p)
    add_data(p, help_data="folder with the dataset's IDX files (for test:N, train:N)")


# ------------------------------------------------------------------------------------------------


def wrote(n: int, out_dir, seconds: float) -> str:
    """The last line of a command that writes pictures."""
    what = "picture" if n == 1 else "pictures"
    return f"wrote {n} {what} (+ JSON sidecars) to {out_dir}/ in {seconds:.2f} s"


def finish(files: dict, out_dir, t0: float) -> int:
    """Write the files (all or nothing), say how many pictures went where and how long it
    all took (since t0)."""
    import time

    from ..files import write_outputs

    pictures = [p for p in write_outputs(files, out_dir) if p.suffix in (".png", ".gif")]
    print(wrote(len(pictures), out_dir, time.perf_counter() - t0))
    return 0


def picked(a, *names: str) -> dict:
    """{name: a.name} for each name: the parsed flags a command hands on as they are, each to
    the library parameter of the same name (a flag reaching a parameter of another name, or
    changed on the way, is written beside it as param=value)."""
    return {name: getattr(a, name) for name in names}


def write_view(a, view, **kwargs) -> int:
    """The whole of a view command: --out checked before the work, the Network of the flags,
    view(net, **kwargs) (a view function returning Figures) and its files written to --out
    with one line saying how many pictures went where and how long it took."""
    import time

    t0 = time.perf_counter()
    out_dir_ok(a.out)
    net = network(a)
    return finish(view(net, **kwargs).files(), a.out, t0)


def device(name: str) -> str:
    if name == "cpu":
        return name
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise ConvseeError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConvseeError("--device mps: no MPS device is available")
    return name


def resolve_dataset(a) -> None:
    """a.dataset when --dataset was not given: the one the checkpoint records, else mnist."""
    if getattr(a, "dataset", "mnist") is not None:
        return
    from ..models.checkpoint import peek_meta

    ckpt = getattr(a, "checkpoint", None)
    a.dataset = trained_on(peek_meta(ckpt) if ckpt and Path(ckpt).is_file() else None)


def network(a, *, need_torch: bool = False):
    """The Network the flags name (LeNet-5 in NumPy unless --model or need_torch)."""
    from ..datasets.transforms import read_preprocess
    from ..models.load import load_network

    fields: dict = {}
    if getattr(a, "preprocess", None):
        fields.update(read_preprocess(a.preprocess))
    flags = {
        "input_size": parse_size(getattr(a, "input_size", None)),
        "mean": parse_floats(getattr(a, "mean", None), "mean"),
        "std": parse_floats(getattr(a, "std", None), "std"),
        "resize": getattr(a, "resize", None),
    }
    fields.update({k: v for k, v in flags.items() if v is not None})
    dev = device(getattr(a, "device", "cpu") or "cpu")
    net = load_network(
        getattr(a, "model", None),
        getattr(a, "checkpoint", None),
        dataset=getattr(a, "dataset", "mnist") or "mnist",
        trust=getattr(a, "trust", False),
        output=getattr(a, "output", None),
        preprocess=fields,
        labels=getattr(a, "labels", None),
        device=dev,
    )
    if need_torch:
        net.torch_model(dev)
    import sys

    for note in net.notes:
        print(f"convsee: note: {note}", file=sys.stderr)
    for warning in net.warnings:
        print(f"convsee: warning: {warning}", file=sys.stderr)
    return net


def data_dir_ok(a) -> None:
    """An explicit --data DIR must be an existing folder: a typo must not become a new folder
    that a dataset is downloaded into. (Without --data, the default places may be made.)"""
    d = getattr(a, "data", None)
    if d is None:
        return
    p = Path(d).expanduser()
    if not p.exists():
        raise ConvseeError(f"--data {str(d)[:200]}: no such folder")
    if not p.is_dir():
        raise ConvseeError(f"--data {str(d)[:200]} is a file; give the folder that holds the data")
