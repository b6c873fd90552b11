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


# --- one unit: the metadata inside the weights file, the .json a checked copy -------------


def _header_meta(path):
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        md = f.metadata() or {}
    return json.loads(md["convsee_meta"]) if "convsee_meta" in md else None


def test_metadata_is_inside_the_weights_file(tmp_path):
    net = LeNet5()
    path = tmp_path / "m.safetensors"
    save_checkpoint(net, path, {"test_accuracy": 0.5, "epochs_done": 2})
    side = json.loads(path.with_suffix(".json").read_text())
    assert _header_meta(path) == side
    path.with_suffix(".json").unlink()  # the copy is a convenience: the weights suffice
    _, meta = load_checkpoint(path)
    assert meta["epochs_done"] == 2 and meta["test_accuracy"] == 0.5


def test_kill_between_weights_and_json_leaves_no_disagreement(tmp_path, monkeypatch):
    from faults import fail_replace

    torch.manual_seed(0)
    path = tmp_path / "m.safetensors"
    save_checkpoint(LeNet5(), path, {"epochs_done": 1, "test_accuracy": 0.5})
    net2 = LeNet5()
    fail_replace(monkeypatch, lambda s, d, n: d.endswith(".json"), KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(net2, path, {"epochs_done": 2, "test_accuracy": 0.75})
    monkeypatch.undo()
    model, meta = load_checkpoint(path)  # weights of epoch 2 come with epoch 2's metadata
    assert torch.equal(model.conv1.weight, net2.conv1.weight)
    assert meta["epochs_done"] == 2 and meta["test_accuracy"] == 0.75
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_json_copy_that_disagrees_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(LeNet5(), path, {"epochs_done": 2, "test_accuracy": 0.9})
    side = path.with_suffix(".json")
    side.write_text(side.read_text().replace('"epochs_done": 2', '"epochs_done": 1'))
    with pytest.raises(ConvseeError, match=r"m.json does not match .*epochs_done.*delete it"):
        load_checkpoint(path)
    from convsee.models.checkpoint import load_weights

    with pytest.raises(ConvseeError, match="does not match"):
        load_weights(path)


def test_safetensors_from_other_tools_still_load(tmp_path):
    from safetensors.torch import save_file

    net = LeNet5()
    p = tmp_path / "foreign.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(p))
    model, meta = load_checkpoint(p)  # no metadata at all
    assert torch.equal(model.fc3.bias, net.fc3.bias) and meta["classes"][9] == "9"
    p.with_suffix(".json").write_text(json.dumps({"classes": list("abcdefghij")}))
    assert load_checkpoint(p)[1]["classes"][0] == "a"  # a .json beside it still counts


def test_shipped_checkpoints_carry_their_metadata_inside():
    for dataset in ("mnist", "fashion-mnist"):
        path = default_checkpoint(dataset)
        inside = _header_meta(path)
        assert inside is not None
        assert inside == json.loads(path.with_suffix(".json").read_text())
        assert inside["dataset"] == dataset and inside["complete"]


def test_atomic_write_reaches_the_disk_before_the_rename(tmp_path, monkeypatch):
    import os

    from convsee.models.checkpoint import atomic_write

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    atomic_write(tmp_path / "f.bin", b"data")
    assert (tmp_path / "f.bin").read_bytes() == b"data"
    assert "fsync" in events and events.index("fsync") < events.index("replace")


def test_clean_stale_temps_removes_only_its_own(tmp_path):
    from convsee.models.checkpoint import clean_stale_temps

    mine = [tmp_path / ".m.safetensors.ab_d1234.tmp", tmp_path / ".m.safetensors.zzzzzzzz.tmp"]
    others = [
        tmp_path / ".m.safetensors.notes.tmp",  # not mkstemp's 8 characters
        tmp_path / ".m.safetensorsX.abcdefgh.tmp",  # another file's temporary
        tmp_path / "m.safetensors",
    ]
    for p in mine + others:
        p.write_bytes(b"x")
    assert sorted(clean_stale_temps(tmp_path / "m.safetensors")) == sorted(mine)
    assert all(p.exists() for p in others) and not any(p.exists() for p in mine)


# --- NaN and infinity are refused at load time ---------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_non_finite_weights_are_refused(tmp_path, bad, suffix):
    from convsee.models.checkpoint import load_weights

    net = LeNet5()
    with torch.no_grad():
        net.fc2.weight[3, 4] = bad
    p = tmp_path / f"m{suffix}"
    if suffix == ".pth":
        torch.save(net.state_dict(), p)
    else:
        save_checkpoint(net, p, {})
    with pytest.raises(ConvseeError, match=r"NaN or infinite values, in fc2.weight \(1\)"):
        load_checkpoint(p)
    with pytest.raises(ConvseeError, match="NaN or infinite"):
        load_weights(p)  # the NumPy path (render, serve)


# --- metadata of the wrong shape: one clear error, never a traceback -----------------------


@pytest.mark.parametrize(
    "side, message",
    [
        ("[]", "must be a JSON object, got list"),
        ('{"config": "x"}', "'config' must be an object"),
        ('{"config": {"num_classes": "ten"}}', "'num_classes' must be a positive whole number"),
        ('{"config": {"depth": 3}}', "unknown 'config' keys: depth"),
        ('{"classes": ["a", "b"]}', "2 'classes' for a model with 10 outputs"),
        ('{"classes": "0123456789"}', "'classes' must be a list of names"),
        ('{"test_accuracy": "high"}', "'test_accuracy' must be a number"),
        ("{not json", "unreadable metadata"),
    ],
)
def test_sidecar_of_the_wrong_shape(tmp_path, side, message):
    from safetensors.torch import save_file

    from convsee.models.checkpoint import load_weights

    p = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in LeNet5().state_dict().items()}, str(p))
    p.with_suffix(".json").write_text(side)
    with pytest.raises(ConvseeError, match=message):
        load_checkpoint(p)
    with pytest.raises(ConvseeError, match=message):
        load_weights(p)


