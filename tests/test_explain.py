"""explain (run/explain.py, run/arithmetic.py): one unit of a layer taken apart, with its numbers.

Every value is checked against the layer's activation as Network.activations captures it, and
the parts against torch itself on what the layer received (the previous layer's captured
output in a chain): windows from F.unfold of torch's own padded input, partial sums from
F.conv2d of one input channel, pools from F.max_pool2d / F.avg_pool2d, BatchNorm from
F.batch_norm, Linear from the full products and F.linear, flatten from torch.flatten of an
index-coded tensor, softmax from torch.softmax, activations from the module itself.
"""

from __future__ import annotations

import json
import subprocess
import sys

import foreign_models as fm
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convsee
from convsee.errors import ConvseeError
from convsee.run.explain import TOLERANCE, explain_prepared

# ---------------------------------------------------------------------------------------------
# models: every op explain takes, with stride, padding (and its modes), dilation, groups,
# ceil mode, BatchNorm with and without running statistics, average and adaptive pooling
# ---------------------------------------------------------------------------------------------


def _stats(model: nn.Module) -> nn.Module:
    """BatchNorm statistics and weights made non-trivial (seeded by the caller)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.running_mean is not None:
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.weight is not None:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return model.eval()


def features() -> nn.Module:
    """3x23x23 -> 5: stride 2 + padding 1, dilation 2 + groups 4, reflect / circular /
    replicate padding, 'same', a conv without bias, ceil mode, pools with padding."""
    torch.manual_seed(0)
    return _stats(
        nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),  # in place, on the BatchNorm's output
            nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4),
            nn.BatchNorm2d(8, track_running_stats=False),  # batch statistics in eval too
            nn.LeakyReLU(0.1),
            nn.Conv2d(8, 6, 3, padding=1, padding_mode="reflect"),
            nn.GELU(),
            nn.Conv2d(6, 6, (3, 2), stride=(2, 1), padding=1, padding_mode="circular", bias=False),
            nn.ELU(),
            nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
            nn.Conv2d(6, 4, 4, padding="same", padding_mode="replicate"),
            nn.PReLU(4),
            nn.MaxPool2d(3, stride=1, padding=1, dilation=2),
            nn.AdaptiveAvgPool2d((2, 3)),  # 2x5 -> 2x3: overlapping windows
            nn.Flatten(),
            nn.Linear(24, 16),
            nn.BatchNorm1d(16),
            nn.SiLU(),
            nn.Dropout(0.5),
            nn.Linear(16, 5),
        )
    )


def pools() -> nn.Module:
    """1x16x16 -> log-probabilities: average pooling counting its padding, an adaptive max
    pool, a divisor override with ceil mode, LogSoftmax at the end."""
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.AdaptiveMaxPool2d((3, 5)),
        nn.AvgPool2d(2, divisor_override=3, ceil_mode=True),
        nn.Flatten(),
        nn.Linear(18, 4),
        nn.LogSoftmax(dim=1),
    ).eval()


ACTS = [
    nn.ReLU6(),
    nn.Hardtanh(-0.5, 1.5),
    nn.Sigmoid(),
    nn.Tanh(),
    nn.Hardswish(),
    nn.Hardsigmoid(),
    nn.Softplus(beta=2, threshold=5),
    nn.Softsign(),
    nn.Tanhshrink(),
    nn.LogSigmoid(),
    nn.SELU(),
    nn.CELU(0.5),
    nn.Mish(),
    nn.Threshold(0.1, -1.0),
    nn.RReLU(),
    nn.GELU(approximate="tanh"),
    nn.Identity(),
]


class Activations(nn.Module):
    """Every element-wise activation on the same conv output (values from about -8 to 8)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv = nn.Conv2d(1, 2, 3)
        with torch.no_grad():
            self.conv.weight.uniform_(-3, 3)
        self.acts = nn.ModuleList(ACTS)
        self.fc = nn.Linear(len(ACTS) * 2 * 4 * 4, 3)

    def forward(self, x):
        h = self.conv(x)
        return self.fc(torch.cat([a(h).flatten(1) for a in self.acts], 1))


