"""`convsee train`: train LeNet-5 on MNIST or Fashion-MNIST."""

from __future__ import annotations

from pathlib import Path

from .options import Formatter, add_data, add_device, add_out, add_quiet, device

HELP = "train LeNet-5 on MNIST (or Fashion-MNIST)"


def add(sub) -> None:
    t = sub.add_parser("train", help=HELP, description=HELP, formatter_class=Formatter)
    t.add_argument(
        "--model",
        metavar="SPEC",
        help="train your model instead of LeNet-5: FILE.py:Name or package.module:Name, taking "
        "1x28x28 images (the checkpoint records SPEC, preprocessing and classes)",
    )
    add_data(t)
    add_device(t)
    t.add_argument(
        "--epochs", type=int, help="passes over the training set (default: 5, or 14 with --augment)"
    )
    t.add_argument("--batch-size", type=int, help="images per step (default: 128)")
    t.add_argument(
        "--lr", type=float, help="peak learning rate of the one-cycle schedule (default: 0.08)"
    )
    t.add_argument(
        "--label-smoothing",
        type=float,
        metavar="E",
        help="weight of the uniform target mixed into each one-hot label, in [0, 1) "
        "(default: 0.1, or 0 with --augment)",
    )
    t.add_argument(
        "--seed", type=int, help="initialisation, batch order, augmentation (default: 0)"
    )
    t.add_argument(
        "--threads",
        type=int,
        help="torch threads for the arithmetic (default: 1); fixed whatever the load, since the "
        "weights depend on it: the same seed and threads on the same machine give the same weights",
    )
    t.add_argument("--augment", action="store_true", help="random affine distortions")
    add_out(
        t,
        "lenet5.safetensors",
        kind="FILE.safetensors",
        help="the checkpoint (a .json copy of its metadata is written beside it)",
    )
    t.add_argument("--resume", action="store_true", help="continue an interrupted run")
    add_quiet(t)
    t.add_argument(
        "--snapshots",
        type=int,
        default=0,
        metavar="N",
        help="record the conv layers N times for `convsee evolution` (0: none; at most 1000)",
    )
    t.set_defaults(func=run)


def run(a) -> int:
    from ..errors import ConvseeError
    from ..run.train import Interrupted, TrainConfig, train

    cfg = TrainConfig(augment=a.augment, device=device(a.device))
    for field in ("epochs", "batch_size", "lr", "label_smoothing", "seed", "threads"):
        if getattr(a, field) is not None:
            setattr(cfg, field, getattr(a, field))
    try:
        _, meta = train(
            cfg,
            a.data,
            a.out,
            resume=a.resume,
            progress=not a.quiet,
            snapshots=a.snapshots,
            dataset=a.dataset,
            model=a.model,
        )
    except Interrupted as e:
        hint = "; run the same command with --resume to continue" if e.resumable else ""
        raise ConvseeError(f"{e}{hint}") from None
    print(
        f"test accuracy {meta['test_accuracy']:.2%} after {meta['epochs_done']} "
        f"epoch{'s' if meta['epochs_done'] != 1 else ''} "
        f"({meta['wall_seconds']:.1f} s); wrote {a.out} and {Path(a.out).with_suffix('.json')}"
    )
    return 0
