import json
import pickle

import pytest
import torch
from safetensors.torch import load_file

from convsee.errors import ConvseeError
from convsee.models.checkpoint import default_checkpoint, load_checkpoint, save_checkpoint
from convsee.models.lenet import LeNet5


def test_roundtrip_safetensors_and_json(tmp_path):
    torch.manual_seed(0)
    net = LeNet5()
    path = tmp_path / "m.safetensors"
    save_checkpoint(net, path, {"test_accuracy": 0.5})
    assert set(load_file(path)) == set(net.state_dict())
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["config"]["num_classes"] == 10 and meta["test_accuracy"] == 0.5
    model, meta2 = load_checkpoint(path)
    assert not model.training
    for k, v in net.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    assert len(meta2["sha256"]) == 64
    assert not list(tmp_path.glob(".*tmp"))  # no temporaries left behind


def test_plain_state_dict_pth_loads(tmp_path):
    torch.manual_seed(0)
    net = LeNet5()
    p = tmp_path / "orig.pth"
    torch.save(net.state_dict(), p)  # the original project's format
    model, _ = load_checkpoint(p)
    assert torch.equal(model.conv1.weight, net.conv1.weight)
    q = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, q)
    assert torch.equal(load_checkpoint(q)[0].fc3.bias, net.fc3.bias)


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_object_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "evil.pth"
    p.write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    with pytest.raises(ConvseeError, match="refused to load"):
        load_checkpoint(p)
    assert not (tmp_path / "PWNED").exists()
    q = tmp_path / "evil2.pt"
    torch.save({"x": Evil()}, q)
    with pytest.raises(ConvseeError, match="refused to load"):
        load_checkpoint(q)
    assert not (tmp_path / "PWNED").exists()


def test_garbage_and_missing(tmp_path):
    g = tmp_path / "garbage.pth"
    g.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ConvseeError, match="garbage.pth"):
        load_checkpoint(g)
    s = tmp_path / "garbage.safetensors"
    s.write_bytes(b"nonsense")
    with pytest.raises(ConvseeError, match="not a valid safetensors"):
        load_checkpoint(s)
    with pytest.raises(ConvseeError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")


def test_wrong_keys_and_shapes_are_listed(tmp_path):
    sd = LeNet5().state_dict()
    sd["conv1.weight"] = torch.zeros(8, 1, 5, 5)
    del sd["fc3.bias"]
    sd["extra.weight"] = torch.zeros(1)
    p = tmp_path / "bad.pth"
    torch.save(sd, p)
    with pytest.raises(ConvseeError) as e:
        load_checkpoint(p)
    msg = str(e.value)
    assert "missing: fc3.bias" in msg and "unexpected: extra.weight" in msg
    assert "conv1.weight has shape [8, 1, 5, 5], expected [6, 1, 5, 5]" in msg


def test_shipped_checkpoint_carries_its_metadata():
    model, meta = load_checkpoint()
    assert default_checkpoint().stat().st_size < 500_000
    assert meta["test_accuracy"] >= 0.991 and meta["train_config"]["seed"] == 0
    assert meta["dataset_md5"]["t10k-images-idx3-ubyte"] == "2646ac647ad5339dbf082846283269ea"
