"""`render`, `kernels` and `diff` as library functions: the pictures of `convsee render`
(and of its --kernels and --diff), as Figures."""

from __future__ import annotations

from dataclasses import fields

from ..draw.figure import Figures, from_files
from ..draw.render import RenderOptions, render_diff, render_kernels, render_set
from .common import check_options, one_input

__all__ = ["render", "kernels", "diff"]

# what render(**options) takes: RenderOptions' fields but layers (an argument) and gifs
RENDER_OPTIONS = frozenset(f.name for f in fields(RenderOptions)) - {"layers", "gifs"}


def render(net, inputs=None, layers=None, **options) -> Figures:
    """Pictures of layers for inputs (INPUT specs, arrays, Pillow images or Inputs; None:
    the bundled samples), as Figures. layers: "conv1,fc3" returns exactly those layers' maps
    (None: the default layers); blur=(kernel, sigma) adds each map layer's blurred maps
    (the CLI adds LeNet-5's by default, this function only when asked). options: scale, cmap,
    blur, with_kernels, channels."""
    check_options(options, RENDER_OPTIONS, "render")
    inputs = net.inputs() if inputs is None else net._as_inputs(inputs)
    options = {"default_blur": False, **options, "gifs": False}
    files, _, _ = render_set(net, inputs, RenderOptions(layers=layers, **options))
    return Figures(f for f in from_files(files) if f.name != "samples.png")


def kernels(net, cmap: str | None = None) -> Figures:
    """Every conv layer's kernels on one signed colour scale per picture."""
    return from_files(render_kernels(net, cmap))


def diff(net, a, b, layers=None, cmap=None, channels=None, *, data=None, dataset=None) -> Figures:
    """Two inputs' maps side by side with their difference, per map layer, and the cosine
    similarity of the two in each sidecar."""
    x, y = (one_input(net, i, data, dataset) for i in (a, b))
    return from_files(render_diff(net, x, y, layers, cmap, channels))
