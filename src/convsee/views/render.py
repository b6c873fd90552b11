"""`render`, `kernels` and `diff` as library functions: the pictures of `convsee render`
(and of its --kernels and --diff), as Figures."""

from __future__ import annotations

from dataclasses import fields

from ..draw.figure import Figures, from_files
from ..draw.render import RenderOptions, render_diff, render_kernels, render_set
from .common import check_options, one_input

__all__ = ["render", "kernels", "diff", "check_request", "render_outputs"]

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


def check_request(inputs, kernels_only: bool = False, diff_of=None) -> None:
    """Refuse what render_outputs would drop: inputs with the kernels alone or a diff (which
    names its own two), or both of those at once."""
    from ..errors import ConvseeError

    if kernels_only and diff_of:
        raise ConvseeError("{param} and a diff are separate pictures: give one of them", "kernels")
    if (kernels_only or diff_of) and inputs:
        what = "draws the kernels alone" if kernels_only else "A B compares A and B"
        got = " ".join(map(str, inputs))[:80]
        param = "kernels" if kernels_only else "diff"
        raise ConvseeError(f"{{param}} {what}; it takes no INPUT (got {got})", param)


def render_outputs(
    net,
    inputs=None,
    *,
    kernels_only: bool = False,
    diff_of=None,
    data=None,
    dataset=None,
    **options,
) -> tuple[dict, list[str]]:
    """({relative path: bytes}, lines) of `convsee render`: the kernels alone (kernels_only),
    two inputs' diff (diff_of: (a, b)), else every default layer's pictures for inputs (INPUT
    specs; none: the bundled samples), with GIFs, the sample sheet, LeNet-5's blurred maps,
    and one line per input saying what the model predicted. options: as RenderOptions
    (layers, scale, cmap, blur, with_kernels, channels)."""
    inputs = list(inputs or [])
    check_request(inputs, kernels_only, diff_of)
    opts = RenderOptions(**options)
    if kernels_only:
        return kernels(net, opts.cmap).files(), []
    if diff_of:
        x, y = diff_of
        figs = diff(net, x, y, opts.layers, opts.cmap, opts.channels, data=data, dataset=dataset)
        return figs.files(), []
    inputs = net.inputs(inputs or None, data, dataset)
    files, probs, _ = render_set(net, inputs, opts)
    lines = []
    if probs is not None:
        classes = net.class_names(probs.shape[1])
        for inp, p in zip(inputs, probs, strict=True):
            true = "" if inp.label is None else f" (true {classes[inp.label]})"
            lines.append(f"{inp.name}: predicted {classes[int(p.argmax())]} {p.max():.1%}{true}")
    return files, lines
