"""What an INPUT names, and the model input it becomes.

An INPUT is an image file (any size, mode or polarity), `FILE.npy` (the model's input tensor
(C, H, W), passed unchanged), `sample:D` (the bundled sample of class D), or `test:N` /
`train:N` (item N of the dataset's split). Each resolves to an `Input`: the picture the model
sees (for display), the normalised tensor it is given, a short name for titles and file
names, the true label where known, and notes on what preprocessing did (for sidecars).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ConvseeError
from .transforms import Preprocess, denormalize, fit, load_npy, normalize

__all__ = [
    "Input",
    "samples",
    "resolve_input",
    "resolve_inputs",
    "prepare",
    "SAMPLE_INDICES",
    "INPUT_FORMS",
]

# MNIST test-set indices of the original project's ten sample digits, 0..9
SAMPLE_INDICES = (1487, 2266, 995, 1727, 8442, 3902, 2057, 3441, 6080, 6228)
INPUT_FORMS = (
    "an image file (PNG, JPEG, WebP, GIF, BMP), FILE.npy (the model's input tensor C,H,W), "
    "sample:D (bundled sample of class D), test:N or train:N (item N of the dataset)"
)
MAX_INDEX_DIGITS = 9  # test:N with more digits than this is not an index


@dataclass(frozen=True)
class Input:
    name: str  # e.g. "sample:3", "test:42", "photo.png"
    image: np.ndarray  # what the model sees, to show: (H, W) or (H, W, 3), float32 in [0, 1]
    label: int | None = None  # true class where known
    source: str = ""  # where it came from, for sidecars
    x: np.ndarray | None = None  # (C, H, W) float32, normalised: exactly the model's input
    notes: tuple[str, ...] = ()  # what preprocessing did

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.image.shape))
        label = "" if self.label is None else f", label={self.label}"
        return f"Input({self.name!r}, {shape}{label})"


def samples(dataset: str = "mnist") -> list[Input]:
    """The ten bundled samples, one per class, from the dataset's test set (for MNIST the
    original project's digits 0 to 9), as 28x28 images (no model input yet)."""
    name = "samples.npz" if dataset == "mnist" else f"samples-{dataset}.npz"
    try:
        f = resources.files("convsee").joinpath(f"assets/{name}").open("rb")
    except FileNotFoundError:
        raise ConvseeError(f"no bundled samples for dataset {dataset!r}", "dataset") from None
    with f:
        z = np.load(f)
        images, labels, indices = z["images"], z["labels"], z["indices"]
    return [
        Input(f"sample:{int(d)}", images[i].astype(np.float32) / 255, int(d), f"test:{int(n)}")
        for i, (d, n) in enumerate(zip(labels, indices, strict=True))
    ]


def prepare(inp: Input, prep: Preprocess) -> Input:
    """The input with its model tensor: a dataset image that already has the model's form
    (28x28 gray into a 28x28 MNIST model) is used as is, anything else is fitted."""
    if inp.x is not None:
        return inp
    c, h, w = prep.input_size
    img = inp.image
    if img.shape[:2] == (h, w) and prep.resize in ("mnist", "fashion", "none", "crop", "stretch"):
        show = img if c == 1 or img.ndim == 3 else np.repeat(img[..., None], c, axis=2)
        if c == 1 and img.ndim == 3:
            show = img @ np.array([0.299, 0.587, 0.114], np.float32)
        notes = () if c == 1 or img.ndim == 3 else (f"grayscale replicated to {c} channels",)
        return replace(inp, image=show.astype(np.float32), x=normalize(show, prep), notes=notes)
    g = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    if prep.resize in ("mnist", "fashion"):  # already in that form, only another size
        prep = replace(prep, resize="stretch")
    show, x, notes = fit(g, prep)
    return replace(inp, image=show, x=x, notes=tuple(notes))


_SPEC = re.compile(r"^(sample|test|train):(.*)$", re.S)  # S: "sample:3\n" is not sample 3


def resolve_input(spec, prep: Preprocess | None = None, data_dir=None, dataset="mnist") -> Input:
    """An Input from a spec string (see module doc), a path, a Pillow image or an array."""
    prep = prep or Preprocess()
    if not isinstance(spec, (str, Path)):
        a = np.asarray(spec) if not hasattr(spec, "mode") else None
        if a is not None:
            size = "x".join(map(str, prep.input_size))
            if a.dtype.kind not in "fiub" or a.ndim not in (2, 3):
                raise ConvseeError(
                    "{param}: an array is an image (H,W or H,W,C) or the model's input tensor "
                    f"({size}), not {a.dtype} of shape {tuple(a.shape)}",
                    "inputs",
                )
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise ConvseeError("{param}: the array holds NaN or infinite values", "inputs")
            if a.dtype.kind == "f" and tuple(a.shape) == tuple(prep.input_size):
                x = a.astype(np.float32)  # the model's input tensor, as a .npy file gives it
                notes = ("the model's input tensor, passed unchanged",)
                return Input("array", denormalize(x, prep), None, None, x, notes)
        if a is not None and a.dtype.kind == "f" and a.shape[:2] == prep.input_size[1:]:
            return prepare(Input("array", a.astype(np.float32)), prep)  # already model form
        show, x, notes = fit(spec, prep)
        return Input("array", show, x=x, notes=tuple(notes))
    spec = str(spec)
    m = _SPEC.match(spec)
    if m is None:
        if spec.endswith(".npy"):
            x = load_npy(spec, prep)
            return Input(
                Path(spec).name,
                denormalize(x, prep),
                None,
                spec,
                x,
                ("the model's input tensor, passed unchanged",),
            )
        try:
            show, x, notes = fit(spec, prep)
        except ConvseeError as e:  # name the file in every message ("blank image", ...)
            if str(e).startswith((f"{spec}: ", f"{spec} is a folder")):  # named already
                raise
            raise ConvseeError(f"{spec}: {e}") from None
        return Input(Path(spec).name, show, None, spec, x, tuple(notes))
    kind, n = m.group(1), m.group(2)
    if not (n.isascii() and n.isdigit() and len(n) <= MAX_INDEX_DIGITS):
        what = "D (0..9)" if kind == "sample" else "N (a non-negative integer)"
        raise ConvseeError(f"bad input {spec[:40]!r}: expected {kind}:{what}", "inputs")
    n = int(n)
    if kind == "sample":
        items = samples(dataset)
        if not 0 <= n < len(items):
            raise ConvseeError(
                f"bad input {spec!r}: sample classes are 0..{len(items) - 1}", "inputs"
            )
        return prepare(items[n], prep)
    from .idx import read_split

    split = read_split(kind, data_dir, dataset=dataset)
    if not 0 <= n < len(split.images):
        raise ConvseeError(
            f"bad input {spec!r}: {kind} index out of range 0..{len(split.images) - 1}", "inputs"
        )
    img = split.images[n].astype(np.float32) / 255
    return prepare(Input(spec, img, int(split.labels[n]), spec), prep)


def resolve_inputs(specs, prep: Preprocess | None = None, data_dir=None, dataset="mnist"):
    """Inputs for a list of specs; no specs: the ten samples."""
    prep = prep or Preprocess()
    if not specs:
        return [prepare(s, prep) for s in samples(dataset)]
    return [resolve_input(s, prep, data_dir, dataset) for s in specs]
