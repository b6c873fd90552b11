"""The CLI's errors, as a new user meets them: one line `convsee COMMAND: error: ...`, exit 2, no
traceback, nothing half-written and no folder left behind; messages that say what is wrong."""

from __future__ import annotations

import io
import os
import random
import re
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
from PIL import Image

from convsee.cli import main

REPO = Path(__file__).resolve().parents[1]
SMALL_CNN = f"{REPO / 'examples' / 'small_cnn.py'}:SmallCNN"


def error(capsys) -> str:
    """The one error line main() printed."""
    err = capsys.readouterr().err.strip()
    assert re.match(r"convsee [a-z]+: error: ", err) and "\n" not in err, err
    return err


# -- 1. output paths: a file in the way, a read-only folder -----------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "sample:3", "--show-input", "afile"], "--show-input afile is a file"),
        (["predict", "sample:3", "--show-input", "afile/sub"], "afile is a file, not a folder"),
        (["activations", "sample:3", "-o", "afile/a.npz"], "afile is a file, not a folder"),
        (["evaluate", "--out", "afile/c.png"], "afile is a file, not a folder"),
        (["render", "sample:3", "--out", "afile/sub"], "afile is a file, not a folder"),
        (["evolution", "--out", "afile"], "afile is a file"),  # before any frame is drawn
    ],
)
def test_a_file_in_the_way_of_an_output(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("notes")
    assert main(argv) == 2
    assert message in error(capsys)
    assert (tmp_path / "afile").read_text() == "notes"


@pytest.mark.parametrize(
    "argv",
    [
        ["activations", "sample:3", "-o", "ro/a.npz"],
        ["predict", "sample:3", "--show-input", "ro"],
        ["predict", "sample:3", "--show-input", "ro/new"],
        ["evaluate", "--out", "ro/c.png"],
    ],
)
def test_a_read_only_folder_is_said_before_the_work(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ro").mkdir()
    real = os.access
    ro = str(tmp_path / "ro")
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if os.path.abspath(p) == ro else real(p, mode)
    )
    assert main(argv) == 2
    assert "ro is not writable" in error(capsys)
    assert list((tmp_path / "ro").iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["activations", "sample:3", "-o", "out/a.npz"],
        ["predict", "sample:3", "--show-input", "out"],
    ],
)
def test_a_write_that_fails_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys, argv):
    """The folder passed the check, then the disk said no (a race, a full disk, a quota)."""
    monkeypatch.chdir(tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    assert main(argv) == 2
    assert "Permission denied" in error(capsys)
    assert not (tmp_path / "out").exists()


# -- 2. a reader that stops early does not cost the files ------------------------------------


class ClosedPipe(io.StringIO):
    """stdout whose reader went away after the first line."""

    def __init__(self):
        super().__init__()
        self.lines = 0

    def write(self, text):
        if self.lines >= 1:
            raise BrokenPipeError(32, "Broken pipe")
        self.lines += text.count("\n")
        return super().write(text)


def test_evaluate_into_head_still_writes_the_picture(tmp_path, monkeypatch, mnist_dir):
    out = tmp_path / "conf.png"
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["evaluate", "--data", str(mnist_dir), "--out", str(out)]) == 141
    assert Image.open(out).size[0] > 300


@pytest.mark.parametrize(
    "argv, made",
    [
        (["exemplars", "--limit", "64", "-k", "2"], "exemplars_conv2.png"),
        (["render", "sample:1", "sample:2", "sample:3"], "conv2.gif"),
        (
            ["optimize", "--layers", "conv1", "--steps", "2", "--rounds", "1", "--random", "2"],
            "optimize_conv1.png",
        ),
    ],
)
def test_commands_that_print_then_write_survive_a_closed_pipe(
    tmp_path, monkeypatch, mnist_dir, argv, made
):
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    data = [] if argv[0] == "render" else ["--data", str(mnist_dir)]
    assert main([*argv, *data, "--out", str(tmp_path / "o")]) == 141
    assert (tmp_path / "o" / made).is_file()


