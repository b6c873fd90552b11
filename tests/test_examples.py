"""The worked examples in examples/: shapes.py writes its data, trains, and its checkpoint is
all convsee needs besides --model."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convsee.cli import main

REPO = Path(__file__).resolve().parents[1]
SHAPES = REPO / "examples" / "shapes.py"
MODEL = ["--model", f"{SHAPES}:ShapesNet"]


def _module():
    spec = importlib.util.spec_from_file_location("shapes_example", SHAPES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The script itself, run as a user runs it, at a small size: (data folder, checkpoint)."""
    root = tmp_path_factory.mktemp("shapes")
    data, out = root / "data", root / "shapes.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    args = [str(data), str(out), "--per-class", "8", "--epochs", "1"]
    r = subprocess.run(
        [sys.executable, str(SHAPES), *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout
    return data, out


def _read(folder: Path) -> tuple[np.ndarray, list[int]]:
    images, labels = [], []
    for label, kind in enumerate(("circle", "square", "triangle")):
        for p in sorted((folder / kind).glob("*.png")):
            images.append(np.asarray(Image.open(p), np.float64) / 255)
            labels.append(label)
    return np.stack(images), labels


def test_the_dataset_is_an_image_folder_with_one_subfolder_per_class(trained):
    data, _ = trained
    for split, n in (("train", 8), ("test", 2)):
        for kind in ("circle", "square", "triangle"):
            files = sorted((data / split / kind).glob("*.png"))
            assert len(files) == n
            img = Image.open(files[0])
            assert img.mode == "RGB" and img.size == (40, 40)


def test_the_data_is_seeded_and_the_shape_stands_out(tmp_path):
    shapes = _module()
    a = shapes.shape_image("triangle", np.random.default_rng(5))
    b = shapes.shape_image("triangle", np.random.default_rng(5))
    c = shapes.shape_image("triangle", np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # the shape is lighter than its background: the brightest pixels are the shape's, and
    # there are as many of them as a triangle of circumradius 8-16 px covers (83-333 px)
    lum = a.astype(float) @ shapes.LUMA / 255
    assert 83 * 0.8 <= (lum > 0.5).sum() <= 333 * 1.2


def test_checkpoint_holds_preprocessing_classes_and_reference_ranges(trained):
    data, out = trained
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model"] == "examples/shapes.py:ShapesNet"
    assert meta["classes"] == ["circle", "square", "triangle"]
    # the recorded accuracy is what the saved weights score on the test folder, recomputed
    # here with torch from the PNGs, the safetensors file and the recorded mean and std
    import torch
    from safetensors.torch import load_file

    model = _module().ShapesNet()
    model.load_state_dict(load_file(str(out)))
    xt, yt = _read(data / "test")
    xt = (xt - np.array(meta["preprocess"]["mean"])) / np.array(meta["preprocess"]["std"])
    with torch.no_grad():
        pred = model.eval()(torch.tensor(xt, dtype=torch.float32).permute(0, 3, 1, 2)).argmax(1)
    assert meta["test_accuracy"] == pytest.approx(float((pred.numpy() == yt).mean()), abs=1e-6)
    prep = meta["preprocess"]
    assert prep["input_size"] == [3, 40, 40] and prep["resize"] == "stretch"
    x, _ = _read(data / "train")  # (N, 40, 40, 3): mean and std per channel, independently
    assert np.allclose(prep["mean"], x.mean((0, 1, 2)), atol=1e-3)
    assert np.allclose(prep["std"], x.std((0, 1, 2), ddof=1), atol=1e-3)

    # conv1's reference range: the 99.9th percentile of |conv1| over the test images
    shapes = _module()
    model = shapes.ShapesNet()
    from safetensors.torch import load_file

    model.load_state_dict(load_file(out))
    model.eval()
    xt, _ = _read(data / "test")
    t = torch.tensor((xt - prep["mean"]) / prep["std"], dtype=torch.float32).permute(0, 3, 1, 2)
    with torch.no_grad():
        conv1 = model.conv1(t).numpy()
        x = model.relu1(model.bn1(model.conv1(t)))
        x = model.relu2(model.bn2(model.conv2(x)))
        block = model.block(model.relu3(model.bn3(model.conv3(x)))).numpy()
    ranges = meta["reference_ranges"]
    hi = np.percentile(np.abs(conv1), 99.9)
    assert ranges["conv1"] == pytest.approx([-hi, hi], rel=1e-3)
    assert ranges["block"] == pytest.approx([0.0, np.percentile(block, 99.9)], rel=1e-3)
    assert set(ranges) >= {"conv1", "bn1", "relu1", "conv2", "conv3", "block", "pool", "fc"}


def test_convsee_needs_only_model_and_checkpoint(trained, tmp_path, capsys):
    data, out = trained
    ck = ["--checkpoint", str(out)]
    assert main(["layers", *MODEL, *ck]) == 0
    text = capsys.readouterr().out
    assert "input 3x40x40" in text and "block.relu#2" in text

    img = data / "test" / "square" / "0001.png"
    assert main(["render", str(img), *MODEL, *ck, "--layers", "conv1", "--out", str(tmp_path)]) == 0
    side = json.loads((tmp_path / "conv1" / "0001.json").read_text())
    assert Image.open(tmp_path / "conv1" / "0001.png").size[0] > 400
    assert side["shape"] == [8, 40, 40]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert side["global_range"] == meta["reference_ranges"]["conv1"]
    # the prediction in the sidecar is the model's own, on the image normalised by hand
    shapes = _module()
    model = shapes.ShapesNet()
    from safetensors.torch import load_file

    model.load_state_dict(load_file(out))
    prep = json.loads(out.with_suffix(".json").read_text())["preprocess"]
    x = (np.asarray(Image.open(img), np.float64) / 255 - prep["mean"]) / prep["std"]
    with torch.no_grad():
        logits = model.eval()(torch.tensor(x, dtype=torch.float32).permute(2, 0, 1)[None])
    assert side["prediction"] == int(logits.argmax())


def test_a_checkpoint_of_another_model_may_have_any_number_of_classes(tmp_path):
    from convsee.models.checkpoint import save_checkpoint
    from convsee.models.load import load_network

    shapes = _module()
    path = tmp_path / "m.safetensors"
    meta = {"model": "x.py:Net", "classes": ["a", "b", "c"]}
    meta["preprocess"] = {"input_size": [3, 40, 40]}
    save_checkpoint(shapes.ShapesNet(), path, meta)
    net = load_network(f"{SHAPES}:ShapesNet", path)
    assert net.class_names(3) == ["a", "b", "c"]


def test_animate_never_calls_padding_the_input_s_structure(trained, tmp_path):
    """On a plain picture only the zero padding varies: no window is 'along the structure'."""
    _, out = trained
    plain = tmp_path / "plain.png"
    Image.new("RGB", (40, 40), (60, 40, 90)).save(plain)
    args = ["animate", str(plain), *MODEL, "--checkpoint", str(out), "--out", str(tmp_path)]
    assert main([*args, "--layer", "conv1", "--channel", "0"]) == 0
    side = json.loads((tmp_path / "animate_conv1_ch0.json").read_text())
    assert [s for s in side["shown"] if s["why"] == "along"] == []
    assert side["shown"][0]["why"] == "empty"


def test_animate_walks_along_edges_not_background_noise(trained, tmp_path):
    _, out = trained
    rng = np.random.default_rng(0)
    a = np.clip(np.array([60, 40, 90]) + rng.normal(0, 4, (40, 40, 3)), 0, 255)
    a[10:30, 10:30] = 240  # a light square; its edges: rows and cols 10 and 29
    picture = tmp_path / "square.png"
    Image.fromarray(a.astype(np.uint8)).save(picture)
    args = ["animate", str(picture), *MODEL, "--checkpoint", str(out), "--out", str(tmp_path)]
    assert main([*args, "--layer", "conv1", "--channel", "0"]) == 0
    side = json.loads((tmp_path / "animate_conv1_ch0.json").read_text())
    along = [tuple(s["position"]) for s in side["shown"] if s["why"] == "along"]
    assert len(along) >= 4
    edge = lambda v: min(abs(v - 10), abs(v - 29)) <= 1  # noqa: E731 - a 3x3 window reaches it
    for r, c in along:  # on the square's outline, not in the noisy background
        assert (edge(r) and 9 <= c <= 30) or (edge(c) and 9 <= r <= 30), (r, c)
