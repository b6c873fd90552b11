"""The sliding-window arithmetic (run/playground.py) against torch's conv2d, for every setting
the page's playground allows: the output size, which settings are refused, and the input
positions every window reads (read back from conv2d of an index-coded input with one-hot
kernels, so padding and dilation are torch's, not a re-typed formula)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from convsee.errors import ConvseeError
from convsee.run.playground import conv_output_size, playground, same_padding

SIZES = range(1, 33)
KERNELS = range(1, 8)
STRIDES = range(1, 5)
PADDINGS = (0, 1, 2, 3, "valid", "same")
DILATIONS = range(1, 4)


def torch_size(n, k, s, p, d):
    """conv2d's output size for a 1-channel n x n input, or None where torch refuses."""
    try:
        y = F.conv2d(
            torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d
        )
    except RuntimeError:
        return None
    assert y.shape[-1] == y.shape[-2]
    return y.shape[-1]


def ours(n, k, s, p, d):
    try:
        return conv_output_size(n, k, s, p, d)
    except ConvseeError:
        return None


@pytest.fixture(autouse=True)
def _quiet():
    """One torch thread (thousands of tiny convolutions: threads only wait on each other) and
    no warning for 'same' with an even kernel (torch warns about a copy)."""
    import warnings

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        torch.set_num_threads(threads)


def test_output_size_matches_conv2d_for_every_setting():
    checked = refused = 0
    for n, k, s, p, d in itertools.product(SIZES, KERNELS, STRIDES, PADDINGS, DILATIONS):
        want = torch_size(n, k, s, p, d)
        got = ours(n, k, s, p, d)
        assert got == want, (n, k, s, p, d)
        checked += 1
        refused += want is None
    assert checked == 32 * 7 * 4 * 6 * 3
    # both kinds of refusal occur in the range: a kernel too big, 'same' with a stride
    assert 0 < refused < checked
    assert ours(5, 3, 2, "same", 1) is None and torch_size(5, 3, 2, "same", 1) is None
    assert ours(3, 5, 1, 0, 1) is None and torch_size(3, 5, 1, 0, 1) is None


def test_windows_are_the_positions_conv2d_reads():
    """Every window of every accepted setting, read back from conv2d: the input holds
    row * n + col + 1 (0 in the padding), kernel t of k*k is one-hot at tap t."""
    windows = 0
    for n, k, s, p, d in itertools.product(range(1, 13), KERNELS, STRIDES, PADDINGS, DILATIONS):
        if torch_size(n, k, s, p, d) is None:
            continue
        pg = playground(n, k, s, p, d)
        x = (torch.arange(n * n, dtype=torch.float32) + 1).reshape(1, 1, n, n)
        onehot = torch.eye(k * k).reshape(k * k, 1, k, k)
        y = F.conv2d(x, onehot, stride=s, padding=p, dilation=d)[0]  # (k*k, out, out)
        assert y.shape[-1] == pg.output_size
        code = y.round().long().reshape(k, k, pg.output_size, pg.output_size)
        taps = torch.tensor(pg.windows)  # (out, k): input position of tap t of window i
        inside = (taps >= 0) & (taps < n)
        r = taps.T[:, None, :, None]  # (k, 1, out, 1): tap a of window i's rows
        c = taps.T[None, :, None, :]  # (1, k, 1, out): tap b of window j's cols
        ok = inside.T[:, None, :, None] & inside.T[None, :, None, :]
        want = torch.where(ok, r * n + c + 1, 0)
        assert torch.equal(code, want), (n, k, s, p, d)
        assert pg.padded(0) == [not v for v in inside[0].tolist()]
        windows += pg.output_size**2
    assert windows > 10000


def test_same_padding_puts_the_odd_pixel_after():
    assert same_padding(4, 1) == (1, 2)
    assert same_padding(3, 2) == (2, 2)
    assert playground(5, 4, 1, "same").padding == (1, 2)
    assert playground(5, 4, 1, "same").output_size == 5


def test_formula_and_dict():
    pg = playground(28, 5)
    assert pg.output_size == 24
    assert pg.formula == "⌊(28 + 0 + 0 − 1 × (5 − 1) − 1) / 1⌋ + 1 = 24"
    d = pg.to_dict()
    assert d["output_size"] == 24 and len(d["windows"]) == 24 and d["windows"][0] == [0, 1, 2, 3, 4]
    pg = playground(5, 3, 2, 1, 1)
    assert pg.output_size == 3
    assert pg.windows == [[-1, 0, 1], [1, 2, 3], [3, 4, 5]]
    assert pg.padded(0) == [True, False, False] and pg.padded(2) == [False, False, True]
    import json

    json.dumps(pg.to_dict())


@pytest.mark.parametrize(
    "args, words",
    [
        ((0, 3), "input size must be at least 1"),
        ((5, 0), "kernel size must be at least 1"),
        ((5, 3, 0), "stride must be at least 1"),
        ((5, 3, 1, -1), "padding must be at least 0"),
        ((5, 3, 1, 0, 0), "dilation must be at least 1"),
        ((5, 2.5), "kernel size must be a whole number"),
        ((5, True), "kernel size must be a whole number"),
        ((5, "3"), "kernel size must be a whole number"),
        ((5, 3, 2, "same"), "padding 'same' works only with stride 1"),
        ((5, 3, 1, "full"), "padding must be a number of pixels, 'valid' or 'same'"),
        ((5, 3, 1, (1, 2, 3)), "padding must be one number or (before, after)"),
        ((4, 3, 1, 0, 2), "the kernel spans 5 pixels (dilation 2 × (3 − 1) + 1) but the padded"),
    ],
)
def test_refusals_say_which_parameter(args, words):
    with pytest.raises(ConvseeError) as e:
        conv_output_size(*args)
    msg = str(e.value)
    assert words in msg and "\n" not in msg and "--" not in msg
    with pytest.raises(ConvseeError):
        playground(*args)


def test_torch_refuses_what_is_refused_outside_the_page_ranges():
    for args in [
        (0, 1, 1, 1, 1),
        (5, 0, 1, 0, 1),
        (5, 1, 0, 0, 1),
        (5, 1, 1, -1, 1),
        (5, 1, 1, 0, 0),
    ]:
        assert ours(*args) is None
        with pytest.raises(RuntimeError):
            n, k, s, p, d = args
            F.conv2d(
                torch.zeros(1, 1, n, n),
                torch.zeros(1, 1, k, k),
                stride=s,
                padding=p,
                dilation=d,
            )
    assert conv_output_size(5.0, 3) == 3  # a whole float is a whole number
    assert conv_output_size(1, 1, 1, 3, 1) == 7
