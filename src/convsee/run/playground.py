"""The arithmetic of a sliding window, per spatial axis: how big a convolution's output is and
which input positions each output position reads. One owner for `explain` (the window of one
unit) and the page's playground (a toy input with any kernel, stride, padding and dilation).

Along one axis of n input pixels, a kernel of k taps with stride s, dilation d and padding p
before (q after) gives

    out = floor((n + p + q - d * (k - 1) - 1) / s) + 1

outputs; output i reads input positions i * s - p + d * t for t = 0 .. k - 1 (a position
outside 0 .. n - 1 is padding). torch's conv2d refuses exactly the settings refused here: a size,
kernel, stride or dilation below 1, negative padding, 'same' padding with a stride above 1, and
a dilated kernel that spans more pixels than the padded input has.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from ..errors import ConvseeError

__all__ = [
    "same_padding",
    "axis_padding",
    "conv_output_size",
    "window_taps",
    "Playground",
    "playground",
]


def _whole(value, what: str, least: int) -> int:
    """value as an int (bools and fractions refused), at least `least`."""
    if isinstance(value, bool):
        raise ConvseeError(f"the {what} must be a whole number, not {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        if isinstance(value, float) and value.is_integer():
            n = int(value)
        else:
            raise ConvseeError(
                f"the {what} must be a whole number, not {str(value)[:20]!r}"
            ) from None
    if n < least:
        raise ConvseeError(f"the {what} must be at least {least}, not {n}")
    return n


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding that keeps the size at stride 1, as torch's padding='same'
    pads: the odd pixel of an even total goes after."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def axis_padding(padding, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """(before, after) for padding given as a number, (before, after), 'valid' or 'same'."""
    if isinstance(padding, str):
        mode = padding.strip().lower()
        if mode == "valid":
            return 0, 0
        if mode == "same":
            if stride != 1:
                raise ConvseeError(
                    f"padding 'same' works only with stride 1 (as in torch), not stride {stride}"
                )
            return same_padding(kernel, dilation)
        raise ConvseeError(
            f"padding must be a number of pixels, 'valid' or 'same', not {padding[:20]!r}"
        )
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ConvseeError("padding must be one number or (before, after)")
        return _whole(padding[0], "padding", 0), _whole(padding[1], "padding", 0)
    p = _whole(padding, "padding", 0)
    return p, p


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1) -> int:
    """How many outputs a window of `kernel` taps makes along an axis of `size` pixels, as
    torch.nn.functional.conv2d computes it; ConvseeError where torch refuses the setting."""
    n = _whole(size, "input size", 1)
    k = _whole(kernel, "kernel size", 1)
    s = _whole(stride, "stride", 1)
    d = _whole(dilation, "dilation", 1)
    before, after = axis_padding(padding, k, s, d)
    span = d * (k - 1) + 1
    padded = n + before + after
    if span > padded:
        raise ConvseeError(
            f"the kernel spans {span} pixels (dilation {d} × ({k} − 1) + 1) but the padded input "
            f"has {padded} ({n} + {before} + {after}): the kernel must fit inside the padded input"
        )
    return (padded - span) // s + 1


def window_taps(index: int, kernel: int, stride: int = 1, before: int = 0, dilation: int = 1):
    """The input positions output `index` reads along one axis (outside 0..n-1: padding)."""
    first = index * stride - before
    return [first + dilation * t for t in range(kernel)]


@dataclass(frozen=True)
class Playground:
    """A square toy input of `size` pixels and a square kernel: the output size, its formula,
    and every window. rows and cols of output (i, j) are windows[i] and windows[j]."""

    size: int
    kernel: int
    stride: int
    padding: tuple[int, int]  # (before, after), pixels on each axis
    dilation: int
    output_size: int
    formula: str  # one line: ⌊(28 + 0 + 0 − 1 × (5 − 1) − 1) / 1⌋ + 1 = 24
    windows: list[list[int]]  # [output index][tap]: the input position (may be padding)

    def window(self, i: int, j: int) -> tuple[list[int], list[int]]:
        """(rows, cols) of the input under output pixel (i, j)."""
        return self.windows[i], self.windows[j]

    def padded(self, i: int) -> list[bool]:
        """For each tap of window i: whether it reads padding."""
        return [not 0 <= t < self.size for t in self.windows[i]]

    def to_dict(self) -> dict:
        return {
            "size": self.size,
            "kernel": self.kernel,
            "stride": self.stride,
            "padding": list(self.padding),
            "dilation": self.dilation,
            "output_size": self.output_size,
            "formula": self.formula,
            "windows": [list(w) for w in self.windows],
            "padded": [self.padded(i) for i in range(self.output_size)],
        }


def playground(size, kernel, stride=1, padding=0, dilation=1) -> Playground:
    """The sliding of a kernel over a square toy input (the page's playground); padding is a
    number, (before, after), 'valid' or 'same'. ConvseeError where torch's conv2d refuses."""
    out = conv_output_size(size, kernel, stride, padding, dilation)
    n, k, s, d = int(size), int(kernel), int(stride), int(dilation)
    before, after = axis_padding(padding, k, s, d)
    formula = f"⌊({n} + {before} + {after} − {d} × ({k} − 1) − 1) / {s}⌋ + 1 = {out}"
    windows = [window_taps(i, k, s, before, d) for i in range(out)]
    return Playground(n, k, s, (before, after), d, out, formula, windows)
