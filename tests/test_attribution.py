"""The batch attribution API against the peers as oracles (benchmarks/peers.py): captum,
torchcam and pytorch-grad-cam, on small seeded models without in-place ops; on a ResNet-18
with in-place ReLUs convsee against a no-in-place copy of itself (the peers differ there)."""

from __future__ import annotations

import copy
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from convsee.cli import main
from convsee.run.attribution import attribute_batch
from convsee.spec import describe

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import peers  # noqa: E402
import resnet  # noqa: E402

warnings.filterwarnings("ignore", module="captum")


class Block(nn.Module):
    def __init__(self, c, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c * stride, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c * stride)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(c * stride, c * stride, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c * stride)
        self.down = nn.Conv2d(c, c * stride, 1, stride, bias=False) if stride > 1 else None
        self.out = nn.ReLU()

    def forward(self, x):
        y = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        return self.out(y + (x if self.down is None else self.down(x)))


class SmallResNet(nn.Module):
    """ResNet-ish, no in-place op anywhere (the peers' hooks are right on it)."""

    def __init__(self, classes=6):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = Block(8)
        self.layer2 = Block(8, 2)
        self.layer3 = Block(16, 2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.gap(x).flatten(1))


def small():
    torch.manual_seed(3)
    m = SmallResNet()
    with torch.no_grad():
        for b in m.modules():
            if isinstance(b, nn.BatchNorm2d):
                b.running_mean.uniform_(-0.3, 0.3)
                b.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.fixture(scope="module")
def setup():
    m = small()
    spec = describe(m, (3, 32, 32), "cpu")
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return m, spec, x, [0, 3, 5, 1]


def rel(a, b):
    return float(np.abs(np.asarray(a) - b).max() / (np.abs(b).max() + 1e-30))


def corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


EXACT = ["gradcam", "gradcam++", "xgradcam", "layercam"]


@pytest.mark.parametrize("method", EXACT)
@pytest.mark.parametrize("layer", ["layer2", "layer3.conv1", "layer3"])
def test_gradient_cams_equal_pytorch_grad_cam(setup, method, layer):
    if peers.grad_cam() is None:
        pytest.skip("pytorch-grad-cam not installed")
    m, spec, x, t = setup
    r = attribute_batch(m, x.numpy(), spec, method=method, layer=layer, target=t)
    mod = dict(m.named_modules())[layer]
    ref = peers.grad_cam_map(method, m, mod, x, t)
    assert ref.max() > 0
    assert rel(r.layer_maps, ref) <= 1e-4


@pytest.mark.parametrize("method", ["gradcam", "xgradcam", "layercam"])
def test_gradient_cams_equal_torchcam(setup, method):
    if peers.torchcam() is None:
        pytest.skip("torchcam not installed")
    m, spec, x, t = setup
    r = attribute_batch(m, x.numpy(), spec, method=method, layer="layer3", target=t)
    assert rel(r.layer_maps, peers.torchcam_map(method, m, "layer3", x, t)) <= 1e-4


def test_torchcam_gradcampp_uses_another_denominator(setup):
    """torchcam's Grad-CAM++ sums g^3 * A over positions where the paper (eq. 19) and
    pytorch-grad-cam multiply g^3 by the sum of A: documented, not followed."""
    if peers.torchcam() is None:
        pytest.skip("torchcam not installed")
    m, spec, x, t = setup
    r = attribute_batch(m, x.numpy(), spec, method="gradcam++", layer="layer3", target=t)
    assert rel(r.layer_maps, peers.torchcam_map("gradcam++", m, "layer3", x, t)) > 1e-3


def test_score_cam_matches_both_peers_after_upsampling(setup):
    m, spec, x, t = setup
    r = attribute_batch(
        m, x.numpy(), spec, method="scorecam", layer="layer3", target=t, placement="stretch"
    )
    if peers.grad_cam() is not None:  # it upsamples the masks with align_corners=True
        ref = peers.grad_cam_map("scorecam", m, m.layer3, x, t)
        assert min(corr(a, b) for a, b in zip(r.layer_maps, ref, strict=True)) >= 0.99
    if peers.torchcam() is not None:
        ref = peers.torchcam_map("scorecam", m, "layer3", x, t)
        assert min(corr(a, b) for a, b in zip(r.layer_maps, ref, strict=True)) >= 0.99


