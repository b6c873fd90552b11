"""`convsee evaluate`: test accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

import sys

import numpy as np

from ..errors import ConvseeError
from .options import Formatter, add_data, add_model, network, out_file_ok, write_file

HELP = "test accuracy, per-class accuracy and confusion matrix"


def add(sub) -> None:
    e = sub.add_parser("evaluate", help=HELP, description=HELP, formatter_class=Formatter)
    add_model(e)
    add_data(
        e,
        help_data="the test set: a folder with MNIST-style IDX files, or a folder of images with "
        "one subfolder per class",
    )
    e.add_argument(
        "--out", default="confusion.png", metavar="FILE.png", help="confusion matrix picture"
    )
    e.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    e.add_argument(
        "--class-map",
        metavar="JSON_OR_FILE",
        help="which model class each class folder of --data DIR is, as a JSON object "
        '\'{"FOLDER": "CLASS" or INDEX, ...}\' or a file holding one (needed when the folder '
        "names are not the model's class names, even ignoring case)",
    )
    e.set_defaults(func=run)


def class_map(net, source, k: int, explicit: dict | None = None) -> tuple[np.ndarray, str]:
    """Model class index for each dataset class, and how they were matched."""
    from ..datasets.folder import FolderSource, match_classes

    names = net.class_names(k)
    ds = source.classes
    if ds is None:
        raise ConvseeError(f"{source.name} has no labels (no class subfolders): cannot evaluate")
    if isinstance(source, FolderSource) or explicit is not None:
        named = bool(net.classes) and len(net.classes) == k
        return match_classes(ds, names, named=named, explicit=explicit, source=source.name)
    if all(c in names for c in ds):
        return np.array([names.index(c) for c in ds]), "by name"
    if len(ds) <= k:
        return np.arange(len(ds)), (
            f"in order, though their names differ (the data's {', '.join(ds[:3])}, ...; the "
            f"model's {', '.join(names[:3])}, ...): is this the model's dataset?"
        )
    raise ConvseeError(
        f"{source.name} has {len(ds)} classes, the model {k}; their names do not match "
        "(pass --labels FILE with the model's class names)"
    )


def run(a) -> int:
    from ..datasets.folder import open_source
    from ..draw.channel_views import png_rgb
    from ..draw.figures import confusion_image

    if a.batch_size < 1:
        raise ConvseeError(f"--batch-size must be positive, got {a.batch_size}")
    if a.out:
        out_file_ok(a.out, "--out", ".png")  # before the work, and creating nothing
    from ..datasets.folder import read_class_map

    explicit = None if a.class_map is None else read_class_map(a.class_map)
    net = network(a)
    if net.kind == "lenet":
        net.torch_model()  # batches of 10,000 images run faster in torch
    source = open_source(a.data, dataset=a.dataset)
    labels = source.labels()
    if labels is None:
        raise ConvseeError(f"{source.name} has no labels (no class subfolders): cannot evaluate")
    chosen = net._scores_spec() if hasattr(net, "_scores_spec") else net.spec.outputs[0]
    if len(chosen.shape) == 1:  # the classes are matched before the work, to refuse early
        class_map(net, source, chosen.shape[0], explicit)
    preds = []
    k = None
    for _, inputs in source.batches(net.prep, a.batch_size):
        probs = net.scores(net.batch(inputs))
        if probs is None:
            raise ConvseeError("the model's output is not class scores (N, K): nothing to evaluate")
        k = probs.shape[1]
        preds.append(probs.argmax(1))
    pred = np.concatenate(preds)
    mapping, how = class_map(net, source, k, explicit)
    truth = mapping[labels]
    names = net.class_names(k)
    used = sorted(set(mapping.tolist()))
    conf = np.zeros((k, k), np.int64)
    np.add.at(conf, (truth, pred), 1)
    acc = float((pred == truth).mean())
    rows = [names[i] for i in used]
    sub = conf[np.ix_(used, used)] if len(used) < k else conf
    w = max(5, max(len(c) for c in rows) + 1)
    if a.out:  # the picture first: a reader that stops early (`| head`) must not cost it
        img = confusion_image(sub.tolist(), rows, f"test accuracy {acc:.2%}")
        write_file(a.out, png_rgb(img))  # colours are counts: exact, no palette
    print(f"model {net.meta.get('model')} · checkpoint {net.meta.get('checkpoint')}")
    print(f"data {source.name}: {len(pred)} images, classes matched {how}")
    print(f"test accuracy {acc:.2%}\n")
    print("true\\pred".ljust(w + 2) + "".join(c[:w].rjust(w) for c in rows) + "   accuracy")
    for i, c in zip(used, rows, strict=True):
        n = conf[i].sum()
        per = conf[i, i] / n if n else float("nan")
        print(
            c[:w].ljust(w + 2)
            + "".join(str(v).rjust(w) for v in sub[used.index(i)])
            + f"   {per:.2%}"
        )
    if a.out:
        print(f"\nwrote {a.out}")
    sys.stdout.flush()
    return 0