def test_metadata_of_the_wrong_shape_inside_the_file(tmp_path):
    p = tmp_path / "m.safetensors"
    save_checkpoint(LeNet5(), p, {"classes": ["just one"]})
    p.with_suffix(".json").unlink()
    with pytest.raises(ConvseeError, match="1 'classes' for a model with 10 outputs"):
        load_checkpoint(p)


def test_write_metadata_changes_both_and_keeps_the_tensors(tmp_path):
    from convsee.models.checkpoint import write_metadata

    p = tmp_path / "m.safetensors"
    save_checkpoint(LeNet5(), p, {"test_accuracy": 0.5})
    before = load_file(p)
    _, meta = load_checkpoint(p)
    new = {k: v for k, v in meta.items() if k not in ("path", "sha256")}
    new["note"] = "measured again"
    write_metadata(p, new)
    after = load_file(p)
    assert all(before[k].numpy().tobytes() == after[k].numpy().tobytes() for k in before)
    assert _header_meta(p) == json.loads(p.with_suffix(".json").read_text()) == new
    assert load_checkpoint(p)[1]["note"] == "measured again"


def test_no_path_means_the_datasets_own_shipped_checkpoint():
    from convsee.models.checkpoint import load_weights

    _, meta = load_weights(dataset="fashion-mnist")
    assert meta["classes"][0] == "T-shirt/top" and meta["preprocess"]["mean"] == [0.286]
    _, meta = load_checkpoint(dataset="fashion-mnist")
    assert meta["dataset"] == "fashion-mnist"
    assert load_weights()[1]["classes"][0] == "0"


def _with_meta_text(path, text):
    """path: a LeNet-5 checkpoint whose convsee_meta is text, with no .json copy."""
    from safetensors.torch import save_file

    sd = {k: v.contiguous() for k, v in LeNet5().state_dict().items()}
    save_file(sd, str(path), metadata={"convsee": "1", "convsee_meta": text})
    return path


