"""Pictures show what they say: exact colours where colour is a count, every title and note
inside the picture, and --device wherever a torch model may run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from convsee.cli import main

REPO = Path(__file__).resolve().parents[1]
SMALL_CNN = str(REPO / "examples" / "small_cnn.py") + ":SmallCNN"
ONE_CHANNEL_PY = """
import torch
from torch import nn


class OneChannel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 1, 3)
        self.fc = nn.Linear(26 * 26, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv1(x)).flatten(1))
"""


def _matrix(out: str) -> np.ndarray:
    """The confusion counts `convsee evaluate` printed (rows: true class)."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("true\\pred"))
    rows = []
    for line in lines[head + 1 :]:
        if not line.strip():
            break
        rows.append([int(v) for v in line.split()[1:-1]])
    return np.array(rows)


def _lut(name: str) -> np.ndarray:
    import matplotlib

    lut = matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3]
    return np.round(lut * 255).astype(np.uint8)


def test_confusion_matrix_cells_have_their_colormap_colours(tmp_path, mnist_dir, capsys):
    from convsee.draw.figures import CONFUSION_CELL, CONFUSION_LEFT, CONFUSION_TOP

    out = tmp_path / "confusion.png"
    assert main(["evaluate", "--data", str(mnist_dir), "--out", str(out)]) == 0
    conf = _matrix(capsys.readouterr().out)
    assert conf.shape == (10, 10) and conf.sum() == 10000
    img = np.asarray(Image.open(out).convert("RGB"))
    diag = np.diag(conf)
    off = conf - np.diag(diag)
    dmax, omax = int(diag.max()), int(off.max())

    def pixel(i, j):  # inside the cell, away from its outline and its number
        x = CONFUSION_LEFT + j * CONFUSION_CELL + 3
        y = CONFUSION_TOP + i * CONFUSION_CELL + 3
        return tuple(int(c) for c in img[y, x])

    # the diagonal: Blues from 0 to the largest diagonal count
    big = [i for i in range(10) if diag[i] >= 1000]
    assert big, "LeNet-5 gets 1000+ right in some class of MNIST's test set"
    blues = _lut("Blues")
    for i in range(10):
        assert pixel(i, i) == tuple(int(c) for c in blues[int(diag[i] * 255 / dmax)]), i
    assert pixel(big[0], big[0]) != (53, 53, 53)  # the palette's grey of the bug
    # errors: Reds on a square-root scale up to 1.4 x sqrt(largest error)
    reds = _lut("Reds")
    small = [(i, j) for i in range(10) for j in range(10) if i != j and 1 <= off[i, j] <= 2]
    assert small
    for i, j in small:
        idx = int(math.sqrt(off[i, j]) * 255 / (math.sqrt(omax) * 1.4))
        assert pixel(i, j) == tuple(int(c) for c in reds[idx]), (i, j)
    # no count: white
    i, j = next((i, j) for i in range(10) for j in range(10) if conf[i, j] == 0)
    assert pixel(i, j) == (255, 255, 255)


def test_confusion_matrix_has_its_scale(monkeypatch):
    """A legend says what blue and red mean and the count range of each."""
    from convsee.draw.figures import CONFUSION_CELL, CONFUSION_TOP, confusion_image

    drawn = []
    real = ImageDraw.ImageDraw.text

    def text(self, xy, t, *a, **k):
        drawn.append((xy[1], str(t)))
        return real(self, xy, t, *a, **k)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", text)
    conf = [[975, 2, 0], [1, 1132, 7], [0, 0, 880]]
    confusion_image(conf, ["a", "b", "c"], "t")
    below = [t for y, t in drawn if y > CONFUSION_TOP + 3 * CONFUSION_CELL]  # the legend
    words = " ".join(below)
    assert "correct" in words and "error" in words
    assert "1132" in below and "7" in below  # the top of each scale (cells hold them too)
    assert "0" in below and "1" in below  # and its bottom


# --- every title and note inside its picture --------------------------------------------------


@pytest.fixture
def text_outside(monkeypatch):
    """Records every text drawn (partly) outside its image."""
    cut = []
    real = ImageDraw.ImageDraw.text

    def text(self, xy, t, fill=None, font=None, anchor=None, *a, **k):
        left, top, right, bottom = self.textbbox(xy, t, font=font, anchor=anchor)
        w, h = self.im.size
        if left < 0 or top < 0 or right > w or bottom > h:
            cut.append(f"{t!r} spans x {left}..{right}, y {top}..{bottom} of {w}x{h}")
        return real(self, xy, t, fill, font, anchor, *a, **k)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", text)
    return cut


def test_samples_sheet_is_as_wide_as_its_title(tmp_path):
    from convsee.draw.core import text_size

    for inputs in (["sample:3"], ["sample:3", "sample:7"]):
        out = tmp_path / str(len(inputs))
        assert main(["render", *inputs, "--layers", "fc3", "--out", str(out)]) == 0
        w = Image.open(out / "samples.png").width
        assert w >= 20 + text_size("the inputs, as the model sees them", 20)[0] + 10


