"""What views write and show: only the layers asked for, one file per attribution method,
and an attribution result that displays as its pictures."""

from __future__ import annotations

import pytest

import convsee
from convsee.cli import main


def test_evolution_draws_only_the_layers_asked_for(tmp_path, capsys):
    assert main(["evolution", "--layers", "conv1", "--out", str(tmp_path / "a")]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "evolution_conv1.gif" in names and "evolution_conv2.gif" not in names
    for bad in ("fc9", "fc1"):  # unknown, and a layer the snapshots cannot replay
        assert main(["evolution", "--layers", bad, "--out", str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and bad in err[0]
    assert not (tmp_path / "b").exists()


def test_evolution_names_every_layer_its_snapshots_cannot_replay(tmp_path, capsys):
    assert main(["evolution", "--layers", "fc1,conv1,fc2", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        "convsee evolution: error: --layers: LeNet-5's snapshots replay conv1 and conv2, "
        "not fc1, fc2\n"
    )


def test_two_attribution_methods_into_one_folder_keep_both(tmp_path):
    out = tmp_path / "out"
    assert main(["attribution", "sample:7", "--layer", "conv2", "--out", str(out)]) == 0
    assert main(["attribution", "sample:7", "--method", "saliency", "--out", str(out)]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["attribution_sample_7_7.png", "attribution_sample_7_7_saliency.png"]


def test_attributions_show_their_pictures_and_a_short_repr():
    net = convsee.load()
    a = net.attribution(["sample:7", "sample:1"], layer="conv2")
    assert repr(a) == (
        "<Attributions gradcam at conv2: 2 input(s), maps 2x28x28, targets [7, 1], 2 figure(s)>"
    )
    html = a._repr_html_()
    assert html.count("<img") == 2 and "data:image/png;base64," in html
    with pytest.raises(convsee.ConvseeError):
        net.evolution(layers="nope")
