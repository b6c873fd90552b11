"""The second dataset: Fashion-MNIST through the same code, its own checkpoint and classes."""

import os
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import make_tiny_mnist
from PIL import Image

from convsee.cli import main
from convsee.datasets import idx as data
from convsee.datasets.inputs import samples
from convsee.datasets.registry import DATASETS, lookup
from convsee.errors import ConvseeError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def fashion_dir():
    if not (DEBIAN / "t10k-images-idx3-ubyte.gz").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{DEBIAN} missing: .ci/run installs Debian's dataset-fashion-mnist")
        pytest.skip("Fashion-MNIST not installed")
    return DEBIAN


def test_search_dirs_are_per_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSEE_DATA", str(tmp_path / "mnist-here"))
    dirs = data.search_dirs(None, "fashion-mnist")
    assert tmp_path / "mnist-here" not in dirs  # $CONVSEE_DATA is MNIST's
    assert dirs[0].name == "fashion-mnist" and DEBIAN in dirs
    root = make_tiny_mnist(tmp_path / "tv" / "FashionMNIST" / "raw", 10, 5)
    found = data.find_data_dir(tmp_path / "tv", dataset="fashion-mnist")
    assert found["t10k-images-idx3-ubyte"].parent == root
    with pytest.raises(ConvseeError, match="unknown dataset 'cifar'"):
        lookup("cifar")


def test_mnist_files_are_not_taken_for_fashion(tmp_path, mnist_dir):
    with pytest.raises(ConvseeError, match="not Fashion-MNIST"):
        data.load_split("test", mnist_dir, verify=True, dataset="fashion-mnist")


def test_missing_fashion_names_the_debian_package(tmp_path, monkeypatch):
    fashion = replace(DATASETS["fashion-mnist"], system=(tmp_path / "no-debian",))
    monkeypatch.setitem(DATASETS, "fashion-mnist", fashion)
    with pytest.raises(ConvseeError, match="apt-get install dataset-fashion-mnist"):
        data.find_data_dir(tmp_path / "none", dataset="fashion-mnist")


def test_shipped_fashion_checkpoint(fashion_dir, capsys, tmp_path):
    assert main(["evaluate", "--dataset", "fashion-mnist", "--out", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert float(out.split("test accuracy ")[1].split("%")[0]) >= 90.0
    assert "Ankle boot" in out


def test_fashion_samples_predict_and_render(tmp_path, capsys):
    s = samples("fashion-mnist")
    assert [x.label for x in s] == list(range(10))
    assert main(["predict", "--dataset", "fashion-mnist"]) == 0
    lines = capsys.readouterr().out.splitlines()
    right = sum(
        "(true " in ln
        and ln.split(": ")[1].split(" (true ")[0] == ln.split("(true ")[1].split(")")[0]
        for ln in lines
    )
    assert right >= 9
    assert (
        main(
            [
                "render",
                "--dataset",
                "fashion-mnist",
                "--layers",
                "conv1,fc3",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    Image.open(tmp_path / "r" / "fc3" / "9.png").load()
    assert main(["evolution", "--dataset", "fashion-mnist", "--out", str(tmp_path / "e")]) == 0


def test_fashion_style_preprocessing_fills_the_frame():
    from convsee.datasets.digits import preprocess_for

    img = Image.new("L", (300, 200), 255)
    img.paste(0, (50, 40, 250, 160))  # a dark rectangle on white
    out = preprocess_for(img, "fashion-mnist")
    cols = (out.max(0) > 0.5).nonzero()[0]
    assert cols[0] <= 1 and cols[-1] >= 26  # scaled to the full 28 px, not MNIST's 20
