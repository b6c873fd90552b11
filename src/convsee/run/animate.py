"""How a convolution makes a map, and how max pooling shrinks one, position by position.

For any model: the layer's own input is captured (a forward pre-hook, cloned; LeNet-5 in NumPy
takes the previous layer's output), its parameters read from the module (stride, padding and
its mode, dilation, groups; pooling's kernel, stride, padding). conv_steps computes, for every
output pixel of one channel, the window under the kernel, the element-wise products and the
map; out[i, j] = sum(products[i, j]) + bias, the cross-correlation torch's conv2d computes.

plan() chooses the frames that teach instead of walking the map in raster order (which spends
most frames on empty background): an empty window (the background is not 0 after
normalisation), a walk along the input's structure, the strongest response, the most negative
one (a ReLU makes it 0), then the rest of the map filling in a few rows at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ConvseeError

__all__ = [
    "ConvParams",
    "PoolParams",
    "conv_params",
    "pool_params",
    "layer_input",
    "conv_steps",
    "pool_steps",
    "Frame",
    "plan",
]

_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[-1])
    return int(v), int(v)


@dataclass(frozen=True)
class ConvParams:
    weight: np.ndarray  # (out, in/groups, kh, kw)
    bias: np.ndarray  # (out,), zeros when the conv has none
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    padding_mode: str = "zeros"  # zeros | reflect | replicate | circular
    has_bias: bool = True

    def group_of(self, channel: int) -> tuple[int, int]:
        """(first, last + 1) input channel the output channel's kernel reads."""
        per_in = self.weight.shape[1]
        per_out = self.weight.shape[0] // self.groups
        g = channel // per_out
        return g * per_in, (g + 1) * per_in


@dataclass(frozen=True)
class PoolParams:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]  # rows, cols on each side (-inf padding, as torch)


def _same_padding(k, d) -> tuple[int, int, int, int]:
    out = []
    for kk, dd in zip(k, d, strict=True):
        total = dd * (kk - 1)
        out += [total // 2, total - total // 2]
    return out[0], out[1], out[2], out[3]


def conv_params(net, layer) -> ConvParams:
    """The parameters of conv layer `layer` of a Network (LeNet-5 or any torch model)."""
    if net.kind == "lenet":
        w = net.weights[f"{layer.module}.weight"]
        b = net.weights[f"{layer.module}.bias"]
        return ConvParams(np.asarray(w, np.float32), np.asarray(b, np.float32))
    m = dict(net.torch_model().named_modules())[layer.module]
    w = m.weight.detach().float().cpu().numpy()
    has_bias = m.bias is not None
    b = m.bias.detach().float().cpu().numpy() if has_bias else np.zeros(w.shape[0], np.float32)
    k, d = _pair(m.kernel_size), _pair(m.dilation)
    if isinstance(m.padding, str):
        pad = (0, 0, 0, 0) if m.padding == "valid" else _same_padding(k, d)
    else:
        ph, pw = _pair(m.padding)
        pad = (ph, ph, pw, pw)
    return ConvParams(w, b, _pair(m.stride), pad, d, int(m.groups), str(m.padding_mode), has_bias)


def pool_params(net, layer) -> PoolParams:
    if net.kind == "lenet":
        return PoolParams((2, 2), (2, 2), (0, 0))
    m = dict(net.torch_model().named_modules())[layer.module]
    if _pair(m.dilation) != (1, 1) or m.ceil_mode:
        raise ConvseeError(
            f"animate shows max pooling without dilation or ceil_mode; {layer.name} uses them",
            "layer",
        )
    k = _pair(m.kernel_size)
    s = k if m.stride in (None, (), []) else _pair(m.stride)
    return PoolParams(k, s, _pair(m.padding))


def layer_input(net, layer, x: np.ndarray) -> np.ndarray:
    """(C, H, W): what the layer's module receives for the model input x (C, H, W)."""
    if net.kind == "lenet":
        names = net.spec.names()
        i = names.index(layer.name)
        if i == 0:
            return np.asarray(x, np.float32)
        prev = names[i - 1]
        acts, _ = net.run(np.asarray(x, np.float32)[None], [net.spec.layer(prev)])
        return acts[prev][0]
    import torch

    from ..capture import eval_mode

    model = net.torch_model()
    module = dict(model.named_modules())[layer.module]
    seen = {"calls": 0}
    got = {}

    def start(_m, _args):
        seen["calls"] = 0

    def pre(_m, args):
        seen["calls"] += 1
        if seen["calls"] == layer.call and args and isinstance(args[0], torch.Tensor):
            got["x"] = args[0].detach().clone()

    try:
        p = next(model.parameters())
        device, dtype = p.device, p.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None].to(device, dtype)
    handles = [model.register_forward_pre_hook(start), module.register_forward_pre_hook(pre)]
    try:
        with eval_mode(model), torch.no_grad():
            model(xt)
    finally:
        for h in handles:
            h.remove()
    if "x" not in got:
        raise ConvseeError(f"layer {layer.name} did not run in the forward pass")
    return got["x"][0].float().cpu().numpy()


