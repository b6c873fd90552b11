"""Part 5: any model. Captured values against hand-written computations of the same layers,
the traps (in-place ops, a module run three times, functional ops, tuple outputs), the
description (shapes, receptive fields checked by moving one pixel), and safe loading."""

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from foreign_models import ResidualNet, TwoHeads, make

from convsee.capture import activations, capture
from convsee.errors import ConvseeError
from convsee.models.lenet import LeNet5
from convsee.models.load import import_model, load_network, read_state_dict, wrap
from convsee.spec import describe

HERE = Path(__file__).parent
MODELS = str(HERE / "foreign_models.py")


def bn(x, m):
    return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


def rgbnet_by_hand(m, x):
    out = {}
    out["conv1"] = h = F.conv2d(x, m.conv1.weight, m.conv1.bias, padding=1)
    out["bn1"] = h = bn(h, m.bn1)
    out["act1"] = h = h.clamp(min=0)
    out["conv2"] = h = F.conv2d(h, m.conv2.weight, m.conv2.bias, stride=2, padding=1)
    out["bn2"] = h = bn(h, m.bn2)
    out["act2"] = h = h.clamp(min=0)
    out["conv3"] = h = F.conv2d(h, m.conv3.weight, m.conv3.bias, padding=2, dilation=2)
    out["pool"] = h = F.max_pool2d(h, 2)
    out["gap"] = h = h.mean((2, 3), keepdim=True)
    out["fc"] = h.flatten(1) @ m.fc.weight.T + m.fc.bias
    return out


def residual_by_hand(m, x):
    out = {}
    out["stem"] = h = F.conv2d(x, m.stem.weight, m.stem.bias, padding=1)
    out["relu"] = h = h.clamp(min=0)
    b = m.block
    out["block.conv1"] = g = F.conv2d(h, b.conv1.weight, padding=1)
    out["block.bn1"] = g = bn(g, b.bn1)
    out["block.relu#1"] = g = g.clamp(min=0)
    out["block.conv2"] = g = F.conv2d(g, b.conv2.weight, padding=1)
    out["block.bn2"] = g = bn(g, b.bn2)  # before `out += identity`
    out["block.relu#2"] = out["block"] = h = (g + h).clamp(min=0)
    out["side"] = s = F.conv2d(h, m.side.weight, m.side.bias)
    out["pool"] = p = F.max_pool2d(h + s.clamp(min=0), 2)
    out["head"] = p.flatten(1) @ m.head.weight.T + m.head.bias
    return out


def twoheads_by_hand(m, x):
    out = {}
    out["conv"] = c = F.conv2d(x, m.conv.weight, m.conv.bias)
    r = c.clamp(min=0)
    out["split.0"], out["split.1"] = a, b = r[:, :3], r[:, 3:]
    out["pool#1"] = pa = F.max_pool2d(a, 4)
    out["coarse"] = pa.flatten(1) @ m.coarse.weight.T + m.coarse.bias
    out["pool#2"] = pb = F.max_pool2d(b, 4)
    out["fine"] = f = pb.flatten(1) @ m.fine.weight.T + m.fine.bias
    out["softmax"] = torch.softmax(f, 1)
    return out


CASES = [
    ("RGBNet", (3, 32, 32), rgbnet_by_hand),
    ("ResidualNet", (1, 28, 28), residual_by_hand),
    ("TwoHeads", (1, 28, 28), twoheads_by_hand),
]


