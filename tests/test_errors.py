"""Library errors name the parameter at fault, never a flag; the CLI turns the parameter
into its flag with one table (cli/errors.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import convsee
from convsee.cli import main
from convsee.cli.errors import flag, said
from convsee.errors import ConvseeError

SRC = Path(__file__).resolve().parents[1] / "src" / "convsee"
FLAG = re.compile(r"(?<![\w-])--[a-z]")


def test_the_message_names_the_parameter_in_each_front_ends_words():
    e = ConvseeError("{param} takes C,H,W such as 3,224,224", "input_size")
    assert str(e) == "input_size takes C,H,W such as 3,224,224"
    assert said(e) == "--input-size takes C,H,W such as 3,224,224"
    e = ConvseeError("no such folder", "show_input")
    assert (str(e), said(e)) == ("show_input: no such folder", "--show-input: no such folder")
    assert said(ConvseeError("plain")) == "plain"
    assert [flag(p) for p in ("input_size", "inputs", "--out")] == [
        "--input-size",
        "INPUT",
        "--out",
    ]


def _library_files():
    for p in sorted(SRC.rglob("*.py")):
        part = p.relative_to(SRC).parts[0]
        if part not in ("cli", "web"):
            yield p


def _strings(node):
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            yield n.value


def test_no_error_outside_the_front_ends_names_a_flag():
    """Every ConvseeError(...) raised in the library, its message's text: no "--flag"."""
    bad = []
    for p in _library_files():
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ConvseeError":
                for text in _strings(node):
                    if FLAG.search(text):
                        bad.append(f"{p.relative_to(SRC)}:{node.lineno}: {text.strip()[:70]}")
    assert bad == []


def _docstrings(tree) -> set:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, kinds)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }


def _flagged(tree) -> list[tuple[int, str]]:
    """(line, text) of each simple statement whose strings (docstrings aside) name a flag
    without the Python name beside it."""
    docs = _docstrings(tree)
    compound = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For)
    compound += (ast.While, ast.Try, ast.With)
    out = []
    for stmt in ast.walk(tree):
        if not isinstance(stmt, ast.stmt) or isinstance(stmt, compound):
            continue
        joined = " ".join(
            n.value
            for n in ast.walk(stmt)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
        )
        if FLAG.search(joined) and "in Python" not in joined:
            out.append((stmt.lineno, joined.strip()[:70]))
    return out


def test_no_message_outside_the_front_ends_names_a_flag_alone():
    """Every string of the library outside cli/ and web/ (but docstrings): messages built in
    pieces (hints, warnings, notes), raises of any exception. A text may name a flag only
    beside the Python name ("--output 1; in Python output=1"), as warnings for both do."""
    bad = []
    for p in _library_files():
        for line, text in _flagged(ast.parse(p.read_text())):
            bad.append(f"{p.relative_to(SRC)}:{line}: {text}")
    assert bad == []
    planted = ast.parse(
        'def f(x):\n    """Use --x."""\n    hint = f"give --input-size {x}"\n'
        '    if x:\n        raise ValueError("see " + "--out")\n'
        '    return "--output 1; in Python output=1"\n'
    )
    assert [line for line, _ in _flagged(planted)] == [3, 5]


def test_the_scan_sees_a_flag_in_an_f_string():
    call = ast.parse('ConvseeError(f"{x} then --input-size {y}")').body[0].value
    assert any(FLAG.search(t) for t in _strings(call))


def _raises(fn, *args, **kwargs) -> ConvseeError:
    with pytest.raises(ConvseeError) as info:
        fn(*args, **kwargs)
    return info.value


def _shapes_net(input_size=(1, 28, 28)):
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    return model, input_size


