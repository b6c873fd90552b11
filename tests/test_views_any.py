"""attribution, sweep and animate on any model: numbers against independent computations
(captum's LayerGradCam and Saliency, hand-written forward passes, F.conv2d, F.max_pool2d,
F.interpolate), the pictures' teaching choices, and every error path (exit 2, one line,
nothing written)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from foreign_models import make
from PIL import Image
from test_any_model import residual_by_hand, rgbnet_by_hand, twoheads_by_hand

from convsee.cli import main
from convsee.datasets.inputs import samples
from convsee.spec import describe, with_fields

HERE = Path(__file__).parent
MODELS = str(HERE / "foreign_models.py")
RGB = ["--model", f"{MODELS}:seeded_rgbnet", "--input-size", "3,32,32"]

FACTORIES = '''
import torch
from torch import nn
from foreign_models import make


def residual():
    return make("ResidualNet")


def twoheads():
    return make("TwoHeads")


def seq1d():
    return make("Seq1d")


class SeqOut(nn.Module):
    """Maps, but its output is a sequence (5 steps x 3 scores), not one score per class."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return self.conv(x).flatten(2)[:, :, :15].reshape(-1, 5, 12)


class Wide(nn.Module):
    """64 input channels into a grouped, strided conv."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(64, 96, 3, stride=2, padding=1, groups=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(96, 4)

    def forward(self, x):
        x = self.conv2(self.relu(self.conv1(x)))
        return self.fc(self.gap(x).flatten(1))


def wide():
    return Wide().eval()
'''


@pytest.fixture
def zoo(tmp_path):
    p = tmp_path / "zoo.py"
    p.write_text(FACTORIES)
    return str(p)


def photo(path, h=40, w=52):
    """A colour picture: a gradient, a yellow disc, a blue square."""
    y, x = np.mgrid[0:h, 0:w]
    r, g, b = x / (w - 1) * 255, y / (h - 1) * 200, np.full((h, w), 120.0)
    disc = (x - 0.6 * w) ** 2 + (y - 0.4 * h) ** 2 < (0.2 * h) ** 2
    r[disc], g[disc], b[disc] = 250, 230, 20
    sq = (x > 0.15 * w) & (x < 0.4 * w) & (y > 0.55 * h) & (y < 0.9 * h)
    r[sq], g[sq], b[sq] = 20, 40, 230
    Image.fromarray(np.stack([r, g, b], -1).astype(np.uint8)).save(path)
    return str(path)


def seeded_x(shape, seed=1):
    return torch.rand(1, *shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------ attribution


def _captum():
    pytest.importorskip("captum")
    warnings.filterwarnings("ignore", module="captum")
    from captum.attr import LayerGradCam, Saliency

    return LayerGradCam, Saliency


CAPTUM_CASES = [
    # model, input shape, layer (each run once in the forward pass), output index, target
    ("RGBNet", (3, 32, 32), "conv1", None, 1),
    ("RGBNet", (3, 32, 32), "act1", None, 3),
    ("RGBNet", (3, 32, 32), "conv2", None, 0),
    ("RGBNet", (3, 32, 32), "conv3", None, 4),
    ("RGBNet", (3, 32, 32), "pool", None, 2),
    ("ResidualNet", (1, 28, 28), "stem", None, 1),
    ("ResidualNet", (1, 28, 28), "block.conv1", None, 7),
    ("ResidualNet", (1, 28, 28), "side", None, 3),
    ("TwoHeads", (1, 28, 28), "conv", "0", 2),
    ("TwoHeads", (1, 28, 28), "conv", "1", 6),  # probabilities: d p / d A
]


@pytest.mark.parametrize("name, shape, layer, output, target", CAPTUM_CASES)
def test_grad_cam_and_saliency_match_captum(name, shape, layer, output, target):
    from convsee.run.attribution import attribute

    LayerGradCam, Saliency = _captum()
    model = make(name)
    spec = describe(model, shape)
    mean = torch.tensor([0.2, 0.4, 0.6][: shape[0]])[:, None, None]
    std = torch.tensor([0.3, 0.25, 0.2][: shape[0]])[:, None, None]
    image = seeded_x(shape)  # the [0, 1] picture
    x = (image - mean) / std
    k = None if output is None else int(output)
    out_spec = spec.outputs[0 if k is None else k]
    r = attribute(
        model,
        x[0].numpy(),
        spec.layer(layer),
        target,
        output=output,
        output_spec=out_spec,
        std=std.flatten().numpy(),
    )

    def scores(t):
        o = model(t)
        return o if k is None else o[k]

    module = dict(model.named_modules())[spec.layer(layer).module]
    ref = LayerGradCam(scores, module).attribute(x, target=target, relu_attributions=True)
    ref = ref[0, 0].detach().numpy()
    assert r.cam.shape == ref.shape and ref.max() > 0  # a map that says something
    np.testing.assert_allclose(r.cam, ref, rtol=1e-4, atol=1e-5 * ref.max())
    sal = Saliency(lambda img: scores((img - mean) / std)).attribute(
        image.clone().requires_grad_(True), target=target, abs=True
    )
    sal = sal[0].amax(0).detach().numpy()  # captum keeps channels: the max over them
    np.testing.assert_allclose(r.saliency, sal, rtol=1e-4, atol=1e-6 * sal.max())
    assert r.quantity == ("probability" if output == "1" else "logit")


@pytest.mark.parametrize(
    "name, shape, layer, by_hand, scores, target",
    [
        ("ResidualNet", (1, 28, 28), "block.relu#1", residual_by_hand, "head", 4),
        ("ResidualNet", (1, 28, 28), "block.relu#2", residual_by_hand, "head", 2),
        ("TwoHeads", (1, 28, 28), "pool#2", twoheads_by_hand, "softmax", 5),
        ("TwoHeads", (1, 28, 28), "split.0", twoheads_by_hand, "coarse", 1),
    ],
)
def test_grad_cam_of_a_reused_module_or_an_element_matches_a_hand_computation(
    name, shape, layer, by_hand, scores, target
):
    """captum hooks a module's last call; a NAME#k layer or a tuple element is checked against
    the gradient through a forward pass written out by hand."""
    from convsee.run.attribution import attribute

    model = make(name)
    spec = describe(model, shape)
    x = seeded_x(shape, 3) * 2 - 1
    output = None if name != "TwoHeads" else ("1" if scores == "softmax" else "0")
    out_spec = spec.outputs[0 if output in (None, "0") else 1]
    k = out_spec.shape[0]
    for t in [target, *range(k)]:  # the given class, else the first whose map is not all 0
        with torch.enable_grad():
            out = by_hand(model, x.clone().requires_grad_(True))
            a = out[layer]
            (g,) = torch.autograd.grad(out[scores][0, t], a)
        alpha = g[0].mean((1, 2))
        ref = torch.relu((alpha[:, None, None] * a[0]).sum(0)).detach().numpy()
        if ref.max() > 0:
            break
    assert ref.max() > 0
    r = attribute(model, x[0].numpy(), spec.layer(layer), t, output=output, output_spec=out_spec)
    np.testing.assert_allclose(r.alpha, alpha.detach().numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(r.cam, ref, rtol=1e-4, atol=1e-5 * ref.max())


def test_placement_follows_the_receptive_field_not_a_stretch():
    from convsee.models.lenet import LeNet5
    from convsee.run.attribution import place, stretch_field

    f = describe(LeNet5(), (1, 28, 28)).layer("conv2").field
    assert (f.start, f.stride) == ((6.5, 6.5), (2.0, 2.0))
    cam = np.zeros((8, 8), np.float32)
    cam[3, 4] = 1.0
    placed = place(cam, f, (28, 28))
    # map pixel (3, 4) sits at input (12.5, 14.5): rows 12, 13 and cols 14, 15 take 3/4 each
    np.testing.assert_allclose(placed[12:14, 14:16], 0.75 * 0.75, atol=1e-6)
    assert placed[11, 14] == pytest.approx(0.25 * 0.75) and placed[12:14, :12].max() == 0
    stretched = place(cam, stretch_field((8, 8), (28, 28)), (28, 28))
    assert np.abs(placed - stretched).max() > 0.3  # a stretch puts it elsewhere (11.75, 15.25)
    # a stretch is exactly bilinear resizing (align_corners=False), an independent computation
    rng = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    ref = F.interpolate(torch.from_numpy(rng)[None, None], (28, 28), mode="bilinear")
    np.testing.assert_allclose(
        place(rng, stretch_field((8, 8), (28, 28)), (28, 28)), ref[0, 0], atol=1e-5
    )
    np.testing.assert_allclose(place(np.ones((8, 8)), f, (28, 28)), 1.0, atol=1e-6)


def test_unknown_field_falls_back_to_a_stretch_and_says_so():
    from convsee.run.attribution import attribute, stretch_field

    model = make("RGBNet")
    spec = with_fields(describe(model, (3, 32, 32)), {"conv3": None})
    r = attribute(model, seeded_x((3, 32, 32))[0].numpy(), spec.layer("conv3"), 1)
    assert not r.field_known and r.field == stretch_field((16, 16), (32, 32))
    assert attribute(
        model, seeded_x((3, 32, 32))[0].numpy(), describe(model, (3, 32, 32)).layer("conv3"), 1
    ).field_known


def test_attribution_cli_on_foreign_models(tmp_path, zoo):
    out = tmp_path / "o"
    img = photo(tmp_path / "photo.png")
    args = ["attribution", img, *RGB, "--target", "2", "--layer", "conv3", "--out", str(out)]
    assert main(args) == 0
    side = json.loads((out / "attribution_photo_2.json").read_text())
    assert side["layer"] == "conv3" and side["placement"] == "field"
    assert side["differentiated"] == "logit" and len(side["layer_map"]) == 16
    pic = Image.open(out / "attribution_photo_2.png").convert("RGB")
    a = np.asarray(pic).astype(int)
    assert (np.abs(a[..., 0] - a[..., 2]) > 100).any()  # the input is drawn in colour
    # the sidecar's numbers are the computation's
    from convsee.models.load import load_network
    from convsee.run.attribution import attribute

    net = load_network(f"{MODELS}:seeded_rgbnet", None, preprocess={"input_size": (3, 32, 32)})
    [inp] = net.inputs([img])
    r = attribute(net.torch_model(), inp.x, net.spec.layer("conv3"), 2, std=net.prep.channel_std())
    np.testing.assert_allclose(side["layer_map"], r.cam, atol=1e-7)
    two = ["--model", f"{zoo}:twoheads", "--input-size", "1,28,28", "--output", "1"]
    assert main(["attribution", "sample:4", *two, "--layer", "pool#2", "--out", str(out)]) == 0
    side = json.loads(next(out.glob("attribution_sample_4_*.json")).read_text())
    # the output is an nn.Softmax module's: its input, the logit, is differentiated
    assert side["differentiated"] == "logit" and side["layer"] == "pool#2"


def test_lenet_attribution_says_what_it_differentiates(tmp_path):
    args = ["attribution", "sample:7", "--layer", "conv2", "--out", str(tmp_path)]
    assert main(args) == 0
    side = json.loads((tmp_path / "attribution_sample_7_7.json").read_text())
    assert side["layer"] == "conv2" and side["field"]["start"] == [6.5, 6.5]
    assert side["differentiated"] == "logit" and side["map_range"][1] > 0


# ------------------------------------------------------------------------------ sweep


@pytest.mark.parametrize("hw", [(28, 28), (32, 32), (30, 45)])
def test_occlusion_covers_the_whole_grid_with_a_visible_patch(hw):
    from convsee.run.sweep import PATCH_VALUE, occlusion_boxes, perturb

    img = np.zeros(hw, np.float32)
    img[::3] = 1.0  # ink and background
    frames, labels = perturb(img, "occlude")
    boxes = occlusion_boxes(hw)
    assert len(frames) == len(labels) == len(boxes) + 1
    covered = np.zeros(hw, bool)
    for f, (r, c, s) in zip(frames[1:], boxes, strict=True):
        assert (f[r : r + s, c : c + s] == PATCH_VALUE).all()
        outside = np.ones(hw, bool)
        outside[r : r + s, c : c + s] = False
        np.testing.assert_array_equal(f[outside], img[outside])
        covered[r : r + s, c : c + s] = True
    assert covered.all()  # the last row and column of positions are there
    assert 0.3 < PATCH_VALUE < 0.7  # neither the background (0) nor the ink (1)


def test_perturbations_of_a_colour_picture():
    from convsee.run.sweep import perturb

    img = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    for kind in ("blur", "shift", "rotate", "noise", "occlude"):
        frames, _ = perturb(img, kind, fill=(0.1, 0.2, 0.3))
        assert all(f.shape == img.shape for f in frames)
    shifted, _ = perturb(img, "shift", fill=(0.1, 0.2, 0.3))
    np.testing.assert_allclose(shifted[-1][:, :7], np.broadcast_to([0.1, 0.2, 0.3], (32, 7, 3)))
    np.testing.assert_array_equal(shifted[-1][:, 7:], img[:, :25])  # +7 px (6 x 32 / 28)


def test_sweep_cli_numbers_and_patch_on_rgb(tmp_path):
    out = tmp_path / "o"
    img = photo(tmp_path / "photo.png")
    assert main(["sweep", img, *RGB, "--kind", "occlude", "--out", str(out)]) == 0
    side = json.loads((out / "sweep_occlude_conv1.json").read_text())
    assert side["layer"] == "conv1" and len(side["patches"]) == 16
    # conv1 by hand on the perturbed pictures, normalised by hand with ImageNet's statistics
    from convsee.models.load import load_network
    from convsee.run.sweep import perturb

    net = load_network(f"{MODELS}:seeded_rgbnet", None, preprocess={"input_size": (3, 32, 32)})
    [inp] = net.inputs([img])
    frames, _ = perturb(inp.image, "occlude")
    m = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    s = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    x = (torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2) - m) / s
    model = make("RGBNet")
    with torch.no_grad():
        maps = rgbnet_by_hand(model, x)["conv1"].flatten(2)
        probs = torch.softmax(rgbnet_by_hand(model, x)["fc"], 1)
    cos = F.cosine_similarity(maps, maps[:1], dim=2).numpy()
    np.testing.assert_allclose(side["channel_cosine_to_reference"], cos, atol=2e-4)
    np.testing.assert_allclose(side["probabilities"], probs.numpy(), atol=2e-5)
    gif = Image.open(out / "sweep_occlude_conv1.gif")
    assert gif.n_frames == 17
    gif.seek(16)  # the last patch: bottom-right corner
    a = np.asarray(gif.convert("RGB")).astype(int)
    r, c, sd = side["patches"][-1]
    k = 168 // 32  # the input panel's enlargement, at (20, 120)
    y, x0 = 120 + (r + sd // 2) * k, 20 + (c + sd // 2) * k
    assert np.abs(a[y, x0] - 128).max() <= 8  # mid-grey inside the patch
    assert (
        (a[120 + r * k - 1 : 120 + (r + sd) * k + 1, 20 + c * k - 1] == [214, 39, 40]).all(1).any()
    )


def test_lenet_occlusion_patch_is_visible_over_the_background(tmp_path):
    assert main(["sweep", "--kind", "occlude", "--out", str(tmp_path)]) == 0
    gif = Image.open(tmp_path / "sweep_occlude_conv1.gif")
    assert gif.n_frames == 17
    gif.seek(1)  # the patch at the top-left corner: background there
    a = np.asarray(gif.convert("RGB")).astype(int)
    assert np.abs(a[120 + 3 * 6, 20 + 3 * 6] - 128).max() <= 8


def test_sweep_wide_layer_draws_chosen_channels(tmp_path, zoo):
    wide = ["--model", f"{zoo}:wide", "--input-size", "3,24,24"]
    argv = ["sweep", "sample:1", *wide, "--layer", "conv1", "--kind", "blur", "--channels", "top:8"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    side = json.loads((tmp_path / "sweep_blur_conv1.json").read_text())
    assert len(side["channels_drawn"]) == 8 and len(side["channel_cosine_to_reference"][0]) == 64


# ------------------------------------------------------------------------------ animate


@pytest.mark.parametrize(
    "stride, padding, dilation, groups, mode",
    [
        (1, 0, 1, 1, "zeros"),
        (2, 1, 1, 1, "zeros"),
        (1, 2, 2, 1, "zeros"),
        (2, 1, 1, 2, "zeros"),
        (1, 1, 1, 1, "reflect"),
        (1, 1, 1, 1, "replicate"),
        (1, 1, 1, 1, "circular"),
        (1, "same", 2, 1, "zeros"),
    ],
)
def test_conv_steps_equal_conv2d(stride, padding, dilation, groups, mode):
    from convsee.run.animate import ConvParams, conv_steps

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, stride, padding, dilation, groups, padding_mode=mode)
    x = torch.randn(1, 4, 11, 13)
    with torch.no_grad():
        ref = conv(x)[0].numpy()
    w = conv.weight.detach().numpy()
    b = conv.bias.detach().numpy()
    if padding == "same":
        from convsee.models.params import _same_padding

        pad = _same_padding((3, 3), (dilation, dilation))
    else:
        pad = (padding,) * 4
    p = ConvParams(w, b, (stride, stride), pad, (dilation, dilation), groups, mode)
    for c in range(6):
        lo, hi = p.group_of(c)
        win, prod, out = conv_steps(x[0, lo:hi].numpy(), w[c], b[c], stride, pad, dilation, mode)
        np.testing.assert_allclose(out, ref[c], atol=1e-5)
        i, j = out.shape[0] // 2, out.shape[1] - 1
        assert prod[i, j].sum() + b[c] == pytest.approx(out[i, j], abs=1e-5)


def test_pool_steps_equal_max_pool2d():
    from convsee.run.animate import pool_steps

    x = torch.randn(13, 11, generator=torch.Generator().manual_seed(0))
    for k, s, p in [(2, 2, 0), (3, 2, 1), (4, 4, 0), (3, 1, 1)]:
        _, out = pool_steps(x.numpy(), k, s, p)
        np.testing.assert_array_equal(out, F.max_pool2d(x[None], k, s, p)[0].numpy())


def _anim(out, name):
    return json.loads((out / f"{name}.json").read_text())


def test_animate_teaches_on_lenet(tmp_path):
    """Issue 12: the frames go along the ink, to the maximum and a negative response; the
    normalised value of a black pixel is written on the frames."""
    from convsee.datasets.idx import MEAN, STD
    from convsee.models.checkpoint import load_checkpoint

    assert main(["animate", "--out", str(tmp_path)]) == 0
    side = _anim(tmp_path, "animate_conv1_ch2")
    shown = side["shown"]
    final = np.array(side["final_map"])
    x = (samples()[3].image - MEAN) / STD
    spread = lambda r, c: np.ptp(x[r : r + 5, c : c + 5])  # noqa: E731
    teach = [s for s in shown if s["why"] != "filling in"]
    whys = [s["why"] for s in teach]
    assert whys[0] == "empty" and "max" in whys and "min" in whys and whys.count("along") >= 4
    assert spread(*teach[0]["position"]) == 0  # the one empty window, said to be so
    assert sum(spread(*s["position"]) == 0 for s in shown) <= 2  # was 31 of 53 frames
    assert all(spread(*s["position"]) > 0.5 for s in teach if s["why"] == "along")
    assert tuple(teach[whys.index("max")]["position"]) == np.unravel_index(
        final.argmax(), final.shape
    )
    assert tuple(teach[whys.index("min")]["position"]) == np.unravel_index(
        final.argmin(), final.shape
    )
    assert final.min() < 0
    assert any("-0.42" in n and "black" in n for n in side["notes"])
    assert len(shown) == side["frames"] <= 25 and shown[-1]["computed"] == 24 * 24
    model, _ = load_checkpoint()
    xt = torch.from_numpy(x)[None, None]
    ref = F.conv2d(xt, model.conv1.weight, model.conv1.bias)[0, 2].detach().numpy()
    np.testing.assert_allclose(final, ref, atol=1e-4)
    gif = Image.open(tmp_path / "animate_conv1_ch2.gif")
    assert gif.n_frames == side["frames"]
    assert side["frame_ms"][0] > side["frame_ms"][len(teach)]


@pytest.mark.parametrize(
    "argv_model, layer, channel, ref_layer, by_hand",
    [
        (RGB, "conv2", 5, "conv2", rgbnet_by_hand),  # stride 2, padding 1
        (RGB, "conv3", 11, "conv3", rgbnet_by_hand),  # dilation 2, padding 2
        (RGB, "pool", 3, "pool", rgbnet_by_hand),
    ],
)
def test_animate_final_map_on_rgbnet(tmp_path, argv_model, layer, channel, ref_layer, by_hand):
    img = photo(tmp_path / "p.png")
    out = tmp_path / "o"
    assert (
        main(
            [
                "animate",
                img,
                *argv_model,
                "--layer",
                layer,
                "--channel",
                str(channel),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    side = _anim(out, f"animate_{layer}_ch{channel}")
    from convsee.models.load import load_network

    net = load_network(f"{MODELS}:seeded_rgbnet", None, preprocess={"input_size": (3, 32, 32)})
    [inp] = net.inputs([img])
    with torch.no_grad():
        ref = by_hand(make("RGBNet"), torch.from_numpy(inp.x)[None])[ref_layer][0, channel]
    np.testing.assert_allclose(side["final_map"], ref.numpy(), atol=1e-4)
    frame = Image.open(out / f"animate_{layer}_ch{channel}_frames" / "000.png")
    assert frame.size == Image.open(out / f"animate_{layer}_ch{channel}_frames" / "005.png").size


def test_animate_residual_reused_and_wide_models(tmp_path, zoo):
    out = tmp_path / "o"
    res = ["--model", f"{zoo}:residual", "--input-size", "1,28,28"]
    assert (
        main(
            [
                "animate",
                "sample:2",
                *res,
                "--layer",
                "block.conv2",
                "--channel",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    side = _anim(out, "animate_block.conv2_ch1")
    x = torch.from_numpy((samples()[2].image - 0.1307) / 0.3081)[None, None]
    with torch.no_grad():
        ref = residual_by_hand(make("ResidualNet"), x)["block.conv2"][0, 1]
    np.testing.assert_allclose(side["final_map"], ref.numpy(), atol=1e-4)
    assert side["bias"] == 0.0
    # 64 input channels, groups 2: channel 70 reads input channels 32..63 only
    wide = ["--model", f"{zoo}:wide", "--input-size", "3,24,24"]
    assert (
        main(
            ["animate", "sample:5", *wide, "--layer", "conv2", "--channel", "70", "--out", str(out)]
        )
        == 0
    )
    side = _anim(out, "animate_conv2_ch70")
    assert side["input_channels"] == [32, 63] and side["groups"] == 2
    from convsee.models.load import load_network

    net = load_network(f"{zoo}:wide", None, preprocess={"input_size": (3, 24, 24)})
    [inp] = net.inputs(["sample:5"])
    m = net.torch_model()
    with torch.no_grad():
        ref = m.conv2(m.relu(m.conv1(torch.from_numpy(inp.x)[None])))[0, 70]
    np.testing.assert_allclose(side["final_map"], ref.numpy(), atol=1e-4)
    two = ["--model", f"{zoo}:twoheads", "--input-size", "1,28,28"]
    assert main(["animate", *two, "--layer", "pool#2", "--channel", "1", "--out", str(out)]) == 0
    side = _anim(out, "animate_pool#2_ch1")
    x = torch.from_numpy((samples()[3].image - 0.1307) / 0.3081)[None, None]
    with torch.no_grad():
        ref = twoheads_by_hand(make("TwoHeads"), x)["pool#2"][0, 1]
    np.testing.assert_allclose(side["final_map"], ref.numpy(), atol=1e-5)


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["animate", "--layer", "relu1"],
            "animate shows a convolution or max pooling; relu1 is a ReLU; "
            "conv layers: conv1, conv2",
        ),
        (["animate", *RGB, "--layer", "bn1"], "bn1 is a BatchNorm2d"),
        (["animate", *RGB, "--channel", "8"], "--channel must be 0..7 for conv1"),
        (["animate", "--model", "ZOO:seq1d", "--input-size", "1,1,64"], "no Conv2d layer"),
        (["sweep", "--model", "ZOO:seq1d", "--input-size", "1,1,64"], "the model has no map layer"),
        (["sweep", *RGB, "--layer", "fc"], "sweep shows maps (C,H,W); fc outputs 5"),
        (["sweep", *RGB, "--channels", "40"], "out of range"),
        (
            ["attribution", "--model", "ZOO:seq1d", "--input-size", "1,1,64"],
            "a CAM needs a layer whose output is a map",
        ),
        (["attribution", *RGB, "--target", "5"], "--target must be 0..4"),
        (["attribution", *RGB, "--layer", "fc"], "layer fc outputs 5 per input: not maps"),
        (["attribution", "--model", "ZOO:SeqOut", "--input-size", "1,6,6"], "one score per class"),
        (["attribution", *RGB, "--layer", "nope"], "unknown layer 'nope'"),
    ],
)
def test_views_refuse_with_one_line_and_write_nothing(tmp_path, capsys, zoo, argv, message):
    argv = [a.replace("ZOO", zoo) for a in argv]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if not line.startswith("convsee: note:")]
    assert (
        len(errors) == 1
        and errors[0].startswith(f"convsee {argv[0]}: error:")
        and message in errors[0]
    )
    assert not (tmp_path / "o").exists()