@pytest.mark.parametrize("name, shape, by_hand", CASES)
def test_captured_values_equal_a_hand_computation(name, shape, by_hand):
    model = make(name)
    model.train()  # capture must switch to eval itself, and restore this afterwards
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(1))
    spec = describe(model, shape)
    acts, _ = activations(model, x, spec.layers)
    with torch.no_grad():
        model.eval()
        ref = by_hand(model, x.double().float())
        model.train()
    assert set(ref) <= set(acts)
    for k, r in ref.items():
        a, r = acts[k], r.numpy()
        assert a.shape == r.shape, k
        err = np.abs(a - r).max() / (np.abs(r).max() + 1e-12)
        assert err <= 1e-5, (k, err)
    assert model.training and all(m.training for m in model.modules())  # modes restored
    for k, v in model.state_dict().items():  # BatchNorm running statistics untouched
        assert torch.equal(v, stats[k]), k
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_in_place_ops_would_corrupt_an_uncloned_capture():
    """block.bn2's output is changed in place by `out += identity` and then by ReLU(inplace):
    a hook that keeps the tensor without cloning shows the wrong numbers; convsee does not."""
    model = make("ResidualNet")
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    naive = {}
    h = model.block.bn2.register_forward_hook(lambda m, i, o: naive.__setitem__("bn2", o.detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        h.remove()
    ref = residual_by_hand(model, x)["block.bn2"].detach().numpy()
    assert np.abs(naive["bn2"].numpy() - ref).max() > 0.1  # the trap is real
    spec = describe(model, (1, 28, 28))
    acts, _ = activations(model, x, spec.select("block.bn2"))
    np.testing.assert_allclose(acts["block.bn2"], ref, rtol=1e-5, atol=1e-6)


def test_gradient_capture_is_also_safe_from_in_place_ops():
    model = make("ResidualNet")
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    spec = describe(model, (1, 28, 28))
    with capture(model, spec.select("block.bn2"), grad=True) as acts:
        out = model(x)
    (g,) = torch.autograd.grad(out[0, 3], acts["block.bn2"])
    ref = residual_by_hand(model, x)["block.bn2"]
    np.testing.assert_allclose(acts["block.bn2"].detach().numpy(), ref.detach().numpy(), atol=1e-5)
    # the gradient by hand: d out / d bn2 through relu(bn2 + identity), pool, head
    xr = x.clone()
    b = model.block
    with torch.no_grad():
        h = F.conv2d(xr, model.stem.weight, model.stem.bias, padding=1).clamp(min=0)
        gg = bn(
            F.conv2d(
                bn(F.conv2d(h, b.conv1.weight, padding=1), b.bn1).clamp(min=0),
                b.conv2.weight,
                padding=1,
            ),
            b.bn2,
        )
    gg.requires_grad_(True)
    blk = (gg + h).clamp(min=0)
    s = F.conv2d(blk, model.side.weight, model.side.bias).clamp(min=0)
    o = F.max_pool2d(blk + s, 2).flatten(1) @ model.head.weight.T + model.head.bias
    (g_ref,) = torch.autograd.grad(o[0, 3], gg)
    np.testing.assert_allclose(g.numpy(), g_ref.numpy(), atol=1e-6)


def test_description_names_calls_elements_and_outputs():
    spec = describe(make("ResidualNet"), (1, 28, 28))
    names = spec.names()
    assert names.index("block") < names.index("block.conv1")  # call order, containers first
    r1, r2 = spec.layer("block.relu#1"), spec.layer("block.relu#2")
    assert (r1.call, r2.call, r1.calls) == (1, 2, 2)
    assert spec.layer("block.relu") == r1  # plain NAME: the first call
    assert spec.layer("stem").kernel == (8, 1, 3, 3) and spec.layer("head").kind == "vector"
    assert r1.nonneg and not spec.layer("block.bn2").nonneg
    assert any(f.startswith("add_") for f in spec.functional)  # `out += identity`
    assert "relu" in spec.functional  # F.relu
    two = describe(make("TwoHeads"), (1, 28, 28))
    assert {"split.0", "split.1", "pool#1", "pool#2"} <= set(two.names())
    assert two.layer("split.1").shape == (3, 24, 24)
    assert [(o.name, o.shape, o.probabilities) for o in two.outputs] == [
        ("0", (4,), False),
        ("1", (10,), True),
    ]
    with pytest.raises(ConvseeError, match="`convsee layers` lists"):
        spec.layer("block.conv9")
    assert [x.name for x in spec.select("block.*")][:2] == ["block.conv1", "block.bn1"]
    assert len(spec.select("type:Conv2d")) == 4
    shown = repr(spec).splitlines()  # in a notebook: the table `convsee layers` prints
    assert shown[0] == "ResidualNet: input 1x28x28"
    row = next(line.split() for line in shown if line.split()[:1] == ["block.relu#2"])
    assert row[1:3] == ["ReLU", "x".join(map(str, r2.shape))] and row[-3:] == ["2", "of", "2"]


def _dependence(model, layer, shape, i, j):
    """Input pixels whose change moves output pixel (i, j) of every channel of `layer`:
    brute force, one pixel at a time."""
    spec = describe(model, shape)
    target = spec.select(layer)
    c, h, w = shape
    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, c, h, w, generator=g, dtype=torch.float64)
    model = model.double()
    batch = []
    coords = [(r, q) for r in range(h) for q in range(w)]
    for r, q in coords:
        x = base.clone()
        x[0, :, r, q] += 3.0
        batch.append(x)
    x = torch.cat([base] + batch)
    with capture(model, target) as acts, torch.no_grad():
        model.eval()(x)
    a = acts[target[0].name][:, :, i, j]
    moved = (a[1:] - a[:1]).abs().amax(1) > 1e-9
    rows = [r for (r, q), m in zip(coords, moved, strict=True) if m]
    cols = [q for (r, q), m in zip(coords, moved, strict=True) if m]
    model.float()
    return (min(rows), max(rows), min(cols), max(cols)) if rows else None


@pytest.mark.parametrize(
    "name, shape, layer, ij",
    [
        ("RGBNet", (3, 32, 32), "conv1", (5, 9)),
        ("RGBNet", (3, 32, 32), "conv2", (4, 6)),
        ("RGBNet", (3, 32, 32), "conv3", (7, 5)),  # dilation 2
        ("RGBNet", (3, 32, 32), "pool", (3, 4)),
        ("ResidualNet", (1, 28, 28), "block.bn2", (10, 12)),
        ("ResidualNet", (1, 28, 28), "block", (10, 12)),  # union with the identity
        ("ResidualNet", (1, 28, 28), "pool", (6, 7)),
        ("TwoHeads", (1, 28, 28), "pool#2", (2, 3)),
    ],
)
def test_receptive_field_matches_moving_one_pixel(name, shape, layer, ij):
    model = make(name)
    f = describe(model, shape).layer(layer).field
    r0, r1, c0, c1 = f.box(*ij)
    _, h, w = shape
    want = (max(r0, 0), min(r1, h - 1), max(c0, 0), min(c1, w - 1))
    assert _dependence(model, layer, shape, *ij) == want


def test_lenet_fields_are_the_classic_ones():
    spec = describe(LeNet5(), (1, 28, 28))
    assert spec.layer("conv1").field.box(0, 0) == (0, 4, 0, 4)
    assert spec.layer("pool1").field.box(1, 2) == (2, 7, 4, 9)
    assert spec.layer("conv2").field.box(3, 1) == (6, 19, 2, 15)
    assert spec.layer("pool2").field.size == (16, 16)


# ------------------------------------------------------------------------------ loading


def test_import_by_file_and_by_module(tmp_path, monkeypatch):
    m = import_model(f"{MODELS}:ResidualNet")
    assert type(m).__name__ == "ResidualNet" and isinstance(m, torch.nn.Module)
    assert isinstance(import_model(f"{MODELS}:seeded_rgbnet"), torch.nn.Module)  # a factory
    monkeypatch.syspath_prepend(str(HERE))
    assert isinstance(import_model("foreign_models:TwoHeads"), TwoHeads)
    assert ResidualNet  # the class the file defines, imported here as a module too


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nocolon", "expected FILE.py:Name"),
        ("nocolon.py", "model file nocolon.py: no such file"),  # FILE.py alone: its one class
        ("missing.py:Net", "no such file"),
        ("BROKEN.py:Net", "line 1: syntax error"),
        ("IMPORTS.py:Net", "importing .*IMPORTS.py failed: ModuleNotFoundError"),
        (f"{MODELS}:Nope", "has no 'Nope'; it defines: .*RGBNet"),
        ("NOTMOD.py:VALUE", "is an int, not an nn.Module class or a function"),
        ("NOTMOD.py:Plain", "is a class but not a torch.nn.Module"),
        ("NOTMOD.py:needs_args", r"needs_args\(\) raised TypeError.*called with no arguments"),
        ("NOTMOD.py:returns_list", "returned a list, not an nn.Module"),
        ("no_such_package_xyz:Net", "importing no_such_package_xyz failed"),
    ],
)
def test_bad_model_specs(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "BROKEN.py").write_text("def (:\n")
    (tmp_path / "IMPORTS.py").write_text("import not_a_module_here\n")
    (tmp_path / "NOTMOD.py").write_text(
        "VALUE = 3\nclass Plain:\n    pass\ndef needs_args(n):\n    pass\n"
        "def returns_list():\n    return []\n"
    )
    with pytest.raises(ConvseeError, match=message):
        import_model(spec)


