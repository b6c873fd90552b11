import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from faults import DiskFull, fail_replace
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
    cfg = TrainConfig(epochs=2, seed=3, label_smoothing=0.0)  # 0.1: 80% on this short run
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

    # the thread policy may pick another count for each run: the weights do not depend on it
    with ambient_threads(2), pytest.raises(ConvseeError, match=r"last finished epoch \(1/3\)"):
        train(cfg, out=out, splits=small_splits, progress=False, on_epoch=stop_after_first)
    assert json.loads(out.with_suffix(".json").read_text())["epochs_done"] == 1
    with ambient_threads(1):
        _, meta = train(cfg, out=out, splits=small_splits, progress=False, resume=True)
    assert meta["epochs_done"] == 3 and len(meta["history"]) == 3
    full = tmp_path / "full.safetensors"
    with ambient_threads(2):
        train(cfg, out=full, splits=small_splits, progress=False)
    a, b = load_file(out), load_file(full)
    assert all(torch.equal(a[k], b[k]) for k in a)  # resume == uninterrupted, bit for bit
    with pytest.raises(ConvseeError, match="nothing to resume"):
        train(cfg, out=out, splits=small_splits, progress=False, resume=True)


@contextlib.contextmanager
def ambient_threads(n):
    """torch's thread count as the thread policy may leave it before train() (restored)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_same_seed_same_weights_whatever_the_thread_count(tmp_path, small_splits, monkeypatch):
    """1 or 2 threads before the run, and a policy that flips the count during it: the weights
    are bit-identical, and torch's count is given back afterwards. (Torch itself gives
    different weights for 1 and 2 threads: checked here too, so the test can fail.)"""
    import convsee.run.threads as threads

    cfg = TrainConfig(epochs=1, seed=4)
    tr = small_splits[0]
    sub = (Split(tr.images[:3000], tr.labels[:3000], tr.md5), small_splits[1])
    weights = []
    for n in (1, 2):
        policy = threads.ThreadPolicy(cores=2, interval=0.0, threads=n)
        flips = iter(range(10**9))
        monkeypatch.setattr(threads, "_policy", policy)
        monkeypatch.setattr(policy, "measure", lambda f=flips: 2.0 * (next(f) % 2))
        with ambient_threads(n):
            train(cfg, out=tmp_path / f"t{n}.safetensors", splits=sub, progress=False)
            assert torch.get_num_threads() == n
        weights.append(load_file(tmp_path / f"t{n}.safetensors"))
    a, b = weights
    assert all(torch.equal(a[k], b[k]) for k in a)
    meta = json.loads((tmp_path / "t2.json").read_text())
    assert meta["train_config"]["threads"] == 1 and meta["machine"].endswith(", 1 thread")
    # the oracle: torch's weight gradients of LeNet-5 as trained, with 1 and with 2 threads
    from convsee.models.lenet import LeNet5

    torch.manual_seed(0)
    model = LeNet5().to(memory_format=torch.channels_last)
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    grads = []
    for n in (1, 2):
        with ambient_threads(n):
            model.zero_grad()
            torch.nn.functional.cross_entropy(model.fast_forward(x), y).backward()
            grads.append(model.conv1.weight.grad.clone())
    assert not torch.equal(*grads)


def test_bad_settings(tmp_path, small_splits):
    with pytest.raises(ConvseeError, match="must end in .safetensors"):
        train(TrainConfig(), out=tmp_path / "x.pt", splits=small_splits)
    out = tmp_path / "x.safetensors"
    for field, value, message in (
        ("epochs", 0, "epochs must be a whole number of at least 1, got 0"),
        ("epochs", 2.5, "epochs must be a whole number of at least 1, got 2.5"),
        ("batch_size", -1, "batch_size must be a whole number of at least 1, got -1"),
        ("lr", 0.0, "lr must be a positive number, got 0.0"),
        ("lr", float("nan"), "lr must be a positive number, got nan"),
    ):
        with pytest.raises(ConvseeError, match=message) as e:
            train(TrainConfig(**{field: value}), out=out, splits=small_splits, progress=False)
        assert e.value.param == field
    for seed in (2**64, -1, 1.5):
        with pytest.raises(ConvseeError, match=r"seed must be a whole number in 0\.\.18446"):
            train(TrainConfig(seed=seed), out=out, splits=small_splits)
    with pytest.raises(ConvseeError, match="threads must be in 1..256, got 0"):
        train(TrainConfig(threads=0), out=out, splits=small_splits)
    for n in (10**9, 1001, -1, 2.0, True):
        with pytest.raises(
            ConvseeError, match=rf"snapshots must be a whole number in 0\.\.1000, got {n!r}"
        ) as e:
            train(TrainConfig(), out=out, splits=small_splits, snapshots=n)
        assert e.value.param == "snapshots"
    tr = small_splits[0]
    tiny = (Split(tr.images[:256], tr.labels[:256], tr.md5), small_splits[1])  # 2 steps: 3 moments
    with pytest.raises(ConvseeError, match="snapshots 4 is more than the 3 moments"):
        train(TrainConfig(epochs=1), out=out, splits=tiny, snapshots=4, progress=False)
    assert not out.exists()


def test_cli_seed_and_snapshots_out_of_range_are_one_line(tmp_path, capsys):
    from convsee.cli import main

    out = str(tmp_path / "m.safetensors")
    for args, message in (
        (["--seed", str(2**64)], "--seed must be a whole number"),
        (["--snapshots", "1000000000"], "--snapshots must be a whole number in 0..1000"),
        (["--snapshots", "-1"], "--snapshots must be a whole number in 0..1000, got -1"),
        (["--epochs", "0"], "--epochs must be a whole number of at least 1, got 0"),
    ):
        assert main(["train", "--quiet", "--out", out, *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("convsee train: error:") and message in err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_augment_keeps_shape_background_and_is_seeded():
    x = torch.full((4, 1, 28, 28), -0.42)
    x[:, :, 10:18, 10:18] = 2.8
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, b = augment_batch(x, g1), augment_batch(x, g2)
    assert a.shape == x.shape and torch.equal(a, b)
    assert torch.allclose(a[:, :, 0, 0], torch.tensor(-0.42))  # border stays background
    assert not torch.equal(a, x)


# --- the training state on disk: interruptions, full disks, bad output locations ---------


def _no_temporaries(folder):
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_resume_after_a_kill_between_the_last_state_and_its_removal(tmp_path, small_splits):
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig(epochs=2, seed=2)

    def stop_at_the_end(epoch, model, acc):
        if epoch == 2:  # the last resume state is written, not yet removed
            raise KeyboardInterrupt

    with pytest.raises(ConvseeError, match=r"last finished epoch \(2/2\)"):
        train(cfg, out=out, splits=small_splits, progress=False, on_epoch=stop_at_the_end)
    assert out.with_suffix(".resume.pt").exists()
    before = json.loads(out.with_suffix(".json").read_text())
    _, meta = train(cfg, out=out, splits=small_splits, progress=False, resume=True)
    assert meta["test_accuracy"] == before["test_accuracy"] == meta["history"][-1]["test_accuracy"]
    assert meta["epochs_done"] == 2 and meta["complete"]
    assert not out.with_suffix(".resume.pt").exists()
    assert load_checkpoint(out)[1]["complete"]


def test_ctrl_c_at_the_first_json_rename_does_not_advise_a_failing_resume(
    tmp_path, small_splits, monkeypatch
):
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig(epochs=3, seed=1)
    fail_replace(monkeypatch, lambda s, d, n: d.endswith(".json"), KeyboardInterrupt())
    with pytest.raises(ConvseeError) as e:
        train(cfg, out=out, splits=small_splits, progress=False)
    monkeypatch.undo()
    msg = str(e.value)
    assert "can resume" in msg and "holds the last finished epoch (1/3)" in msg
    _, meta = load_checkpoint(out)  # what the message says is what is on disk
    assert meta["epochs_done"] == 1
    assert _no_temporaries(tmp_path)
    _, meta = train(cfg, out=out, splits=small_splits, progress=False, resume=True)
    assert meta["epochs_done"] == 3


class Killed(BaseException):
    """SIGKILL, as far as train() can tell: nothing of it runs after (no handler, no save)."""


@pytest.mark.parametrize("at", [1, 2, 3])
def test_a_kill_at_any_rename_of_the_first_save_loses_nothing(
    tmp_path, small_splits, at, monkeypatch
):
    """Killed at the at-th rename of epoch 1's files (the resume state, the weights, the
    .json): whatever the checkpoint then holds, --resume continues it, bit for bit the
    uninterrupted run. (Weights first, then the state, left a checkpoint of epoch 1 that
    --resume called 'nothing to resume'.)"""
    tr = small_splits[0]
    sub = (Split(tr.images[:3000], tr.labels[:3000], tr.md5), small_splits[1])
    cfg = TrainConfig(epochs=2, seed=6)
    full = tmp_path / "full.safetensors"
    train(cfg, out=full, splits=sub, progress=False)
    out = tmp_path / "k" / "m.safetensors"
    fail_replace(monkeypatch, lambda s, d, n: n == at, Killed())
    with pytest.raises(Killed):
        train(cfg, out=out, splits=sub, progress=False)
    monkeypatch.undo()
    from convsee.run.train import _checkpoint_epoch

    if _checkpoint_epoch(out) == 0 and not out.with_suffix(".resume.pt").exists():
        return  # killed before anything was in place: nothing lost, nothing to resume
    _, meta = train(cfg, out=out, splits=sub, progress=False, resume=True)
    assert meta["epochs_done"] == 2
    a, b = load_file(out), load_file(full)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def sigint_handled():
    """SIGINT handled as Python does by default (raising KeyboardInterrupt), even where the
    test process inherited it ignored (a shell's background job); restored afterwards."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_signal_while_saving_waits_for_the_save(
    tmp_path, small_splits, monkeypatch, sigint_handled
):
    """SIGINT arriving at the JSON rename: the save completes, then training stops resumably.

    A shell starts a background job (`pytest &`) with SIGINT ignored, and train() rightly
    leaves an ignored signal alone; so the test sets Python's own handler first, and raises
    the signal in this thread (signal.raise_signal returns after it is delivered)."""
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig(epochs=2, seed=1)
    fail_replace(
        monkeypatch,
        lambda s, d, n: d.endswith(".json"),
        lambda: signal.raise_signal(signal.SIGINT),
    )
    with pytest.raises(ConvseeError, match=r"epoch \(1/2\)") as e:
        train(cfg, out=out, splits=small_splits, progress=False)
    monkeypatch.undo()
    assert "resume" in str(e.value)
    assert json.loads(out.with_suffix(".json").read_text())["epochs_done"] == 1
    _, meta = train(cfg, out=out, splits=small_splits, progress=False, resume=True)
    assert meta["epochs_done"] == 2