def pad_input(x: np.ndarray, padding, mode: str = "zeros") -> np.ndarray:
    """x (C, H, W) padded by (top, bottom, left, right) the way the conv pads it."""
    t, b, left, r = padding
    if not any(padding):
        return x
    if mode not in _PAD_MODES:
        raise ConvseeError(f"unknown padding mode {mode!r}")
    return np.pad(x, ((0, 0), (t, b), (left, r)), mode=_PAD_MODES[mode])


def conv_steps(x, w, b, stride=1, padding=0, dilation=1, padding_mode="zeros"):
    """x (Cin, H, W) the channels the kernel reads, w (Cin, kh, kw), b a number:
    (windows (H', W', Cin, kh, kw), products (same), out (H', W')).

    padding: one number, (rows, cols) or (top, bottom, left, right)."""
    x = np.asarray(x, np.float32)
    w = np.asarray(w, np.float32)
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        pad = tuple(int(v) for v in padding)
    else:
        ph, pw = _pair(padding)
        pad = (ph, ph, pw, pw)
    xp = pad_input(x, pad, padding_mode)
    kh, kw = w.shape[-2:]
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if xp.shape[1] < eh or xp.shape[2] < ew:
        raise ConvseeError("the kernel is larger than its (padded) input")
    win = sliding_window_view(xp, (eh, ew), axis=(1, 2))[:, ::sh, ::sw, ::dh, ::dw]
    win = win.transpose(1, 2, 0, 3, 4)
    products = win * w[None, None]
    out = products.sum(axis=(2, 3, 4), dtype=np.float64) + float(b)
    return win, products, out.astype(np.float32)


def pool_steps(x, kernel=2, stride=None, padding=0):
    """x (H, W): (windows (H', W', kh, kw), out (H', W')) for max pooling (-inf padding)."""
    x = np.asarray(x, np.float32)
    kh, kw = _pair(kernel)
    sh, sw = (kh, kw) if stride is None else _pair(stride)
    ph, pw = _pair(padding)
    if ph or pw:
        x = np.pad(x, ((ph, ph), (pw, pw)), constant_values=-np.inf)
    win = sliding_window_view(x, (kh, kw))[::sh, ::sw]
    return win, win.max(axis=(2, 3))


# ---------------------------------------------------------------------------------------------
# which frames to show
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    pos: tuple[int, int]  # the output pixel computed in this frame
    filled: np.ndarray = field(repr=False)  # (H', W') bool: computed so far
    reason: str = ""  # why this position is shown ("" while the map fills in)
    hold: bool = False  # a teaching frame: shown longer


