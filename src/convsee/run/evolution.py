"""How the filters form: snapshots of the conv layers during training, and GIFs of them.

`convsee train --snapshots N` records LeNet-5's conv1 and conv2 (weights and biases; the
convs of models/lenet_layers.snapshot_rows) N times, evenly spaced in steps from
initialisation to the end, with the test accuracy at that moment, into FILE.snapshots.npz
beside the checkpoint. conv maps depend only on those layers, so any input's conv1 and
conv2 maps can be recomputed for every snapshot.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import ConvseeError
from ..models.checkpoint import atomic_write
from ..models.lenet_layers import snapshot_rows
from ..models.lenet_numpy import forward_all

__all__ = ["snapshot_steps", "Recorder", "load_snapshots", "snapshot_maps", "snapshots_path"]

_ROWS = snapshot_rows()  # the rows the snapshots replay, up to the last conv they record
CONVS = tuple(r.name for r in _ROWS if r.op == "Conv2d")
KEYS = tuple(f"{n}.{p}" for n in CONVS for p in ("weight", "bias"))


def snapshots_path(checkpoint: Path) -> Path:
    return Path(checkpoint).with_suffix(".snapshots.npz")


def snapshot_steps(n: int, total_steps: int) -> list[int]:
    """n distinct steps from 0 (initialisation) to total_steps (the end), evenly spaced."""
    if n < 2:
        raise ConvseeError(f"{{param}} needs at least 2 (start and end), got {n}", "snapshots")
    return sorted({int(round(s)) for s in np.linspace(0, total_steps, n)})


class Recorder:
    """Collects snapshots during training; train() calls record(step, model, accuracy)."""

    def __init__(self, n: int, total_steps: int, steps_per_epoch: int, full: bool = False):
        """full: every tensor of the state dict (a model other than LeNet-5, whose maps at a
        snapshot need all its layers); else LeNet-5's conv layers only."""
        self.steps = set(snapshot_steps(n, total_steps))
        self.steps_per_epoch = steps_per_epoch
        self.full = full
        self.rows: list[dict] = []

    def wants(self, step: int) -> bool:
        return step in self.steps

    def record(self, step: int, model, accuracy: float) -> None:
        sd = model.state_dict()
        keys = [k for k, v in sd.items() if v.is_floating_point()] if self.full else KEYS
        self.rows.append(
            {
                "step": step,
                "accuracy": accuracy,
                **{k: sd[k].detach().cpu().float().numpy().copy() for k in keys},
            }
        )

    def save(self, checkpoint: Path) -> Path:
        path = snapshots_path(checkpoint)
        keys = [k for k in self.rows[0] if k not in ("step", "accuracy")]
        arrays = {k: np.stack([r[k] for r in self.rows]) for k in keys}
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


def load_snapshots(checkpoint: Path, lenet: bool = True) -> dict:
    """The snapshots beside a checkpoint; lenet: LeNet-5's conv layers must be there (for
    another model convsee trained, every tensor of its state dict is)."""
    path = snapshots_path(checkpoint)
    if not path.is_file():
        raise ConvseeError(
            f"no snapshots beside {checkpoint} (looked for {path.name}); "
            "record them by training with {param} N",
            "snapshots",
        )
    try:
        with np.load(path) as z:
            snaps = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ConvseeError(f"{path}: unreadable snapshots ({e})") from None
    missing = [k for k in ("step", "accuracy", *(KEYS if lenet else ())) if k not in snaps]
    if missing:
        raise ConvseeError(f"{path}: missing {', '.join(missing)}")
    return snaps


def replay(net, snaps: dict, x: np.ndarray, layers) -> tuple[list[dict], dict]:
    """Another model's layers for one input (C, H, W) at every snapshot: ([{layer: maps}],
    {param: (S, ...) weights}) by loading each snapshot's state dict into the model."""
    import torch

    model = net.torch_model()
    params = {k: v for k, v in snaps.items() if k not in ("step", "accuracy", "steps_per_epoch")}
    own = model.state_dict()
    missing = [k for k, v in own.items() if v.is_floating_point() and k not in params]
    extra = [k for k in params if k not in own]
    if missing or extra:
        raise ConvseeError(
            f"the snapshots were recorded for another model ({len(missing)} tensors missing, "
            f"{len(extra)} unexpected)"
        )
    saved = {k: v.clone() for k, v in own.items()}
    out = []
    try:
        for i in range(len(snaps["step"])):
            with torch.no_grad():
                for k, v in params.items():
                    own[k].copy_(torch.from_numpy(np.asarray(v[i])))
            acts, _ = net.run(x[None], layers)
            out.append({k: a[0] for k, a in acts.items()})
    finally:
        model.load_state_dict(saved)
    return out, params


def snapshot_maps(snaps: dict, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """The maps of each recorded conv (CONVS: conv1 (S, 6, 24, 24), conv2 (S, 16, 8, 8)) of
    one normalised input (1, 28, 28) at every snapshot."""
    x = np.asarray(x, np.float32)[None]
    maps: list[list] = [[] for _ in CONVS]
    for i in range(len(snaps["step"])):
        acts, _ = forward_all({k: snaps[k][i] for k in KEYS}, x, _ROWS)
        for j, name in enumerate(CONVS):
            maps[j].append(acts[name][0])
    return tuple(np.stack(m) for m in maps)