# -- 3, 4. --data: a typo creates nothing; a failed run leaves no output folder ---------------


@pytest.mark.parametrize("command", [["exemplars"], ["evaluate"], ["predict", "test:0"], ["train"]])
def test_a_data_folder_that_is_not_there_is_created_nowhere(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--data", "nonexist"]) == 2
    assert error(capsys) == f"convsee {command[0]}: error: --data nonexist: no such folder"
    assert not (tmp_path / "nonexist").exists()


def test_a_data_file_is_not_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("x")
    assert main(["evaluate", "--data", "f"]) == 2
    assert "--data f is a file" in error(capsys)


def test_mnist_not_found_names_the_environment_variable(tmp_path, monkeypatch, capsys):
    import convsee.datasets.idx as idx

    monkeypatch.setattr(idx, "_file_in", lambda *a, **k: None)  # no MNIST anywhere
    assert main(["predict", "test:0"]) == 2
    err = capsys.readouterr().err
    assert "Looked in:\n  $CONVSEE_DATA (not set)\n" in err


@pytest.mark.parametrize(
    "argv, folder",
    [
        (["evaluate", "--data", "badset", "--out", "o/c.png"], "o"),
        (["train", "--data", "badset", "--out", "o/m.safetensors", "--quiet"], "o"),
    ],
)
def test_a_failed_run_leaves_no_output_folder(tmp_path, monkeypatch, capsys, argv, folder):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "badset").mkdir()
    assert main(argv) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / folder).exists()


def test_evaluate_makes_its_output_folder_when_it_writes(tmp_path, mnist_dir):
    out = tmp_path / "a" / "b" / "conf.png"
    assert main(["evaluate", "--data", str(mnist_dir), "--out", str(out)]) == 0
    assert out.is_file()


# -- 5. a .pth that is no checkpoint ----------------------------------------------------------


@pytest.mark.parametrize(
    "data, why",
    [
        (random.Random(0).randbytes(2000), "neither a torch.save archive nor a pickle"),
        (b"\x80\x04" + random.Random(1).randbytes(2000), "(damaged, or pickled data that"),
        (b"", "the file is empty"),
        (b"PK\x03\x04" + bytes(100), "(damaged: PytorchStreamReader failed reading zip"),
    ],
    ids=["random", "pickle-header", "empty", "zip-header"],
)
def test_a_corrupt_pth_is_not_a_checkpoint(tmp_path, capsys, data, why):
    p = tmp_path / "random.pth"
    p.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["render", "sample:3", "--checkpoint", str(p), "--out", str(tmp_path)]) == 2
    err = error(capsys)
    assert "random.pth: not a PyTorch checkpoint" in err and why in err
    assert "weights_only" not in err and "pickled code" not in err
    assert not [w for w in caught if "torch" in str(w.filename)]


# -- 6. a folder where a file is wanted -------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "SOMEDIR"], "SOMEDIR is a folder, not a file"),
        (["render", "."], ". is a folder, not a file"),
        (["layers", "--model", "SOMEDIR:Net"], "SOMEDIR is a folder, not a Python file"),
        (["layers", "--model", "SOMEDIR/:Net"], "SOMEDIR/ is a folder, not a file"),
        (["layers", "--checkpoint", "."], "checkpoint . is a folder, not a file"),
        (["layers", "--model", SMALL_CNN, "--checkpoint", "."], "is a folder, not a file"),
        (["layers", "--labels", "SOMEDIR"], "labels file SOMEDIR is a folder"),
        (["layers", "--preprocess", "SOMEDIR"], "SOMEDIR is a folder, not a file"),
        (["evolution", "SOMEDIR"], "checkpoint SOMEDIR is a folder, not a file"),
        (["evolution", "SOMEDIR", "--model", SMALL_CNN], "SOMEDIR is a folder, not a file"),
    ],
)
def test_a_folder_is_not_called_missing(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "SOMEDIR").mkdir()
    assert main(argv) == 2
    err = error(capsys)
    assert message in err and "no such file" not in err and "does not exist" not in err


