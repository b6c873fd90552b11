"""`animate` as a library function: one channel of a convolution (or max pooling) computed
frame by frame, as Figures (the GIF with its sidecar, and every frame as a PNG)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..draw.figure import Figures, from_files
from ..draw.render import _safe, gif_bytes, png_bytes, sidecar
from ..errors import ConvseeError
from .common import check_frame_ms, one_input

__all__ = ["animate", "pick_layer", "HOLD"]

HOLD = 8  # teaching frames stay this many times frame_ms


def _names(layers, limit=8):
    names = [x.name for x in layers]
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "") or "none"


def pick_layer(spec, name):
    convs = [x for x in spec.layers if x.type == "Conv2d" and x.kind == "map"]
    pools = [x for x in spec.layers if x.type == "MaxPool2d" and x.kind == "map"]
    if not name:
        if not convs:
            raise ConvseeError(
                "animate shows a 2-D convolution; the model has no Conv2d layer with map "
                "outputs (C,H,W)"
            )
        return convs[0]
    layer = spec.layer(name)
    if layer.kind == "map" and (layer.type == "Conv2d" or layer.type == "MaxPool2d"):
        if layer.element:
            raise ConvseeError(
                f"animate needs a layer's whole output; {layer.name} is a part", "layer"
            )
        return layer
    what = (
        f"a {layer.type}" if layer.kind == "map" else f"a {layer.type} with {layer.shape} outputs"
    )
    raise ConvseeError(
        f"animate shows a convolution or max pooling; {layer.name} is {what}; "
        f"conv layers: {_names(convs)}" + (f"; pooling layers: {_names(pools)}" if pools else ""),
        "layer",
    )


def _normalisation_note(prep) -> str:
    mean, std = prep.channel_mean(), prep.channel_std()
    black = (0 - mean) / std
    white = (1 - mean) / std
    if len(mean) == 1:
        return (
            f"the input is normalised: a black pixel (0) is (0 - {mean[0]:.4g}) / {std[0]:.4g} "
            f"= {black[0]:.2f}, a white one (1) is {white[0]:.2f}"
        )
    b = ", ".join(f"{v:.2f}" for v in black)
    w = ", ".join(f"{v:.2f}" for v in white)
    return f"the input is normalised per channel: black is ({b}), white is ({w})"


@dataclass
class _Planned:
    """One animation, ready to draw: its channel, the drawer, the frames to show and what
    its sidecar says about them."""

    channel: int
    anim: object  # a ConvAnimation or PoolAnimation
    frames_plan: list  # run.animate.plan's frames
    final: np.ndarray  # (H', W') the whole output map
    luts: tuple[str, ...]
    notes: list[str]
    extra: dict  # the layer's arithmetic, for the sidecar


def animate(
    net,
    input="sample:3",
    layer: str | None = None,
    channel: int | None = None,
    frame_ms: int = 150,
    *,
    data=None,
    dataset: str | None = None,
) -> Figures:
    """How one channel of a Conv2d (or MaxPool2d) layer is computed, frame by frame: the
    window under the kernel, window x kernel = products, their sum plus the bias, the map
    filling in. layer: default the first conv; channel: default 2 for LeNet-5, else the one
    responding most strongly. Figures: animate_{layer}_ch{C}.gif (its frames as PNGs in .extra)."""
    from ..run.animate import layer_input

    frame_ms = check_frame_ms(frame_ms)
    layer = pick_layer(net.spec, layer)
    n_ch = layer.channels
    if channel is not None and not 0 <= channel < n_ch:
        raise ConvseeError(
            f"{{param}} must be 0..{n_ch - 1} for {layer.name}, got {channel}", "channel"
        )
    inp = one_input(net, input, data, dataset)
    xin = layer_input(net, layer, inp.x)  # (C, H, W) what the layer receives
    if layer.type == "Conv2d":
        first = xin.shape == inp.x.shape and np.array_equal(xin, inp.x)
        planned = _conv_plan(net, layer, channel, xin, inp.name, first)
    else:
        planned = _pool_plan(net, layer, channel, xin, inp.name)
    return from_files(
        _animation_files(net, layer, inp.name, planned, frame_ms),
        shown=lambda name: "_frames/" not in name,
    )


def _conv_plan(net, layer, channel, xin, input_name: str, first: bool) -> _Planned:
    """xin (C, H, W): the layer's input; first: it is the network's input itself."""
    from ..draw.animate import ConvAnimation
    from ..run.animate import conv_params, conv_steps, pad_input, plan

    p = conv_params(net, layer)

    def steps_of(ch):
        lo, hi = p.group_of(ch)
        return conv_steps(
            xin[lo:hi], p.weight[ch], p.bias[ch], p.stride, p.padding, p.dilation, p.padding_mode
        )

    if channel is not None:
        c = channel
    elif net.preferred_channel(layer) is not None:
        c = net.preferred_channel(layer)  # LeNet-5: a clear stroke detector on conv1
    else:
        outs = [np.abs(steps_of(ch)[2]).max() for ch in range(layer.channels)]
        c = int(np.argmax(outs))
    steps = steps_of(c)  # windows, products (H', W', Cin_g, kh, kw); out (H', W')
    lo, hi = p.group_of(c)
    x = xin[lo:hi]  # (Cin_g, H, W) the channels this one reads
    notes = [_conv_arithmetic(p, lo, hi)]
    background = None
    if first:
        notes.append(_normalisation_note(net.prep))
        background = "the background is not 0 after normalisation"
    anim = ConvAnimation(
        x,
        pad_input(x, p.padding, p.padding_mode),
        p.weight[c],
        p.bias[c] if p.has_bias else None,
        steps,
        in_channels=range(lo, hi),
        pad=p.padding,
        stride=p.stride,
        dilation=p.dilation,
        padding_mode=p.padding_mode,
        title=f"{layer.name}, channel {c}: window x kernel = products"
        f"{', + bias' if p.has_bias else ''}, on {input_name}",
        notes=notes,
        background=background,
    )
    win, final = steps[0], steps[2]
    kh, kw = p.weight.shape[-2:]
    ones = np.ones_like(x)  # which window cells are the input, which padding
    inside = conv_steps(ones, ones[:, :kh, :kw], 0, p.stride, p.padding, p.dilation)[0] > 0
    frames_plan = plan(np.where(inside, win, np.nan), final)  # padding is no structure
    extra = {
        "stride": list(p.stride),
        "padding_top_bottom_left_right": list(p.padding),
        "padding_mode": p.padding_mode,
        "dilation": list(p.dilation),
        "groups": p.groups,
        "input_channels": [lo, hi - 1],
        "bias": float(p.bias[c]),
    }
    return _Planned(c, anim, frames_plan, final, ("RdBu_r", "gray"), notes, extra)


def _conv_arithmetic(p, lo: int, hi: int) -> str:
    """The note on the convolution's arithmetic: kernel, stride, padding, dilation, groups."""
    kh, kw = p.weight.shape[-2:]
    arith = [f"{kh}x{kw} kernel"]
    if p.stride != (1, 1):
        arith.append(
            f"stride {p.stride[0]}" if p.stride[0] == p.stride[1] else f"stride {p.stride}"
        )
    if any(p.padding):
        mode = "zeros" if p.padding_mode == "zeros" else p.padding_mode
        arith.append(f"padding {max(p.padding)} ({mode}, tinted)")
    if p.dilation != (1, 1):
        arith.append(f"dilation {p.dilation[0]} (each tap outlined)")
    if p.groups > 1:
        arith.append(f"groups {p.groups}: this channel reads input channels {lo}..{hi - 1} only")
    if not p.has_bias:
        arith.append("no bias")
    return ", ".join(arith)


