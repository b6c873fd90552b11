"""LeNet-5's one table (models/lenet_layers.LENET5) generates the torch module, the NumPy
forward, the ModelSpec and the state-dict shapes: they must agree with each other, for the
shipped table and for edited ones (a row removed, rows added), with torch as the oracle."""

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convsee.capture import activations
from convsee.datasets.transforms import Preprocess
from convsee.models.lenet import LeNet5, ModelConfig
from convsee.models.lenet_layers import LENET5, Row, state_shapes, trace
from convsee.models.lenet_numpy import forward_all, lenet_spec
from convsee.models.load import load_network
from convsee.models.network import LeNetNetwork
from convsee.models.params import torch_conv_params, torch_pool_params
from convsee.spec import describe

SRC = Path(__file__).resolve().parents[1] / "src" / "convsee"

# edited tables: relu4 removed (fc2 feeds fc3 directly); a padded, strided conv3 and an
# overlapping 3x3/2 pool added, on a 3-channel 36x36 input with 7 classes
NO_RELU4 = tuple(r for r in LENET5 if r.name != "relu4")
THREE_CONVS = (
    *LENET5[:5],  # conv1 relu1 pool1 conv2 relu2
    Row("conv3", "Conv2d", out=12, kernel=3, stride=2, padding=1, blur=(3, 1.0), channel=11),
    Row("relu5", "ReLU", on_page=True),
    Row("pool2", "MaxPool2d", kernel=3, stride=2),
    *LENET5[6:],  # flatten fc1 relu3 fc2 relu4 fc3
)
TABLES = {
    "lenet5": (LENET5, ModelConfig()),
    "no_relu4": (NO_RELU4, ModelConfig()),
    "three_convs": (THREE_CONVS, ModelConfig(in_channels=3, image_size=36, num_classes=7)),
}


def _torch_reference(rows, model: torch.nn.Module, x: torch.Tensor) -> dict:
    """Every row computed with torch.nn.functional on the model's parameters."""
    out, h = {}, x
    for r in rows:
        m = getattr(model, r.name)
        if r.op == "Conv2d":
            h = F.conv2d(h, m.weight, m.bias, r.stride, r.padding)
        elif r.op == "ReLU":
            h = torch.clamp(h, min=0)
        elif r.op == "MaxPool2d":
            h = F.max_pool2d(h, r.kernel, r.stride)
        elif r.op == "Flatten":
            h = h.reshape(len(h), -1)
        else:
            h = h @ m.weight.T + m.bias
        out[r.name] = h.detach().numpy()
    return out


