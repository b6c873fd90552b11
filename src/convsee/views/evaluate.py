"""`evaluate` as a library function: a model's accuracy on a labelled dataset, per class, and
its confusion matrix (as numbers, as the table `convsee evaluate` prints and as a picture)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConvseeError

__all__ = ["Evaluation", "evaluate", "match_classes_of"]


def match_classes_of(net, source, k: int, explicit: dict | None = None) -> tuple[np.ndarray, str]:
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
        "(pass {param}: a file of the model's class names)",
        "labels",
    )


@dataclass
class Evaluation:
    """conf: the full K x K confusion matrix (true rows, predicted columns); used: the model
    classes the data has; rows: their names; how: how the data's classes were matched."""

    accuracy: float
    conf: np.ndarray
    used: list
    rows: list
    how: str
    source: str
    n: int

    @property
    def matrix(self) -> np.ndarray:
        """The confusion matrix over the classes the data has."""
        u = self.used
        return self.conf[np.ix_(u, u)] if len(u) < len(self.conf) else self.conf

    def picture(self) -> bytes:
        """The confusion matrix as a PNG (colours are counts: exact, no palette)."""
        from ..draw.channel_views import png_rgb
        from ..draw.figures import confusion_image

        title = f"test accuracy {self.accuracy:.2%}"
        return png_rgb(confusion_image(self.matrix.tolist(), self.rows, title))

    def table(self) -> list[str]:
        """The lines of the confusion matrix with each class's accuracy."""
        w = max(5, max(len(c) for c in self.rows) + 1)
        sub = self.matrix
        head = "true\\pred".ljust(w + 2) + "".join(c[:w].rjust(w) for c in self.rows)
        lines = [head + "   accuracy"]
        for j, (i, c) in enumerate(zip(self.used, self.rows, strict=True)):
            n = self.conf[i].sum()
            per = self.conf[i, i] / n if n else float("nan")
            lines.append(
                c[:w].ljust(w + 2) + "".join(str(v).rjust(w) for v in sub[j]) + f"   {per:.2%}"
            )
        return lines


def evaluate(net, data=None, dataset=None, batch_size: int = 256, class_map=None) -> Evaluation:
    """The model's predictions over a labelled dataset (data: IDX files or a folder of images
    with one subfolder per class; None: the test set of dataset), against the labels; the
    data's classes are matched to the model's by name, class_map ({folder: class or index}),
    or in order."""
    from ..datasets.folder import open_source

    source = open_source(data, dataset=dataset)
    labels = source.labels()
    if labels is None:
        raise ConvseeError(f"{source.name} has no labels (no class subfolders): cannot evaluate")
    chosen = net.scores_output()
    if len(chosen.shape) == 1:  # the classes are matched before the work, to refuse early
        match_classes_of(net, source, chosen.shape[0], class_map)
    preds = []
    k = None
    for _, inputs in source.batches(net.prep, batch_size):
        probs = net.scores(net.batch(inputs))
        if probs is None:
            raise ConvseeError("the model's output is not class scores (N, K): nothing to evaluate")
        k = probs.shape[1]
        preds.append(probs.argmax(1))
    pred = np.concatenate(preds)
    mapping, how = match_classes_of(net, source, k, class_map)
    truth = mapping[labels]
    names = net.class_names(k)
    used = sorted(set(mapping.tolist()))
    conf = np.zeros((k, k), np.int64)
    np.add.at(conf, (truth, pred), 1)
    acc = float((pred == truth).mean())
    return Evaluation(acc, conf, used, [names[i] for i in used], how, source.name, len(pred))