def test_eigen_cam_is_pytorch_grad_cams_projection_with_a_chosen_sign(setup):
    if peers.grad_cam() is None:
        pytest.skip("pytorch-grad-cam not installed")
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    m, spec, x, _ = setup
    r = attribute_batch(m, x.numpy(), spec, method="eigencam", layer="layer3")
    with torch.no_grad():
        a = m.layer3(m.layer2(m.layer1(m.stem(x)))).numpy()
    proj = get_2d_projection(a)
    for ours, p, ai in zip(r.layer_maps, proj, a, strict=True):
        s = 1 if corr(p, ai.sum(0)) >= 0 else -1  # the sign that agrees with sum_c A_c
        assert rel(ours, np.maximum(s * p, 0)) <= 1e-4


def test_saliency_integrated_gradients_occlusion_equal_captum(setup):
    from captum.attr import IntegratedGradients, NoiseTunnel, Occlusion, Saliency

    m, spec, x, t = setup
    tt = torch.tensor(t)
    r = attribute_batch(m, x.numpy(), spec, method="saliency", target=t)
    ref = Saliency(m).attribute(x, target=tt, abs=True).numpy()
    assert rel(r.channels, ref) <= 1e-4 and rel(r.maps, ref.max(1)) <= 1e-4
    r = attribute_batch(m, x.numpy(), spec, method="integrated-gradients", target=t, steps=20)
    ref = IntegratedGradients(m).attribute(x, target=tt, n_steps=20).numpy()
    assert rel(r.channels, ref) <= 1e-4 and rel(r.maps, ref.sum(1)) <= 1e-4
    r = attribute_batch(m, x.numpy(), spec, method="occlusion", target=t, window=8, stride=4)
    ref = Occlusion(m).attribute(x, (3, 8, 8), strides=(3, 4, 4), target=tt).numpy()
    assert rel(r.channels, ref) <= 1e-4
    # a noise tunnel: the same draws as captum's (torch.normal, seeded)
    r = attribute_batch(
        m, x.numpy(), spec, method="saliency", target=t, noise=5, noise_sigma=0.2, seed=7
    )
    torch.manual_seed(7)
    ref = NoiseTunnel(Saliency(m)).attribute(
        x, target=tt, nt_type="smoothgrad", nt_samples=5, stdevs=0.2, abs=True
    )
    assert rel(r.channels, ref.numpy()) <= 1e-4


def test_passes_in_slices_keep_the_numbers(setup, monkeypatch):
    """A batch larger than a pass (PASS_VALUES made 2 inputs' worth) runs in slices, a pass
    back to the input (saliency, integrated gradients) in half of that; the maps still equal
    captum's on the whole batch."""
    from captum.attr import IntegratedGradients, LayerGradCam, Saliency

    import convsee.run.attribution as attribution

    m, spec, x, t = setup
    tt = torch.tensor(t)
    monkeypatch.setattr(attribution, "PASS_VALUES", 2 * 3 * 32 * 32)
    seen = []
    h = m.stem[0].register_forward_pre_hook(lambda _m, i: seen.append(i[0]))
    try:
        r = attribute_batch(m, x.numpy(), spec, layer="layer3", target=t)
        s = attribute_batch(m, x.numpy(), spec, method="saliency", target=t)
        g = attribute_batch(m, x.numpy(), spec, method="integrated-gradients", target=t, steps=6)
    finally:
        h.remove()
    # gradcam: two passes of 2; saliency: four of 1; integrated gradients: the scores in two
    # forward passes of 2, then its 6 x 4 gradient rows one by one
    assert [len(v) for v in seen] == [2, 2] + [1] * 4 + [2, 2] + [1] * 24
    ref = LayerGradCam(m, m.layer3).attribute(x, target=tt, relu_attributions=True)
    assert rel(r.layer_maps, ref[:, 0].detach().numpy()) <= 1e-4
    assert rel(s.channels, Saliency(m).attribute(x, target=tt, abs=True).numpy()) <= 1e-4
    ref = IntegratedGradients(m).attribute(x, target=tt, n_steps=6).numpy()
    assert rel(g.channels, ref) <= 1e-4