def _pool_plan(net, layer, channel, xin, input_name: str) -> _Planned:
    """xin (C, H, W): the layer's input."""
    from ..draw.animate import PoolAnimation
    from ..run.animate import plan, pool_params, pool_steps

    pp = pool_params(net, layer)
    c = channel if channel is not None else int(np.argmax(xin.reshape(xin.shape[0], -1).max(1)))
    src = xin[c]  # (H, W)
    steps = pool_steps(src, pp.kernel, pp.stride, pp.padding)
    notes = [
        f"{pp.kernel[0]}x{pp.kernel[1]} window, stride {pp.stride[0]}"
        + (f", padding {max(pp.padding)} (-inf)" if any(pp.padding) else "")
    ]
    anim = PoolAnimation(
        src,
        steps,
        kernel=pp.kernel,
        stride=pp.stride,
        padding=pp.padding,
        title=f"{layer.name}, channel {c}: max pooling of {input_name}",
        notes=notes,
    )
    final = steps[1]
    frames_plan = plan(steps[0], final, negative=False)
    extra = {"kernel": list(pp.kernel), "stride": list(pp.stride), "padding": list(pp.padding)}
    return _Planned(c, anim, frames_plan, final, ("viridis",), notes, extra)


def _animation_files(net, layer, input_name: str, planned: _Planned, frame_ms: int) -> dict:
    """{path: bytes}: the GIF and its sidecar, every frame as a PNG and the frames' sidecar."""
    c, anim, frames_plan, luts = planned.channel, planned.anim, planned.frames_plan, planned.luts
    frames = [anim.frame(f) for f in frames_plan]
    durations = [frame_ms * (HOLD if f.hold else 1) for f in frames_plan]
    durations[-1] = frame_ms * HOLD  # the whole map, before the loop starts again
    name = f"animate_{_safe(layer.name)}_ch{c}"
    files = {f"{name}.gif": gif_bytes(frames, luts, durations)}
    shown = [
        {
            "position": list(f.pos),
            "why": f.reason or "filling in",
            "computed": int(f.filled.sum()),
            **({"headline": anim.headline(f)} if hasattr(anim, "headline") else {}),
            **({"zoom": anim.zoom(f)} if hasattr(anim, "zoom") else {}),
            **({"headline": anim.headline(f)} if hasattr(anim, "headline") else {}),
            **({"zoom": anim.zoom(f)} if hasattr(anim, "zoom") else {}),
            **({"caption": anim.caption(f)} if hasattr(anim, "caption") else {}),
        }
        for f in frames_plan
    ]
    files[f"{name}.json"] = sidecar(
        net.provenance,
        picture="animate",
        layer=layer.name,
        layer_type=layer.type,
        channel=c,
        input=input_name,
        frames=len(frames),
        frame_ms=durations,
        shown=shown,
        notes=planned.notes,
        final_map=np.round(planned.final, 5).tolist(),
        **planned.extra,
    )
    for i, f in enumerate(frames):
        files[f"{name}_frames/{i:03d}.png"] = png_bytes(f, luts)
    files[f"{name}_frames/frames.json"] = sidecar(
        net.provenance,
        picture="animate frames",
        layer=layer.name,
        channel=c,
        input=input_name,
        shown=shown,
    )
    return files
