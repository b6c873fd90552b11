"""LeNet-5 as ONE table: the torch module (models/lenet.py), the NumPy forward and its
ModelSpec (models/lenet_numpy.py), the state-dict shapes checkpoints are checked against
(here) and what the views do by default (LeNetNetwork in models/network.py) are all
generated from `LENET5`. Adding, removing or changing a row changes all of them.

Pure Python (no torch, no NumPy): checkpoints are checked against it before anything heavy
is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Row",
    "LENET5",
    "LAYERS",
    "row",
    "out_side",
    "trace",
    "state_shapes",
    "smallest_side",
    "snapshot_rows",
]


@dataclass(frozen=True)
class Row:
    """One layer of LeNet-5: a child module of the torch model, named as in its state dict."""

    name: str  # the module name (conv1.weight ... in the state dict); users type it
    op: str  # the torch module class: Conv2d, ReLU, MaxPool2d, Flatten or Linear
    out: int = 0  # Conv2d: output channels; Linear: output features (0: the number of classes)
    kernel: int = 0  # Conv2d, MaxPool2d: the window's side
    stride: int = 1  # Conv2d, MaxPool2d (a pool's stride is its kernel unless given)
    padding: int = 0  # Conv2d: zeros on each side
    blur: tuple[int, float] | None = None  # Conv2d: `render`'s extra blurred copy (size, sigma)
    channel: int | None = None  # Conv2d: the channel `animate` shows unless asked
    on_page: bool = False  # the web page shows it beside its default layers

    @property
    def params(self) -> bool:
        """Whether the layer has a weight and a bias in the state dict."""
        return self.op in ("Conv2d", "Linear")


# LeNet (LeCun et al. 1998) with ReLU and max pooling, no ReLU on the logits (it could kill a
# class). The blurs and the animated channel are the original project's choices.
LENET5: tuple[Row, ...] = (
    Row("conv1", "Conv2d", out=6, kernel=5, blur=(5, 3.0), channel=2),
    Row("relu1", "ReLU", on_page=True),
    Row("pool1", "MaxPool2d", kernel=2, stride=2),
    Row("conv2", "Conv2d", out=16, kernel=5, blur=(3, 3.0), channel=2),
    Row("relu2", "ReLU", on_page=True),
    Row("pool2", "MaxPool2d", kernel=2, stride=2),
    Row("flatten", "Flatten"),
    Row("fc1", "Linear", out=120),
    Row("relu3", "ReLU"),
    Row("fc2", "Linear", out=84),
    Row("relu4", "ReLU"),
    Row("fc3", "Linear"),
)

LAYERS = tuple(r.name for r in LENET5)  # the module names, in order


def row(name: str, rows: tuple[Row, ...] = LENET5) -> Row | None:
    return next((r for r in rows if r.name == name), None)


def out_side(n: int, r: Row, kernel: int | None = None) -> int:
    """The output side of a Conv2d or MaxPool2d row for an input side n (floor, as torch;
    0 when the window does not fit). kernel: the conv's actual kernel (from the weights)."""
    k = kernel or r.kernel
    pad = r.padding if r.op == "Conv2d" else 0
    return (n + 2 * pad - k) // r.stride + 1 if n + 2 * pad >= k else 0


def snapshot_rows(rows: tuple[Row, ...] = LENET5) -> tuple[Row, ...]:
    """The leading rows up to the last conv of the chain of convs, ReLUs and pools the
    network starts with: their maps follow from the conv weights alone, which is what
    `train --snapshots` records (conv1 ... conv2 for LeNet-5)."""
    end = 0
    for i, r in enumerate(rows):
        if r.op not in ("Conv2d", "ReLU", "MaxPool2d"):
            break
        if r.op == "Conv2d":
            end = i + 1
    return rows[:end]


def smallest_side(g: int, kernels: dict | None = None, rows: tuple[Row, ...] = LENET5) -> int:
    """The smallest input side that gives side g after the last window (conv or pool) row."""
    n = g
    for r in reversed(rows):
        if r.op in ("Conv2d", "MaxPool2d"):
            k = (kernels or {}).get(r.name) or r.kernel
            n = (n - 1) * r.stride + k - (2 * r.padding if r.op == "Conv2d" else 0)
    return n


def trace(
    input_size=(1, 28, 28),
    num_classes: int = 10,
    weights: dict | None = None,
    rows: tuple[Row, ...] = LENET5,
) -> list[tuple[Row, tuple[int, ...], tuple[int, ...] | None]]:
    """[(row, output shape, weight shape or None)] for one sample of input_size (C, H, W).

    weights: a state dict (anything with .shape) to take the conv kernels, channel counts and
    features from, instead of the table's (a checkpoint is checked against the table this
    way); Linear's input features are then the weight's, not the traced ones."""
    shape: tuple[int, ...] = tuple(int(v) for v in input_size)
    out = []
    for r in rows:
        wshape = None
        if r.op == "Conv2d":
            have = None if weights is None else weights.get(f"{r.name}.weight")
            if have is not None:
                wshape = tuple(int(v) for v in have.shape)
            else:
                wshape = (r.out, shape[0], r.kernel, r.kernel)
            k = wshape[-1]
            shape = (wshape[0], out_side(shape[1], r, k), out_side(shape[2], r, k))
        elif r.op == "MaxPool2d":
            shape = (shape[0], out_side(shape[1], r), out_side(shape[2], r))
        elif r.op == "Flatten":
            n = 1
            for v in shape:
                n *= v
            shape = (n,)
        elif r.op == "Linear":
            have = None if weights is None else weights.get(f"{r.name}.weight")
            if have is not None:
                wshape = tuple(int(v) for v in have.shape)
            else:
                wshape = (r.out or num_classes, shape[0])
            shape = (wshape[0],)
        elif r.op != "ReLU":
            raise ValueError(f"LeNet table: unknown op {r.op!r} in row {r.name}")
        out.append((r, shape, wshape))
    return out


def state_shapes(in_channels: int = 1, image_size: int = 28, num_classes: int = 10) -> dict:
    """Parameter name -> shape, in state-dict order."""
    shapes = {}
    for r, _, wshape in trace((in_channels, image_size, image_size), num_classes):
        if r.params:
            shapes[f"{r.name}.weight"] = wshape
            shapes[f"{r.name}.bias"] = (wshape[0],)
    return shapes