ONE_CHANNEL = "ONE_CHANNEL"


@pytest.mark.parametrize(
    "argv",
    [
        ["render", "sample:3", "--layers", "conv2"],
        ["render", "sample:3", "sample:7", "--layers", "fc3"],
        ["render", "sample:3", "--layers", "conv1", "--channels", "0"],
        ["render", "sample:3", "--model", ONE_CHANNEL, "--layers", "all", "--with-kernels"],
        ["render", "--diff", "sample:3", "sample:7", "--model", ONE_CHANNEL],
        ["attribution", "sample:3", "--model", ONE_CHANNEL],
        ["sweep", "sample:3", "--model", ONE_CHANNEL],
        ["sweep", "sample:3", "--model", ONE_CHANNEL, "--kind", "occlude"],
        ["animate", "sample:3", "--model", ONE_CHANNEL],
        ["optimize", "--layer", "conv1", "--channels", "0", "--steps", "5", "--rounds", "1"],
    ],
)
def test_every_text_is_inside_its_picture(argv, tmp_path, text_outside):
    model = tmp_path / "one_channel.py"
    model.write_text(ONE_CHANNEL_PY)
    argv = [f"{model}:OneChannel" if x == ONE_CHANNEL else x for x in argv]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    assert not text_outside, text_outside


def test_exemplars_text_is_inside_with_one_channel(tmp_path, mnist_dir, text_outside):
    argv = ["exemplars", "--layer", "conv1", "--channels", "0", "-k", "1", "--limit", "200"]
    assert main([*argv, "--data", str(mnist_dir), "--quiet", "--out", str(tmp_path / "o")]) == 0
    assert not text_outside, text_outside


# --- --device where a torch model runs ----------------------------------------------------------


@pytest.mark.parametrize("cmd", ["render", "evolution"])
def test_device_is_taken(cmd, tmp_path, capsys):
    from convsee.cli import build_parser

    a = build_parser().parse_args([cmd, "--device", "cpu"])
    assert a.device == "cpu"
    with pytest.raises(SystemExit):
        build_parser().parse_args([cmd, "--device", "tpu"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", ["render", "evolution"])
def test_an_unavailable_device_is_one_line_and_writes_nothing(cmd, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "o"
    assert main([cmd, "--device", "cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"convsee {cmd}: error: --device cuda: no CUDA device is available"
    assert not out.exists()


def test_render_runs_a_torch_model_on_the_device(tmp_path, monkeypatch):
    import convsee.models.load as load

    seen = []
    real = load.load_network

    def spy_cpu(*a, **k):  # records the device asked for, runs on the CPU this machine has
        seen.append(k.get("device"))
        return real(*a, **{**k, "device": "cpu"})

    import convsee.cli.options as options

    monkeypatch.setattr(load, "load_network", spy_cpu)
    monkeypatch.setattr(options, "device", lambda name: name)  # mps "available"
    small = ["--model", SMALL_CNN, "--device", "mps"]
    assert main(["render", "sample:3", *small, "--out", str(tmp_path / "o")]) == 0
    assert seen == ["mps"]  # not the default cpu: the flag reaches the model


def test_render_of_lenet_with_device_cpu_stays_torch_free(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from convsee.cli import main; "
        f"main(['render', 'sample:3', '--device', 'cpu', '--out', {str(tmp_path / 'o')!r}]); "
        "print('torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "False"


def test_reference_says_which_commands_take_device():
    """The command reference claims --device for a command exactly when it takes it."""
    from convsee.cli import COMMANDS, build_parser
    from convsee.cli.reference import markdown

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(getattr(a, "choices", None), dict))
    text = markdown()
    sentence = next(x for x in text.splitlines() if x.startswith("Taken by"))
    assert "`--device` (where torch runs) is taken by all of them" in sentence
    for n in COMMANDS:
        takes = any("--device" in x.option_strings for x in sub.choices[n]._actions)
        section = text.split(f"## `convsee {n}`")[1].split("## ")[0]
        claimed = "`--device`" in section or "| model options | see above |" in section
        assert claimed == takes, n
    assert "render" in sentence.split(";")[0]  # render takes every model option now


def test_a_short_vector_leaves_room_for_its_title(text_outside):
    from convsee.draw.core import colormap
    from convsee.draw.figures import vector_strip

    title = [
        "fc1 · Linear · non-negative · 3",
        "scale: global (the checkpoint's reference range; brighter values saturate)",
    ]
    vector_strip(
        np.zeros((28, 28)), np.array([0.1, 0.5, 0.9]), (0, 1), colormap("viridis"), title, "x"
    )
    assert not text_outside, text_outside