# -- 7. a blank image is named in every command -----------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["render", "sample:3", "blank.png"],
        ["attribution", "blank.png"],
        ["activations", "blank.png", "-o", "x.npz"],
        ["predict", "blank.png"],
        ["sweep", "blank.png"],
    ],
)
def test_a_blank_image_is_named(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    assert main(argv) == 2
    assert "blank.png: blank image: no ink found" in error(capsys)


def test_a_file_whose_name_starts_the_message_is_still_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Image.new("L", (40, 40), 255).save(tmp_path / "blank", "PNG")  # no extension
    assert main(["render", "blank"]) == 2
    assert error(capsys) == (
        "convsee render: error: blank: blank image: no ink found "
        "(nothing stands out from the background)"
    )


# -- 8, 9, 10, 11. model and flag messages ----------------------------------------------------


def test_output_of_a_model_with_one_output(capsys):
    assert main(["layers", "--model", SMALL_CNN, "--output", "5"]) == 2
    err = error(capsys)
    assert "its one output is the model's return value" in err and "outputs: " not in err


@pytest.mark.parametrize("size", ["1,100000,100000", "0,28,28", "1,28,99999999999"])
def test_input_size_out_of_range_is_one_message(capsys, size):
    assert main(["layers", "--input-size", size]) == 2
    assert "is out of range (C 1..64, H and W 1..4096)" in error(capsys)


def test_a_value_starting_with_a_dash_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["layers", "--input-size", "-1,28,28"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("convsee layers: error: --input-size needs a value") and "\n" not in err
    assert "--input-size=VALUE" in err
    assert main(["layers", "--input-size=-1,28,28"]) == 2
    assert "out of range" in error(capsys)


@pytest.mark.parametrize("name", ["notes.txt", "conf.jpg", "conf"])
def test_evaluate_writes_only_png(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text("my notes")
    assert main(["evaluate", "--out", name]) == 2
    assert f"--out must end in .png, got {name}" in error(capsys)
    assert (tmp_path / name).read_text() == "my notes"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["render", "sample:3", "--channels", "10"], "10: channel 10 is out of range; conv1 has 6"),
        (
            ["render", "sample:3", "--layers", "conv2", "--channels", "3-99"],
            "3-99: channel 99 is out of range; conv2 has 16 channels (0-15)",
        ),
        (["sweep", "sample:3", "--channels", "2,9"], "2,9: channel 9 is out of range; conv1 has 6"),
        (
            ["exemplars", "--channels", "0-7"],
            "0-7: channel 7 is out of range; conv1 has 6 channels (0-5)",
        ),
        (["optimize", "--channels", "4-6"], "4-6: channel 6 is out of range; conv1 has 6"),
    ],
)
def test_channels_out_of_range_echo_what_was_typed_and_the_range(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert f"--channels {message}" in error(capsys)


# -- 12. wording ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["attribution", "sample:3", "--layers", "fc3"],
            "convsee attribution: error: --layers: layer fc3 outputs 10 per input",
        ),
        (  # the hidden older spelling still works; the message names the listed one
            ["attribution", "sample:3", "--layer", "fc3"],
            "convsee attribution: error: --layers: layer fc3 outputs 10 per input",
        ),
        (
            ["animate", "--layers", "fc3"],
            "convsee animate: error: --layers: animate shows a convolution or max pooling",
        ),
        (["render", "--channels", "7"], "convsee render: error: --channels 7: channel 7 is out"),
    ],
)
def test_errors_in_argparse_form_name_the_flag_the_command_has(tmp_path, capsys, argv, line):
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert error(capsys).startswith(line)


