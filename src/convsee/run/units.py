"""What the per-channel views (exemplars, optimize) share, for any model:

- `forward_to`: run a torch model only as far as the layers asked for (the rest of the network
  is skipped), with the one hook utility of run/capture.py, in eval mode;
- `unit_values`: one number per (image, channel): a map channel's centre neuron or its mean
  over the map, or a vector unit;
- `field_box` / `crop`: the input region one unit sees (from the model description), and that
  region cut out of an image, padded with the mean colour where it leaves the image (what the
  model's zero padding of a normalised input amounts to).
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..errors import ConvseeError
from ..spec import Layer

__all__ = [
    "OBJECTIVES",
    "torch_model",
    "runner",
    "forward_to",
    "unit_values",
    "check_layers",
    "field_box",
    "whole_image",
    "crop",
    "outside",
    "display",
]

OBJECTIVES = ("centre", "mean")  # a map channel: its centre neuron, or its mean over the map


class _Stop(Exception):
    """Raised from a forward hook once every wanted layer has been produced."""


def torch_model(net, device: str | None = None):
    """The torch module of a Network (LeNet-5's torch copy is built on first use)."""
    return net.torch_model(device)


def model_device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:
        return "cpu"


def device_dtype(model):
    """The device and type of a model's parameters: (cpu, float32) when it has none."""
    import torch

    try:
        p = next(model.parameters())
        return p.device, p.dtype
    except StopIteration:
        return torch.device("cpu"), torch.float32


def one_input(model, x):
    """x (C, H, W) as a batch of one, on the model's device in its parameters' type."""
    import torch

    device, dtype = device_dtype(model)
    return torch.from_numpy(np.ascontiguousarray(x, np.float32))[None].to(device, dtype)


@contextlib.contextmanager
def runner(model, layers: list[Layer], *, grad: bool = False):
    """A function x -> {layer name: output tensor} for many batches, each run only until the
    last of `layers` has been produced: hooks set once, eval mode held (each module's mode
    restored on exit), hooks removed on exit."""
    import torch

    from ..capture import capture, eval_mode

    names = {layer.name for layer in layers}
    modules = dict(model.named_modules())

    def stop(_m, _i, _o):
        if names <= out.keys():
            raise _Stop

    with eval_mode(model), capture(model, layers, grad=grad) as out:
        handles = [modules[m].register_forward_hook(stop) for m in {x.module for x in layers}]

        def run(x) -> dict:
            out.clear()
            with torch.enable_grad() if grad else torch.no_grad():
                try:
                    model(x)
                except _Stop:
                    pass
            missing = sorted(names - out.keys())
            if missing:
                raise ConvseeError(f"layer {missing[0]} did not run in the model's forward pass")
            return dict(out)

        try:
            yield run
        finally:
            for h in handles:
                h.remove()


def forward_to(model, x, layers: list[Layer], *, grad: bool = False) -> dict:
    """{layer name: output tensor} of one batch x (see runner)."""
    with runner(model, layers, grad=grad) as run:
        return run(x)


def check_layers(layers: list[Layer], what: str) -> list[Layer]:
    """Only maps (C, H, W) and vectors have channels to rank or to optimise."""
    for layer in layers:
        if layer.kind == "other":
            shape = "x".join(map(str, layer.shape)) or "a scalar"
            raise ConvseeError(
                f"layer {layer.name} outputs {shape} per input, not maps (C,H,W) or a vector: "
                f"{what} needs channels",
                "layers",
            )
    return layers


def unit_values(a, units, objective: str = "centre"):
    """a: (B, C, H, W) or (B, C) torch tensor; units: (B,) channel of each batch row.
    (B,) values: the channel's centre neuron (row H // 2, col W // 2) or its mean over the map;
    for vectors the unit itself."""
    import torch

    b = torch.arange(a.shape[0], device=a.device)
    units = torch.as_tensor(units, device=a.device)
    if a.dim() == 2:
        return a[b, units]
    if objective == "mean":
        return a[b, units].mean((1, 2))
    return a[b, units, a.shape[2] // 2, a.shape[3] // 2]


def centre_of(layer: Layer) -> tuple[int, int]:
    return layer.shape[1] // 2, layer.shape[2] // 2


def whole_image(layer: Layer, input_hw) -> bool:
    """True where one unit sees the whole input: vectors, global pooling, unknown fields, and
    fields at least as large as the image on both axes."""
    if layer.kind != "map" or layer.field is None or layer.field.whole:
        return True
    h, w = input_hw
    return layer.field.size[0] >= h and layer.field.size[1] >= w


def field_box(layer: Layer, i: int, j: int, input_hw) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) inclusive: what unit (i, j) of the layer sees; the whole input
    where `whole_image`. May reach outside the input (padding)."""
    h, w = input_hw
    if whole_image(layer, input_hw):
        return 0, h - 1, 0, w - 1
    return layer.field.box(i, j)


def crop(image: np.ndarray, box, fill) -> tuple[np.ndarray, bool]:
    """(patch, padded): image (H, W) or (H, W, C) cut to box (inclusive), the part outside the
    image filled with `fill` (one value per channel)."""
    r0, r1, c0, c1 = (int(v) for v in box)
    h, w = image.shape[:2]
    shape = (r1 - r0 + 1, c1 - c0 + 1, *image.shape[2:])
    fill = np.asarray(fill, np.float32)
    out = np.empty(shape, np.float32)
    out[...] = fill if image.ndim == 3 else fill.reshape(-1)[0]
    rr0, rr1, cc0, cc1 = max(r0, 0), min(r1, h - 1), max(c0, 0), min(c1, w - 1)
    if rr0 <= rr1 and cc0 <= cc1:
        out[rr0 - r0 : rr1 - r0 + 1, cc0 - c0 : cc1 - c0 + 1] = image[rr0 : rr1 + 1, cc0 : cc1 + 1]
    padded = r0 < 0 or c0 < 0 or r1 >= h or c1 >= w
    return out, padded


def outside(box, hw) -> np.ndarray:
    """(rows, cols) bool of a box (inclusive, as crop() takes it): True where it lies outside
    an image of hw = (H, W)."""
    r0, r1, c0, c1 = (int(v) for v in box)
    rows, cols = np.arange(r0, r1 + 1), np.arange(c0, c1 + 1)
    return ((rows < 0) | (rows >= hw[0]))[:, None] | ((cols < 0) | (cols >= hw[1]))[None, :]


def display(x: np.ndarray) -> np.ndarray:
    """(C, H, W) pixels in [0, 1] -> what to show: (H, W) for one channel, (H, W, 3) for three,
    the channel mean otherwise."""
    x = np.clip(np.asarray(x, np.float32), 0, 1)
    if x.shape[0] == 1:
        return x[0]
    if x.shape[0] == 3:
        return x.transpose(1, 2, 0)
    return x.mean(0)
