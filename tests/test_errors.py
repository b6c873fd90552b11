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
            "layer conv1 has channels 0..5",
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