def _deep_header(path):
    """A safetensors file whose header JSON nests 100,000 lists deep (json.loads recursion)."""
    head = b"[" * 100_000 + b"]" * 100_000
    path.write_bytes(len(head).to_bytes(8, "little") + head)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: _with_meta_text(p, "[1, 2]"), "metadata must be a JSON object, got list"),
        (lambda p: _with_meta_text(p, '"text"'), "metadata must be a JSON object, got str"),
        (lambda p: _with_meta_text(p, "7"), "metadata must be a JSON object, got int"),
        (lambda p: _with_meta_text(p, "[" * 100_000), "its metadata is not valid JSON"),
        (_deep_header, "not a valid safetensors file"),
    ],
)
def test_metadata_that_is_no_object_is_one_line_on_predict(tmp_path, capsys, make, message):
    """predict (and serve, through the same loader) say one line."""
    from convsee.cli import main
    from convsee.models.checkpoint import read_meta

    ck = make(tmp_path / "m.safetensors")
    assert main(["predict", "sample:3", "--checkpoint", str(ck)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convsee predict: error:") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(ConvseeError, match=message):
        read_meta(ck)  # what the server's and --model's loaders read too


def test_a_sidecar_nested_too_deep_is_one_line(tmp_path):
    from safetensors.torch import save_file

    ck = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in LeNet5().state_dict().items()}, str(ck))
    ck.with_suffix(".json").write_text("[" * 100_000)
    with pytest.raises(ConvseeError, match=r"m.json: unreadable metadata"):
        load_checkpoint(ck)


def test_labels_files_of_the_wrong_length_or_size_are_refused(tmp_path, capsys):
    from convsee.cli import main

    short = tmp_path / "short.txt"
    short.write_text("".join(f"c{i}\n" for i in range(9)))
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:  # sparse: 2 MB without writing them
        f.truncate(2 << 20)
    for path, message in (
        (short, "--labels gives 9 class names (one a line) for a model with 10 classes"),
        (huge, "is 2,097,152 bytes; class names take at most 1,048,576"),
    ):
        assert main(["predict", "sample:3", "--labels", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("convsee predict: error:") and message in err, err
        assert err.count("\n") == 1


def test_labels_of_the_wrong_count_are_refused_for_every_model(tmp_path, capsys):
    """Not only LeNet-5: any model's class scores are counted (10 for SmallCNN, 6 per position
    for a dense one), on the CLI in one line naming --labels; a matching count loads."""
    from pathlib import Path

    from convsee.cli import main
    from convsee.models.load import load_network

    small = str(Path(__file__).resolve().parents[1] / "examples" / "small_cnn.py") + ":SmallCNN"
    (tmp_path / "dense.py").write_text(
        "from torch import nn\ndef Dense():\n    return nn.Conv2d(1, 6, 3)\n"
    )
    dense = f"{tmp_path / 'dense.py'}:Dense"
    nine = tmp_path / "nine.txt"
    nine.write_text("".join(f"c{i}\n" for i in range(9)))
    for spec, k in ((small, 10), (dense, 6)):
        with pytest.raises(ConvseeError, match=f"gives 9 class names .* with {k} classes") as e:
            load_network(spec, labels=nine)
        assert e.value.param == "labels"
        with pytest.raises(ConvseeError, match="gives 2 class names") as e:
            load_network(spec, preprocess={"labels": ["a", "b"]})
        assert e.value.param == "labels"
        names = [f"n{i}" for i in range(k)]
        assert load_network(spec, labels=names).class_names(k) == names
    for args in (["--model", small], []):
        assert main(["predict", "sample:3", *args, "--labels", str(nine)]) == 2
        err = capsys.readouterr().err
        message = "--labels gives 9 class names (one a line) for a model with 10 classes"
        assert err == f"convsee predict: error: {message}\n"