def test_every_parameter_of_a_command_is_named_by_a_flag_it_lists():
    """flag(param, the command's parser) for each option's destination: a flag --help lists."""
    import argparse

    from convsee.cli import build_parser
    from convsee.cli.errors import flag

    for name, sub in build_parser().commands.items():
        listed = {s for a in sub._actions if a.help != argparse.SUPPRESS for s in a.option_strings}
        for a in sub._actions:
            if a.option_strings and a.dest != "help":
                assert flag(a.dest, sub) in listed, (name, a.dest)
            hidden = [s for s in a.option_strings if a.help == argparse.SUPPRESS]
            for s in hidden:  # a hidden --layer, param "layer": the listed --layers
                assert flag(s[2:].replace("-", "_"), sub) in listed, (name, s)
    assert flag("layer", build_parser().commands["attribution"]) == "--layers"
    assert flag("layer") == "--layer" and flag("budget") == "--time-budget"


def test_one_channel_is_singular(tmp_path, capsys):
    assert main(["layers", "--mean", "0.1,0.2"]) == 2
    assert "has 2 values; the model takes 1 channel" in error(capsys)
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((1, 32, 32), np.float32))
    rgb = str(Path(__file__).parent / "foreign_models.py") + ":RGBNet"  # LeNet-5 takes 1
    args = ["--model", rgb, "--input-size", "3,32,32"]
    assert main(["predict", str(tmp_path / "x.npy"), *args]) == 2
    assert "holds 1 channel, the model takes 3 " in error(capsys)


def test_a_model_file_alone_names_its_one_module_class(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    head = "import torch\nfrom torch import nn\nfrom torch.nn import Linear\n"
    net = "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    net += "        self.fc = nn.Linear(784, 10)\n    def forward(self, x):\n"
    net += "        return self.fc(x.flatten(1))\n"
    (tmp_path / "one.py").write_text(head + net)  # Linear, imported, is not the file's own
    size = ["--input-size", "1,28,28"]
    assert main(["layers", "--model", "one.py", *size]) == 0
    alone = capsys.readouterr().out
    assert main(["layers", "--model", "one.py:Net", *size]) == 0
    assert capsys.readouterr().out == alone and "fc" in alone
    (tmp_path / "two.py").write_text(head + "class Block(nn.Module):\n    pass\n" + net)
    assert main(["layers", "--model", "two.py"]) == 2
    assert error(capsys) == (
        "convsee layers: error: two.py defines Block, Net: say which is the model, "
        "as --model two.py:Net"
    )
    (tmp_path / "none.py").write_text(head + "def build():\n    return Linear(784, 10)\n")
    assert main(["layers", "--model", "none.py"]) == 2
    assert error(capsys) == (
        "convsee layers: error: none.py defines no nn.Module class: name the function that "
        "builds the model, as --model none.py:Name; it defines: functions build()"
    )


def test_model_file_messages(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notmod.py").write_text(
        "import torch\nfrom torch import nn\nfrom math import sqrt\n"
        "VALUE = 3\nclass Plain:\n    pass\nclass Net(nn.Module):\n    pass\n"
        "def f():\n    pass\n"
    )
    assert main(["layers", "--model", "notmod.py:Missing"]) == 2
    err = error(capsys)
    assert "has no 'Missing'; it defines: nn.Module classes Net; functions f()" in err
    assert "Plain" in err and "VALUE" in err and "sqrt" not in err and "torch" not in err
    assert main(["layers", "--model", "notmod.py:VALUE"]) == 2
    assert "notmod.py:VALUE is an int" in error(capsys)
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    assert main(["layers", "--model", "exits.py:Net"]) == 2
    assert "exits.py exited with status 3 while being imported" in error(capsys)


def test_optimize_each_checks_its_arguments_when_called():
    """A generator would check nothing until its first layer: a bad config fails at once."""
    from convsee.errors import ConvseeError
    from convsee.models.load import load_network
    from convsee.run.optimize import OptimizeConfig, optimize_each

    net = load_network()
    with pytest.raises(ConvseeError):
        optimize_each(net, net.select("conv1"), OptimizeConfig(steps=0))
