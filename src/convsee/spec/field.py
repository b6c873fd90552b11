"""Receptive-field arithmetic, per spatial axis (rows, cols), in input pixels.

A Field says which input pixels one output pixel of a map sees: its size, the stride between
neighbouring output pixels, and where output pixel (0, 0) is centred. Convolutions and pooling
windows grow it (conv_field, pool_field), element-wise ops of two maps join it (union_field),
vectors and global pooling see the whole input (whole_field). Plain arithmetic, no torch:
the tracer (spec/tracer.py) and LeNet-5's torch-free path (models/lenet_numpy.py) share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Field", "PIXEL", "conv_field", "pool_field", "union_field", "whole_field", "pair"]


@dataclass(frozen=True)
class Field:
    """The input region one output pixel sees. Pixel centres sit at integer coordinates."""

    size: tuple[int, int]  # input pixels covered (rows, cols)
    stride: tuple[float, float]  # input pixels between neighbouring output pixels
    start: tuple[float, float]  # input coordinate of the centre of output pixel (0, 0)
    whole: bool = False  # the field is the whole input (vectors, global pooling)

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1), inclusive, of output pixel (i, j); may leave the input."""
        out = []
        for axis, k in ((0, i), (1, j)):
            centre = self.start[axis] + k * self.stride[axis]
            half = (self.size[axis] - 1) / 2
            out += [math.floor(centre - half + 1e-6), math.floor(centre + half + 1e-6)]
        return out[0], out[1], out[2], out[3]

    def centre(self, i: int, j: int) -> tuple[float, float]:
        return self.start[0] + i * self.stride[0], self.start[1] + j * self.stride[1]

    def to_dict(self) -> dict:
        return {
            "size": list(self.size),
            "stride": list(self.stride),
            "start": list(self.start),
            "whole": self.whole,
        }


PIXEL = Field((1, 1), (1.0, 1.0), (0.0, 0.0))  # the input itself


def pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def conv_field(f: Field, kernel, stride=1, padding=0, dilation=1) -> Field:
    """The field after a convolution or pooling window: padding is the (top, left) padding."""
    if f.whole:
        return f
    k, s, p, d = pair(kernel), pair(stride), pair(padding), pair(dilation)
    size, jump, start = [], [], []
    for a in (0, 1):
        k_eff = d[a] * (k[a] - 1) + 1
        size.append(int(round(f.size[a] + (k_eff - 1) * f.stride[a])))
        start.append(f.start[a] + ((k_eff - 1) / 2 - p[a]) * f.stride[a])
        jump.append(f.stride[a] * s[a])
    return Field((size[0], size[1]), (jump[0], jump[1]), (start[0], start[1]))


def pool_field(f: Field, kernel, stride=None, padding=0, dilation=1) -> Field:
    return conv_field(f, kernel, kernel if stride in (None, [], ()) else stride, padding, dilation)


def union_field(a: Field | None, b: Field | None) -> Field | None:
    """What an element-wise op of two maps sees (x + y in a residual block): both fields."""
    if a is None or b is None:
        return None
    if a.whole or b.whole:
        return a if a.whole else b
    if any(abs(x - y) > 1e-9 for x, y in zip(a.stride, b.stride, strict=True)):
        return None
    size, start = [], []
    for ax in (0, 1):
        lo = min(a.start[ax] - (a.size[ax] - 1) / 2, b.start[ax] - (b.size[ax] - 1) / 2)
        hi = max(a.start[ax] + (a.size[ax] - 1) / 2, b.start[ax] + (b.size[ax] - 1) / 2)
        size.append(int(round(hi - lo + 1)))
        start.append((lo + hi) / 2)
    return Field((size[0], size[1]), a.stride, (start[0], start[1]))


def whole_field(input_hw: tuple[int, int]) -> Field:
    h, w = input_hw
    return Field((h, w), (float(h), float(w)), ((h - 1) / 2, (w - 1) / 2), whole=True)