def test_checkpoint_prefixes_and_strict_mismatch(tmp_path):
    model = make("RGBNet")
    sd = model.state_dict()
    p = tmp_path / "dp.pth"
    torch.save({"state_dict": {"module._orig_mod." + k: v for k, v in sd.items()}}, p)
    net = load_network(f"{MODELS}:RGBNet", p, preprocess={"input_size": (3, 32, 32)})
    for k, v in net.model.state_dict().items():
        assert torch.equal(v, sd[k]), k
    bad = dict(sd)
    del bad["fc.bias"]
    bad["conv1.weight"] = torch.zeros(8, 1, 3, 3)
    bad["extra.weight"] = torch.zeros(2)
    q = tmp_path / "bad.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in bad.items()}, q)
    with pytest.raises(ConvseeError) as e:
        load_network(f"{MODELS}:RGBNet", q)
    msg = str(e.value)
    assert "\n" not in msg
    assert "1 missing (fc.bias)" in msg and "1 unexpected (extra.weight)" in msg
    assert "conv1.weight [8, 1, 3, 3] vs [8, 3, 3, 3]" in msg


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_code_and_programs_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "evil.pth"
    torch.save({"conv1.weight": Evil()}, p)
    with pytest.raises(ConvseeError, match="refused to load"):
        load_network(f"{MODELS}:RGBNet", p)
    assert not (tmp_path / "PWNED").exists()
    model = make("RGBNet")
    ts = tmp_path / "net.pt"
    torch.jit.save(torch.jit.trace(model, torch.randn(1, 3, 32, 32)), ts)
    for model_spec in (None, f"{MODELS}:RGBNet"):
        with pytest.raises(ConvseeError, match="TorchScript program.*can run code.*pass trust"):
            load_network(model_spec, ts)
    ex = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 32, 32),)), ex)
    with pytest.raises(ConvseeError, match="torch.export program.*pass trust"):
        read_state_dict(ex)
    trusted = load_network(None, ts, trust=True, preprocess={"input_size": (3, 32, 32)})
    x = torch.randn(2, 3, 32, 32)
    _, probs = trusted.run(x.numpy())
    np.testing.assert_allclose(probs, torch.softmax(model(x), 1).detach().numpy(), atol=1e-5)
    # a trusted program's provenance carries its file's SHA-256, as a state dict's does
    assert trusted.provenance.checkpoint_sha256 == hashlib.sha256(ts.read_bytes()).hexdigest()
    # a torch.export program, trusted, is unflattened: its layers can be captured
    exported = load_network(None, ex, trust=True, preprocess={"input_size": (3, 32, 32)})
    assert exported.spec.names()[:4] == ["conv1", "bn1", "act1", "conv2"]
    acts, probs = exported.run(x.numpy(), exported.select("conv2"))
    with torch.no_grad():
        ref = model.conv2(model.act1(model.bn1(model.conv1(x))))
        np.testing.assert_allclose(acts["conv2"], ref.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(probs, torch.softmax(model(x), 1).numpy(), atol=1e-5)


def test_outputs_softmax_once_and_output_choice():
    model = make("TwoHeads")
    x = torch.randn(3, 1, 28, 28)
    coarse, fine = model(x)
    net = wrap(model, input_size=(1, 28, 28))
    _, p = net.run(x.numpy())
    np.testing.assert_allclose(p, torch.softmax(coarse, 1).detach().numpy(), atol=1e-6)
    net1 = wrap(model, input_size=(1, 28, 28), output="1")
    _, p1 = net1.run(x.numpy())
    np.testing.assert_allclose(p1, fine.detach().numpy(), atol=1e-6)  # not softmaxed again
    with pytest.raises(ConvseeError, match="no output '2'; its outputs: 0, 1"):
        wrap(model, input_size=(1, 28, 28), output="2")


def test_wrong_input_size_is_one_line():
    with pytest.raises(ConvseeError, match=r"does not run on an input of shape \(1, 1, 32, 32\)"):
        wrap(make("RGBNet"), input_size=(1, 32, 32))


def test_pickle_module_is_not_imported_for_state_dicts(tmp_path):
    # a plain state dict saved with torch.save loads through weights_only
    sd = make("ResidualNet").state_dict()
    p = tmp_path / "r.pt"
    torch.save(sd, p)
    loaded = read_state_dict(p)
    assert set(loaded) == set(sd)
    assert pickle  # imported for the Evil class above
