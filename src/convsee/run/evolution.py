"""How the filters form: snapshots of the conv layers during training, and GIFs of them.

`convsee train --snapshots N` records conv1 and conv2 (weights and biases) N times, evenly
spaced in steps from initialisation to the end, with the test accuracy at that moment,
into FILE.snapshots.npz beside the checkpoint. conv maps depend only on those layers, so
any input's conv1 and conv2 maps can be recomputed for every snapshot.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import ConvseeError
from ..models.checkpoint import atomic_write
from ..models.lenet_numpy import conv2d, max_pool2

__all__ = ["snapshot_steps", "Recorder", "load_snapshots", "snapshot_maps", "snapshots_path"]

KEYS = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias")


def snapshots_path(checkpoint: Path) -> Path:
    return Path(checkpoint).with_suffix(".snapshots.npz")


def snapshot_steps(n: int, total_steps: int) -> list[int]:
    """n distinct steps from 0 (initialisation) to total_steps (the end), evenly spaced."""
    if n < 2:
        raise ConvseeError(f"--snapshots needs at least 2 (start and end), got {n}")
    return sorted({int(round(s)) for s in np.linspace(0, total_steps, n)})


class Recorder:
    """Collects snapshots during training; train() calls record(step, model, accuracy)."""

    def __init__(self, n: int, total_steps: int, steps_per_epoch: int):
        self.steps = set(snapshot_steps(n, total_steps))
        self.steps_per_epoch = steps_per_epoch
        self.rows: list[dict] = []

    def wants(self, step: int) -> bool:
        return step in self.steps

    def record(self, step: int, model, accuracy: float) -> None:
        sd = model.state_dict()
        self.rows.append(
            {
                "step": step,
                "accuracy": accuracy,
                **{k: sd[k].detach().cpu().numpy().copy() for k in KEYS},
            }
        )

    def save(self, checkpoint: Path) -> Path:
        path = snapshots_path(checkpoint)
        arrays = {k: np.stack([r[k] for r in self.rows]) for k in KEYS}
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            step=np.array([r["step"] for r in self.rows]),
            accuracy=np.array([r["accuracy"] for r in self.rows], np.float32),
            steps_per_epoch=np.array(self.steps_per_epoch),
            **arrays,
        )
        atomic_write(path, buf.getvalue())
        return path


def load_snapshots(checkpoint: Path) -> dict:
    path = snapshots_path(checkpoint)
    if not path.is_file():
        raise ConvseeError(
            f"no snapshots beside {checkpoint} (looked for {path.name}); "
            "train with `convsee train --snapshots N` to record them"
        )
    try:
        with np.load(path) as z:
            snaps = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ConvseeError(f"{path}: unreadable snapshots ({e})") from None
    missing = [k for k in ("step", "accuracy", *KEYS) if k not in snaps]
    if missing:
        raise ConvseeError(f"{path}: missing {', '.join(missing)}")
    return snaps


def snapshot_maps(snaps: dict, x: np.ndarray):
    """(conv1 maps (S, 6, 24, 24), conv2 maps (S, 16, 8, 8)) of one normalised input
    (1, 28, 28) at every snapshot."""
    x = np.asarray(x, np.float32)[None]
    c1, c2 = [], []
    for i in range(len(snaps["step"])):
        a = conv2d(x, snaps["conv1.weight"][i], snaps["conv1.bias"][i])
        b = conv2d(max_pool2(np.maximum(a, 0)), snaps["conv2.weight"][i], snaps["conv2.bias"][i])
        c1.append(a[0])
        c2.append(b[0])
    return np.stack(c1), np.stack(c2)