@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_table_generates_agreeing_torch_numpy_spec_and_shapes(table):
    rows, cfg = TABLES[table]
    torch.manual_seed(0)
    model = LeNet5(cfg, rows).eval()
    size = (cfg.in_channels, cfg.image_size, cfg.image_size)
    # the torch module's children are the table's rows, in order
    assert [n for n, _ in model.named_children()] == [r.name for r in rows]
    assert [type(m).__name__ for m in model.children()] == [r.op for r in rows]
    # state_shapes is the torch state dict's shapes, keys in order
    sd = model.state_dict()
    shapes = state_shapes(cfg.in_channels, cfg.image_size, cfg.num_classes)
    if rows is LENET5:
        assert shapes == {k: tuple(v.shape) for k, v in sd.items()}
    traced = {f"{r.name}.weight": w for r, _, w in trace(size, cfg.num_classes, None, rows) if w}
    assert traced == {k: tuple(v.shape) for k, v in sd.items() if k.endswith(".weight")}
    # the NumPy forward is the torch one (hooks on the real module) and F's, layer by layer
    x = torch.randn(4, *size)
    weights = {k: v.numpy() for k, v in sd.items()}
    acts, logits = forward_all(weights, x.numpy(), rows)
    spec = describe(model, size)
    hooked, scores = activations(model, x, spec.layers)
    ref = _torch_reference(rows, model, x)
    assert list(acts) == [r.name for r in rows] == spec.names()
    for r in rows:
        np.testing.assert_allclose(acts[r.name], hooked[r.name], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(acts[r.name], ref[r.name], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits, scores.detach().numpy(), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(model.fast_forward(x).numpy(), logits, rtol=1e-5, atol=1e-5)
    # the torch-free spec is the one derived from the torch module (fields, shapes, kernels)
    static = lenet_spec(weights, size, rows)
    assert static.names() == spec.names()
    assert [x.shape for x in static.layers] == [x.shape for x in spec.layers]
    assert [tuple(hooked[n].shape[1:]) for n in spec.names()] == [x.shape for x in static.layers]
    derived, mine = spec.to_dict(), static.to_dict()
    derived.pop("model_type"), mine.pop("model_type")
    assert mine == derived


def test_the_shipped_weights_on_real_mnist_torch_and_numpy_agree(mnist_dir):
    net = load_network(None, None)
    inputs = net.inputs([f"test:{i}" for i in range(64)], data_dir=mnist_dir)
    x = net.batch(inputs)
    model = net.torch_model()
    names = net.spec.names()
    acts, probs = net.run(x, net.spec.layers)
    hooked, logits = activations(model, torch.from_numpy(x), net.spec.layers)
    for n in names:
        np.testing.assert_allclose(acts[n], hooked[n], rtol=1e-5, atol=1e-5, err_msg=n)
    np.testing.assert_allclose(probs, torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        fast = model.fast_forward(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(fast, acts[names[-1]], rtol=1e-5, atol=1e-5)
    labels = np.array([i.label for i in inputs])
    assert (probs.argmax(1) == labels).mean() > 0.9  # real digits, a trained model
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == state_shapes()


class _ThreeConvs(LeNetNetwork):
    rows = THREE_CONVS


def test_the_network_answers_from_its_table():
    rows, cfg = TABLES["three_convs"]
    torch.manual_seed(1)
    model = LeNet5(cfg, rows).eval()
    size = (cfg.in_channels, cfg.image_size, cfg.image_size)
    prep = Preprocess(size, (0.0,) * 3, (1.0,) * 3)
    net = _ThreeConvs({k: v.numpy() for k, v in model.state_dict().items()}, {}, prep)
    layer = net.spec.layer
    for name in ("conv1", "conv2", "conv3"):  # the torch module's settings, from the table
        mine, theirs = net.conv_params(layer(name)), torch_conv_params(getattr(model, name))
        assert (mine.stride, mine.padding) == (theirs.stride, theirs.padding)
        np.testing.assert_array_equal(mine.weight, theirs.weight)
    for name in ("pool1", "pool2"):
        assert net.pool_params(layer(name)) == torch_pool_params(getattr(model, name), name)
    assert net.default_blur(layer("conv3")) == (3, 1.0)
    assert net.default_blur(layer("relu1")) is None
    assert net.preferred_channel(layer("conv1")) == 2
    assert net.preferred_channel(layer("conv3")) == 11  # conv3 has 12 channels
    assert net.also_shown == ("relu1", "relu2", "relu5")
    assert net.kernel_sheet is None  # three convs: one picture each
    assert net.snapshot_convs == ("conv1", "conv2", "conv3")
    assert net.logits_layer == "fc3" and net.default_layer == "conv1"
    assert net.display_name == "LeNet-5" and net.thread_safe and net.torch_free
    settings = net.layer_settings()
    assert settings["conv3"]["stride"] == (2, 2) and settings["conv3"]["pad"] == (1, 1)
    # 36 -conv1-> 32 -pool1-> 16 -conv2-> 12 -conv3 (3, stride 2, pad 1)-> 6 -pool2 (3/2)-> 2
    assert settings["pool2"]["kernel"] == (3, 3) and settings["pool2"]["in"] == (12, 6, 6)
    assert net.spec.layer("pool2").shape == (12, 2, 2) and net.weights["fc1.weight"].shape[1] == 48
    # what the layer receives, NumPy chain vs the torch module's pre-hook
    x = np.random.default_rng(0).normal(size=size).astype(np.float32)
    got = {}
    h = model.pool2.register_forward_pre_hook(lambda m, a: got.setdefault("x", a[0]))
    with torch.no_grad():
        model(torch.from_numpy(x)[None])
    h.remove()
    np.testing.assert_allclose(net.layer_input(layer("pool2"), x), got["x"][0].numpy(), atol=1e-5)
    # the torch copy is built from the same table
    assert [n for n, _ in net.torch_model().named_children()] == [r.name for r in rows]
    # the shipped network: kernels drawn on one sheet, snapshots replay conv1 and conv2
    lenet = load_network(None, None)
    assert lenet.kernel_sheet == lenet.snapshot_convs == ("conv1", "conv2")
    assert lenet.default_blur(lenet.spec.layer("conv1")) == (5, 3.0)
    settings = lenet.layer_settings()  # what the page's sentences say of each layer
    assert settings["conv1"] == {
        "in": (1, 28, 28),
        "type": "Conv2d",
        "kernel": (5, 5),
        "stride": (1, 1),
        "pad": (0, 0),
        "dilation": (1, 1),
        "groups": 1,
        "cin": 1,
        "bias": True,
    }
    assert settings["pool2"] == {
        "in": (16, 8, 8),
        "type": "MaxPool2d",
        "kernel": (2, 2),
        "stride": (2, 2),
        "pad": (0, 0),
        "dilation": (1, 1),
    }
    assert settings["fc1"] == {"in": (256,), "type": "Linear"}


def test_a_bad_row_is_refused():
    with pytest.raises(ValueError, match="unknown op"):
        trace((1, 28, 28), 10, None, (*LENET5[:1], replace(LENET5[1], op="GELU")))


def test_no_kind_lenet_branches():
    pattern = re.compile(r"""kind\s*[!=]=\s*["']lenet["']""")
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(SRC)}:{i}")
    assert not found, "use a Network method instead: " + ", ".join(found)
    assert pattern.search('if net.kind == "lenet":')  # the pattern finds what it must
