"""Every drawing view from Python: Figures that show in Jupyter and hold what the CLI writes."""

from __future__ import annotations

import base64

import pytest

import convsee
from convsee.cli import main
from convsee.models.load import load_network
from convsee.models.network import LeNetNetwork


@pytest.fixture(scope="module")
def net():
    return convsee.load()


def test_render_returns_exactly_the_layers_asked_for(net):
    figs = net.render("sample:3", layers="conv1,fc3")
    assert [f.name for f in figs] == ["conv1/3.png", "fc3/3.png"]
    assert [f.sidecar["layer"] for f in figs] == ["conv1", "fc3"]
    blurred = net.render("sample:3", layers="conv1", blur=(5, 3))
    assert [f.name for f in blurred] == ["conv1/3.png", "conv1/3_blur.png"]


def test_a_list_of_figures_shows_as_its_pictures(net):
    figs = net.render(["sample:3", "sample:7"], layers="conv1")
    html = figs._repr_html_()
    assert html.count("<img ") == len(figs) == 2
    for f in figs:
        assert base64.b64encode(f.data).decode() in html
        assert f._repr_png_() == f.data
    [gif] = net.animate("sample:3", layer="pool1", channel=0)
    assert gif.format == "gif" and gif._repr_png_() is None
    assert "data:image/gif;base64," in gif._repr_html_()


@pytest.mark.parametrize(
    "method, kwargs, argv",
    [
        ("kernels", {}, ["render", "--kernels"]),
        ("diff", {"a": "sample:7", "b": "sample:1"}, ["render", "--diff", "sample:7", "sample:1"]),
        ("animate", {"channel": 1}, ["animate", "--channel", "1"]),
        ("sweep", {"kind": "noise"}, ["sweep", "--kind", "noise"]),
        ("evolution", {}, ["evolution"]),
    ],
)
def test_the_figures_are_the_files_the_command_writes(net, tmp_path, method, kwargs, argv):
    files = getattr(net, method)(**kwargs).files()
    assert main([*argv, "--out", str(tmp_path)]) == 0
    written = {
        str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
    }
    assert sorted(files) == sorted(written)
    for name, data in files.items():
        assert data == written[name], name


def test_the_figures_save_all_or_nothing(net, tmp_path):
    figs = net.sweep("sample:3", kind="shift") + net.kernels()
    saved = figs.save(tmp_path / "views")
    assert sorted(p.name for p in saved) == ["kernels.png", "sweep_shift_conv1.gif"]
    assert (tmp_path / "views" / "kernels.json").is_file()


def test_only_the_api_networks_have_view_methods(net):
    assert isinstance(net, LeNetNetwork) and isinstance(net, convsee.Network)
    plain = load_network()  # what the CLI uses: models/ alone, no drawing methods
    assert not hasattr(plain, "render") and hasattr(net, "render")