def test_library_errors_raised_through_python_name_parameters(tmp_path):
    from convsee.files import out_dir_ok, out_file_ok
    from convsee.run.evolution import snapshot_steps
    from convsee.values import parse_blur, parse_channels, parse_floats, parse_size

    a_file = tmp_path / "f"
    a_file.write_text("x")
    cases = [
        (_raises(parse_channels, "top:0", 6), "channels", "channels top:K needs a positive K"),
        (
            _raises(parse_channels, "9", 6, layer="conv1"),
            "channels",
            "channels 9: channel 9 is out of range; conv1 has 6 channels (0-5)",
        ),
        (_raises(parse_blur, "4,1"), "blur", "blur kernel must be odd"),
        (_raises(parse_size, "3,x,32"), "input_size", "input_size takes C,H,W"),
        (_raises(parse_floats, "a", "mean"), "mean", "mean takes numbers"),
        (_raises(out_dir_ok, a_file), "out", "is a file; give a folder"),
        (_raises(out_file_ok, tmp_path / "x.png", suffix=".json"), "out", "must end in .json"),
        (_raises(snapshot_steps, 1, 10), "snapshots", "snapshots needs at least 2"),
        (_raises(convsee.load, output="1"), "output", "output is for models with several"),
    ]
    model, size = _shapes_net()
    e = _raises(convsee.wrap, model, input_size=size)  # 3-channel conv, 1-channel input
    cases.append((e, "input_size", "set the input size with input_size C,H,W"))
    from convsee.datasets.transforms import Preprocess, fit

    e = _raises(fit, np.zeros((40, 30), np.uint8), Preprocess(resize="none"))
    cases.append((e, "resize", "choose how to fit it: resize crop"))
    for err, param, words in cases:
        assert err.param == param
        assert words in str(err)
        assert not FLAG.search(str(err)), str(err)


def test_the_cli_names_the_flag(capsys, tmp_path):
    assert main(["layers", "--input-size", "3,x,32"]) == 2
    assert "--input-size takes C,H,W" in capsys.readouterr().err
    (tmp_path / "f").write_text("x")
    assert main(["render", "--out", str(tmp_path / "f")]) == 2
    assert "--out " in capsys.readouterr().err
    assert main(["render", "--channels", "top:0", "--out", str(tmp_path / "o")]) == 2
    assert "--channels top:K needs a positive K" in capsys.readouterr().err


def test_evaluate_normalises_as_the_networks_preprocess_says():
    """Without inputs, evaluate() used MNIST's mean and std whatever the model took."""
    import torch

    from convsee.datasets.idx import Split
    from convsee.datasets.transforms import Preprocess
    from convsee.run.train import evaluate

    class Threshold(torch.nn.Module):  # class 1 where the normalised pixel is above 0
        def forward(self, x):
            v = x.flatten(1)[:, 0]
            return torch.stack([-v, v], 1)

    images = torch.full((4, 28, 28), 102, dtype=torch.uint8)  # 0.4 on the [0, 1] scale
    split = Split(images, torch.ones(4, dtype=torch.int64), {})
    assert evaluate(Threshold(), split)[0] == 1.0  # MNIST's mean 0.1307: above
    assert evaluate(Threshold(), split, prep=Preprocess(mean=(0.5,), std=(0.2,)))[0] == 0.0


# -- every module's errors through the Python API ----------------------------------------------


@pytest.fixture(scope="module")
def lenet():
    return convsee.load()


