"""Datasets a command can read: MNIST-style IDX splits, or a folder of images.

An image folder is searched recursively; with one subfolder per class (the layout
torchvision's ImageFolder reads: `DIR/cat/1.jpg`, `DIR/dog/7.png`) the subfolder names are
the labels, otherwise the images are unlabelled. Images are read one batch at a time, so
memory stays flat in the dataset's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConvseeError
from .inputs import Input, prepare
from .registry import DATASETS, lookup
from .transforms import Preprocess, fit

if TYPE_CHECKING:
    from .idx import SplitArrays

__all__ = [
    "ImageSource",
    "IdxSource",
    "FolderSource",
    "open_source",
    "is_image_folder",
    "IMAGE_SUFFIXES",
    "match_classes",
    "read_class_map",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


@dataclass
class ImageSource:
    """Items one by one: name, label (or None), and the model input."""

    name: str
    classes: list[str] | None

    def __len__(self) -> int:
        raise NotImplementedError

    def item(self, i: int, prep: Preprocess) -> Input:
        raise NotImplementedError

    def labels(self) -> np.ndarray | None:
        raise NotImplementedError

    def batches(self, prep: Preprocess, size: int = 256, limit: int | None = None):
        """(start index, list of Inputs) in order; unreadable files are skipped with a note."""
        n = len(self) if limit is None else min(limit, len(self))
        for start in range(0, n, size):
            yield start, [self.item(i, prep) for i in range(start, min(n, start + size))]


class IdxSource(ImageSource):
    """A split of MNIST or Fashion-MNIST (28x28 gray, labels 0..9), held as NumPy arrays."""

    def __init__(self, split_name: str, arrays: SplitArrays, dataset: str = "mnist"):
        ds = lookup(dataset)
        self.split_name = split_name
        self.images = arrays.images
        self._labels = arrays.labels
        self.md5 = dict(arrays.md5)
        super().__init__(f"{ds.title} {split_name}", list(ds.classes))

    @classmethod
    def read(
        cls, split: str, data_dir=None, dataset: str = "mnist", *, allow_download: bool = True
    ) -> IdxSource:
        """The split as read_split() reads it (md5 checked; allow_download=False: only files
        already on disk)."""
        from .idx import read_split

        arrays = read_split(split, data_dir, allow_download=allow_download, dataset=dataset)
        return cls(split, arrays, dataset)

    def __len__(self):
        return len(self.images)

    def labels(self):
        return self._labels

    def item(self, i, prep):
        img = self.images[i].astype(np.float32) / 255
        return prepare(Input(f"{self.split_name}:{i}", img, int(self._labels[i])), prep)


class FolderSource(ImageSource):
    def __init__(self, root):
        root = Path(root)
        if not root.is_dir():
            raise ConvseeError(f"{root}: no such folder")
        files = sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise ConvseeError(
                f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}), nor MNIST IDX files"
            )
        subdirs = sorted(
            {p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1}
        )
        top_level = [p for p in files if len(p.relative_to(root).parts) == 1]
        self.root = root
        self.files = files
        if subdirs and not top_level:
            classes = subdirs
            index = {c: k for k, c in enumerate(classes)}
            self._labels = np.array([index[p.relative_to(root).parts[0]] for p in files])
        else:
            classes = None
            self._labels = None
        super().__init__(str(root), classes)

    def __len__(self):
        return len(self.files)

    def labels(self):
        return self._labels

    def item(self, i, prep):
        p = self.files[i]
        show, x, notes = fit(str(p), prep)
        label = None if self._labels is None else int(self._labels[i])
        return Input(str(p.relative_to(self.root)), show, label, str(p), x, tuple(notes))


def open_source(data_dir=None, *, dataset: str = "mnist", split: str = "test") -> ImageSource:
    """--data DIR as a dataset: IDX files (MNIST layout) if they are there, else an image
    folder; no DIR: the dataset's IDX split from the usual places."""
    if data_dir is not None and is_image_folder(Path(data_dir)):
        return FolderSource(Path(data_dir))
    return IdxSource.read(split, data_dir, dataset)


