import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import convsee
from convsee.cli import main
from convsee.datasets.inputs import samples
from convsee.draw.render import RenderOptions, layer_ranges, render_set
from convsee.errors import ConvseeError
from convsee.models.lenet import LeNet5
from convsee.models.load import load_network
from convsee.run.predict import batch

EXPECTED = (
    ["samples.png"]
    + [
        f"{layer}/{d}{s}.png"
        for layer in ("conv1", "conv2")
        for d in range(10)
        for s in ("", "_blur")
    ]
    + [f"{layer}{s}.gif" for layer in ("conv1", "conv2") for s in ("", "_blur")]
)


def test_default_render_writes_the_original_set(tmp_path, capsys):
    out = tmp_path / "media"
    assert main(["render", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for d in range(10):
        assert f"sample:{d}: predicted {d}" in printed
    pictures = sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.suffix in (".png", ".gif")
    )
    assert pictures == sorted(EXPECTED) and len(pictures) == 45
    for rel in EXPECTED:
        img = Image.open(out / rel)
        img.load()
        assert img.width > 300
        side = json.loads(
            (out / (rel[:-4] + ".json" if rel.endswith(".png") else rel + ".json")).read_text()
        )
        assert side["checkpoint_sha256"] and side["convsee_version"]
        if rel.endswith(".gif"):
            assert img.n_frames == 10 and img.info["duration"] == 1000 and img.info["loop"] == 0
    side = json.loads((out / "conv1" / "3_blur.json").read_text())
    assert side["blur"] == [5, 3.0] and side["scale"] == "global" and side["layer"] == "conv1"
    assert json.loads((out / "conv2" / "3_blur.json").read_text())["blur"] == [3, 3.0]


def test_picture_arrays_match_first_principles_for_a_pth(tmp_path):
    torch.manual_seed(7)
    net = LeNet5().eval()
    pth = tmp_path / "plain.pth"
    torch.save(net.state_dict(), pth)  # the original project's format
    loaded = load_network(None, pth)
    inputs = loaded.inputs(["sample:0", "sample:1", "sample:2"])
    opts = RenderOptions(layers=("conv1", "pool1", "conv2", "pool2", "fc1", "fc3"))
    files, probs, arrays = render_set(loaded, inputs, opts)
    x = batch([i.image for i in inputs])
    with torch.no_grad():
        c1 = F.conv2d(x, net.conv1.weight, net.conv1.bias)
        p1 = F.max_pool2d(c1.clamp(min=0), 2)
        c2 = F.conv2d(p1, net.conv2.weight, net.conv2.bias)
        p2 = F.max_pool2d(c2.clamp(min=0), 2)
        f1 = p2.flatten(1) @ net.fc1.weight.T + net.fc1.bias
        logits = net(x)
    for name, ref in (
        ("conv1", c1),
        ("pool1", p1),
        ("conv2", c2),
        ("pool2", p2),
        ("fc1", f1),
        ("fc3", logits),
    ):
        np.testing.assert_allclose(arrays[name], ref.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(probs, torch.softmax(logits, 1).numpy(), atol=1e-5)
    side = json.loads(files["conv1/0.json"])
    assert side["value_range"] == pytest.approx([c1[0].min().item(), c1[0].max().item()], abs=1e-4)


def test_activations_npz_against_first_principles(tmp_path, capsys):
    torch.manual_seed(3)
    net = LeNet5().eval()
    pth = tmp_path / "w.pt"
    torch.save(net.state_dict(), pth)
    out = tmp_path / "acts.npz"
    assert (
        main(
            [
                "activations",
                "sample:4",
                "sample:9",
                "--checkpoint",
                str(pth),
                "--layers",
                "conv1,pool1,conv2,fc2",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    z = np.load(out)
    assert {"conv1", "pool1", "conv2", "fc2"} <= set(z.files)
    x = torch.from_numpy(z["input"])  # what the model was given, normalised
    assert x.shape == (2, 1, 28, 28)
    np.testing.assert_allclose(x[0, 0], (samples()[4].image - 0.1307) / 0.3081, atol=1e-6)
    with torch.no_grad():
        c1 = F.conv2d(x, net.conv1.weight, net.conv1.bias)
        p1 = F.max_pool2d(c1.clamp(min=0), 2)
        c2 = F.conv2d(p1, net.conv2.weight, net.conv2.bias)
        h = F.max_pool2d(c2.clamp(min=0), 2).flatten(1)
        f2 = (h @ net.fc1.weight.T + net.fc1.bias).clamp(min=0) @ net.fc2.weight.T + net.fc2.bias
    for name, ref in (("conv1", c1), ("pool1", p1), ("conv2", c2), ("fc2", f2)):
        np.testing.assert_allclose(z[name], ref.numpy(), rtol=1e-4, atol=1e-4)


def test_scales():
    a = np.stack([np.full((2, 2), -1.0), np.full((2, 2), 4.0)]).astype(np.float32)
    assert layer_ranges(a, "map", signed=True) == [(-1.0, 1.0), (-4.0, 4.0)]
    assert layer_ranges(a, "layer", signed=True) == [(-4.0, 4.0)] * 2
    assert layer_ranges(a, "global", signed=False, global_range=(0, 9)) == [(0, 9)] * 2
    assert layer_ranges(np.abs(a), "layer", signed=False) == [(0.0, 4.0)] * 2


def test_dead_channel_is_marked(tmp_path):
    torch.manual_seed(0)
    net = LeNet5()
    with torch.no_grad():
        net.conv1.bias[2] = -1000.0  # channel 2 can never fire after the ReLU
    pth = tmp_path / "dead.pth"
    torch.save(net.state_dict(), pth)
    net = load_network(None, pth)
    files, _, _ = render_set(
        net, net.inputs(["sample:0", "sample:1"]), RenderOptions(layers=("relu1",))
    )
    assert json.loads(files["relu1/0.json"])["dead_channels"] == [2]


@pytest.mark.parametrize("scale", ["map", "layer", "global"])
def test_every_kind_of_picture(tmp_path, scale):
    out = tmp_path / scale
    args = [
        "render",
        "sample:3",
        "sample:8",
        "--layers",
        "conv1,relu1,pool2,fc1,fc3",
        "--scale",
        scale,
        "--with-kernels",
        "--cmap",
        "magma",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    for rel in (
        "conv1/3.png",
        "relu1/8.png",
        "pool2/3.png",
        "fc1/3.png",
        "fc3/8.png",
        "conv1.gif",
        "fc3.gif",
    ):
        Image.open(out / rel).load()
    assert main(["render", "--kernels", "--out", str(out)]) == 0
    assert main(["render", "--diff", "sample:7", "sample:1", "--out", str(out)]) == 0
    side = json.loads((out / "diff_conv1_sample_7_vs_sample_1.json").read_text())
    # against torch: conv1 of the two digits through the torch LeNet-5 on the same weights
    net = convsee.load()
    x = torch.tensor(net.batch(net.inputs(["sample:7", "sample:1"])))
    with torch.no_grad():
        a, b = net.torch_model().conv1(x).flatten(1).double()
    cos = float(torch.cosine_similarity(a, b, 0))
    assert side["cosine_similarity"] == pytest.approx(cos, abs=1e-5)
    Image.open(out / "kernels.png").load()


def test_image_file_input(tmp_path):
    from PIL import ImageDraw

    p = tmp_path / "seven.png"
    img = Image.new("RGB", (120, 160), "white")
    ImageDraw.Draw(img).line([(20, 20), (100, 20), (50, 150)], fill="black", width=10)
    img.save(p)
    assert main(["render", str(p), "--layers", "conv1", "--out", str(tmp_path / "o")]) == 0
    side = json.loads((tmp_path / "o" / "conv1" / "seven.json").read_text())
    assert side["label"] is None and side["input_source"] == str(p)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--layers", "conv1,conv9"], "unknown layer 'conv9'"),
        (["missing.png"], "no such file"),
        (["NOTIMG"], "not an image"),
        (["test:10000"], "index out of range 0..9999"),
        (["--cmap", "nope"], "unknown colormap 'nope'"),
        (["--blur", "4,1"], "odd"),
        (["--blur", "x"], "KERNEL,SIGMA"),
        (["--checkpoint", "missing.pth"], "does not exist"),
    ],
)
def test_bad_input_leaves_no_output(tmp_path, monkeypatch, capsys, mnist_dir, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "NOTIMG").write_text("plain text")
    out = tmp_path / "out"
    assert main(["render", *extra, "--data", str(mnist_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_global_scale_does_not_depend_on_what_is_drawn_together(tmp_path):
    """The shipped checkpoint carries a reference range per layer: one input alone and the
    same input among others get the same colours."""
    net = load_network(None, None)
    alone, _, _ = render_set(net, net.inputs(["sample:3"]), RenderOptions(layers="conv1"))
    many, _, _ = render_set(
        net, net.inputs(["sample:3", "sample:0", "sample:8"]), RenderOptions(layers="conv1")
    )
    a, b = json.loads(alone["conv1/3.json"]), json.loads(many["conv1/3.json"])
    assert a["global_range"] == b["global_range"] == net.meta["reference_ranges"]["conv1"]
    assert "percentile" in a["global_range_from"]


def test_api_names_are_stable_and_figures_display_themselves():
    import importlib
    import subprocess
    import sys

    code = (
        "import sys, convsee\n"
        "import convsee.models.load, convsee.datasets.digits, convsee.views.api, convsee.spec\n"
        "assert callable(convsee.preprocess) and callable(convsee.predict)\n"
        "assert callable(convsee.load) and callable(convsee.describe)\n"
        "net = convsee.load()\n"
        "[p] = convsee.predict(net, ['sample:7'])\n"
        "assert repr(p).startswith('Prediction(sample:7: 7 '), repr(p)\n"
        "assert repr(net) == '<convsee LeNet-5: input 1x28x28, 10 classes, trained on mnist, "
        "12 layers>', repr(net)\n"
        "figs = net.render('sample:3', layers='conv1')\n"
        "assert figs[0]._repr_png_().startswith(b'\\x89PNG')\n"
        "assert 'torch' not in sys.modules\n"
        "assert 'load' in dir(convsee) and 'Network' in dir(convsee)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert importlib.import_module("convsee").__version__


def test_api_says_which_argument_is_wrong():
    import convsee

    with pytest.raises(ConvseeError, match=r"first argument is the network .*got str"):
        convsee.predict("sample:3")
    with pytest.raises(ConvseeError, match="takes a torch model .*not int"):
        convsee.wrap(3)