class Probs(nn.Module):
    """Ends in its own Softmax module: the scores are probabilities."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(1, 2, 5, stride=3)
        self.fc = nn.Linear(2 * 8 * 8, 4)
        self.probs = nn.Softmax(dim=1)

    def forward(self, x):
        return self.probs(self.fc(self.conv(x).flatten(1)))


class Scale(nn.Module):
    """A leaf module explain does not know."""

    def forward(self, x):
        return x * 2


class Tail(nn.Module):
    """A container whose output is made by a functional op after its module."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return F.relu(self.conv(x)) * 0.5


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = Scale()
        self.tail = Tail()
        self.fc = nn.Linear(2 * 26 * 26, 3)

    def forward(self, x):
        return self.fc(self.tail(self.scale(x)).flatten(1))


def rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def gray(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, n)).astype(np.float32)


@pytest.fixture(scope="module")
def lenet():
    return convsee.load()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models, many small ops: with a second thread each op waits for it on a busy
    machine (run/threads.py), 10x slower here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# independent references
# ---------------------------------------------------------------------------------------------


def t64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def units_of(layer, n: int = 6, seed: int = 0) -> list:
    """Corners (where windows read padding), the centre and random units of a layer."""
    rng = np.random.default_rng(seed)
    if layer.kind == "vector":
        k = layer.shape[0]
        return sorted({0, k - 1, *rng.integers(0, k, n).tolist()})
    c, h, w = layer.shape
    units = {(0, 0, 0), (c - 1, h - 1, w - 1), (c // 2, h // 2, w // 2), (0, 0, w - 1)}
    units |= {
        tuple(int(v) for v in (rng.integers(c), rng.integers(h), rng.integers(w))) for _ in range(n)
    }
    return sorted(units)


def received(net, acts, x, layer):
    """What a layer of a chain (nn.Sequential, LeNet-5) received: the one before's output."""
    names = net.spec.names()
    i = names.index(layer.name)
    return torch.from_numpy(np.asarray(x if i == 0 else acts[names[i - 1]][0], np.float32))


def check_value(e, acts, layer, unit):
    """The explained value is the captured activation, within TOLERANCE of the terms."""
    captured = float(acts[layer.name][0][tuple(unit)])
    assert e.captured == captured
    assert e.exact, (layer.name, unit, e.value, captured, e.error)
    assert e.error <= TOLERANCE


def check_conv(e, m: nn.Conv2d, xin: torch.Tensor, unit):
    c, i, j = unit
    x = xin[None].double()
    mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
    xp = F.pad(x, m._reversed_padding_repeated_twice, mode=mode)  # torch's own padding
    per = m.in_channels // m.groups
    g = c // (m.out_channels // m.groups)
    lo = g * per
    assert e.channels == list(range(lo, lo + per))
    w = m.weight.detach().double()
    kh, kw = m.kernel_size
    cols = F.unfold(xp[:, lo : lo + per], (kh, kw), dilation=m.dilation, stride=m.stride)
    ow = F.conv2d(xp[:, :1], w[:1, :1], stride=m.stride, dilation=m.dilation).shape[-1]
    window = cols[0, :, i * ow + j].reshape(per, kh, kw)
    np.testing.assert_array_equal(e.inputs, window.numpy())
    np.testing.assert_array_equal(e.weights, w[c].numpy())
    np.testing.assert_allclose(e.products, (window * w[c]).numpy(), rtol=1e-12, atol=0)
    # each input channel's partial sum: F.conv2d of that channel alone
    partial = [
        F.conv2d(
            xp[:, lo + q : lo + q + 1],
            w[c : c + 1, q : q + 1],
            stride=m.stride,
            dilation=m.dilation,
        )[0, 0, i, j].item()
        for q in range(per)
    ]
    np.testing.assert_allclose(e.partial_sums, partial, rtol=1e-9, atol=1e-12)
    b = None if m.bias is None else m.bias[c].item()
    assert e.bias == b
    assert e.value == pytest.approx(sum(partial) + (b or 0.0), rel=1e-9, abs=1e-12)
    # which window positions are padding: unfold of a ones map padded with zeros
    ones = F.pad(torch.ones_like(x[:, :1]), m._reversed_padding_repeated_twice)
    mask = F.unfold(ones, (kh, kw), dilation=m.dilation, stride=m.stride)[0, :, i * ow + j]
    np.testing.assert_array_equal(e.padded, (mask == 0).reshape(kh, kw).numpy())
    h, wd = xin.shape[1:]
    rows, cols_ = np.asarray(e.rows), np.asarray(e.cols)
    inside = ((rows >= 0) & (rows < h))[:, None] & ((cols_ >= 0) & (cols_ < wd))[None, :]
    np.testing.assert_array_equal(~inside, e.padded)
    r, q = np.argwhere(inside)[0] if inside.any() else (None, None)
    if r is not None:  # a window position inside the input reads that input pixel
        assert e.inputs[0, r, q] == xin[lo, rows[r], cols_[q]].item()


def check_pool(e, m, xin: torch.Tensor, unit):
    c, i, j = unit
    x = xin[None].double()
    if isinstance(m, nn.MaxPool2d):
        ref = F.max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
        assert e.value == ref[0, c, i, j].item()
        r, q = e.winner_at
        assert xin[c, r, q].item() == e.value  # the winner is that input pixel
        assert e.inputs[tuple(e.winner)] == e.value
        assert np.isnan(e.inputs[e.padded]).all()
        assert not np.isnan(e.inputs[~e.padded]).any()
    elif isinstance(m, nn.AvgPool2d):
        args = (m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad)
        ref = F.avg_pool2d(x, *args, divisor_override=m.divisor_override)
        assert e.value == pytest.approx(ref[0, c, i, j].item(), rel=1e-12)
        # the divisor, from torch: the average of ones over the window's inside positions
        ones = F.avg_pool2d(torch.ones_like(x), *args, divisor_override=m.divisor_override)
        inside = int((~e.padded).sum())
        assert e.count == pytest.approx(inside / ones[0, c, i, j].item())
        assert (e.inputs[e.padded] == 0).all()
        assert e.sum == pytest.approx(e.inputs.sum())
    else:  # adaptive
        fn = F.adaptive_max_pool2d if "Max" in type(m).__name__ else F.adaptive_avg_pool2d
        ref = fn(x, m.output_size)[0, c, i, j].item()
        assert e.value == pytest.approx(ref, rel=1e-12)
        window = xin[c][np.asarray(e.rows)][:, np.asarray(e.cols)].double()
        want = window.max() if "Max" in type(m).__name__ else window.mean()
        assert want.item() == pytest.approx(ref, rel=1e-12)
        assert not e.padded.any()
    rows, cols = np.asarray(e.rows), np.asarray(e.cols)
    h, w = xin.shape[1:]
    inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    np.testing.assert_array_equal(~inside, e.padded)
    if isinstance(m, nn.AvgPool2d):
        got = e.inputs[inside]
    else:
        got = e.inputs[~e.padded]
    want = xin[c].double().numpy()[np.clip(rows, 0, h - 1)][:, np.clip(cols, 0, w - 1)][inside]
    np.testing.assert_array_equal(got, want)


def check_batchnorm(e, m, xin: torch.Tensor, unit):
    x = xin[None].double()
    w = None if m.weight is None else m.weight.detach().double()
    b = None if m.bias is None else m.bias.detach().double()
    if m.running_mean is None:
        ref = F.batch_norm(x, None, None, w, b, training=True, eps=m.eps)
        assert e.statistics == "batch"
    else:
        rm, rv = m.running_mean.double(), m.running_var.double()
        ref = F.batch_norm(x, rm, rv, w, b, training=False, eps=m.eps)
        assert e.statistics == "running"
        assert e.mean == rm[unit[0]].item() and e.var == rv[unit[0]].item()
    assert e.eps == m.eps
    assert e.inputs == xin[tuple(unit)].item()
    assert e.value == pytest.approx(ref[0][tuple(unit)].item(), rel=1e-9, abs=1e-12)


def check_linear(e, m: nn.Linear, xin: torch.Tensor, unit, top: int):
    (k,) = unit
    x = xin.double()
    full = x * m.weight.detach().double()[k]
    n = min(top, len(full))
    order = torch.argsort(full.abs(), descending=True, stable=True)[:n]
    assert list(e.indices) == order.tolist()
    np.testing.assert_array_equal(e.inputs, x[order].numpy())
    np.testing.assert_array_equal(e.products, full[order].numpy())
    assert e.rest_count == len(full) - n
    assert e.rest == pytest.approx(full.sum().item() - full[order].sum().item(), abs=1e-9)
    ref = F.linear(x, m.weight.detach().double(), None if m.bias is None else m.bias.double())
    assert e.value == pytest.approx(ref[k].item(), rel=1e-9, abs=1e-12)
    assert e.bias == (None if m.bias is None else m.bias[k].item())


def check_flatten(e, xin: torch.Tensor, unit):
    (k,) = unit
    coded = torch.arange(xin.numel()).reshape(xin.shape)
    flat = int(torch.flatten(coded[None], 1)[0][k])
    assert tuple(e.at) == tuple(int(v) for v in np.unravel_index(flat, tuple(xin.shape)))
    assert e.value == torch.flatten(xin[None], 1)[0][k].item()


def check_activation(e, m, xin: torch.Tensor, unit):
    assert e.inputs == xin[tuple(unit)].item()
    ref = m(xin[None].clone())[0][tuple(unit)].item()  # the module itself, in eval mode
    assert abs(e.value - ref) <= 1e-6 * max(abs(ref), abs(e.inputs), 1e-3)


def check_layer(net, inp, layer, module, acts, x, top=10):
    xin = received(net, acts, x, layer)
    for unit in units_of(layer):
        e = net.explain(inp, layer.name, unit, top=top)
        u = unit if isinstance(unit, tuple) else (unit,)
        assert e.unit == u and e.layer == layer.name and e.type == layer.type
        check_value(e, acts, layer, u)
        json.dumps(e.to_dict(), allow_nan=False)
        if isinstance(module, nn.Conv2d):
            check_conv(e, module, xin, u)
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d)):
            check_pool(e, module, xin, u)
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            check_pool(e, module, xin, u)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            check_batchnorm(e, module, xin, u)
        elif isinstance(module, nn.Linear):
            check_linear(e, module, xin, u, top)
        elif isinstance(module, nn.Flatten):
            check_flatten(e, xin, u)
        else:
            check_activation(e, module, xin, u)
        yield e