def is_image_folder(d: Path) -> bool:
    """Whether --data DIR is read as a folder of images: it holds images and no IDX files."""
    return d.is_dir() and not _has_idx(d) and _has_images(d)


def _has_idx(d: Path) -> bool:
    tv = (d / ds.tv / "raw" for ds in DATASETS.values())
    for sub in (d, d / "raw", *tv):
        if any(sub.glob("*-idx?-ubyte*")):
            return True
    return False


def _has_images(d: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# folder names to the model's classes
# ---------------------------------------------------------------------------------------------


def read_class_map(text: str) -> dict:
    """--class-map: a JSON object {folder: model class name or index}, given inline or as the
    path of a file holding it."""
    import json

    text = str(text)
    where = "{param}"
    if not text.lstrip().startswith("{"):
        p = Path(text)
        if not p.is_file():
            raise ConvseeError(
                f"{{param}} {text[:80]!r}: neither a JSON object nor a file holding one",
                "class_map",
            )
        where, text = str(p), p.read_text(errors="replace")
    try:
        d = json.loads(text)
    except ValueError as e:
        raise ConvseeError(f"{where}: not JSON ({e.msg} at line {e.lineno})", "class_map") from None
    if not isinstance(d, dict) or not all(isinstance(v, (str, int)) for v in d.values()):
        raise ConvseeError(
            f"{where}: expected an object {{folder: class name or index}}", "class_map"
        )
    return {str(k): v for k, v in d.items()}


def _few(names, n: int = 8) -> str:
    names = list(names)
    more = f", ... ({len(names)} in all)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def match_classes(
    folders: list[str],
    names: list[str],
    *,
    named: bool = True,
    explicit: dict | None = None,
    source: str = "the data",
) -> tuple[np.ndarray, str]:
    """The model class index of each class folder, and how they were matched.

    Matched by name (exactly, else ignoring case), or by `explicit` ({folder: class name or
    index}, from --class-map). A model without class names of its own (named=False) takes
    the folders in order (sorted, as torchvision's ImageFolder numbers them). Otherwise the
    folders are refused in one line listing both sets of names: matching them in order
    silently would score the wrong classes."""
    k = len(names)
    if explicit is not None:
        missing = [f for f in folders if f not in explicit]
        if missing:
            raise ConvseeError(
                f"{{param}} has no entry for the folder{'s' if len(missing) > 1 else ''} "
                f"{_few(missing)} of {source}",
                "class_map",
            )
        lower = {n.lower(): i for i, n in enumerate(names)}
        out = []
        for f in folders:
            v = explicit[f]
            if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < k:
                out.append(v)
            elif isinstance(v, str) and v in names:
                out.append(names.index(v))
            elif isinstance(v, str) and v.lower() in lower:
                out.append(lower[v.lower()])
            else:
                raise ConvseeError(
                    f"{{param}} maps {f!r} to {v!r}, not one of the model's classes "
                    f"({_few(names)}) nor an index 0..{k - 1}",
                    "class_map",
                )
        return np.array(out, np.int64), "by the class map given"
    if all(f in names for f in folders):
        return np.array([names.index(f) for f in folders], np.int64), "by name"
    lower = [n.lower() for n in names]
    if len(set(lower)) == k and all(f.lower() in lower for f in folders):
        return np.array([lower.index(f.lower()) for f in folders], np.int64), (
            "by name, ignoring case"
        )
    if not named and len(folders) <= k:
        how = "in order (the model has no class names; folders sorted, as ImageFolder does)"
        return np.arange(len(folders), dtype=np.int64), how
    raise ConvseeError(
        f"the class folders of {source} do not match the model's class names: folders "
        f"{_few(folders)}; the model's {_few(names)}; pass {{param}} "
        '\'{"FOLDER": "CLASS", ...}\' (or a JSON file) to say which is which',
        "class_map",
    )
