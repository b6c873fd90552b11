"""The spec package: the tracer's op handlers against a brute-force oracle (which input pixels
move an output pixel), the errors' parameters, and torch imported only when describe runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convsee.errors import ConvseeError
from convsee.spec import Field, describe, pool_field, select_channels
from convsee.spec.tracer import _Tracer


class Handlers(nn.Module):
    """One of every handled op on the way: pad, conv2d with 'same' and 'valid' padding and
    dilation, a channels-last block (permute, Linear, permute back), avg and adaptive pooling."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(1, 4, 3, stride=2)
        self.same = nn.Conv2d(4, 4, 3, padding="same", dilation=2)
        self.pw = nn.Linear(4, 4)
        self.valid = nn.Conv2d(4, 4, 2, padding="valid")
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.adapt = nn.AdaptiveAvgPool2d((3, 3))

    def forward(self, x):
        x = F.pad(x, (1, 2, 3, 0))  # left 1, right 2, top 3, bottom 0
        x = torch.tanh(self.stem(x))
        x = self.same(x)
        y = self.pw(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # channels-last and back
        x = self.valid(torch.tanh(y))
        x = self.pool(x)
        return self.adapt(x)


def _moved(model, layer, shape, i, j):
    """(row0, row1, col0, col1) of the input pixels whose change moves output pixel (i, j) of
    the layer (any channel): each pixel changed in turn, float64."""
    c, h, w = shape
    name = layer.module
    base = torch.randn(1, c, h, w, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    xs = [base]
    coords = [(r, q) for r in range(h) for q in range(w)]
    for r, q in coords:
        x = base.clone()
        x[0, :, r, q] += 3.0
        xs.append(x)
    got = {}
    module = dict(model.named_modules())[name]
    hd = module.register_forward_hook(lambda _m, _i, o: got.setdefault("a", o))
    try:
        with torch.no_grad():
            model.double()(torch.cat(xs))
    finally:
        hd.remove()
        model.float()
    a = got["a"][:, :, i, j]
    moved = (a[1:] - a[:1]).abs().amax(1) > 1e-12
    rows = [r for (r, _), m in zip(coords, moved, strict=True) if m]
    cols = [q for (_, q), m in zip(coords, moved, strict=True) if m]
    return min(rows), max(rows), min(cols), max(cols)


@pytest.mark.parametrize(
    "layer, ij",
    [("stem", (2, 0)), ("stem", (5, 3)), ("same", (4, 6)), ("same", (6, 13)), ("valid", (3, 2))]
    + [("pool", (2, 1)), ("pool", (0, 3)), ("adapt", (1, 2)), ("adapt", (2, 0))],
)
def test_the_handlers_fields_match_moving_one_pixel(layer, ij):
    # 26x26: every stride divides its span exactly and the adaptive pool's bins are even
    # (7 -> 3), so the arithmetic is exact; the pixels' boxes end inside the input (a field is
    # the bounding box: dilation leaves holes in it, which clipping would expose)
    model = Handlers().eval()
    shape = (1, 26, 26)
    found = describe(model, shape).layer(layer)
    r0, r1, c0, c1 = found.field.box(*ij)
    want = (max(r0, 0), min(r1, shape[1] - 1), max(c0, 0), min(c1, shape[2] - 1))
    assert _moved(model, found, shape, *ij) == want


def test_the_trace_follows_the_layout_and_lists_what_hooks_miss():
    spec = describe(Handlers().eval(), (1, 26, 26))
    pw = spec.layer("pw")
    assert pw.channels_last and pw.shape == (4, 14, 14)
    assert pw.field == spec.layer("same").field  # a Linear per position keeps the field
    assert pw.conv == "same"
    assert not spec.layer("valid").channels_last
    # pad and tanh run outside any leaf module; the permutes change only the layout
    assert spec.functional == ["pad", "tanh"]


def test_max_pool_with_dilation_and_padding_is_hand_arithmetic():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, stride=2)

        def forward(self, x):
            return F.max_pool2d(self.conv(x), 3, stride=2, padding=1, dilation=2)

    spec = describe(Net(), (1, 40, 40))
    # conv: size 3, stride 2, start 1; the pool (effective kernel 5, stride 2, padding 1):
    # size 3 + 4 * 2 = 11, stride 4, start 1 + (2 - 1) * 2 = 3
    assert spec.outputs[0].field == Field((11, 11), (4.0, 4.0), (3.0, 3.0))
    assert pool_field(spec.layer("conv").field, 3, 2, 1, 2) == spec.outputs[0].field


def test_the_dispatch_table_names_the_ops_with_handlers():
    table = _Tracer.HANDLERS
    assert table["conv2d"] is _Tracer._conv and table["pad"] is _Tracer._pad
    assert {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "permute"} <= set(table)
    assert "relu" not in table and "add" not in table  # element-wise ops


def test_the_errors_name_their_parameter():
    spec = describe(Handlers().eval(), (1, 26, 26))
    cases = [
        (lambda: spec.layer("nope"), "layer", "layer: unknown layer 'nope'"),
        (lambda: spec.select("stem,nope"), "layers", "layers: unknown layer 'nope'"),
        (lambda: spec.select("type:Foo"), "layers", "layers: no layer of type 'Foo'"),
        (lambda: spec.select("x*"), "layers", "layers: no layer matches 'x*'"),
        (lambda: spec.select(" , "), "layers", "layers: no layers given"),
        (lambda: select_channels([1, 4], 4, name="stem"), "channels", "channels: channel 4 "),
        (lambda: describe(Handlers(), (3, 30, 26)), "input_size", "the model does not run"),
    ]
    for call, param, start in cases:
        with pytest.raises(ConvseeError) as e:
            call()
        assert e.value.param == param
        assert str(e.value).startswith(start), str(e.value)


def test_the_package_imports_no_torch():
    code = (
        "import sys\nimport convsee.spec\nfrom convsee.spec import ModelSpec, describe, Field\n"
        "assert 'torch' not in sys.modules, 'torch imported'\nprint('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