def test_disk_full_during_training_keeps_the_last_epoch(tmp_path, small_splits, monkeypatch):
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig(epochs=3, seed=1)
    disk = DiskFull(monkeypatch, tmp_path, armed=False)

    def fill_the_disk(epoch, model, acc):
        disk.opened = 0
        disk.on()  # epoch 2's first write fails

    with pytest.raises(ConvseeError, match="No space left on device") as e:
        train(cfg, out=out, splits=small_splits, progress=False, on_epoch=fill_the_disk)
    assert "holds the last finished epoch (1/3); training can resume" in str(e.value)
    disk.off()
    assert _no_temporaries(tmp_path)
    _, meta = load_checkpoint(out)  # epoch 1, its .json copy agreeing
    assert meta["epochs_done"] == 1
    _, meta = train(cfg, out=out, splits=small_splits, progress=False, resume=True)
    assert meta["epochs_done"] == 3


def test_disk_full_at_the_snapshots_says_the_checkpoint_is_complete(
    tmp_path, small_splits, monkeypatch
):
    out = tmp_path / "m.safetensors"
    disk = DiskFull(monkeypatch, tmp_path, armed=False)
    with pytest.raises(ConvseeError, match=r"snapshots.npz: No space left .* complete \(1/1"):
        train(
            TrainConfig(epochs=1),
            out=out,
            splits=small_splits,
            progress=False,
            snapshots=2,
            on_epoch=lambda *a: disk.on(),
        )
    disk.off()
    assert load_checkpoint(out)[1]["complete"] and _no_temporaries(tmp_path)


