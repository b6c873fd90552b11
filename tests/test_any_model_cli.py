"""Part 5 from the command line: every command on foreign models, their inputs and errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from foreign_models import make
from PIL import Image, ImageDraw

from convsee.cli import main

HERE = Path(__file__).parent
RGB = [
    "--model",
    str(HERE / "foreign_models.py") + ":seeded_rgbnet",
    "--input-size",
    "3,32,32",
    "--mean",
    "0.5,0.5,0.5",
    "--std",
    "0.25",
]
RES = ["--model", str(HERE / "foreign_models.py") + ":ResidualNet", "--input-size", "1,28,28"]


@pytest.fixture
def photo(tmp_path) -> Path:
    img = Image.new("RGB", (64, 48), (250, 240, 200))
    ImageDraw.Draw(img).ellipse([10, 8, 50, 40], fill=(200, 30, 30))
    p = tmp_path / "red ball.jpg"
    img.save(p, quality=95)
    return p


def test_layers_lists_names_shapes_and_fields(capsys):
    assert main(["layers", *RES]) == 0
    out = capsys.readouterr().out
    assert "block.relu#2" in out and "ReLU" in out and "2 of 2" in out
    assert "Functional ops no module hook can see" in out and "add_ in block" in out
    assert main(["layers", *RES, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {r["name"]: r for r in rows}
    assert by["block.conv2"]["shape"] == [8, 28, 28] and by["head"]["shape"] == [10]
    assert by["pool"]["field"]["size"] == [8, 8] and by["pool"]["field"]["stride"] == [2, 2]
    assert main(["layers", "--json"]) == 0  # LeNet-5 without torch model flags
    assert [r["name"] for r in json.loads(capsys.readouterr().out)][:3] == [
        "conv1",
        "relu1",
        "pool1",
    ]


def test_predict_and_activations_match_the_model(tmp_path, capsys, photo):
    model = make("RGBNet")
    assert main(["predict", str(photo), *RGB, "--json", "--show-input", str(tmp_path / "s")]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    seen = np.asarray(Image.open(tmp_path / "s" / "red_ball.png"), np.float32) / 255
    assert seen.shape == (32, 32, 3)
    x = torch.from_numpy((seen.transpose(2, 0, 1) - 0.5) / 0.25)[None]
    with torch.no_grad():
        ref = torch.softmax(model(x), 1)[0].numpy()
    np.testing.assert_allclose(row["probabilities"], ref, atol=2e-2)  # the PNG rounds to 8 bits
    out = tmp_path / "a.npz"
    assert main(["activations", str(photo), *RGB, "--layers", "conv2,gap", "-o", str(out)]) == 0
    z = np.load(out)
    assert z["input"].shape == (1, 3, 32, 32) and z["conv2"].shape == (1, 12, 16, 16)
    with torch.no_grad():
        h = model.act1(model.bn1(model.conv1(torch.from_numpy(z["input"]))))
        c2 = model.conv2(h).numpy()
    np.testing.assert_allclose(z["conv2"], c2, rtol=1e-5, atol=1e-5)


def test_render_any_model_writes_a_picture_per_layer_and_input(tmp_path, capsys, photo):
    out = tmp_path / "r"
    args = ["render", str(photo), "sample:3", *RGB, "--layers", "type:Conv2d,fc", "--out", str(out)]
    assert main(args) == 0
    for layer in ("conv1", "conv2", "conv3", "fc"):
        for stem in ("red_ball", "sample_3"):
            Image.open(out / layer / f"{stem}.png").load()
            side = json.loads((out / layer / f"{stem}.json").read_text())
            assert side["model"].endswith("seeded_rgbnet") and side["layer"] == layer
        assert Image.open(out / f"{layer}.gif").n_frames == 2
    side = json.loads((out / "conv1" / "sample_3.json").read_text())
    assert "grayscale replicated to 3 channels" in " ".join(side["preprocessing_notes"])
    assert side["preprocess"]["mean"] == [0.5, 0.5, 0.5]


def test_wide_layers_draw_a_subset_with_the_range_of_all(tmp_path):
    from convsee.draw.render import RenderOptions, render_set
    from convsee.models.load import wrap

    class Wide(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 100, 3)

        def forward(self, x):
            return self.conv(x).mean((2, 3))

    torch.manual_seed(0)
    net = wrap(Wide(), input_size=(1, 12, 12), mean=0.5, std=0.5, resize="stretch")
    inputs = net.inputs(["sample:3"])
    files, _, acts = render_set(net, inputs, RenderOptions(layers="conv"))
    side = json.loads(files["conv/3.json"])
    a = acts["conv"][0]
    top = np.argsort(-a.reshape(100, -1).mean(1), kind="stable")[:64]
    assert side["channels_drawn"] == sorted(top.tolist())  # default: top 64 by mean
    m = float(np.abs(a).max())
    assert side["global_range"] == pytest.approx([-m, m], rel=1e-6)  # over all 100
    files, _, _ = render_set(net, inputs, RenderOptions(layers="conv", channels="5-7,90"))
    assert json.loads(files["conv/3.json"])["channels_drawn"] == [5, 6, 7, 90]
    files, _, _ = render_set(net, inputs, RenderOptions(layers="conv", channels="all"))
    assert len(json.loads(files["conv/3.json"])["channels_drawn"]) == 100


def test_npy_input_is_passed_unchanged(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(3, 32, 32)).astype(np.float32)
    p = tmp_path / "x.npy"
    np.save(p, x)
    assert main(["predict", str(p), *RGB, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    with torch.no_grad():
        ref = torch.softmax(make("RGBNet")(torch.from_numpy(x)[None]), 1)[0].numpy()
    np.testing.assert_allclose(row["probabilities"], ref, atol=1e-5)


def test_colour_into_a_gray_model_and_the_digit_form(tmp_path, capsys, photo):
    assert main(["render", str(photo), *RES, "--layers", "stem", "--out", str(tmp_path / "o")]) == 0
    side = json.loads((tmp_path / "o" / "stem" / "red_ball.json").read_text())
    assert side["preprocess"]["resize"] == "mnist"  # a 1x28x28 model defaults to the digit form
    args = ["render", str(photo), *RES, "--resize", "stretch", "--layers", "stem"]
    assert main([*args, "--out", str(tmp_path / "p")]) == 0
    side = json.loads((tmp_path / "p" / "stem" / "red_ball.json").read_text())
    notes = " ".join(side["preprocessing_notes"])
    assert "converted to luminance" in notes and "resized from 64x48 to 28x28" in notes


def test_evaluate_on_an_image_folder(tmp_path, capsys):
    from convsee.datasets.inputs import samples

    root = tmp_path / "folder"
    for s in samples()[:4]:
        d = root / str(s.label)
        d.mkdir(parents=True)
        Image.fromarray((s.image * 255).astype(np.uint8)).save(d / "a.png")
    assert main(["evaluate", "--data", str(root), "--out", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "4 images, classes matched by name" in out and "test accuracy 100.00%" in out


def test_tuple_output_choice_on_the_command_line(capsys):
    two = ["--model", str(HERE / "foreign_models.py") + ":TwoHeads", "--input-size", "1,28,28"]
    assert main(["predict", "sample:3", *two, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["probabilities"]) == 4
    assert main(["predict", "sample:3", *two, "--output", "1", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)["probabilities"]
    assert len(p) == 10 and abs(sum(p) - 1) < 1e-4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["render", "--model", "nope.py:Net"], "model file nope.py: no such file"),
        (["render", *RES, "--layers", "block.conv9"], "unknown layer 'block.conv9'"),
        (["render", *RGB[:2], "--input-size", "1,32,32"], "does not run on an input of shape"),
        (["render", *RGB, "--mean", "120,110,100"], "looks like 0-255 units"),
        (["render", *RGB, "--input-size", "3,x,32"], "--input-size takes C,H,W"),
        (["render", *RGB, "--channels", "top:0"], "--channels top:K needs a positive K"),
        (
            ["render", *RGB, "--channels", "3-99"],
            "--channels 3-99: channel 99 is out of range; conv1 has 8 channels (0-7)",
        ),
        (["render", *RGB, "--output", "3"], "no output '3'"),
        (["render", "--output", "1"], "LeNet-5 has one output"),
        (
            [
                "render",
                "--model",
                str(HERE / "foreign_models.py") + ":Seq1d",
                "--input-size",
                "1,1,64",
                "--layers",
                "conv",
            ],
            "outputs 4x60 per input, a sequence or volume",
        ),
        (
            ["render", *RGB, "--checkpoint", "WRONG.pth"],
            "does not fit RGBNet: 18 missing (conv1.weight",
        ),
        (["predict", *RGB, "BIG.npy"], "holds 1 channel, the model takes 3"),
        (["render", *RGB, "--labels", "missing.txt"], "labels file missing.txt: no such file"),
        (["render", *RGB, "--preprocess", "BAD.json"], "unknown field 'size'"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path, monkeypatch, capsys, argv, message
):
    monkeypatch.chdir(tmp_path)
    torch.save(make("ResidualNet").state_dict(), tmp_path / "WRONG.pth")
    np.save(tmp_path / "BIG.npy", np.zeros((1, 32, 32), np.float32))
    (tmp_path / "BAD.json").write_text('{"size": 3}')
    out = tmp_path / "out"
    extra = ["--out", str(out)] if argv[0] == "render" else []
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and err[0].startswith(f"convsee {argv[0]}: error:") and message in err[0]
    ), err
    assert not out.exists()


def test_samples_and_data_come_from_the_checkpoint_s_dataset(tmp_path, capsys):
    """A checkpoint that records dataset fashion-mnist gets Fashion-MNIST's samples without
    --dataset (sample:9 was MNIST's handwritten 9 fed to a clothing model); --dataset wins."""
    import convsee
    from convsee.datasets.inputs import samples
    from convsee.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = make("ResidualNet")
    fashion = samples("fashion-mnist")[9]
    classes = [str(c) for c in convsee.load(dataset="fashion-mnist").classes]
    path = tmp_path / "r.safetensors"
    meta = {"model": "ResidualNet", "classes": classes, "dataset": "fashion-mnist"}
    save_checkpoint(model, path, meta)
    spec = ["--model", RES[1], "--checkpoint", str(path)]
    assert main(["predict", "sample:9", *spec]) == 0
    out = capsys.readouterr().out
    assert "(true Ankle boot)" in out
    assert main(["predict", "sample:9", *spec, "--dataset", "mnist"]) == 0
    assert "(true" not in capsys.readouterr().out  # MNIST's 9: its label is not a class here
    assert main(["activations", "sample:9", *spec, "--out", str(tmp_path / "a.npz")]) == 0
    seen = np.load(tmp_path / "a.npz")["input"][0, 0]
    mean, std = 0.1307, 0.3081  # ResidualNet's default preprocessing: MNIST's
    np.testing.assert_allclose(seen * std + mean, fashion.image, atol=1e-5)
    [p] = convsee.predict(convsee.wrap(model, classes=classes), ["sample:9"])
    assert p.input.label is None  # wrap() holds no dataset: MNIST's sample, said so
    wrapped = convsee.wrap(model, classes=classes, dataset="fashion-mnist")
    assert wrapped.predict(["sample:9"])[0].input.label == 9  # Ankle boot
    [p] = convsee.load(RES[1], path).predict(["sample:9"])
    assert p.input.label == 9  # the checkpoint's dataset
    [p] = convsee.load(RES[1], path, dataset="mnist").predict(["sample:9"])
    assert p.input.label is None  # an explicit choice wins, as --dataset does: MNIST's 9
    lenet = convsee.load(dataset="fashion-mnist")
    [p] = lenet.predict(["sample:9"])
    assert lenet.class_names(10)[p.input.label] == "Ankle boot"


def test_optimize_compares_a_digit_model_with_its_test_set(
    mnist_dir, monkeypatch, tmp_path, capsys
):
    """A foreign 1-channel model is judged against the MNIST test set found on disk, as
    LeNet-5 is (it said 'give --data DIR')."""
    monkeypatch.setenv("CONVSEE_DATA", str(mnist_dir))
    argv = ["optimize", *RES, "--layers", "stem", "--channels", "0"]
    argv += ["--steps", "5", "--rounds", "1", "--sample", "50", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert "data best" in capsys.readouterr().out
    side = json.loads((tmp_path / "optimize_stem.json").read_text())
    assert side["dataset"] == "50 images of MNIST test" and len(side["dataset_best"]) == 1
