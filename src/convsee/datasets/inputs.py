"""What an INPUT names: an image file, `sample:D` (a bundled sample digit), `test:N`, `train:N`.

Every input resolves to an `Input`: the 28x28 image the model sees (white ink on black,
float in [0, 1]), a short name for titles and file names, and the true label where known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..errors import ConvseeError
from .digits import preprocess_for

__all__ = ["Input", "samples", "resolve_input", "resolve_inputs", "SAMPLE_INDICES"]

# MNIST test-set indices of the original project's ten sample digits, 0..9
SAMPLE_INDICES = (1487, 2266, 995, 1727, 8442, 3902, 2057, 3441, 6080, 6228)


@dataclass(frozen=True)
class Input:
    name: str  # e.g. "sample:3", "test:42", "photo.png"
    image: np.ndarray  # (28, 28) float32 in [0, 1], white ink on black
    label: int | None = None  # true class where known
    source: str = ""  # where it came from, for sidecars


def samples(dataset: str = "mnist") -> list[Input]:
    """The ten bundled samples, one per class, from the dataset's test set (for MNIST the
    original project's digits 0 to 9)."""
    name = "samples.npz" if dataset == "mnist" else f"samples-{dataset}.npz"
    with resources.files("convsee").joinpath(f"assets/{name}").open("rb") as f:
        z = np.load(f)
        images, labels, indices = z["images"], z["labels"], z["indices"]
    return [
        Input(f"sample:{int(d)}", images[i].astype(np.float32) / 255, int(d), f"test:{int(n)}")
        for i, (d, n) in enumerate(zip(labels, indices, strict=True))
    ]


_SPEC = re.compile(r"^(sample|test|train):(-?\d+)$")


def resolve_input(spec, data_dir=None, dataset: str = "mnist") -> Input:
    """An Input from a spec string (see module doc), a path, a PIL image or an array."""
    if not isinstance(spec, str):
        return Input("array", preprocess_for(spec, dataset))
    m = _SPEC.match(spec)
    if m is None:
        if re.match(r"^(sample|test|train):", spec):
            raise ConvseeError(f"bad input {spec!r}: expected sample:D, test:N or train:N")
        return Input(spec.rsplit("/", 1)[-1], preprocess_for(spec, dataset), None, spec)
    kind, n = m.group(1), int(m.group(2))
    if kind == "sample":
        if not 0 <= n <= 9:
            raise ConvseeError(f"bad input {spec!r}: sample digits are 0..9")
        return samples(dataset)[n]
    from .idx import load_split

    split = load_split(kind, data_dir, dataset=dataset)
    if not 0 <= n < len(split.images):
        raise ConvseeError(
            f"bad input {spec!r}: {kind} index out of range 0..{len(split.images) - 1}"
        )
    return Input(spec, split.images[n].numpy().astype(np.float32) / 255, int(split.labels[n]), spec)


def resolve_inputs(specs, data_dir=None, dataset: str = "mnist") -> list[Input]:
    """Inputs for a list of specs; no specs: the ten samples."""
    if not specs:
        return samples(dataset)
    return [resolve_input(s, data_dir, dataset) for s in specs]