@pytest.fixture(scope="module")
def tiny():
    """A 1-channel torch model: conv, ReLU, pool, linear (3 classes)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 5 * 5, 3)
    )
    return convsee.wrap(model, input_size=(1, 12, 12), mean=0.5, std=0.5)


def _api_cases(lenet, tiny, tmp_path):
    """(error, parameter, words of its message): one or more per library module."""
    from convsee.capture import select_output
    from convsee.datasets.inputs import samples
    from convsee.datasets.registry import lookup
    from convsee.datasets.transforms import Preprocess
    from convsee.draw.core import colormap
    from convsee.files import write_outputs
    from convsee.run.exemplars import exemplars
    from convsee.run.filters import gaussian_kernel1d
    from convsee.run.optimize import OptimizeConfig
    from convsee.run.sweep import perturb
    from convsee.run.targets import Scorer

    a_file = tmp_path / "file"
    a_file.write_text("x")
    torch = pytest.importorskip("torch")
    r = _raises
    conv1 = lenet.spec.layer("conv1")
    return [
        (r(select_output, (torch.zeros(1), torch.zeros(1)), "9"), "output", "no output '9'"),
        (r(lookup, "cifar"), "dataset", "unknown dataset 'cifar'; valid: mnist"),
        (r(samples, "cifar"), "dataset", "no bundled samples for dataset 'cifar'"),
        (r(lenet.predict, "sample:12"), "inputs", "sample classes are 0..9"),
        (r(Preprocess, input_size=(0, 28, 28)), "input_size", "input_size must be positive"),
        (r(Preprocess, std=(0.0,)), "std", "std must be > 0"),
        (r(Preprocess, resize="zoom"), "resize", "unknown resize 'zoom'"),
        (r(Preprocess, crop_pct=2.0), "crop_pct", "crop_pct must be in [0.1, 1]"),
        (r(colormap, "nope"), "cmap", "unknown colormap 'nope'"),
        (r(lenet.render, "sample:3", scale="huge"), "scale", "unknown scale 'huge'"),
        (r(lenet.render, "sample:3", bogus=1), "bogus", "render takes no argument bogus"),
        (r(write_outputs, {"a.png": b""}, a_file), "out", "it is a file, not a folder"),
        (r(convsee.load, checkpoint=tmp_path / "no.safetensors"), "checkpoint", "does not exist"),
        (r(convsee.load, "hf:"), "model", "hf: needs the model's folder"),
        (r(convsee.load, "nomodule"), "model", "expected FILE.py:Name"),
        (r(convsee.load, labels=tmp_path / "none.txt"), "labels", "labels file"),
        (r(convsee.load, labels=["a", "b"]), "labels", "2 class names (one a line)"),
        (r(convsee.wrap, "net.py"), "model", "wrap() takes a torch model"),
        (r(lenet.kernel, "fc3"), "name", "layers with kernels: conv1, conv2"),
        (r(tiny.kernel, "4"), "name", "layers with kernels: 0"),
        (r(lenet.attribution, [], figures=False), "inputs", "inputs is empty"),
        (r(lenet.attribution, "sample:3", method="nope"), "method", "unknown method 'nope'"),
        (r(lenet.attribution, "sample:3", target=10, figures=False), "target", "classes 0..9"),
        (r(Scorer, quantity="odds"), "quantity", "quantity must be 'logit'"),
        (r(Scorer, position="middle"), "position", "position must be (row, col)"),
        (r(lenet.attribution, "sample:3", layer="fc3"), "layer", "layers a CAM can use"),
        (r(exemplars, lenet, [], [conv1], k=0), "k", "k must be at least 1"),
        (r(exemplars, lenet, [], [conv1], k=1), "data", "the dataset holds no images"),
        (r(lenet.explain, "sample:3", "conv1", (6, 0, 0)), "unit", "has channels 0..5"),
        (r(lenet.explain, "sample:3", "conv1", (0, 0, 0), top=0), "top", "top must be at least"),
        (r(lenet.explain, ["sample:3", "sample:4"], "conv1", (0, 0, 0)), "input", "one input"),
        (r(gaussian_kernel1d, 4, 1.0), "blur", "blur kernel must be odd"),
        (r(OptimizeConfig(steps=0).check), "steps", "steps must be 1..100000"),
        (r(OptimizeConfig(objective="max").check), "objective", "unknown objective 'max'"),
        (r(lenet.optimize, "conv1", "6"), "channels", "channels takes None, 'top:K'"),
        (r(lenet.optimize, "conv1", [0], time_budget=-1), "time_budget", "> 0"),
        (r(perturb, np.zeros((8, 8)), "melt"), "kind", "unknown sweep kind 'melt'"),
        (r(lenet.sweep, layer="fc3"), "layer", "sweep shows maps"),
        (r(lenet.animate, layer="fc3"), "layer", "animate shows a convolution"),
        (r(lenet.evolution, checkpoint=tmp_path / "no.pt"), "checkpoint", "does not exist"),
    ]


def test_every_modules_errors_name_their_parameter(lenet, tiny, tmp_path):
    """Each error names the Python parameter at fault, never a flag, and the CLI's rendering of
    it names the flag (or INPUT) instead of the Python name."""
    for err, param, words in _api_cases(lenet, tiny, tmp_path):
        msg = str(err)
        assert err.param == param, (param, err.param, msg)
        assert words in msg, (words, msg)
        assert not FLAG.search(msg), msg
        assert "\n" not in msg and len(msg) < 400, msg
        cli = said(err)
        assert flag(param) in cli, cli
        if param not in ("k",) and flag(param).startswith("--"):
            # the Python name is not left next to the flag ("--cmap: cmap ...")
            assert cli.count(param) <= msg.count(param), (cli, msg)


def test_attribution_refuses_counts_it_cannot_use(lenet):
    """steps 0 reached NumPy (ValueError: deg must be a positive integer); window and stride 0
    fell back to the defaults without a word."""
    for method, kw, param in (
        ("integrated-gradients", {"steps": 0}, "steps"),
        ("integrated-gradients", {"steps": -3}, "steps"),
        ("integrated-gradients", {"steps": 2.5}, "steps"),
        ("occlusion", {"window": 0}, "window"),
        ("occlusion", {"stride": 0}, "stride"),
        ("occlusion", {"window": 29}, "window"),  # larger than the 28x28 input
        ("saliency", {"noise": -1}, "noise"),
        ("saliency", {"noise": 2, "noise_sigma": 0}, "noise_sigma"),
    ):
        e = _raises(lenet.attribution, "sample:3", method=method, figures=False, **kw)
        assert e.param == param and str(e).startswith(param), str(e)
    e = _raises(lenet.attribution, [])
    assert (e.param, str(e)) == ("inputs", "inputs is empty: give at least one input")
    # what is allowed still runs: a 1-step integral is the gradient at the midpoint x/2, times x
    res = lenet.attribution("sample:3", method="integrated-gradients", steps=1, figures=False)
    assert res.maps.shape == (1, 28, 28)


def test_unknown_keyword_arguments_are_refused_with_the_valid_ones(lenet):
    e = _raises(lenet.render, "sample:3", colour="red")
    assert e.param == "colour"
    assert str(e) == (
        "render takes no argument colour; its options: blur, channels, cmap, default_blur, "
        "scale, with_kernels"
    )
    e = _raises(lenet.optimize, "conv1", [0], step=5)  # steps, misspelt
    assert e.param == "step" and "its options: batch, decorrelate" in str(e)
    assert "restarts" in str(e) and "steps" not in str(e).split("options:")[1]  # an argument
    e = _raises(lenet.attribution, "sample:3", method="occlusion", windows=4)
    assert e.param == "windows" and "stride, window" in str(e)


def test_load_lists_the_datasets_it_knows():
    from convsee.datasets.idx import DATASETS

    e = _raises(convsee.load, dataset="cifar")
    assert e.param == "dataset"
    assert str(e) == f"unknown dataset 'cifar'; valid: {', '.join(DATASETS)}"
    assert said(e) == f"unknown --dataset 'cifar'; valid: {', '.join(DATASETS)}"


def test_kernel_refuses_a_layer_without_one(lenet, tiny):
    e = _raises(lenet.kernel, "fc3")
    assert str(e) == "name: layer fc3 has no kernel; layers with kernels: conv1, conv2"
    assert e.param == "name" and _raises(lenet.kernel, "conv9").param == "name"
    assert lenet.kernel("conv2").shape == (16, 6, 5, 5)
    w = tiny.kernel("0")
    np.testing.assert_array_equal(w, tiny.torch_model()[0].weight.detach().numpy())


def test_time_budget(lenet):
    for bad in (0, -1, float("nan"), "10"):
        e = _raises(lenet.optimize, "conv1", [0], time_budget=bad)
        assert e.param == "time_budget" and "> 0" in str(e)
    # a budget shorter than anything: the first units still get their few steps (it was [])
    [fig] = lenet.optimize("conv1", [0, 1, 2], time_budget=1e-9)
    side = fig.sidecar
    assert side["units"] == [0, 1, 2] and side["stopped"] == "time budget reached"
    assert side["steps"] == [3, 3, 3]
    assert len(side["values"]) == 3


def test_explanation_to_dict_is_plain_json():
    import json

    from convsee.run.explain import Explanation

    e = Explanation(
        "conv1",
        "Conv2d",
        "conv2d",
        (np.int64(0), np.int64(1), np.int64(2)),  # a unit given as NumPy integers
        np.float64(0.5),
        np.float32(0.5),
        np.float64(0.0),  # exact: np.bool_ from a NumPy comparison
        "w·x + b = 0.5",
        data={"window": np.arange(4.0).reshape(2, 2), "mask": np.array([True, False])},
    )
    d = e.to_dict()
    assert json.loads(json.dumps(d)) == {
        **d,
        "unit": [0, 1, 2],
        "window": [[0.0, 1.0], [2.0, 3.0]],
        "mask": [True, False],
    }
    assert type(d["exact"]) is bool and d["exact"] and type(d["unit"][0]) is int


def test_a_processor_for_a_gray_model_gives_it_one_channel():
    """A config without num_channels was taken for RGB: the 1-channel model then failed on a
    3-channel input. The channel count now comes from the model's first convolution."""
    import types

    import torch
    from torch import nn

    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(200, 2))
    model.config = types.SimpleNamespace(id2label={0: "a", 1: "b"})
    proc = transformers.ViTImageProcessor(
        size={"height": 12, "width": 12}, image_mean=[0.5], image_std=[0.5]
    )
    net = convsee.wrap(model, proc)
    assert net.prep.input_size == (1, 12, 12) and net.classes == ["a", "b"]
    [p] = net.predict(np.full((12, 12), 255, np.uint8))
    x = torch.ones(1, 1, 12, 12)  # white, normalised with mean 0.5, std 0.5
    want = model(x).softmax(1)[0].detach().numpy()
    np.testing.assert_allclose(p.probabilities, want, rtol=1e-5)


