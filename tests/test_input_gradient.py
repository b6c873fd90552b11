"""d score / d input with its last step by hand (run/input_gradient.py) against
torch.autograd.grad over the whole graph: stems of every stride, padding, dilation and odd
size take the hand path and give autograd's gradient; inputs the stem does not read alone
fall back to autograd and give exactly its gradient."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convsee.run import input_gradient as ig
from convsee.run.attribution import attribute_batch
from convsee.spec import describe

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import resnet  # noqa: E402


def reference(model, x):
    """d sum(model(x)[:, 0]) / d x by autograd alone, in float64 (the oracle)."""
    m64 = _double(model)
    x64 = x.detach().double().requires_grad_(True)
    (g,) = torch.autograd.grad(m64(x64)[:, 0].sum(), [x64])
    return g


def _double(model):
    import copy

    return copy.deepcopy(model).double().eval()


def ours(model, x):
    xt = x.detach().clone().requires_grad_(True)
    s = model(xt)[:, 0].sum()
    return ig.input_gradient(s, xt), ig.stem_node(model(xt)[:, 0].sum(), xt)


class Stem(nn.Module):
    def __init__(self, c, k, stride, padding, dilation, bias):
        super().__init__()
        self.conv = nn.Conv2d(c, 5, k, stride, padding, dilation, bias=bias)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.head(y.mean((2, 3)) + y.amax((2, 3)))


STEMS = [
    # (channels, kernel, stride, padding, dilation, bias, input height, width)
    (3, 7, 2, 3, 1, False, 33, 29),  # ResNet's 7x7/2, odd sizes
    (1, 5, 1, 0, 1, True, 28, 28),  # LeNet-5's 5x5
    (3, 3, 2, 1, 1, False, 17, 20),  # MobileNetV2's 3x3/2
    (3, 4, 4, 0, 1, True, 30, 31),  # ConvNeXt's 4x4/4 (rows the kernel never reads)
    (2, 3, (1, 2), (2, 0), (2, 1), True, 15, 16),  # unequal stride/padding, dilation 2
    (4, (3, 5), 3, (1, 2), 1, False, 14, 19),  # a rectangular kernel, 4 channels
    (3, 2, 3, 0, 1, True, 16, 17),  # stride past the kernel: pixels no tap reads
    (1, 3, 2, 4, 1, False, 9, 12),  # padding past the kernel
]


@pytest.mark.parametrize("c,k,stride,padding,dilation,bias,h,w", STEMS)
def test_stem_by_hand_equals_autograd(c, k, stride, padding, dilation, bias, h, w):
    torch.manual_seed(0)
    model = Stem(c, k, stride, padding, dilation, bias).eval()
    x = torch.randn(3, c, h, w)
    g, node = ours(model, x)
    assert node is not None  # the hand step was taken
    ref = reference(model, x)
    assert g.dtype == x.dtype and g.shape == x.shape
    err = (g.double() - ref).abs().max() / ref.abs().max()
    assert err <= 1e-5
    # autograd in float32 is no closer to the float64 gradient than the hand step
    xt = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(model(xt)[:, 0].sum(), [xt])
    assert err <= 4 * (auto.double() - ref).abs().max() / ref.abs().max() + 1e-7


class TwoReads(nn.Module):
    """The input read by the stem and again by a skip: autograd's gradient."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return (torch.relu(self.conv(x)) + x).mean((2, 3))


class Scaled(nn.Module):
    """The input scaled before the stem (a model that normalises inside itself)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.relu(self.conv(x * 2 - 1)).mean((2, 3))


class Reflect(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")

    def forward(self, x):
        return torch.relu(self.conv(x)).mean((2, 3))


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, groups=2)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean((2, 3))


class Wide(nn.Module):
    """More input channels than STEM_CHANNELS (a feature map, not an image)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(ig.STEM_CHANNELS + 1, 4, 3)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean((2, 3))


class NoConv(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, 2).flatten(1)[:, :3] ** 2


class Unused(nn.Module):
    """The score does not depend on the input: zeros, as attribution takes it."""

    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return self.b.expand(len(x), 3) * 1.0


@pytest.mark.parametrize(
    "model,c",
    [(TwoReads(), 3), (Scaled(), 3), (Reflect(), 3), (Grouped(), 4), (Wide(), 5), (NoConv(), 3)],
)
def test_other_graphs_fall_back_to_autograd(model, c):
    torch.manual_seed(1)
    model.eval()
    x = torch.randn(2, c, 12, 13)
    g, node = ours(model, x)
    assert node is None
    xt = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(model(xt)[:, 0].sum(), [xt])
    assert torch.equal(g, auto)


def test_unused_input_gives_zeros():
    x = torch.randn(2, 3, 8, 8)
    g, node = ours(Unused(), x)
    assert node is None and torch.equal(g, torch.zeros_like(x))


def test_saliency_of_a_resnet_takes_the_hand_step(monkeypatch):
    """attribute_batch's saliency on a ResNet-18 goes through the hand step (counted) and
    equals autograd's gradient over the whole graph."""
    m = resnet.resnet18().eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    spec = describe(m, (3, 64, 64), "cpu")
    found = []
    real = ig.stem_node
    monkeypatch.setattr(ig, "stem_node", lambda s, v: found.append(real(s, v)) or found[-1])
    r = attribute_batch(m, x.numpy(), spec, method="saliency", target=[1, 7])
    assert found and all(n is not None for n in found)
    xt = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(m(xt)[[0, 1], [1, 7]].sum(), [xt])
    ref = auto.abs().numpy()
    assert np.abs(r.channels - ref).max() <= 1e-5 * ref.max()


def test_a_weight_that_requires_grad_records_no_graph():
    """Outside attribute_batch (which freezes the model) the stem's weight may require grad:
    the hand step still returns a plain tensor, equal to autograd's."""
    torch.manual_seed(1)
    model = Stem(3, 7, 2, 3, 1, False).eval()
    assert model.conv.weight.requires_grad
    x = torch.randn(2, 3, 33, 29)
    xt = x.clone().requires_grad_(True)
    g = ig.input_gradient(model(xt)[:, 0].sum(), xt)
    assert g.grad_fn is None and not g.requires_grad
    xa = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(model(xa)[:, 0].sum(), [xa])
    assert torch.allclose(g, auto, rtol=0, atol=1e-5 * float(auto.abs().max()))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7, (3, 5)])
@pytest.mark.parametrize("stride", [1, 2, 3, (1, 2), (3, 2)])
@pytest.mark.parametrize("padding", [0, 1, 3, (2, 0)])
def test_phases_give_the_transposed_convolution(k, stride, padding):
    """_by_phases (one forward convolution, phases interleaved) equals autograd's input
    gradient in float64 for kernels, strides and paddings of every kind, odd sizes too."""
    g = torch.Generator().manual_seed(7)
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    w = torch.randn(6, 2, kh, kw, generator=g, dtype=torch.float64)
    for h, wd in ((13, 16), (kh + 1, kw + 2)):
        x = torch.randn(2, 2, h, wd, generator=g, dtype=torch.float64, requires_grad=True)
        y = F.conv2d(x, w, stride=(sh, sw), padding=(ph, pw))
        gy = torch.randn(y.shape, generator=g, dtype=torch.float64)
        (auto,) = torch.autograd.grad(y, [x], gy)
        got = ig._by_phases(gy, w, (h, wd), (sh, sw), (ph, pw))
        assert got.shape == auto.shape
        assert torch.allclose(got, auto, rtol=0, atol=1e-12 * float(auto.abs().max()))