def _spread(cands: np.ndarray, k: int, first: int) -> list[int]:
    """k indices of cands (N, 2) far apart from each other (farthest-point sampling)."""
    chosen = [first]
    d = np.linalg.norm(cands - cands[first], axis=1)
    while len(chosen) < min(k, len(cands)):
        i = int(np.argmax(d))
        if d[i] <= 0:
            break
        chosen.append(i)
        d = np.minimum(d, np.linalg.norm(cands - cands[i], axis=1))
    return chosen


def _walk(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The points in nearest-neighbour order from the one nearest the top-left corner."""
    if not points:
        return []
    rest = list(points)
    cur = min(rest, key=lambda p: (p[0] + p[1], p[0]))
    path = [cur]
    rest.remove(cur)
    while rest:
        cur = min(rest, key=lambda p: (p[0] - cur[0]) ** 2 + (p[1] - cur[1]) ** 2)
        path.append(cur)
        rest.remove(cur)
    return path


def plan(
    windows: np.ndarray,
    out: np.ndarray,
    *,
    along: int = 6,
    fill_frames: int = 8,
    negative: bool = True,
) -> list[Frame]:
    """The frames that teach, for a map out (H', W') made from windows (H', W', kh, kw) or
    (H', W', Cin, kh, kw), NaN where a window reads padding:

    1. an empty window (one value in each channel, e.g. all background), if there is one;
    2. `along` positions spread along the input's structure (the windows that vary most),
       walked in nearest-neighbour order;
    3. the strongest response; 4. the most negative one (negative=True);
    then the rest filling in, a few rows per frame (`fill_frames` frames), and a last frame
    with the whole map."""
    h, w = out.shape
    # a window's spread: its largest range within one input channel (a plain colour is not
    # structure); NaN cells (padding) do not count
    flat = windows.reshape(h, w, windows.shape[2] if windows.ndim == 5 else 1, -1)
    finite = np.where(np.isfinite(flat), flat, np.nan)
    spread = np.nan_to_num(np.nanmax(finite, -1) - np.nanmin(finite, -1)).max(-1)
    taught: list[tuple[tuple[int, int], str]] = []

    def add(pos, why):
        pos = (int(pos[0]), int(pos[1]))
        if all(p != pos for p, _ in taught):
            taught.append((pos, why))

    empty = np.argwhere(spread <= 1e-6)
    if len(empty):
        add(empty[0], "empty")
    busy = spread > 1e-6
    if busy.any():
        # the busiest 40%, and at least half the largest spread (noise is not structure)
        thr = max(np.quantile(spread[busy], 0.6), 0.5 * spread.max())
        cands = np.argwhere(busy & (spread >= thr))
        first = int(np.argmax([spread[tuple(p)] for p in cands]))
        pts = [tuple(int(v) for v in cands[i]) for i in _spread(cands, along, first)]
        for p in _walk(pts):
            add(p, "along")
    add(np.unravel_index(int(np.argmax(out)), out.shape), "max")
    if negative:
        add(np.unravel_index(int(np.argmin(out)), out.shape), "min")
    frames = []
    filled = np.zeros((h, w), bool)
    for pos, why in taught:
        filled = filled.copy()
        filled[pos] = True
        frames.append(Frame(pos, filled, why, True))
    rows_per = max(1, int(np.ceil(h / max(1, fill_frames))))
    for r_end in range(rows_per, h + rows_per, rows_per):
        r_end = min(r_end, h)
        new = ~filled
        new[r_end:] = False
        filled = filled.copy()
        filled[:r_end] = True
        # the window on the strongest |response| among the pixels this frame computes
        score = np.where(new, np.abs(np.nan_to_num(out)), -1.0)
        pos = (
            np.unravel_index(int(np.argmax(score)), out.shape) if new.any() else (r_end - 1, w - 1)
        )
        frames.append(Frame((int(pos[0]), int(pos[1])), filled, "", False))
    if not frames[-1].filled.all():  # cannot happen, but the last frame must be whole
        frames.append(Frame((h - 1, w - 1), np.ones((h, w), bool), "", False))
    return frames