# ---------------------------------------------------------------------------------------------
# LeNet-5 (NumPy, as the page runs it) and the chains
# ---------------------------------------------------------------------------------------------


def test_lenet_every_layer_every_op(lenet):
    inp = lenet.inputs(["sample:3"])[0]
    acts, probs = lenet.activations([inp], "all")
    modules = dict(lenet.torch_model().named_modules())
    ops = set()
    for layer in lenet.layers():
        for e in check_layer(lenet, inp, layer, modules[layer.name], acts, inp.x, top=7):
            ops.add(e.op)
            assert e.source == (
                "input"
                if layer.name == "conv1"
                else lenet.spec.names()[lenet.spec.names().index(layer.name) - 1]
            )
            assert e.note == "" and e.op_layer == layer.name
    assert ops == {"conv2d", "relu", "max_pool2d", "flatten", "linear"}


def test_lenet_conv2_sums_six_channels(lenet):
    e = lenet.explain("sample:3", "conv2", (5, 3, 4))
    assert e.channels == list(range(6)) and e.inputs.shape == (6, 5, 5)
    assert e.partial_sums.shape == (6,) and e.products.shape == (6, 5, 5)
    assert e.formula.startswith("Σ over 6 channels of 5×5 window × kernel + bias = ")
    assert list(e.rows) == [3, 4, 5, 6, 7] and list(e.cols) == [4, 5, 6, 7, 8]
    assert not e.padded.any()
    d = e.to_dict()
    for key in ("op", "inputs", "weights", "products", "partial_sums", "bias", "value", "formula"):
        assert key in d
    assert np.array(d["inputs"]).shape == (6, 5, 5)
    assert d["value"] == e.value and d["exact"] is True


