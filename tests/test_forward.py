"""The NumPy forward pass (used by render) and the hook-based one (activations) against
first principles: F.conv2d, max-pool and matmul on the same weights and input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convsee.capture import activations, capture
from convsee.datasets.inputs import samples
from convsee.errors import ConvseeError
from convsee.models.lenet import LeNet5
from convsee.models.lenet_numpy import OPS, conv2d, forward_all, lenet_spec, max_pool2
from convsee.run.predict import batch
from convsee.spec import describe

LAYERS = [name for name, _ in OPS]


def reference(net, x):
    """Every layer computed by hand from the weights."""
    out = {}
    h = F.conv2d(x, net.conv1.weight, net.conv1.bias)
    out["conv1"] = h
    out["relu1"] = h = torch.clamp(h, min=0)
    out["pool1"] = h = F.max_pool2d(h, 2)
    out["conv2"] = h = F.conv2d(h, net.conv2.weight, net.conv2.bias)
    out["relu2"] = h = torch.clamp(h, min=0)
    out["pool2"] = h = F.max_pool2d(h, 2)
    out["flatten"] = h = h.reshape(len(h), -1)
    out["fc1"] = h = h @ net.fc1.weight.T + net.fc1.bias
    out["relu3"] = h = torch.clamp(h, min=0)
    out["fc2"] = h = h @ net.fc2.weight.T + net.fc2.bias
    out["relu4"] = h = torch.clamp(h, min=0)
    out["fc3"] = h @ net.fc3.weight.T + net.fc3.bias
    return {k: v.detach().numpy() for k, v in out.items()}


@pytest.fixture
def net_and_images():
    torch.manual_seed(0)
    return LeNet5().eval(), [s.image for s in samples()]


def test_numpy_forward_matches_first_principles(net_and_images):
    net, images = net_and_images
    ref = reference(net, batch(images))
    weights = {k: v.numpy() for k, v in net.state_dict().items()}
    acts, logits = forward_all(weights, batch(images).numpy())
    assert list(acts) == list(LAYERS)
    for name in LAYERS:
        np.testing.assert_allclose(acts[name], ref[name], rtol=1e-4, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(logits, ref["fc3"], rtol=1e-4, atol=1e-4)


def test_hook_activations_match_first_principles_and_clean_up(net_and_images):
    net, images = net_and_images
    net.train()
    ref = reference(net, batch(images))
    spec = describe(net, (1, 28, 28))
    acts, _ = activations(net, batch(images), spec.select("conv1,pool1,conv2,pool2,fc3"))
    for name, a in acts.items():
        np.testing.assert_allclose(a, ref[name], rtol=1e-4, atol=1e-4)
    assert net.training  # mode restored
    assert all(not m._forward_hooks for m in net.modules())  # hooks removed


def test_hooks_removed_even_when_forward_fails(net_and_images):
    net, _ = net_and_images
    with pytest.raises(RuntimeError):
        with capture(net, describe(net, (1, 28, 28)).select("conv1")):
            net(torch.zeros(1, 3, 28, 28))  # wrong channel count
    assert all(not m._forward_hooks for m in net.modules())


def test_primitives():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 9, 11)).astype(np.float32)
    w = rng.normal(size=(4, 3, 5, 5)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(conv2d(x, w, b), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(max_pool2(x), F.max_pool2d(torch.from_numpy(x), 2).numpy())


def test_unknown_layer_says_how_to_list_valid_ones():
    spec = lenet_spec({k: v.numpy() for k, v in LeNet5().state_dict().items()})
    with pytest.raises(ConvseeError, match=r"unknown layer 'conv3'.*`convsee layers` lists"):
        spec.select("conv1,conv3")
    assert [x.name for x in spec.select(" conv1 , pool2 ")] == ["conv1", "pool2"]


def test_torch_free_description_equals_the_derived_one():
    net = LeNet5()
    derived = describe(net, (1, 28, 28)).to_dict()
    static = lenet_spec({k: v.numpy() for k, v in net.state_dict().items()}).to_dict()
    derived.pop("model_type"), static.pop("model_type")
    assert derived == static
