"""What looking at the README's pictures found: labels right under their tiles, nothing drawn
over a map's range, no empty band under a layer picture; and benchmarks/docs_pictures.py."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convsee.cli import main
from convsee.draw.channel_views import FRAME, optimize_image
from convsee.draw.core import colormap
from convsee.draw.figures import MapGrid

REPO = Path(__file__).resolve().parents[1]


def test_optimize_labels_sit_right_under_tiles_of_any_size():
    for side in (40, 25, 28, 9):  # 40x40 tiles were drawn 80 px high, labelled 35 px lower
        patches = np.random.default_rng(0).uniform(0, 1, (3, side, side, 3))
        img = np.asarray(optimize_image(patches, [0, 1, 2], [3.0] * 3, [1.0] * 3, title="t"))
        frame = np.flatnonzero((img[:, 19] == FRAME).all(1))  # the tile's left frame line
        bottom = frame.max()
        tile_h = bottom - frame.min() - 1
        assert 100 <= tile_h <= 126, side  # about 112 px, whole pixels
        band = img[bottom + 1 : bottom + 16, 20 : 20 + tile_h]
        assert (band.max(2) < 100).any(), f"no label within 16 px under a {side}px tile"


def _kernel_grid(own_ranges: bool):
    kernels = np.full((2, 1, 3, 3), 0.5)  # all strongly positive: red
    g = MapGrid((2, 10, 10), colormap("RdBu_r"), ["t", ""], kernels, None, own_ranges)
    maps = np.zeros((2, 10, 10), np.float32)
    img = g.draw(np.zeros((28, 28)), maps, [(-1.0, 1.0)] * 2, "x")
    return g, np.asarray(img).astype(int)


def test_kernels_leave_each_maps_range_readable():
    g, img = _kernel_grid(own_ranges=True)
    for x, y in g.pos:
        band = img[y + g.th + 2 : y + g.th + 18, x : x + g.tw]  # where "-1 .. 1" is written
        assert (band[..., 0] - band[..., 2] < 60).all(), "a kernel drawn over the map's range"


def test_with_kernels_the_picture_is_no_taller_than_without(tmp_path):
    base = ["render", "sample:8", "--layers", "conv1"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--with-kernels", "--out", str(tmp_path / "b")]) == 0
    a = Image.open(tmp_path / "a" / "conv1" / "8.png")
    b = Image.open(tmp_path / "b" / "conv1" / "8.png")
    assert b.height == a.height  # the kernels' colour bar beside the maps', not below it
    assert b.width > a.width


def test_sample_captions_follow_pictures_of_any_size():
    from convsee.draw.figures import sample_sheet

    rgb = [np.random.default_rng(i).uniform(0, 1, (40, 40, 3)) for i in range(3)]
    img = np.asarray(sample_sheet(rgb, ["a\nb\nc"] * 3, "t")).astype(int)
    # the picture is 80 px (2x); its caption used to start 112 px down, 38 px below it
    below = img[56 + 80 + 2 : 56 + 80 + 22, 20:100]
    assert (below.max(2) < 100).any(), "no caption right under a 40x40 input"
    assert img.shape[1] < 3 * 200 + 20  # three inputs: three columns, not five


def test_a_long_caption_wraps_beside_the_maps_instead_of_running_under_them():
    from convsee.draw.figures import PANEL

    g = MapGrid((2, 10, 10), colormap("viridis"), ["t", ""], None, (0.0, 1.0))
    caption = "grey 10x10 patch at row 20, col 10\npredicted triangle (99.5%)"
    img = np.asarray(
        g.draw(np.zeros((40, 40, 3)), np.zeros((2, 10, 10)), [(0.0, 1.0)] * 2, caption)
    )
    text = img[120 + PANEL :, :].astype(int).max(2) < 200  # text pixels (black or grey)
    rows = np.flatnonzero(text[:, 20 : 20 + PANEL + 16].any(1))
    lines = 1 + int((np.diff(rows) > 3).sum())
    assert lines == 3  # the first line broken in two, then the prediction
    assert not text[:, 20 + PANEL + 17 : g.pos[0][0] - 1].any()  # nothing runs on to the maps


def _script(*args, cwd):
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "docs_pictures.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_docs_script_help_and_list_write_nothing(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    out = work / "docs"
    for flag in ("--help", "--list"):
        r = _script(flag, "--out", str(out), cwd=work)
        assert r.returncode == 0, r.stderr
        assert list(work.iterdir()) == []
    # every picture in docs/ has its command
    listed = r.stdout
    pictures = [p.name for p in (REPO / "docs").iterdir() if p.suffix in (".png", ".gif")]
    assert pictures and [p for p in pictures if p not in listed] == []


def test_the_empty_window_sentence_reads_as_a_product():
    """It said '-0.42 x sum(kernel) +1.248 + bias', which reads as adding 1.248. Read from
    the animation's sidecar (each frame's caption), checked against torch."""
    import torch

    import convsee

    net = convsee.load()
    [gif] = net.animate("sample:3", layer="conv1", channel=2)
    [empty] = [s for s in gif.sidecar["shown"] if s["why"] == "empty"]
    r, c = empty["position"]
    x = torch.tensor(net.inputs(["sample:3"])[0].x[None])
    w, b = (torch.tensor(net.weights[f"conv1.{k}"]) for k in ("weight", "bias"))
    out = float(torch.nn.functional.conv2d(x, w, b)[0, 2, r, c])
    v = float(x[0, 0, r, c])  # the window is empty: every value is the one at its corner
    ksum = float(w[2].sum())
    assert f"{v:.2f} x {ksum:.3f} (the kernel's sum) + bias = {out:+.3f}" in empty["caption"]


def _right_margin(png) -> int:
    """Columns of background right of the last drawn pixel."""
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    drawn = np.flatnonzero((np.abs(img - img[0, -1]).sum(2) > 0).any(0))
    return img.shape[1] - 1 - int(drawn.max())


@pytest.mark.parametrize(
    "argv, png",
    [
        (["render", "sample:3", "--layers", "conv1"], "conv1/3.png"),  # docs/conv1_3.png
        (["render", "sample:3", "--layers", "conv2", "--scale", "map"], "conv2/3.png"),
        (["render", "sample:8", "--layers", "conv1", "--with-kernels"], "conv1/8.png"),
        (["attribution", "sample:7"], "attribution_sample_7_7.png"),
        (
            ["attribution", "sample:7", "--method", "saliency"],
            "attribution_sample_7_7_saliency.png",
        ),
    ],
)
def test_pictures_end_20_px_right_of_their_content(tmp_path, argv, png):
    """conv1_3.png was 1124 px wide for content ending at 1070; an attribution on a photo
    1266 px for ~1020: the canvas was sized by guesses (110 px for a colour bar, 7 px a
    character), now by what is drawn, plus the 20 px margin of the left side (to a pixel: a
    glyph's box may end in a column its anti-aliasing leaves blank)."""
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert _right_margin(tmp_path / png) in (20, 21)