def test_lenet_pool_relu_flatten_in_words(lenet):
    inp = lenet.inputs(["sample:5"])[0]
    acts, _ = lenet.activations([inp], "all")
    c, i, j = np.unravel_index(int(np.argmax(acts["pool1"][0])), acts["pool1"][0].shape)
    e = lenet.explain(inp, "pool1", (c, i, j))
    assert e.op == "max_pool2d" and e.value > 0
    assert list(e.rows) == [2 * i, 2 * i + 1] and list(e.cols) == [2 * j, 2 * j + 1]
    assert e.formula.startswith("max of the 2×2 window = ")
    e = lenet.explain(inp, "relu1", (0, 0, 0))
    x = float(acts["conv1"][0][0, 0, 0])
    assert e.inputs == x and e.value == max(x, 0.0) and e.function == "max(0, x)"
    e = lenet.explain(inp, "flatten", 17)  # 16 x 4 x 4: unit 17 is channel 1, row 0, col 1
    assert e.at == [1, 0, 1] and "channel 1, row 0, col 1 of pool2" in e.formula


def test_lenet_softmax(lenet):
    inp = lenet.inputs(["sample:2"])[0]
    acts, probs = lenet.activations([inp], "fc3")
    logits = torch.tensor(acts["fc3"][0], dtype=torch.float64)
    ref = torch.softmax(logits, 0)
    for k in range(10):
        e = lenet.explain(inp, "softmax", k)
        assert e.layer == "softmax" and e.op == "softmax" and e.source == "fc3"
        assert e.captured == float(probs[0][k]) and e.exact
        assert e.value == pytest.approx(ref[k].item(), rel=1e-12)
        np.testing.assert_array_equal(e.inputs, logits.numpy())
        assert e.exps[k] / e.sum == pytest.approx(e.value, rel=1e-12)
        assert e.shift == logits.max().item() and e.classes == [str(i) for i in range(10)]
    assert sum(lenet.explain(inp, "softmax", (k,)).value for k in range(10)) == pytest.approx(1)


