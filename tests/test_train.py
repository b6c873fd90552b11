import json

import pytest
import torch
from safetensors.torch import load_file

from convsee.datasets.idx import Split, load_mnist
from convsee.errors import ConvseeError
from convsee.models.checkpoint import load_checkpoint
from convsee.run.train import TrainConfig, augment_batch, train


@pytest.fixture(scope="module")
def small_splits(mnist_dir):
    train_split, test_split = load_mnist(mnist_dir, verify=True)
    sub = Split(train_split.images[:10000], train_split.labels[:10000], train_split.md5)
    return sub, Split(test_split.images[:2000], test_split.labels[:2000], test_split.md5)


def test_brief_training_on_real_data(tmp_path, small_splits):
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig(epochs=2, seed=3)
    model, meta = train(cfg, out=out, splits=small_splits, progress=False)
    assert meta["test_accuracy"] > 0.9  # chance is 0.1
    assert meta["complete"] and len(meta["per_class_accuracy"]) == 10
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["train_config"]["seed"] == 3 and side["epochs_done"] == 2
    assert side["dataset_md5"]["t10k-labels-idx1-ubyte"] == "27ae3e4e09519cfbb04c329615203637"
    assert not out.with_suffix(".resume.pt").exists()
    loaded, _ = load_checkpoint(out)
    assert torch.equal(loaded.fc1.weight, model.fc1.weight)
    # same seed, same machine: same weights
    out2 = tmp_path / "m2.safetensors"
    train(cfg, out=out2, splits=small_splits, progress=False)
    a, b = load_file(out), load_file(out2)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_interrupt_keeps_last_epoch_and_resume_continues(tmp_path, small_splits):
    out = tmp_path / "r.safetensors"
    cfg = TrainConfig(epochs=3, seed=1)

    def stop_after_first(epoch, model, acc):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(ConvseeError, match=r"last finished epoch \(1/3\)"):
        train(cfg, out=out, splits=small_splits, progress=False, on_epoch=stop_after_first)
    assert json.loads(out.with_suffix(".json").read_text())["epochs_done"] == 1
    _, meta = train(cfg, out=out, splits=small_splits, progress=False, resume=True)
    assert meta["epochs_done"] == 3 and len(meta["history"]) == 3
    full = tmp_path / "full.safetensors"
    train(cfg, out=full, splits=small_splits, progress=False)
    a, b = load_file(out), load_file(full)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # resume == uninterrupted
    with pytest.raises(ConvseeError, match="nothing to resume"):
        train(cfg, out=out, splits=small_splits, progress=False, resume=True)


def test_bad_settings(tmp_path, small_splits):
    with pytest.raises(ConvseeError, match="must end in .safetensors"):
        train(TrainConfig(), out=tmp_path / "x.pt", splits=small_splits)
    with pytest.raises(ConvseeError, match="must be positive"):
        train(TrainConfig(epochs=0), out=tmp_path / "x.safetensors", splits=small_splits)


def test_augment_keeps_shape_background_and_is_seeded():
    x = torch.full((4, 1, 28, 28), -0.42)
    x[:, :, 10:18, 10:18] = 2.8
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, b = augment_batch(x, g1), augment_batch(x, g2)
    assert a.shape == x.shape and torch.equal(a, b)
    assert torch.allclose(a[:, :, 0, 0], torch.tensor(-0.42))  # border stays background
    assert not torch.equal(a, x)
