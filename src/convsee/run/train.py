"""Fast, reproducible training on whole-dataset tensors (no DataLoader): LeNet-5, or any model
that takes a 1x28x28 image (`--model`), on MNIST or Fashion-MNIST.

Defaults (5 epochs, batch 128, SGD-Nesterov with a one-cycle schedule, label smoothing 0.1)
reach >= 99.19% test accuracy for seeds 0-5 on one thread; with augment (14 epochs, no label
smoothing) ~99.5%.
After every epoch the checkpoint and a resume state are written atomically, so Ctrl-C or
SIGTERM keeps the last finished epoch and resume=True continues.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import math
import platform
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from .. import __version__
from ..datasets.idx import Split, load_mnist, normalize
from ..datasets.registry import lookup
from ..errors import ConvseeError
from ..models.checkpoint import atomic_write, check_writable, clean_stale_temps, save_checkpoint
from ..models.lenet import LeNet5, ModelConfig
from .optim import NesterovSGD, one_cycle
from .threads import pinned

__all__ = ["TrainConfig", "Interrupted", "train", "evaluate", "augment_batch"]


MAX_SEED = 2**64 - 1  # the largest seed torch.manual_seed takes
MAX_THREADS = 256
MAX_SNAPSHOTS = 1000  # each one evaluates the test set and keeps the conv layers


@dataclass
class TrainConfig:
    epochs: int | None = None  # passes over the 60,000 images; None: 5, or 14 with augment
    batch_size: int = 128  # images per SGD step
    lr: float = 0.08  # peak learning rate of the one-cycle schedule
    momentum: float = 0.95  # Nesterov momentum at both ends of the cycle; 0.85 at the peak lr
    weight_decay: float = 5e-4  # L2 on all parameters
    warmup: float = 0.25  # fraction of steps spent rising to the peak lr
    # weight of the uniform target mixed into the one-hot one; None: 0.1, or 0 with augment
    label_smoothing: float | None = None
    seed: int = 0  # model init, batch order and augmentation
    augment: bool = False  # random shifts, rotations, scaling and shear of every batch
    threads: int = 1  # torch threads for the arithmetic: fixed, as the weights depend on it
    device: str = "cpu"

    def __post_init__(self):
        if self.epochs is None:
            self.epochs = 14 if self.augment else 5
        if self.label_smoothing is None:
            self.label_smoothing = 0.0 if self.augment else 0.1


def augment_batch(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Small random affine distortions: +-2 px shift, +-12 deg rotation, 0.9-1.1 scale, shear.

    x is normalised (N, 1, 28, 28); the background value fills the uncovered border.
    """
    n = x.shape[0]
    r = torch.rand(n, 5, generator=g) * 2 - 1  # uniform in [-1, 1]
    angle = r[:, 0] * math.radians(12)
    scale = 1 + 0.1 * r[:, 1]
    shear = 0.15 * r[:, 2]
    tx, ty = r[:, 3] * (2 / 14), r[:, 4] * (2 / 14)  # grid units: 14 px per unit
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin + shear, tx], 1), torch.stack([sin, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    bg = x.amin()
    return F.grid_sample(x - bg, grid, align_corners=False, padding_mode="zeros") + bg


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    split: Split,
    batch_size: int = 500,
    device="cpu",
    inputs: torch.Tensor | None = None,
    prep=None,
):
    """(accuracy, per-class accuracy list, 10x10 confusion matrix [true][pred]).

    inputs: the split's images already normalised (training passes them, to save time);
    else they are normalised as prep (the network's Preprocess; default: MNIST's) says.
    batch_size 500: small batches stay in cache; 2x faster here than batches of 5000.
    """
    was_training = model.training
    model.eval()
    stats = () if prep is None else (float(prep.mean[0]), float(prep.std[0]))
    x = normalize(split.images, *stats) if inputs is None else inputs
    forward = getattr(model, "fast_forward", model)  # LeNet: same logits, fewer ReLUs
    try:
        preds = torch.cat(
            [
                forward(x[i : i + batch_size].to(device)).argmax(1).cpu()
                for i in range(0, len(x), batch_size)
            ]
        )
    finally:
        model.train(was_training)
    k = int(split.labels.max()) + 1 if len(split.labels) else 10
    conf = torch.bincount(split.labels * k + preds, minlength=k * k).reshape(k, k)
    per_class = (conf.diag().float() / conf.sum(1).clamp(min=1)).tolist()
    acc = conf.diag().sum().item() / max(1, len(split.labels))
    return acc, per_class, conf.tolist()


def _state_path(out: Path) -> Path:
    return out.with_suffix(".resume.pt")


def _outputs(out: Path) -> list[Path]:
    """Every file train() writes for out."""
    from .evolution import snapshots_path

    return [out, out.with_suffix(".json"), _state_path(out), snapshots_path(out)]


class Interrupted(ConvseeError):
    """Training stopped before its end: Ctrl-C, SIGTERM or a failed write (full disk).

    The message says what the checkpoint on disk holds; resumable: a resume state is there.
    """

    def __init__(self, message: str, resumable: bool):
        super().__init__(message)
        self.resumable = resumable


class _WriteFailed(Exception):
    pass


class _Signals:
    """SIGINT and SIGTERM both raise KeyboardInterrupt in the main thread, except while a
    save is under way (`with signals.saving():`): then right after it, so an interruption
    never splits a checkpoint from its resume state. Handlers are restored on exit."""

    def __init__(self):
        self.pending = False
        self.depth = 0
        self.old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self.old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.depth:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def saving(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if self.pending and not self.depth:
            self.pending = False
            raise KeyboardInterrupt


def _write(path: Path, what, *args) -> None:
    """what(*args) writes path; an OSError becomes one line naming path."""
    try:
        what(*args)
    except OSError as e:
        raise _WriteFailed(f"cannot write {path}: {e.strerror or e}") from None


def _stopped(why: str, out: Path, epochs: int) -> Interrupted:
    """What to say when training stops early, from what is on disk."""
    resumable = _state_path(out).is_file()
    done = _checkpoint_epoch(out)
    if not resumable and not done:
        return Interrupted(f"{why} before the first epoch was saved; nothing saved", False)
    held = f"{out} holds the last finished epoch ({done}/{epochs})" if done else "no checkpoint"
    if done == epochs and not resumable:
        return Interrupted(f"{why}; {out} is complete ({done}/{epochs} epochs)", False)
    if resumable:
        return Interrupted(f"{why}; {held}; training can resume", True)
    return Interrupted(f"{why}; {held}; training cannot resume from it", False)


def _load_state(sp: Path, c: TrainConfig) -> dict:
    try:
        st = torch.load(sp, map_location=c.device, weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise ConvseeError(f"{sp}: not a resume state ({type(e).__name__})") from None
    keys = {"config", "epoch", "history", "model", "opt", "gen"}
    if not isinstance(st, dict) or not keys <= set(st):
        raise ConvseeError(f"{sp}: not a resume state (missing fields)")
    if st["config"] != asdict(c):
        raise ConvseeError(
            f"{sp} was made with different settings: {st['config']}; pass the same ones"
        )
    if not (isinstance(st["epoch"], int) and 1 <= st["epoch"] <= c.epochs):
        raise ConvseeError(f"{sp}: epoch {st['epoch']!r} is outside 1..{c.epochs}")
    return st


def _reference(model, preprocess, test_split, dataset, device) -> dict:
    """The checkpoint's reference colour ranges (run/ranges.py), over its test set."""
    from ..datasets.folder import IdxSource
    from ..datasets.transforms import Preprocess
    from ..models.network import TorchNetwork
    from .ranges import reference_ranges

    model = model.to(memory_format=torch.contiguous_format)
    net = TorchNetwork(model, Preprocess().merged(preprocess), device=device)
    source = IdxSource("test", test_split.numpy(), dataset)
    r = reference_ranges(net, source, limit=2000, batch=500)
    model.to(memory_format=torch.channels_last)
    return {"reference_ranges": r["ranges"], "reference_ranges_from": r["from"]}


def _finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _checkpoint_epoch(out: Path) -> int:
    """Epochs the checkpoint on disk holds (0: none or unreadable)."""
    from ..models.checkpoint import read_header_meta

    try:
        meta = read_header_meta(out.read_bytes(), out)
    except (OSError, ConvseeError):
        return 0
    n = meta.get("epochs_done") if isinstance(meta, dict) else None
    return n if isinstance(n, int) else 0


def train(
    config: TrainConfig | None = None,
    data_dir=None,
    out: str | Path = "lenet5.safetensors",
    resume: bool = False,
    progress: bool = True,
    splits: tuple[Split, Split] | None = None,
    classes: list[str] | None = None,
    dataset: str = "mnist",
    on_epoch=None,
    snapshots: int = 0,
    model: str | None = None,
):
    """Train LeNet-5 (or the model SPEC `model`, FILE.py:Name); write out (+ .json) after every
    epoch. Returns (model, metadata).

    splits: preloaded (train, test) to skip disk; on_epoch(epoch, model, acc) is called
    after each finished epoch; snapshots: record the conv layers this many times
    (evolution.py), saved beside out as .snapshots.npz.

    The output location is checked before any work. After every epoch the checkpoint (its
    metadata inside it, plus the .json copy) are written atomically, after a resume state;
    Ctrl-C and SIGTERM wait for that pair to be complete and raise Interrupted.
    """
    job = SimpleNamespace(**locals())  # the arguments as given, for _train
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ConvseeError(f"{{param}} must end in .safetensors, got {str(out)!r}", "out")
    c = config or TrainConfig()
    for name in ("epochs", "batch_size"):
        n = getattr(c, name)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConvseeError(f"{{param}} must be a whole number of at least 1, got {n!r}", name)
    if isinstance(c.lr, bool) or not isinstance(c.lr, (int, float)) or not 0 < c.lr < math.inf:
        raise ConvseeError(f"{{param}} must be a positive number, got {c.lr!r}", "lr")
    ls = c.label_smoothing
    if isinstance(ls, bool) or not isinstance(ls, (int, float)) or not 0 <= ls < 1:
        raise ConvseeError(f"{{param}} must be in [0, 1), got {ls!r}", "label_smoothing")
    if isinstance(c.seed, bool) or not isinstance(c.seed, int) or not 0 <= c.seed <= MAX_SEED:
        raise ConvseeError(
            f"{{param}} must be a whole number in 0..{MAX_SEED}, got {c.seed!r}", "seed"
        )
    if not 1 <= c.threads <= MAX_THREADS:
        raise ConvseeError(f"{{param}} must be in 1..{MAX_THREADS}, got {c.threads}", "threads")
    if resume and snapshots:
        raise ConvseeError("{param} cannot be combined with resume", "snapshots")
    bad = isinstance(snapshots, bool) or not isinstance(snapshots, int)
    if bad or not 0 <= snapshots <= MAX_SNAPSHOTS:
        raise ConvseeError(
            f"{{param}} must be a whole number in 0..{MAX_SNAPSHOTS}, got {snapshots!r}",
            "snapshots",
        )
    for path in _outputs(out):
        check_writable(path, need_bytes=1 << 20 if path == out else 0)
        clean_stale_temps(path)  # left by a run that was killed while writing
    sp = _state_path(out)
    if resume and not sp.is_file():
        raise ConvseeError(f"nothing to resume: {sp} does not exist (training finished?)")
    from ..files import output_lock

    # a second run on this out is refused; the thread count is held for the whole run
    with output_lock(out), _Signals() as signals, pinned(c.threads):
        try:
            return _train(c, out, resume, signals, job)
        except KeyboardInterrupt:
            raise _stopped("interrupted", out, c.epochs) from None
        except _WriteFailed as e:
            raise _stopped(str(e), out, c.epochs) from None


def _build(spec_text: str | None, seed: int):
    """The model to train, built with the seed: LeNet-5, or a --model SPEC that must take
    (1, 28, 28) images (checked now, before any data is read)."""
    if spec_text is None:
        torch.manual_seed(seed)
        return LeNet5(ModelConfig()), "LeNet-5 (ReLU, max pooling, no ReLU on the logits)"
    from ..models.load import import_model
    from ..spec import describe

    # imported once; seeded right before it is built, whatever importing the file drew
    model = import_model(spec_text, seed=seed)
    described = describe(model, (1, 28, 28))
    out = described.outputs[0]
    if len(out.shape) != 1 or out.shape[0] < 2:
        raise ConvseeError(
            f"{spec_text}: its (first) output is {list(out.shape)} per image; training needs "
            "class scores (N, classes)"
        )
    if out.probabilities:
        raise ConvseeError(
            f"{spec_text} ends in Softmax: train on its logits (cross-entropy takes logits)"
        )
    return model, f"{type(model).__name__} from {spec_text}"


def _train(c, out, resume, signals, job):
    """train()'s work, its arguments checked; job: its other arguments (a SimpleNamespace)."""
    from tqdm import tqdm

    run = _Training(c, out, signals, job)
    run.start(resume)
    meta = {}
    t0 = time.perf_counter()
    bar = None
    n = len(run.data.x_train)
    try:
        bar = tqdm(
            total=c.epochs * n,
            unit="img",
            unit_scale=True,
            disable=not job.progress,
            mininterval=0.5,
        )
        bar.update(run.start_epoch * n)
        for epoch in range(run.start_epoch, c.epochs):
            meta = run.epoch(epoch, bar)
        if not meta:  # the resume state was of the last epoch: finish what was interrupted
            meta = _metadata(run, *run.evaluate())
            with signals.saving():
                _write(out, save_checkpoint, run.model, out, meta)
    finally:
        if bar is not None:
            bar.close()  # ends the bar's line, so a message after it starts on its own
    run.sp.unlink(missing_ok=True)
    if run.recorder is not None:
        from .evolution import snapshots_path

        _write(snapshots_path(out), run.recorder.save, out)
        meta["snapshots"] = str(snapshots_path(out))
    meta["wall_seconds"] = time.perf_counter() - t0
    return run.model.to(memory_format=torch.contiguous_format).eval(), meta


@dataclass
class _Data:
    """The training and test sets, normalised on the device, and the preprocessing recorded."""

    train_split: Split
    test_split: Split
    x_train: torch.Tensor  # (N, 1, 28, 28)
    y_train: torch.Tensor  # (N,)
    x_test: torch.Tensor  # (M, 1, 28, 28)
    preprocess: dict  # what the checkpoint records


def _load_data(c: TrainConfig, job) -> _Data:
    """The splits given (job.splits) or read from job.data_dir, normalised by the dataset's
    statistics."""
    train_split, test_split = job.splits or load_mnist(
        job.data_dir, verify=True, dataset=job.dataset
    )
    ds = lookup(job.dataset)
    mean, std = ds.mean[0], ds.std[0]  # each dataset its own statistics
    preprocess = {
        "input_size": [1, 28, 28],
        "mean": [mean],
        "std": [std],
        "resize": ds.resize,
        "crop_pct": 1.0,
        "interpolation": "bilinear",
    }
    return _Data(
        train_split,
        test_split,
        normalize(train_split.images, mean, std).to(c.device),
        train_split.labels.to(c.device),
        normalize(test_split.images, mean, std).to(c.device),
        preprocess,
    )


class _Training:
    """One run of _train: the model, its data on the device, the optimiser, what is done."""

    def __init__(self, c: TrainConfig, out: Path, signals: _Signals, job):
        self.c, self.out, self.signals, self.job = c, out, signals, job
        self.model, self.architecture = _build(job.model, c.seed)
        torch.manual_seed(c.seed)
        self.data = _load_data(c, job)
        # channels-last activations make pooling and ReLU ~30% faster here
        # (benchmarks/bench_train.py)
        self.model = self.model.to(c.device, memory_format=torch.channels_last)
        self.forward = getattr(self.model, "fast_forward", self.model)
        self.opt = NesterovSGD(self.model.parameters(), weight_decay=c.weight_decay)
        self.steps_per_epoch = math.ceil(len(self.data.x_train) / c.batch_size)
        self.total_steps = c.epochs * self.steps_per_epoch
        self.gen = torch.Generator().manual_seed(c.seed)
        self.start_epoch, self.history = 0, []
        self.recorder = None
        self.sp = _state_path(out)

    def evaluate(self):
        """(accuracy, per-class accuracy, confusion matrix) on the test set."""
        return evaluate(
            self.model, self.data.test_split, device=self.c.device, inputs=self.data.x_test
        )

    def start(self, resume: bool) -> None:
        """The snapshots' recorder (moment 0 recorded), or the resume state loaded."""
        snapshots, total = self.job.snapshots, self.total_steps
        if snapshots > total + 1:
            raise ConvseeError(
                f"{{param}} {snapshots} is more than the {total + 1} moments training has "
                f"(initialisation and {total} steps)",
                "snapshots",
            )
        if snapshots:
            from .evolution import Recorder

            full = self.job.model is not None
            self.recorder = Recorder(snapshots, total, self.steps_per_epoch, full=full)
            if self.recorder.wants(0):
                self.recorder.record(0, self.model, self.evaluate()[0])
        if resume:
            st = _load_state(self.sp, self.c)
            self.model.load_state_dict(st["model"])
            self.opt.load_state_dict(st["opt"])
            self.gen.set_state(st["gen"])
            self.start_epoch, self.history = st["epoch"], st["history"]

    def epoch(self, epoch: int, bar) -> dict:
        """Train one epoch (0-based), evaluate, save; the checkpoint's metadata."""
        c = self.c
        t_epoch = time.perf_counter()
        loss_sum = self._steps(epoch, bar)
        if not _finite(self.model):
            kept = f"{self.out} keeps epoch {epoch}" if epoch else "nothing was saved"
            raise ConvseeError(
                f"training diverged in epoch {epoch + 1} (the weights hold NaN or "
                f"infinity); try a lower learning rate than {c.lr:g}; {kept}"
            )
        acc, per_class, conf = self.evaluate()
        self.history.append(
            {
                "epoch": epoch + 1,
                "loss": loss_sum.item() / len(self.data.x_train),
                "test_accuracy": acc,
                "seconds": time.perf_counter() - t_epoch,
            }
        )
        bar.set_postfix_str(f"test acc {acc:.2%}")
        meta = _metadata(self, acc, per_class, conf)
        _save(self, meta, epoch + 1)
        if self.job.on_epoch:
            self.job.on_epoch(epoch + 1, self.model, acc)
        return meta

    def _steps(self, epoch: int, bar):
        """The epoch's SGD steps over a fresh permutation; the summed loss (a 0-d tensor)."""
        c, n = self.c, len(self.data.x_train)
        self.model.train()
        perm = torch.randperm(n, generator=self.gen).to(c.device)
        loss_sum = 0.0
        for i in range(0, n, c.batch_size):
            idx = perm[i : i + c.batch_size]
            xb = self.data.x_train[idx]  # (B, 1, 28, 28)
            if c.augment:
                xb = augment_batch(xb, self.gen)
            step = epoch * self.steps_per_epoch + i // c.batch_size  # 0-based
            loss = F.cross_entropy(
                self.forward(xb), self.data.y_train[idx], label_smoothing=c.label_smoothing
            )
            self.opt.zero_grad()
            loss.backward()
            self.opt.step(*one_cycle(step, self.total_steps, c.lr, c.warmup, c.momentum))
            step += 1  # steps done, as the recorder counts them
            if self.recorder is not None and self.recorder.wants(step):
                self.recorder.record(step, self.model, self.evaluate()[0])
            loss_sum += loss.detach() * len(idx)
            if (i // c.batch_size) % 50 == 49 or i + c.batch_size >= n:
                bar.set_description(f"epoch {epoch + 1}/{c.epochs} loss {loss.item():.3f}")
                bar.update(i + len(idx) - (bar.n - epoch * n))
        return loss_sum


def _metadata(run: _Training, acc, per_class, conf) -> dict:
    """The checkpoint's metadata after an epoch with these test results."""
    c, history, job, data = run.c, run.history, run.job, run.data
    # the last epoch's checkpoint also carries the reference colour ranges (ranges.py)
    ref = {}
    if len(history) == c.epochs:
        ref = _reference(run.model, data.preprocess, data.test_split, job.dataset, c.device)
    return {
        **ref,
        "architecture": run.architecture,
        **({"model": job.model} if job.model else {}),
        "preprocess": data.preprocess,
        "dataset": job.dataset,
        "classes": job.classes or list(lookup(job.dataset).classes),
        "epochs_done": len(history),
        "complete": len(history) == c.epochs,
        "train_config": asdict(c),
        "test_accuracy": acc,
        "per_class_accuracy": per_class,
        "confusion_matrix": conf,
        "history": history,
        "dataset_md5": {**data.train_split.md5, **data.test_split.md5},
        "train_seconds": sum(h["seconds"] for h in history),
        "torch_version": torch.__version__,
        "convsee_version": __version__,
        "machine": f"{platform.machine()}, {c.threads} thread{'s' if c.threads > 1 else ''}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _save(run: _Training, meta: dict, epoch: int) -> None:
    """The state to resume from, then the checkpoint; an interruption waits for both.

    In this order a kill between the two leaves a state one epoch ahead of the checkpoint,
    which --resume continues from; never a checkpoint without its state."""
    with run.signals.saving():
        state = {
            "config": asdict(run.c),
            "epoch": epoch,
            "history": run.history,
            "model": run.model.state_dict(),
            "opt": run.opt.state_dict(),
            "gen": run.gen.get_state(),
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        _write(run.sp, atomic_write, run.sp, buf.getvalue())
        _write(run.out, save_checkpoint, run.model, run.out, meta)
