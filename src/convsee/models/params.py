"""A layer's settings as NumPy views redo its arithmetic (animate, explain): a convolution's
weights, bias, stride, padding..., a max pool's window. The Network classes answer them
(LeNetNetwork from its table, TorchNetwork from the torch module); here are the records and
how they are read off torch modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConvseeError

__all__ = ["ConvParams", "PoolParams", "torch_conv_params", "torch_pool_params"]


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


def torch_conv_params(m) -> ConvParams:
    """The ConvParams of a torch Conv2d module."""
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


def torch_pool_params(m, name: str) -> PoolParams:
    """The PoolParams of a torch MaxPool2d module (layer `name`)."""
    if _pair(m.dilation) != (1, 1) or m.ceil_mode:
        raise ConvseeError(
            f"animate shows max pooling without dilation or ceil_mode; {name} uses them"
        )
    k = _pair(m.kernel_size)
    s = k if m.stride in (None, (), []) else _pair(m.stride)
    return PoolParams(k, s, _pair(m.padding))
