"""Output kinds real models return: a first output that is not class scores (MTCNN's RNet
returns box regression first), channels-last maps (ConvNeXt's pwconv1), dense per-position
scores (MTCNN's PNet), and image folders whose names are not the model's classes."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import convsee
from convsee.cli import main

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
MTCNN = f"{REPO / 'examples' / 'mtcnn.py'}"
MT_PREP = ["--preprocess", str(REPO / "examples" / "mtcnn.json")]
needs_facenet = pytest.mark.skipif(
    importlib.util.find_spec("facenet_pytorch") is None,
    reason="facenet-pytorch not installed (pip install --no-deps facenet-pytorch)",
)


def _mtcnn():
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import mtcnn
    finally:
        sys.path.remove(str(REPO / "examples"))
    return mtcnn


def _astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


FACE = (slice(70, 190), slice(170, 290))  # the astronaut's face, 120x120


# --- the first output is not class scores ------------------------------------------------


class BoxThenProb(nn.Module):
    """(box regression 4, face probabilities 2), as MTCNN's RNet returns them."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 6)

    def forward(self, x):
        h = self.fc(self.conv(x).mean((2, 3)))
        return h[:, :4], torch.softmax(h[:, 4:], 1)


class LogitsAndAux(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.a, self.b = nn.Linear(4, 5), nn.Linear(4, 5)

    def forward(self, x):
        h = self.conv(x).mean((2, 3))
        return self.a(h), self.b(h)


class NamedBoxes(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 7)

    def forward(self, x):
        h = self.fc(self.conv(x).mean((2, 3)))
        return {"boxes": h[:, :4], "logits": h[:, 4:]}


def _wrap(model, **kw):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        net = convsee.wrap(model, input_size=(3, 16, 16), **kw)
    return net, [str(w.message) for w in got]


def test_a_box_first_model_warns_with_its_outputs_listed():
    net, got = _wrap(BoxThenProb())
    assert len(got) == 1 and net.warnings == (got[0],)
    w = got[0]
    assert "the first output (4)" in w and "output 1 ends in a softmax" in w
    assert "0: 4; 1: 2 (probabilities)" in w and "--output 1" in w and "output='1'" in w
    assert _wrap(BoxThenProb(), output="1")[1] == []  # chosen: nothing to say
    assert _wrap(LogitsAndAux())[1] == []  # two score heads of one shape: plausible
    net, got = _wrap(NamedBoxes())
    assert len(got) == 1 and "its name 'boxes' says it is not" in got[0]
    assert "0: 4 'boxes'; 1: 3 'logits'" in got[0] and "--output logits" in got[0]


def _model_file(tmp_path, *classes) -> Path:
    """A FILE.py holding these classes of this test file, for --model FILE.py:Name."""
    import inspect

    f = tmp_path / "models.py"
    body = "\n\n".join(inspect.getsource(c) for c in classes)
    f.write_text(f"import torch\nfrom torch import nn\n\n\n{body}")
    return f


def test_the_warning_on_the_command_line(tmp_path, capsys):
    f = _model_file(tmp_path, BoxThenProb)
    img = tmp_path / "x.png"
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(img)
    argv = ["predict", str(img), "--model", f"{f}:BoxThenProb", "--input-size", "3,16,16"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    warn = [x for x in err.splitlines() if x.startswith("convsee: warning:")]
    assert len(warn) == 1 and "choose one with --output" in warn[0], err
    assert main([*argv, "--output", "1"]) == 0
    assert "warning" not in capsys.readouterr().err


@needs_facenet
def test_rnet_warns_and_its_face_probability_is_output_1(capsys):
    mt = _mtcnn()
    face = _astronaut()[FACE]
    net, got = _wrap_mt(mt.rnet, 24, None)
    assert len(got) == 1 and "0: 4; 1: 2 (probabilities)" in got[0]
    net, got = _wrap_mt(mt.rnet, 24, "1")
    assert got == []
    p = net.predict(face)[0]
    # the oracle: facenet-pytorch's own scaling, (pixel - 127.5) / 128, and RNet called directly
    inp = net.inputs([face])[0]
    pix = np.round(inp.image * 255).astype(np.float32)
    np.testing.assert_allclose(inp.x, ((pix - 127.5) / 128).transpose(2, 0, 1), atol=1e-4)
    with torch.no_grad():
        ref = mt.rnet()(torch.from_numpy(inp.x)[None])[1][0].numpy()
    np.testing.assert_allclose(p.probabilities, ref, atol=1e-6)
    assert p.label == "face" and p.probabilities[1] > 0.95
    assert net.predict(_astronaut()[300:420, 0:120])[0].label == "no face"  # the suit


def _wrap_mt(make, size, output):
    mt = _mtcnn()
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        net = convsee.wrap(
            make(),
            input_size=(3, size, size),
            mean=mt.MEAN,
            std=mt.STD,
            resize="stretch",
            classes=mt.CLASSES,
            output=output,
        )
    return net, [str(w.message) for w in got]


# --- channels-last maps ------------------------------------------------------------------


class Block(nn.Module):
    """ConvNeXt's block: depthwise conv, then LayerNorm and Linears on (N, H, W, C)."""

    def __init__(self, c=6):
        super().__init__()
        torch.manual_seed(1)
        self.stem = nn.Conv2d(3, c, 2, stride=2)
        self.dwconv = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pwconv1 = nn.Linear(c, 4 * c)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * c, c)
        self.head = nn.Linear(c, 3)

    def forward(self, x):
        x = self.stem(x)
        h = self.dwconv(x).permute(0, 2, 3, 1)
        h = self.pwconv2(self.act(self.pwconv1(self.norm(h))))
        x = x + h.permute(0, 3, 1, 2)
        return self.head(x.mean((2, 3)))


def _raw(model, module, x):
    got = {}
    h = module.register_forward_hook(lambda m, i, o: got.setdefault("o", o.detach().clone()))
    with torch.no_grad():
        model(x)
    h.remove()
    return got["o"]


def test_channels_last_layers_are_described_and_captured_as_maps():
    from convsee.web.server import default_layers

    model = Block().eval()
    net, _ = _wrap(model)
    spec = net.spec
    pw = spec.layer("pwconv1")
    assert pw.channels_last and pw.kind == "map" and pw.shape == (24, 8, 8)
    assert spec.layer("norm").channels_last and spec.layer("act").shape == (24, 8, 8)
    assert not spec.layer("dwconv").channels_last
    # per-pixel ops on channels keep the field: dwconv's 3x3 over the 2x2/2 stem is 6 / 2
    assert pw.field == spec.layer("dwconv").field and pw.field.size == (6, 6)
    assert "Channels-last (N,H,W,C) outputs" in spec.table()
    x = net.inputs([np.random.default_rng(0).random((16, 16, 3))])[0]
    acts, _ = net.activations([x], "pwconv1,pwconv2")
    raw = _raw(model, model.pwconv1, torch.from_numpy(x.x)[None])
    assert raw.shape == (1, 8, 8, 24)  # the module's own layout
    np.testing.assert_allclose(acts["pwconv1"], raw.permute(0, 3, 1, 2).numpy(), atol=1e-6)
    assert [n for n in default_layers(spec) if spec.layer(n).channels_last] == []


def test_convnext_pwconv1_is_drawn_as_c_maps(tmp_path):
    hf_models = pytest.importorskip("hf_models")
    pytest.importorskip("transformers")
    folder = hf_models.build("convnext", tmp_path / "cx")
    net = convsee.load(f"hf:{folder}")
    name = "convnext.encoder.stages.0.layers.0.pwconv1"
    layer = net.spec.layer(name)
    assert layer.channels_last and layer.shape == (32, 12, 12)
    img = np.random.default_rng(2).random((48, 48, 3))
    inp = net.inputs([img])[0]
    acts, _ = net.activations([inp], name)
    module = dict(net.model.named_modules())[name]
    raw = _raw(net.model, module, torch.from_numpy(inp.x)[None])
    assert tuple(raw.shape) == (1, 12, 12, 32)
    np.testing.assert_allclose(acts[name], raw.permute(0, 3, 1, 2).numpy(), atol=1e-6)
    fig = net.render([inp], layers=name)[0]
    side = fig.sidecar
    assert side["shape"] == [32, 12, 12], side.get("shape")
    assert side["channels_drawn"] == list(range(32))
    ref = raw.permute(0, 3, 1, 2).numpy()
    np.testing.assert_allclose(side["value_range"], [ref.min(), ref.max()], atol=1e-5)
    fig.save(tmp_path / "pw.png")
    assert (tmp_path / "pw.png").stat().st_size > 0


# --- dense outputs -----------------------------------------------------------------------


class Dense(nn.Module):
    """Class scores at every position: 3 classes on a 6x6 grid, as logits."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.conv2 = nn.Conv2d(8, 3, 3, stride=2)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


def test_a_dense_model_predicts_per_position(tmp_path, capsys):
    net, _ = _wrap(Dense(), classes=["a", "b", "c"])
    rng = np.random.default_rng(4)
    imgs = [rng.random((16, 16, 3)) for _ in range(3)]
    preds = net.predict(imgs)
    x = torch.from_numpy(net.batch(net.inputs(imgs)))
    with torch.no_grad():
        ref = torch.softmax(Dense()(x), 1).numpy()  # (3, 3, 6, 6)
    for p, r in zip(preds, ref, strict=True):
        assert p.map.shape == (3, 6, 6)
        np.testing.assert_allclose(p.map, r, atol=1e-6)
        tops = r.reshape(3, -1).max(1)
        np.testing.assert_allclose(p.probabilities, tops, atol=1e-6)
        assert p.prediction == int(np.argmax(tops))
        for k in range(3):
            assert r[k][p.positions[k]] == pytest.approx(tops[k], abs=1e-7)
        assert p.where == p.positions[p.prediction]
        assert p.to_dict()["map_shape"] == [3, 6, 6]


def test_dense_predict_and_its_map_on_the_command_line(tmp_path, capsys):
    f = _model_file(tmp_path, Dense)
    img = tmp_path / "x.png"
    a = (np.random.default_rng(5).random((16, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(a).save(img)
    argv = ["predict", str(img), "--model", f"{f}:Dense", "--input-size", "3,16,16"]
    out = tmp_path / "maps"
    assert main([*argv, "--map", str(out), "--map-class", "2"]) == 0
    text = capsys.readouterr().out
    assert "max over 6x6 positions, at row" in text
    side = json.loads((out / "x.json").read_text())
    net, _ = _wrap(Dense())
    p = net.predict(str(img))[0]
    np.testing.assert_allclose(side["probabilities"], p.map[2], atol=1e-6)
    assert side["at"] == list(p.positions[2]) and side["class_index"] == 2
    assert side["field"]["size"] == [5, 5] and side["field"]["stride"] == [2, 2]
    assert Image.open(out / "x.png").size[0] > 600
    # a model whose scores are a vector has no map to draw: one line
    f = _model_file(tmp_path, LogitsAndAux)
    vec = ["predict", str(img), "--model", f"{f}:LogitsAndAux", "--input-size", "3,16,16"]
    assert main([*vec, "--map", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convsee predict: error: --map draws class scores given per position"), (
        err
    )
    assert err.count("\n") == 1 and not (tmp_path / "no").exists()


@needs_facenet
def test_pnet_finds_the_astronauts_face(tmp_path, capsys):
    mt = _mtcnn()
    net, _ = _wrap_mt(mt.pnet, 52, "1")
    img = _astronaut()
    p = net.predict(img)[0]
    assert p.map.shape == (2, 21, 21)
    inp = net.inputs([img])[0]
    with torch.no_grad():
        ref = mt.pnet()(torch.from_numpy(inp.x)[None])[1][0].numpy()
    np.testing.assert_allclose(p.map, ref, atol=1e-6)
    # the face is at rows 70-190, cols 170-290 of 512: centred near (130, 230), which is
    # (13.2, 23.4) at 52x52, the centre of window (3.9, 9.0) (field start 5.5, stride 2)
    r, c = p.positions[1]
    assert abs(r - 3.9) <= 1.5 and abs(c - 9.0) <= 1.5 and p.probabilities[1] > 0.99
    f = net.spec.outputs[1].field
    assert f.size == (12, 12) and f.stride == (2.0, 2.0) and f.start == (5.5, 5.5)
    src = tmp_path / "astronaut.png"
    Image.fromarray(img).save(src)
    argv = ["predict", str(src), "--model", f"{MTCNN}:pnet", *MT_PREP, "--input-size", "3,52,52"]
    assert main([*argv, "--output", "1", "--map", str(tmp_path / "m"), "--map-class", "face"]) == 0
    out = capsys.readouterr().out
    assert f"face {p.probabilities[1]:.1%} at ({r}, {c})" in out
    side = json.loads((tmp_path / "m" / "astronaut.json").read_text())
    assert side["class"] == "face" and side["at"] == [r, c]


# --- class folders whose names are not the model's classes -------------------------------


def _folder(root: Path, names: dict[int, str], dataset="mnist") -> Path:
    from convsee.datasets.inputs import samples

    for s in samples(dataset):
        if s.label in names:
            d = root / names[s.label]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray((s.image * 255).astype(np.uint8)).save(d / "a.png")
    return root


def test_evaluate_refuses_folders_named_otherwise(tmp_path, capsys):
    root = _folder(tmp_path / "f", {0: "zero", 3: "three", 7: "seven"})
    out = tmp_path / "c.png"
    assert main(["evaluate", "--data", str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "do not match the model's class names" in err, err
    assert "folders seven, three, zero;" in err and "the model's 0, 1, 2" in err
    assert "--class-map" in err and not out.exists()
    mapping = '{"zero": "0", "three": 3, "seven": "7"}'
    assert main(["evaluate", "--data", str(root), "--out", str(out), "--class-map", mapping]) == 0
    text = capsys.readouterr().out
    assert "3 images, classes matched by the class map given" in text
    assert "test accuracy 100.00%" in text  # the shipped LeNet-5 gets its samples right
    f = tmp_path / "map.json"
    f.write_text(mapping)
    assert main(["evaluate", "--data", str(root), "--out", str(out), "--class-map", str(f)]) == 0
    assert "test accuracy 100.00%" in capsys.readouterr().out
    for bad, words in [
        ('{"zero": "0"}', "no entry for the folders seven, three"),
        ('{"zero": "0", "three": 3, "seven": 12}', "maps 'seven' to 12"),
        ("nofile.json", "neither a JSON object nor a file"),
        ("{oops", "not JSON"),
    ]:
        assert main(["evaluate", "--data", str(root), "--out", str(out), "--class-map", bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err


def test_evaluate_matches_folder_names_ignoring_case(tmp_path, capsys):
    root = _folder(tmp_path / "f", {1: "trouser", 8: "BAG", 9: "ankle boot"}, "fashion-mnist")
    argv = ["evaluate", "--dataset", "fashion-mnist", "--data", str(root)]
    assert main([*argv, "--out", str(tmp_path / "c.png")]) == 0
    text = capsys.readouterr().out
    assert "3 images, classes matched by name, ignoring case" in text
    assert "test accuracy 100.00%" in text


def test_match_classes_rules():
    from convsee.datasets.folder import match_classes

    assert match_classes(["b", "a"], ["a", "b", "c"])[0].tolist() == [1, 0]
    assert match_classes(["x", "y"], ["0", "1", "2"], named=False)[0].tolist() == [0, 1]
    with pytest.raises(convsee.ConvseeError, match="do not match"):
        match_classes(["x", "y"], ["0", "1", "2"], named=True)
