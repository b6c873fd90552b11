"""Options shared by the commands, defined once so every command spells them the same way,
and the parsers for their values (one parser for layer lists, channels, blur, sizes).

Only this package speaks of flags; it turns their values into library calls.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from ..errors import ConvseeError

__all__ = [
    "Formatter",
    "add_model",
    "add_device",
    "add_data",
    "add_out",
    "add_layers",
    "add_channels",
    "add_inputs",
    "network",
    "parse_blur",
    "parse_channels",
    "MAX_BLUR_KERNEL",
]

MAX_BLUR_KERNEL = 31  # px; a Gaussian this wide already flattens a 28x28 map


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
        "(an nn.Module class or a function returning one, called with no arguments)",
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
        choices=["mnist", "fashion-mnist"],
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


def add_layers(p, default: str | None, help: str) -> None:
    p.add_argument("--layers", default=default, metavar="L1,L2,...", help=help)


def add_channels(p) -> None:
    p.add_argument(
        "--channels",
        metavar="all|top:K|A-B|i,j",
        help="which channels of a wide layer to draw (default: all up to 64, else top:64 by "
        "mean activation); the colour range always covers every channel",
    )


def add_inputs(p, nargs: str = "*", default_help: str = "the bundled samples") -> None:
    from ..datasets.inputs import INPUT_FORMS

    p.add_argument(
        "inputs", nargs=nargs, metavar="INPUT", help=f"{INPUT_FORMS} (default: {default_help})"
    )


# ------------------------------------------------------------------------------------------------


def device(name: str) -> str:
    if name == "cpu":
        return name
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise ConvseeError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConvseeError("--device mps: no MPS device is available")
    return name


def _floats(text: str | None, flag: str):
    if text is None:
        return None
    try:
        vals = tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise ConvseeError(f"{flag} takes numbers separated by commas, got {text[:40]!r}") from None
    if not vals:
        raise ConvseeError(f"{flag} needs at least one number")
    return vals


def _size(text: str | None):
    if text is None:
        return None
    parts = [x for x in re.split(r"[,x ]+", str(text).strip()) if x]
    if len(parts) != 3 or not all(re.fullmatch(r"-?[0-9]{1,40}", x) for x in parts):
        raise ConvseeError(f"--input-size takes C,H,W such as 3,224,224; got {text[:40]!r}")
    c, h, w = (int(x) for x in parts)
    if not (1 <= c <= 64 and 1 <= h <= 4096 and 1 <= w <= 4096):
        raise ConvseeError(
            f"--input-size {','.join(parts)[:40]} is out of range (C 1..64, H and W 1..4096)"
        )
    return (c, h, w)


def resolve_dataset(a) -> None:
    """a.dataset when --dataset was not given: the one the checkpoint records, else mnist."""
    if getattr(a, "dataset", "mnist") is not None:
        return
    from ..datasets.idx import trained_on
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
        "input_size": _size(getattr(a, "input_size", None)),
        "mean": _floats(getattr(a, "mean", None), "--mean"),
        "std": _floats(getattr(a, "std", None), "--std"),
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
    if need_torch and net.kind == "lenet":
        net.torch_model(dev)
    import sys

    for note in net.notes:
        print(f"convsee: note: {note}", file=sys.stderr)
    for warning in net.warnings:
        print(f"convsee: warning: {warning}", file=sys.stderr)
    return net


def parse_blur(text: str | None):
    if text is None:
        return None
    try:
        k, sigma = str(text).split(",")
        k, sigma = int(k), float(sigma)
    except ValueError:
        raise ConvseeError(
            f"--blur takes KERNEL,SIGMA such as 5,3; got {str(text)[:40]!r}"
        ) from None
    if not (1 <= k <= MAX_BLUR_KERNEL and k % 2 == 1):
        raise ConvseeError(f"--blur kernel must be odd, 1..{MAX_BLUR_KERNEL}; got {k}")
    if not (0 < sigma <= 50):
        raise ConvseeError(f"--blur sigma must be in (0, 50]; got {sigma:g}")
    return k, sigma


def parse_channels(text: str | None, n: int, default_top: int = 64, layer: str | None = None):
    """(channel indices to draw, how they were chosen): 'all', 'top:K', 'A-B', 'i,j,...'.

    None: all of them up to default_top channels, else the top default_top (chosen later by
    mean activation, so returned as ('top', K)). layer: its name, for the error message."""
    if text is None:
        return ("all", None) if n <= default_top else ("top", default_top)
    t = str(text).strip()
    if t == "all":
        return ("all", None)
    if t.startswith("top:"):
        k = t[4:]
        if not (k.isascii() and k.isdigit() and 1 <= int(k) <= 100000):
            raise ConvseeError(f"--channels top:K needs a positive K, got {t[:40]!r}")
        return ("top", min(int(k), n))
    picked: list[int] = []
    for part in t.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d{1,6})-(\d{1,6})", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise ConvseeError(f"--channels range {part} runs backwards")
            picked += range(lo, hi + 1)
        elif part.isascii() and part.isdigit() and len(part) <= 6:
            picked.append(int(part))
        else:
            raise ConvseeError(f"--channels takes all, top:K, A-B or i,j,...; got {t[:40]!r}")
    bad = [c for c in picked if c >= n]
    if bad:
        raise ConvseeError(
            f"--channels {bad[0]} is out of range: "
            f"{'the layer' if layer is None else f'layer {layer}'} has channels 0..{n - 1}"
        )
    return ("list", sorted(dict.fromkeys(picked)))


def out_dir_ok(path, flag: str = "--out") -> Path:
    """flag (--out) must name a folder (it may not exist yet), not an existing file, below a
    folder this user can write into. Creates nothing."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConvseeError(f"{flag} {p} is a file; give a folder")
    _writable_parent(p, flag, p)
    return p


def out_file_ok(path, flag: str = "--out", suffix: str | None = None) -> Path:
    """flag names a file to write (suffix: the ending it must have): not a folder, below a
    folder this user can write into. Creates nothing; write it with write_file."""
    p = Path(path)
    if p.is_dir():
        raise ConvseeError(f"{flag} {p} is a folder; give a file name")
    if suffix is not None and p.suffix.lower() != suffix:
        raise ConvseeError(f"{flag} must end in {suffix}, got {str(path)[:80]}")
    _writable_parent(p.parent, flag, p)
    return p


def _writable_parent(p: Path, flag: str, shown: Path) -> None:
    """The nearest existing folder at or above p must be a folder this user can write into."""
    parent = p if p.exists() else next((q for q in p.parents if q.exists()), Path("."))
    if not parent.is_dir():
        raise ConvseeError(f"{flag} {shown}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConvseeError(f"{flag} {shown}: {parent} is not writable")


def write_file(path, data: bytes) -> None:
    """Write one output file all or nothing: the folders it needs are made only for it, and
    removed again if writing fails."""
    from ..draw.render import write_outputs

    p = Path(path)
    write_outputs({p.name: data}, p.parent)


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