def test_in_place_relu_after_the_layer_convsee_exact_peers_not():
    """ResNet-18's layer3.0.bn1 is followed by an in-place ReLU: convsee equals the same
    network with every ReLU made out-of-place; the peers' hooks see the ReLU'd values."""
    m = resnet.resnet18()
    clean = copy.deepcopy(m)
    for mod in clean.modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    t = [1, 2]
    spec = describe(m, (3, 64, 64), "cpu")
    ours = attribute_batch(m, x.numpy(), spec, layer="layer3.0.bn1", target=t).layer_maps
    ref = attribute_batch(clean, x.numpy(), spec, layer="layer3.0.bn1", target=t).layer_maps
    assert ref.max() > 0 and rel(ours, ref) <= 1e-5
    if peers.grad_cam() is not None:
        exact = peers.grad_cam_map("gradcam", clean, clean.layer3[0].bn1, x, t)
        assert rel(ref, exact) <= 1e-4  # without in-place ops the oracle agrees
        off = peers.grad_cam_map("gradcam", m, m.layer3[0].bn1, x, t)
        assert rel(off, ref) > 1e-2  # with it, it does not


def test_logit_before_a_softmax_module_and_the_probability():
    from captum.attr import LayerGradCam

    class Soft(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = small()
            self.softmax = nn.Softmax(1)

        def forward(self, x):
            return self.softmax(self.net(x))

    m = Soft().eval()
    spec = describe(m, (3, 32, 32), "cpu")
    out = spec.outputs[0]
    assert out.probabilities
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    r = attribute_batch(m, x.numpy(), spec, layer="net.layer3", target=2, output_spec=out)
    assert r.quantity == "logit"
    ref = LayerGradCam(m.net, m.net.layer3).attribute(x, target=2, relu_attributions=True)
    assert rel(r.layer_maps, ref[:, 0].detach().numpy()) <= 1e-4
    with torch.no_grad():
        assert np.allclose(r.scores, m.net(x)[:, 2].numpy(), rtol=1e-5)
    p = attribute_batch(
        m, x.numpy(), spec, layer="net.layer3", target=2, output_spec=out, quantity="probability"
    )
    ref = LayerGradCam(m, m.net.layer3).attribute(x, target=2, relu_attributions=True)
    assert p.quantity == "probability"
    assert rel(p.layer_maps, ref[:, 0].detach().numpy()) <= 1e-4


class Dense(nn.Module):
    """A fully convolutional net: class scores per position (N, 3, 8, 8)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 3, 3, stride=2, padding=1)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x)))


@pytest.mark.parametrize("position", [(2, 5), "sum"])
def test_dense_output_at_a_position_or_summed_and_a_callable(position):
    m = Dense().eval()
    spec = describe(m, (3, 16, 16), "cpu")
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    r = attribute_batch(m, x.numpy(), spec, layer="c1", target=1, position=position)
    # by hand: Grad-CAM of the chosen score
    a = torch.relu(m.c1(x)).detach() * 0 + m.c1(x).detach()
    a.requires_grad_(True)
    out = m.c2(torch.relu(a))
    s = out[:, 1, 2, 5] if position != "sum" else out[:, 1].sum((1, 2))
    (g,) = torch.autograd.grad(s.sum(), a)
    cam = torch.relu((g.mean((2, 3), keepdim=True) * a).sum(1)).detach().numpy()
    assert rel(r.layer_maps, cam) <= 1e-5
    c = attribute_batch(
        m,
        x.numpy(),
        spec,
        layer="c1",
        target=(lambda o: o[:, 1, 2, 5]) if position != "sum" else (lambda o: o[:, 1].sum((1, 2))),
    )
    assert c.quantity == "custom" and rel(c.layer_maps, cam) <= 1e-5


def test_stretch_is_bilinear_upsampling_as_the_peers_do_it(setup):
    import torch.nn.functional as F

    m, spec, x, t = setup
    r = attribute_batch(m, x.numpy(), spec, layer="layer3", target=t, placement="stretch")
    up = F.interpolate(torch.from_numpy(r.layer_maps)[:, None], size=(32, 32), mode="bilinear")
    assert r.placement == "stretch" and rel(r.maps, up[:, 0].numpy()) <= 1e-5
    f = attribute_batch(m, x.numpy(), spec, layer="layer3", target=t)
    assert f.placement == "field" and rel(f.maps, up[:, 0].numpy()) > 1e-3


def test_default_layer_is_the_last_stage_and_skips_a_scaled_branch():
    m = resnet.resnet18()
    spec = describe(m, (3, 64, 64), "cpu")
    x = np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)
    assert attribute_batch(m, x, spec).layer == "layer4"

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.branch = nn.Conv2d(8, 8, 3, padding=1)
            self.scale = nn.Identity()
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            x = self.stem(x)
            y = self.scale(self.branch(x) * 1e-6)  # a ConvNeXt-like layer scale
            return self.fc((x + y).mean((2, 3)))

    m = Scaled().eval()
    spec = describe(m, (3, 16, 16), "cpu")
    r = attribute_batch(m, x[:, :, :16, :16], spec)
    assert r.layer == "stem" and r.layer_maps.max() > 1e-3
    assert any("scale" in n for n in r.notes)


def test_cli_methods_placement_and_sidecar(tmp_path):
    out = tmp_path / "o"
    args = ["attribution", "sample:3", "--method", "layercam", "--placement", "stretch"]
    assert main([*args, "--out", str(out)]) == 0
    side = json.loads((out / "attribution_sample_3_3_layercam.json").read_text())
    assert side["method"] == "layercam" and side["placement"] == "stretch"
    assert "placement: stretch" in side["placement_note"]
    import convsee

    r = convsee.load().attribution(["sample:3"], method="layercam", placement="stretch")
    np.testing.assert_allclose(side["layer_map"], r.layer_maps[0], atol=1e-7)
    assert main(["attribution", "sample:3", "--method", "saliency", "--out", str(out)]) == 0


def test_bench_attribution_quick_runs_and_agrees(tmp_path, monkeypatch, capsys):
    import bench_attribution
    import common

    monkeypatch.setattr(common, "OUT", tmp_path)
    assert bench_attribution.main(["--quick"]) == 0
    assert not list(tmp_path.glob("*.json"))  # --quick writes nothing to benchmarks/out
    printed = capsys.readouterr().out
    side = json.loads(printed[printed.rfind("\n{\n") + 1 :])
    assert all(v <= 1e-4 for v in side["agreement_max_relative"].values())
    assert set(side["threads"]) == {"1", "2"}


def test_the_page_overlay_offers_the_cams():
    from starlette.testclient import TestClient

    import convsee
    from convsee.web.server import create_app

    with TestClient(create_app(), base_url="http://127.0.0.1:8000") as c:
        body = {"input": "sample:3", "attribution": "layercam", "attribution_layer": "conv2"}
        r = c.post("/api/activations", json=body)
        assert r.status_code == 200, r.text
        got = r.json()["attribution"]
        assert got["kind"] == "layercam" and got["layer"] == "conv2"
        ref = convsee.load().attribution("sample:3", layer="conv2", method="layercam")
        m = np.asarray(got["map"]).reshape(got["shape"])
        # the answer sends the map rounded (list encoding): within 1e-3 of its maximum
        np.testing.assert_allclose(m * got["max"], ref.maps[0], atol=1e-3 * ref.maps[0].max())
        r = c.post("/api/activations", json={**body, "attribution": "nope"})
        assert r.status_code == 400 and "must be one of" in r.text


def test_the_page_overlay_offers_the_costly_methods_within_a_budget(monkeypatch):
    """Score-CAM, integrated gradients and occlusion on the page: the library's maps with the
    page's bounded options (their positive part), sent to the heavy lane; Score-CAM at a layer
    of more channels than the page's budget is refused naming the key."""
    from starlette.testclient import TestClient

    import convsee
    from convsee.web import schema
    from convsee.web.server import create_app

    net = convsee.load()
    with TestClient(create_app(), base_url="http://127.0.0.1:8000") as c:
        for kind, options in [
            ("scorecam", {"layer": "conv2"}),
            ("integrated-gradients", {"steps": schema.PAGE_IG_STEPS}),
            ("occlusion", {"window": 8, "stride": 4}),  # 28 px in 8 steps of 4
        ]:
            body = {"input": "sample:3", "attribution": kind, "attribution_layer": "conv2"}
            assert schema.heavy_request(body)
            r = c.post("/api/activations", json=body)
            assert r.status_code == 200, (kind, r.text)
            got = r.json()["attribution"]
            assert got["kind"] == kind
            ref = net.attribution("sample:3", method=kind, **options).maps[0]
            ref = np.maximum(ref, 0)
            m = np.asarray(got["map"]).reshape(got["shape"])
            np.testing.assert_allclose(m * got["max"], ref, atol=1e-3 * ref.max(), err_msg=kind)
        monkeypatch.setattr(schema, "PAGE_PASSES", 8)  # conv2 has 16 channels
        body = {"input": "sample:3", "attribution": "scorecam", "attribution_layer": "conv2"}
        r = c.post("/api/activations", json=body)
        assert r.status_code == 422 and "'attribution_layer'" in r.text, r.text
        assert "16" in r.text and "at most 8" in r.text
    assert not schema.heavy_request({"input": "sample:3", "attribution": "gradcam"})


class Viewing(nn.Module):
    """Features flattened with .view, which refuses a channels-last map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 5, 4, 2)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4 * 32 * 32, 3)

    def forward(self, x):
        y = self.act(self.conv(x))
        return self.fc(y.view(y.size(0), -1))


def test_large_inputs_channels_last_same_maps_and_view_models_fall_back():
    """From CHANNELS_LAST_PIXELS, passes whose gradient stops at the layer run channels-last:
    the maps still equal captum's (plain layout); a model whose .view refuses that layout runs
    in the plain one instead of failing."""
    from captum.attr import LayerGradCam, Occlusion

    import convsee.run.attribution as attribution

    assert 128 * 128 >= max(attribution.CHANNELS_LAST_PIXELS.values())
    torch.manual_seed(0)
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    for m, layer in ((SmallResNet().eval(), "layer3"), (Viewing().eval(), "act")):
        spec = describe(m, (3, 128, 128), "cpu")
        layouts = []
        h = m.get_submodule(layer).register_forward_hook(
            lambda _m, _i, o, seen=layouts: seen.append(
                o.is_contiguous(memory_format=torch.channels_last)
            )
        )
        try:
            r = attribute_batch(m, x.numpy(), spec, layer=layer, target=[0, 1])
        finally:
            h.remove()
        ref = LayerGradCam(m, m.get_submodule(layer)).attribute(
            x, target=torch.tensor([0, 1]), relu_attributions=True
        )
        assert rel(r.layer_maps, ref[:, 0].detach().numpy()) <= 1e-4
        assert layouts[0] is True  # the first pass ran channels-last
        if isinstance(m, Viewing):
            assert layouts[-1] is False  # ... and was run again plain
        # forward passes only (occlusion) too
        r = attribute_batch(m, x.numpy(), spec, method="occlusion", target=[0, 1], window=32)
        ref = Occlusion(m).attribute(
            x, (3, 32, 32), strides=(3, 16, 16), target=torch.tensor([0, 1])
        )
        assert rel(r.channels, ref.numpy()) <= 1e-4