def test_the_cli_names_the_flag_of_each_parameter(capsys, tmp_path):
    cases = [
        (["render", "--cmap", "nope", "--out", str(tmp_path / "a")], "--cmap: unknown colormap"),
        (["layers", "--checkpoint", str(tmp_path / "no.pt")], "--checkpoint "),
        (["predict", "--labels", str(tmp_path / "none.txt")], "--labels file "),
        (["layers", "--model", "nomodule"], "--model: model 'nomodule': expected FILE.py:Name"),
        (["predict", "sample:12"], "INPUT: bad input 'sample:12'"),
        (
            ["attribution", "--layer", "fc3", "--out", str(tmp_path / "c")],
            "--layers: layer fc3 outputs 10 per input",  # the flag attribution lists
        ),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err and err.count("\n") == 1, (argv, err)


def test_every_view_method_refuses_an_argument_it_does_not_take(lenet):
    """animate, sweep, diff, exemplars and evolution passed **where on: a TypeError from deep
    inside ("got an unexpected keyword argument")."""
    for method, args, kw, among in (
        ("animate", (), {"frame": 100}, "frame_ms"),
        ("sweep", (), {"kinds": "blur"}, "kind"),
        ("diff", ("sample:1", "sample:2"), {"colormap": "gray"}, "cmap"),
        ("exemplars", (), {"limits": 5}, "limit"),
        ("evolution", (), {"model": "x.py:Net"}, "checkpoint"),
    ):
        e = _raises(getattr(lenet, method), *args, **kw)
        (bad,) = kw
        assert e.param == bad and str(e).startswith(f"{method} takes no argument {bad}; ")
        assert among in str(e).split("its options: ")[1].split(", "), str(e)
