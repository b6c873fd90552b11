"""models/provenance.py: a loaded network's model, checkpoint and preprocessing, one record
that the sidecars and the page's /api/info both read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import convsee
from convsee.datasets.idx import Split, load_mnist
from convsee.models.provenance import Provenance
from convsee.run.train import TrainConfig, train
from convsee.web.server import create_app

SMALL_CNN = str(Path(__file__).resolve().parents[1] / "examples" / "small_cnn.py") + ":SmallCNN"


def test_to_dict_is_the_sidecars_fields_under_their_keys():
    p = Provenance("m", "w.safetensors", "ab" * 32, 0.5, "mnist", {"mean": [0.1]}, None)
    assert list(p.to_dict()) == [
        "model",
        "checkpoint",
        "checkpoint_sha256",
        "checkpoint_test_accuracy",
        "preprocess",
    ]
    assert p.to_dict()["checkpoint_test_accuracy"] == 0.5 and "dataset" not in p.to_dict()
    frm = {"mean": "given explicitly"}
    assert Provenance(preprocess_from=frm).to_dict()["preprocess_from"] == frm
    assert Provenance(dataset="fashion-mnist").trained_on() == "fashion-mnist"
    assert Provenance(dataset="imagenet").trained_on() == "mnist"  # not one convsee knows


@pytest.mark.parametrize("model", [None, SMALL_CNN], ids=["lenet5", "small_cnn"])
def test_a_trained_checkpoints_sidecar_and_page_carry_the_files_sha256(tmp_path, mnist_dir, model):
    train_split, test_split = load_mnist(mnist_dir, verify=False)
    splits = (
        Split(train_split.images[:1000], train_split.labels[:1000], train_split.md5),
        Split(test_split.images[:200], test_split.labels[:200], test_split.md5),
    )
    out = tmp_path / "t.safetensors"
    _, meta = train(
        TrainConfig(epochs=1, seed=0), out=out, splits=splits, progress=False, model=model
    )
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    net = convsee.load(model, out)
    assert net.provenance.checkpoint == str(out) and net.provenance.checkpoint_sha256 == sha
    figs = net.render(["sample:3"], "conv1", channels="0")
    assert figs and all(f.sidecar["checkpoint_sha256"] == sha for f in figs)
    fig = figs[0]
    assert fig.sidecar["checkpoint"] == str(out)
    assert fig.sidecar["checkpoint_test_accuracy"] == meta["test_accuracy"]
    fig.save(tmp_path / "conv1_0.png")
    assert json.loads((tmp_path / "conv1_0.json").read_text())["checkpoint_sha256"] == sha
    with TestClient(create_app(net), base_url="http://127.0.0.1:8000") as c:
        info = c.get("/api/info").json()
    assert info["checkpoint_sha256"] == sha and info["checkpoint"] == out.name
    assert info["test_accuracy"] == meta["test_accuracy"]