def test_a_full_disk_is_found_before_the_first_epoch(tmp_path, small_splits, monkeypatch):
    DiskFull(monkeypatch, tmp_path)
    epochs = []
    with pytest.raises(ConvseeError, match="No space left on device"):
        train(
            TrainConfig(epochs=1),
            out=tmp_path / "m.safetensors",
            splits=small_splits,
            progress=False,
            on_epoch=lambda *a: epochs.append(a),
        )
    assert not epochs and _no_temporaries(tmp_path)


def _unwritable_cases(tmp_path):
    (tmp_path / "folder.safetensors").mkdir()
    (tmp_path / "afile").write_text("x")
    return [
        (tmp_path / "folder.safetensors", "is a folder"),
        (tmp_path / "afile" / "m.safetensors", "afile is not a folder"),
    ]


def test_bad_output_location_is_found_before_loading_data(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()  # if data were loaded first, the error would be "MNIST not found"
    for out, message in _unwritable_cases(tmp_path):
        with pytest.raises(ConvseeError, match=message):
            train(TrainConfig(epochs=1), data_dir=empty, out=out, progress=False)


def test_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: a read-only folder is writable")
        with pytest.raises(ConvseeError, match="cannot write into .*ro: Permission denied"):
            train(TrainConfig(epochs=1), data_dir=tmp_path, out=ro / "m.safetensors")
    finally:
        ro.chmod(0o755)


def test_cli_bad_output_location_is_one_line(tmp_path, capsys):
    from convsee.cli import main

    empty = tmp_path / "no-data"
    empty.mkdir()
    for out, message in _unwritable_cases(tmp_path):
        assert main(["train", "--data", str(empty), "--quiet", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("convsee train: error:") and message in err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_temporaries_of_killed_runs_are_cleaned(tmp_path, small_splits):
    out = tmp_path / "m.safetensors"
    stale = [tmp_path / ".m.safetensors.k1ll3d_x.tmp", tmp_path / ".m.resume.pt.abcdefgh.tmp"]
    unrelated = tmp_path / ".other.safetensors.abcdefgh.tmp"
    for p in [*stale, unrelated]:
        p.write_bytes(b"half a file")
    train(TrainConfig(epochs=1), out=out, splits=small_splits, progress=False)
    assert not any(p.exists() for p in stale) and unrelated.exists()


def test_divergence_is_refused_not_saved(tmp_path, small_splits):
    out = tmp_path / "m.safetensors"
    with pytest.raises(ConvseeError, match="diverged in epoch 1 .*lower learning rate"):
        train(TrainConfig(epochs=1, lr=1000.0), out=out, splits=small_splits, progress=False)
    assert not out.exists()


def test_broken_resume_state(tmp_path, small_splits):
    out = tmp_path / "m.safetensors"
    out.with_suffix(".resume.pt").write_bytes(b"not a torch file")
    with pytest.raises(ConvseeError, match="not a resume state"):
        train(TrainConfig(epochs=1), out=out, splits=small_splits, progress=False, resume=True)


def test_sigterm_stops_a_real_run_like_ctrl_c(tmp_path, mnist_dir):
    """A real `convsee train`, SIGTERMed as soon as it trains: one line, exit 2, no files."""
    out = tmp_path / "run" / "m.safetensors"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    env.setdefault("OMP_NUM_THREADS", "1")
    cli = "import sys; from convsee.cli import main; sys.exit(main())"
    cmd = [sys.executable, "-c", cli, "train", "--data", str(mnist_dir), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = b""
    try:
        while b"img" not in err:  # the progress bar: training has started
            chunk = proc.stderr.read1(4096)
            assert chunk, (err + proc.stderr.read()).decode()
            err += chunk
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        err += proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    last = err.decode().replace("\r", "\n").strip().splitlines()[-1]
    assert proc.returncode == 2, err.decode()
    assert (
        last == "convsee train: error: interrupted before the first epoch was saved; nothing saved"
    )
    assert "Traceback" not in err.decode()
    assert not out.parent.exists()  # no checkpoint, no state, no temporaries, no folder


SMALL_CNN = str(Path(__file__).resolve().parents[1] / "examples" / "small_cnn.py") + ":SmallCNN"


def test_training_your_own_model(tmp_path, small_splits, capsys):
    """`convsee train --model`: the checkpoint records the model, its preprocessing and the
    reference ranges; every command then loads it with --model alone; evolution replays it."""
    from convsee.cli import main
    from convsee.models.load import load_network

    out = tmp_path / "small.safetensors"
    _, meta = train(
        TrainConfig(epochs=1, seed=0),
        out=out,
        splits=small_splits,
        progress=False,
        snapshots=3,
        model=SMALL_CNN,
    )
    assert meta["test_accuracy"] > 0.5 and meta["model"] == SMALL_CNN  # chance: 0.1
    assert meta["preprocess"]["mean"] == [0.1307] and meta["preprocess"]["resize"] == "mnist"
    assert set(meta["reference_ranges"]) >= {"conv1", "block", "fc"}
    net = load_network(SMALL_CNN, out)
    assert net.prep.resize == "mnist" and net.meta["reference_ranges"]["conv1"][1] > 0
    [p] = net.predict(["sample:7"])
    assert abs(sum(p.probabilities) - 1) < 1e-4 and len(p.probabilities) == 10
    with pytest.raises(ConvseeError, match=r"holds weights for .*SmallCNN.*pass model "):
        load_network(None, out)
    args = ["--model", SMALL_CNN]
    assert main(["evolution", str(out), *args, "--out", str(tmp_path / "ev")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "ev" / "evolution_conv1.gif").n_frames == 3
    assert Image.open(tmp_path / "ev" / "evolution_kernels.gif").n_frames == 3


def test_fashion_trains_with_its_own_statistics(tmp_path):
    g = torch.Generator().manual_seed(0)
    tr = Split(
        torch.randint(0, 256, (600, 28, 28), generator=g, dtype=torch.uint8),
        torch.randint(0, 10, (600,), generator=g),
        {},
    )
    te = Split(tr.images[:100], tr.labels[:100], {})
    out = tmp_path / "f.safetensors"
    _, meta = train(
        TrainConfig(epochs=1), out=out, splits=(tr, te), progress=False, dataset="fashion-mnist"
    )
    assert meta["preprocess"]["mean"] == [0.286] and meta["preprocess"]["std"] == [0.353]
    assert meta["preprocess"]["resize"] == "fashion"


@pytest.mark.parametrize(
    "source, message",
    [
        ("RGB", "does not run on an input of shape \\(1, 1, 28, 28\\)"),
        ("SOFT", "ends in Softmax: train on its logits"),
    ],
)
def test_models_that_cannot_train_are_refused_before_any_data(tmp_path, source, message):
    (tmp_path / "m.py").write_text(
        "from torch import nn\n"
        "def RGB():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(9, 10))\n"
        "def SOFT():\n    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(1))\n"
    )
    with pytest.raises(ConvseeError, match=message):
        train(
            TrainConfig(epochs=1),
            data_dir=tmp_path / "nowhere",
            out=tmp_path / "x.safetensors",
            model=f"{tmp_path / 'm.py'}:{source}",
        )
    assert not (tmp_path / "x.safetensors").exists()


def test_your_model_file_is_imported_once_and_seeded_as_it_is_built(tmp_path, small_splits):
    """The file runs once (it counts its imports), and what it draws at import time does not
    change the initialisation: the weights are the seed's, as torch builds them right after
    manual_seed (the oracle: the same class built by hand)."""
    from convsee.run.train import _build

    count = tmp_path / "imports.txt"
    (tmp_path / "m.py").write_text(
        "import torch\n"
        "from torch import nn\n"
        f"with open({str(count)!r}, 'a') as f:\n    f.write('x')\n"
        "torch.rand(1000)  # drawn at import time\n"
        "class Net(nn.Sequential):\n"
        "    def __init__(self):\n"
        "        super().__init__(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))\n"
    )
    spec = f"{tmp_path / 'm.py'}:Net"
    model, _ = _build(spec, 7)
    assert count.read_text() == "x"
    NetClass = type(model)
    torch.manual_seed(7)
    oracle = NetClass()
    a, b = model.state_dict(), oracle.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(8)
    assert not torch.equal(NetClass()[0].weight, model[0].weight)  # the seed matters
    tr = small_splits[0]
    tiny = (Split(tr.images[:256], tr.labels[:256], tr.md5), small_splits[1])
    train(
        TrainConfig(epochs=1, seed=7),
        out=tmp_path / "x.safetensors",
        splits=tiny,
        progress=False,
        model=spec,
    )
    assert count.read_text() == "xx"  # one more import for the whole training


def test_label_smoothing_is_the_smoothed_cross_entropy(tmp_path, small_splits):
    """Two steps with label_smoothing 0.3, replayed by hand: the loss written out as
    -(1 - e) log p_y - e/K sum_k log p_k, the same init, batches and optimizer. The weights
    agree to float rounding, and differ from the unsmoothed run's (so the test can fail)."""
    from convsee.datasets.idx import normalize
    from convsee.models.lenet import LeNet5
    from convsee.run.optim import NesterovSGD, one_cycle

    tr = small_splits[0]
    tiny = (Split(tr.images[:256], tr.labels[:256], tr.md5), small_splits[1])
    got = {}
    for e in (0.3, 0.0):
        cfg = TrainConfig(epochs=1, seed=5, label_smoothing=e)
        train(cfg, out=tmp_path / f"{e}.safetensors", splits=tiny, progress=False)
        got[e] = load_file(tmp_path / f"{e}.safetensors")
    cfg = TrainConfig(epochs=1, seed=5, label_smoothing=0.3)
    torch.manual_seed(5)
    model = LeNet5()
    opt = NesterovSGD(model.parameters(), weight_decay=cfg.weight_decay)
    x, y = normalize(tiny[0].images), tiny[0].labels
    perm = torch.randperm(256, generator=torch.Generator().manual_seed(5))
    for step in range(2):
        idx = perm[step * 128 : (step + 1) * 128]
        logp = torch.log_softmax(model(x[idx]), 1)
        nll = -logp.gather(1, y[idx, None])[:, 0]
        loss = ((1 - 0.3) * nll - 0.3 / 10 * logp.sum(1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step(*one_cycle(step, 2, cfg.lr, cfg.warmup, cfg.momentum))
    want = model.state_dict()
    for k in want:
        assert torch.allclose(got[0.3][k], want[k], atol=1e-6), k
    assert max((got[0.3][k] - got[0.0][k]).abs().max() for k in want) > 1e-3


def test_label_smoothing_out_of_range_is_refused(tmp_path, capsys):
    from convsee.cli import main

    out = tmp_path / "x.safetensors"
    for e in (1.0, -0.1, float("nan")):
        with pytest.raises(ConvseeError, match=r"label_smoothing must be in \[0, 1\)") as err:
            train(TrainConfig(label_smoothing=e), out=out)
        assert err.value.param == "label_smoothing"
    assert main(["train", "--quiet", "--out", str(out), "--label-smoothing", "1"]) == 2
    assert capsys.readouterr().err == (
        "convsee train: error: --label-smoothing must be in [0, 1), got 1.0\n"
    )