def test_lenet_explain_stays_torch_free():
    code = (
        "import sys, convsee; net = convsee.load(); "
        "e = net.explain('sample:1', 'conv2', (0, 1, 1)); net.explain('sample:1', 'softmax', 3); "
        "print(e.exact, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_features_chain_every_op():
    """Stride 2, padding 1, dilation 2 with groups 4, reflect/circular/replicate padding,
    'same', ceil mode, BatchNorm with and without running statistics, Dropout."""
    model = features()
    net = convsee.wrap(model, input_size=(3, 23, 23))
    inp = net.inputs([rgb(23, 23)])[0]
    acts, _ = net.activations([inp], "all")
    modules = dict(model.named_modules())
    ops, padded = set(), 0
    for layer in net.layers():
        for e in check_layer(net, inp, layer, modules[layer.name], acts, inp.x):
            ops.add(e.op)
            padded += bool(np.any(e.data.get("padded", False)))
            names = net.spec.names()
            i = names.index(layer.name)
            assert e.source == ("input" if i == 0 else names[i - 1])
            assert e.note == ""
    assert {"conv2d", "batch_norm", "relu", "leaky_relu", "gelu", "elu", "avg_pool2d"} <= ops
    assert {"prelu", "max_pool2d", "adaptive_avg_pool2d", "flatten", "linear", "silu"} <= ops
    assert "identity" in ops and padded > 10
    e = net.explain(inp, "3", (5, 0, 0))  # groups 4: output 5 reads input channels 4, 5
    assert e.channels == [4, 5] and e.padded.sum() == 5  # dilation 2, padding 2 at a corner
    assert list(e.rows) == [-2, 0, 2] and e.formula.startswith("Σ over 2 channels of 3×3")
    e = net.explain(inp, "8", (0, 0, 0))  # circular: the padding is the other edge, no bias
    assert e.bias is None and e.padding_mode == "circular" and "(no bias)" in e.formula
    assert e.inputs[0, 0, 0] == acts["7"][0][0, -1, -1]


def test_pools_and_log_softmax():
    model = pools()
    net = convsee.wrap(model, input_size=(1, 16, 16))
    inp = net.inputs([gray(16)])[0]
    acts, probs = net.activations([inp], "all")
    modules = dict(model.named_modules())
    for layer in net.layers()[:-1]:
        list(check_layer(net, inp, layer, modules[layer.name], acts, inp.x))
    e = net.explain(inp, "1", (0, 0, 0))  # counts its padding: 4 inside, divisor 9
    assert e.count == 9 and e.padded.sum() == 5 and "(padding counts as 0)" in e.formula
    e = net.explain(inp, "3", (2, 1, 2))  # divisor_override 3, ceil mode: a 1x1 corner
    assert e.count == 3 and e.padded.sum() == 3
    e = net.explain(inp, "6", 2)  # the LogSoftmax module
    ref = torch.log_softmax(torch.tensor(acts["5"][0], dtype=torch.float64), 0)[2].item()
    assert e.op == "log_softmax" and e.value == pytest.approx(ref, rel=1e-12) and e.exact
    # the pseudo-layer softmax over log-probabilities gives back the probabilities
    for k in range(4):
        e = net.explain(inp, "softmax", k)
        assert e.exact and e.captured == float(probs[0][k]) and e.source == "6"
        assert e.value == pytest.approx(float(np.exp(acts["6"][0][k])), rel=1e-6)
        assert "log-probabilities" in e.note


def test_every_activation():
    model = Activations().eval()
    net = convsee.wrap(model, input_size=(1, 6, 6))
    inp = net.inputs([gray(6, 3)])[0]
    acts, _ = net.activations([inp], "all")
    h = torch.from_numpy(acts["conv"][0])
    assert h.min() < -3 and h.max() > 3  # both branches of every activation
    ops = set()
    for a, m in enumerate(ACTS):
        layer = net.spec.layer(f"acts.{a}")
        for c, i, j in [(c, i, j) for c in range(2) for i in range(4) for j in range(4)]:
            e = net.explain(inp, layer.name, (c, i, j))
            check_value(e, acts, layer, (c, i, j))
            check_activation(e, m, h, (c, i, j))
            assert e.source == "conv" and e.at == [c, i, j]
            ops.add(e.op)
            json.dumps(e.to_dict(), allow_nan=False)
    assert len(ops) == len(ACTS)
    e = net.explain(inp, "acts.2", (0, 0, 0))
    assert e.function == "1 / (1 + e^(−x))" and e.formula.startswith("1 / (1 + e^(")


# ---------------------------------------------------------------------------------------------
# what a layer received: residual blocks, in-place ops, functional ops, containers
# ---------------------------------------------------------------------------------------------


def test_residual_block_and_inplace_relu():
    model = fm.make("ResidualNet")
    net = convsee.wrap(model, input_size=(1, 28, 28))
    inp = net.inputs(["sample:0"])[0]
    acts, _ = net.activations([inp], "all")
    modules = dict(model.named_modules())
    x = torch.from_numpy(inp.x)
    # stem, then ReLU(inplace=True) on it: stem's value is before the ReLU (negative too)
    stem = [net.explain(inp, "stem", u) for u in units_of(net.spec.layer("stem"), 20)]
    assert min(e.value for e in stem) < 0
    for e in stem:
        check_value(e, acts, net.spec.layer("stem"), e.unit)
        check_conv(e, modules["stem"], x, e.unit)
        assert e.source == "input"
    for name, src in [
        ("relu", "stem"),
        ("block.conv1", "relu"),
        ("block.bn1", "block.conv1"),
        ("block.relu#1", "block.bn1"),
        ("block.conv2", "block.relu#1"),
        ("block.bn2", "block.conv2"),
        ("side", "block"),
    ]:
        layer = net.spec.layer(name)
        xin = torch.from_numpy(acts[src][0])
        for u in units_of(layer):
            e = net.explain(inp, name, u)
            check_value(e, acts, layer, e.unit)
            assert e.source == src and e.note == "", name
            m = modules[layer.module]
            if isinstance(m, nn.Conv2d):
                check_conv(e, m, xin, e.unit)
            elif isinstance(m, nn.BatchNorm2d):
                check_batchnorm(e, m, xin, e.unit)
            else:
                check_activation(e, m, xin, e.unit)
    # the block's last ReLU gets bn2's output after `out += identity`: said, and exact
    bn2, ident = acts["block.bn2"][0], acts["relu"][0]
    e = net.explain(inp, "block.relu#2", (3, 5, 6))
    assert e.source is None and "block.bn2's output changed in place" in e.note
    assert e.inputs == pytest.approx(float(bn2[3, 5, 6] + ident[3, 5, 6]), rel=1e-6)
    assert e.exact
    # the block (a container) is its last module's output
    e = net.explain(inp, "block", (3, 5, 6))
    assert e.op == "relu" and e.op_layer == "block.relu#2" and e.exact
    assert e.note.startswith("block (Block) holds other modules: its output is the output of")
    assert e.captured == float(acts["block"][0][3, 5, 6])
    # pool gets x + F.relu(side(x)): a functional op; explained on what it received
    e = net.explain(inp, "pool", (2, 3, 4))
    want = acts["block"][0] + np.maximum(acts["side"][0], 0)
    assert e.source is None and "no layer's output" in e.note and e.exact
    assert np.nanmax(e.inputs) == pytest.approx(want[2, 6:8, 8:10].max(), rel=1e-6)
    # head gets pool's output flattened by x.flatten(1)
    e = net.explain(inp, "head", 3)
    assert e.source == "pool" and "reshaped from 8×14×14 to 1568" in e.note and e.exact
    check_linear(e, modules["head"], torch.from_numpy(acts["pool"][0]).flatten(), (3,), 10)


def test_rgbnet_stride_padding_dilation_batchnorm():
    model = fm.make("RGBNet")
    net = convsee.wrap(model, input_size=(3, 32, 32))
    inp = net.inputs([rgb(32, 32, 5)])[0]
    acts, _ = net.activations([inp], "all")
    modules = dict(model.named_modules())
    for layer in net.layers():
        if layer.name in ("fc",):
            continue
        names = net.spec.names()
        prev = names[names.index(layer.name) - 1] if layer.name != "conv1" else None
        xin = torch.from_numpy(inp.x if prev is None else acts[prev][0])
        m = modules[layer.name]
        for u in units_of(layer):
            e = net.explain(inp, layer.name, u)
            check_value(e, acts, layer, e.unit)
            if isinstance(m, nn.Conv2d):
                check_conv(e, m, xin, e.unit)
            elif isinstance(m, nn.BatchNorm2d):
                check_batchnorm(e, m, xin, e.unit)
            elif isinstance(m, (nn.MaxPool2d, nn.AdaptiveAvgPool2d)):
                check_pool(e, m, xin, e.unit)
    e = net.explain(inp, "conv2", (0, 0, 0))  # stride 2, padding 1
    assert list(e.rows) == [-1, 0, 1] and e.padded.sum() == 5
    e = net.explain(inp, "conv3", (0, 15, 15))  # dilation 2, padding 2
    assert list(e.rows) == [13, 15, 17] and e.padded[2].all() and e.padded[:, 2].all()
    e = net.explain(inp, "fc", 1)  # after torch.flatten(gap(x), 1)
    assert e.source == "gap" and "reshaped" in e.note and e.exact


def test_model_with_its_own_softmax():
    net = convsee.wrap(Probs().eval(), input_size=(1, 28, 28))
    inp = net.inputs(["sample:4"])[0]
    acts, probs = net.activations([inp], "all")
    e = net.explain(inp, "softmax", 2)  # the pseudo-layer is the model's softmax layer
    assert e.layer == "softmax" and e.op_layer == "probs" and e.exact
    assert e.captured == float(probs[0][2]) and "own softmax layer probs" in e.note
    ref = torch.softmax(torch.tensor(acts["fc"][0], dtype=torch.float64), 0)[2].item()
    assert e.value == pytest.approx(ref, rel=1e-12)
    assert e.source == "fc" and e.classes == ["0", "1", "2", "3"]


def test_two_heads_softmax_layer_and_pools():
    net = convsee.wrap(fm.make("TwoHeads"), input_size=(1, 28, 28))
    inp = net.inputs(["sample:6"])[0]
    acts, _ = net.activations([inp], "all")
    e = net.explain(inp, "softmax", 4)  # a layer named softmax: that layer
    assert e.op == "softmax" and e.op_layer == "softmax" and e.source == "fine" and e.exact
    e = net.explain(inp, "pool#2", (1, 2, 3))  # the second call of a module
    assert e.source == "split.1" and e.exact
    assert e.value == F.max_pool2d(torch.from_numpy(acts["split.1"]), 4)[0, 1, 2, 3].item()


# ---------------------------------------------------------------------------------------------
# errors a user can cause: one short sentence naming the valid range, no flag
# ---------------------------------------------------------------------------------------------


def refused(net, inp, layer, unit, words, **kw):
    with pytest.raises(ConvseeError) as e:
        net.explain(inp, layer, unit, **kw)
    msg = str(e.value)
    assert words in msg, msg
    assert "\n" not in msg and "--" not in msg and len(msg) < 300
    return msg


@pytest.mark.parametrize(
    "layer, unit, words",
    [
        ("conv9", (0, 0, 0), "unknown layer 'conv9'"),
        ("conv1", (6, 0, 0), "channel 6 does not exist: conv1 has channels 0..5"),
        ("conv1", (-1, 0, 0), "channel -1 does not exist: conv1 has channels 0..5"),
        ("conv1", (0, 24, 3), "position (24, 3) is outside conv1's 24×24 map: rows 0..23"),
        ("pool2", (0, 0, -1), "position (0, -1) is outside pool2's 4×4 map: rows 0..3, cols 0..3"),
        ("fc1", 120, "unit 120 is out of range: fc1 has units 0..119"),
        ("fc1", -1, "unit -1 is out of range: fc1 has units 0..119"),
        ("conv1", 5, "conv1 is a map of 6×24×24: give the unit as (channel, row, col)"),
        ("conv1", (0, 1), "give the unit as (channel, row, col)"),
        ("fc2", (0, 1, 2), "fc2 is a vector of 84 units: give the unit as one index"),
        ("conv1", (0, 1.5, 2), "a unit's row must be a whole number, not '1.5'"),
        ("fc1", "3", "a unit's index must be a whole number, not '3'"),
        ("conv1", (True, 0, 0), "a unit's channel must be a whole number, not True"),
        ("softmax", 10, "class 10 is out of range: softmax has classes 0..9"),
        ("softmax", (0, 1, 2), "softmax is a vector of 10 classes: give the unit as one class"),
    ],
)
def test_bad_units(lenet, layer, unit, words):
    refused(lenet, "sample:0", layer, unit, words)


def test_other_refusals(lenet):
    refused(lenet, ["sample:0", "sample:1"], "conv1", (0, 0, 0), "explain takes one input, not 2")
    refused(lenet, "sample:0", "fc1", 1, "top must be at least 1, not 0", top=0)
    with pytest.raises(ConvseeError, match="the model takes 1×28×28"):
        explain_prepared(lenet, np.zeros((1, 20, 20), np.float32), "conv1", (0, 0, 0))
    e = lenet.explain("sample:0", "conv1", np.array([1, 2, 3]))  # NumPy integers are fine
    assert e.unit == (1, 2, 3)


def test_layers_that_cannot_be_explained():
    net = convsee.wrap(Odd().eval(), input_size=(1, 28, 28))
    msg = refused(net, "sample:0", "scale", (0, 0, 0), "layer scale (Scale) cannot be explained")
    assert "explain takes Conv2d" in msg
    refused(net, "sample:0", "tail", (0, 0, 0), "layer tail (Tail) holds other modules")
    e = net.explain("sample:0", "tail.conv", (1, 2, 3))  # its module still is
    assert e.source == "scale" and e.note == "" and e.exact
    net = convsee.wrap(fm.make("TwoHeads"), input_size=(1, 28, 28))
    refused(net, "sample:0", "split.0", (0, 0, 0), "(it is element 0 of its module's output)")
    net = convsee.wrap(fm.make("Seq1d"), input_size=(1, 1, 64))
    refused(net, np.zeros((1, 64), np.float32), "conv", 0, "conv outputs 4×60 per input: explain")


def test_functional_softmax_output_is_refused():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(28 * 28, 3)

        def forward(self, x):
            return torch.softmax(self.fc(x.flatten(1)), 1)

    net = convsee.wrap(Functional().eval(), input_size=(1, 28, 28))
    refused(net, "sample:0", "softmax", 0, "the model's output is already probabilities")


def test_repr_and_json(lenet):
    e = lenet.explain("sample:3", "conv1", (2, 11, 7))
    assert repr(e).startswith("<Explanation conv1[2, 11, 7]: Σ of the 5×5 window × kernel + bias")
    with pytest.raises(AttributeError):
        _ = e.winner
    d = json.loads(json.dumps(e.to_dict(), allow_nan=False))
    assert d["unit"] == [2, 11, 7] and d["source"] == "input" and d["padded"] == [[False] * 5] * 5
    assert np.array(d["products"]).shape == (1, 5, 5)
    assert sum(d["partial_sums"]) + d["bias"] == pytest.approx(d["value"])


def test_a_subclass_with_its_own_forward_is_said_and_not_exact():
    class Doubled(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 2

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(4)
            self.conv = Doubled(1, 2, 3)
            self.fc = nn.Linear(2 * 26 * 26, 3)

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    net = convsee.wrap(Net().eval(), input_size=(1, 28, 28))
    e = net.explain("sample:0", "conv", (1, 4, 4))
    assert e.note == "Doubled has its own forward: explained as a plain Conv2d"
    assert not e.exact and e.captured == pytest.approx(2 * e.value, rel=1e-5)
    assert e.to_dict()["exact"] is False


def test_softmax_needs_class_scores():
    class Maps(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x)

    net = convsee.wrap(Maps().eval(), input_size=(1, 28, 28))
    refused(net, "sample:0", "softmax", 0, "the model's output is not class scores")
