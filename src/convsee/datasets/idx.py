"""MNIST and Fashion-MNIST on disk and in memory: find, download, validate and load the four
IDX files of a dataset described in registry.py.

Each split is read once into a uint8 array (N, 28, 28) plus int64 labels (read_split, NumPy
only), or into tensors (load_split); training and evaluation index those tensors directly
(no per-sample DataLoader).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConvseeError
from .registry import DATASETS, FILES, MEAN, STD, lookup

if TYPE_CHECKING:
    import torch

__all__ = [
    "MEAN",
    "STD",
    "FILES",
    "DATASETS",
    "SPLITS",
    "Split",
    "SplitArrays",
    "search_dirs",
    "find_data_dir",
    "download",
    "read_idx",
    "parse_idx",
    "read_split",
    "load_split",
    "load_mnist",
    "normalize",
]

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MAGIC = {"images": 2051, "labels": 2049}  # IDX magic: 0x0000 08 03 (uint8, 3 dims) / 08 01


@dataclass(frozen=True)
class SplitArrays:
    """One split as NumPy arrays, read without torch."""

    images: np.ndarray  # (N, 28, 28) uint8, white ink on black
    labels: np.ndarray  # (N,) int64 in 0..9
    md5: dict[str, str]  # file name -> md5 of its uncompressed bytes (empty when not verified)


@dataclass(frozen=True)
class Split:
    """One MNIST split held in memory."""

    images: torch.Tensor  # (N, 28, 28) uint8, white ink on black
    labels: torch.Tensor  # (N,) int64 in 0..9
    md5: dict[str, str]  # file name -> md5 of its uncompressed bytes

    def numpy(self) -> SplitArrays:
        """The same split as NumPy arrays (sharing the tensors' memory)."""
        return SplitArrays(self.images.numpy(), self.labels.numpy(), self.md5)


def search_dirs(data_dir: str | os.PathLike | None = None, dataset: str = "mnist") -> list[Path]:
    """Where a dataset is looked for, in order: the argument, its environment variable
    ($CONVSEE_DATA for MNIST), the user cache, then system folders (Debian's package)."""
    ds = lookup(dataset)
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    elif os.environ.get(ds.env):
        dirs.append(Path(os.environ[ds.env]).expanduser())
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "convsee" / dataset
    for d in (cache, *ds.system):
        if d not in dirs:
            dirs.append(d)
    return dirs


def _file_in(d: Path, name: str, tv: str = "MNIST") -> Path | None:
    """The raw or gzipped file `name` in d or in torchvision's layout below d."""
    for sub in (d, d / tv / "raw", d / "raw"):
        for candidate in (sub / name, sub / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def find_data_dir(
    data_dir=None,
    *,
    allow_download: bool = True,
    mirrors=None,
    dataset: str = "mnist",
    names=None,
) -> dict:
    """Return {file name: path} for the named files (default: all four), downloading the
    missing ones into the first folder if needed."""
    ds = lookup(dataset)
    names = list(ds.files if names is None else names)
    dirs = search_dirs(data_dir, dataset)
    for d in dirs:
        found = {name: _file_in(d, name, ds.tv) for name in names}
        if all(found.values()):
            return found
    target = dirs[0]
    if allow_download:
        wanted = {n: ds.files[n] for n in names}
        errors = download(target, mirrors=mirrors, dataset=dataset, files=wanted)
        if not errors:
            return {name: _file_in(target, name) for name in names}
    else:
        errors = ["downloading was not allowed"]
    looked = "\n  ".join(str(d) for d in dirs)
    if data_dir is None and not os.environ.get(ds.env):
        looked = f"${ds.env} (not set)\n  {looked}"
    listed = ", ".join(n + ".gz" for n in names)
    hint = f" (or `apt-get install {ds.package}`)" if ds.package else ""
    raise ConvseeError(
        f"{ds.title} not found. Looked in:\n  {looked}\n"
        f"and could not download it ({'; '.join(errors)}).\n"
        f"Place the files ({listed}) in one of those folders{hint}, "
        f"or point {{param}} / {ds.env} at the folder that holds them.",
        "data",
    )


def _md5_of(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    h = hashlib.md5()
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(
    target: Path,
    mirrors=None,
    timeout: float = 20.0,
    dataset: str = "mnist",
    files: dict | None = None,
) -> list[str]:
    """Download missing files into target; return a list of problems (empty on success).

    Each file is written to a temporary name, checked against its md5, then renamed,
    so a half-written or corrupt download is never used.
    """
    from tqdm import tqdm

    ds = lookup(dataset)
    mirrors = ds.mirrors if mirrors is None else mirrors
    files = ds.files if files is None else files
    target = Path(target)
    problems = []
    for name, (_, _, md5) in files.items():
        if _file_in(target, name):
            continue
        ok = False
        for mirror in mirrors:
            url = mirror + name + ".gz"
            try:
                target.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{name}.", suffix=".part")
                try:
                    with (
                        urllib.request.urlopen(url, timeout=timeout) as r,
                        os.fdopen(fd, "wb") as f,
                    ):
                        total = int(r.headers.get("Content-Length") or 0) or None
                        with tqdm(total=total, unit="B", unit_scale=True, desc=name + ".gz") as bar:
                            for block in iter(lambda r=r: r.read(1 << 16), b""):
                                f.write(block)
                                bar.update(len(block))
                    tmp_path = Path(tmp + ".gz")
                    os.replace(tmp, tmp_path)
                    tmp = str(tmp_path)
                    if _md5_of(tmp_path) != md5:
                        raise OSError("checksum mismatch")
                    os.replace(tmp, target / (name + ".gz"))
                    ok = True
                    break
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            except (OSError, EOFError, gzip.BadGzipFile) as e:
                problems.append(f"{url}: {getattr(e, 'reason', e)}")
        if not ok:
            return problems
    return []


def _read_bytes(path: Path) -> bytes:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ConvseeError(f"{path}: cannot read it ({e})") from None


def parse_idx(raw: bytes, path, kind: str | None = None, count: int | None = None):
    """Parse and validate IDX bytes (path names the file in errors)."""
    if len(raw) < 8:
        raise ConvseeError(f"{path}: truncated ({len(raw)} bytes, not even an IDX header)")
    magic = int.from_bytes(raw[0:4], "big")
    if magic not in _MAGIC.values():
        raise ConvseeError(f"{path}: not an MNIST IDX file (magic number {magic:#010x})")
    file_kind = "images" if magic == _MAGIC["images"] else "labels"
    if kind is not None and file_kind != kind:
        raise ConvseeError(f"{path}: holds {file_kind}, expected {kind}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ConvseeError(f"{path}: truncated inside its header ({len(raw)} bytes)")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if file_kind == "images" and dims[1:] != [28, 28]:
        raise ConvseeError(f"{path}: images are {dims[1:]} pixels, expected 28x28")
    if count is not None and dims[0] != count:
        raise ConvseeError(f"{path}: holds {dims[0]} items, expected {count}")
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ConvseeError(f"{path}: {what} ({len(raw)} bytes, header says {expected})")
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    if file_kind == "labels" and arr.size and arr.max() > 9:
        raise ConvseeError(f"{path}: label {int(arr.max())} out of range 0..9")
    return arr


def read_idx(path: str | os.PathLike, kind: str | None = None, count: int | None = None):
    """Read one IDX file (raw or .gz) into a NumPy array, validating it.

    kind: "images" or "labels", checked against the magic number; count: expected items.
    """
    path = Path(path)
    return parse_idx(_read_bytes(path), path, kind, count)


def read_split(
    split: str, data_dir=None, *, allow_download: bool = True, verify=True, dataset: str = "mnist"
) -> SplitArrays:
    """Read 'train' or 'test' into NumPy arrays (no torch), checking each file's md5 against
    the published one (a few milliseconds; verify=False skips it, for data that is knowingly
    not the canonical set, as in tests). allow_download=False: only files already on disk."""
    if split not in SPLITS:
        raise ConvseeError(f"unknown {{param}} {split!r}; valid: {', '.join(SPLITS)}", "split")
    ds = lookup(dataset)
    paths = find_data_dir(
        data_dir, allow_download=allow_download, dataset=dataset, names=SPLITS[split]
    )
    arrays, raws, md5 = [], [], {}
    for name in SPLITS[split]:
        kind, count, _ = ds.files[name]
        raws.append(_read_bytes(paths[name]))
        arrays.append(parse_idx(raws[-1], paths[name], kind, count))
    if verify:  # after parsing, so a truncated file is named as such
        for name, raw in zip(SPLITS[split], raws, strict=True):
            want = ds.files[name][2]
            md5[name] = hashlib.md5(raw).hexdigest()
            if md5[name] != want:
                raise ConvseeError(
                    f"{paths[name]}: md5 {md5[name]}, expected {want} "
                    f"(corrupt, or not {ds.title} as published)"
                )
    images, labels = arrays
    return SplitArrays(images.copy(), labels.astype(np.int64), md5)  # writable, owned


def load_split(
    split: str, data_dir=None, *, allow_download: bool = True, verify=True, dataset: str = "mnist"
) -> Split:
    """read_split() as torch tensors (the same checks)."""
    import torch

    a = read_split(split, data_dir, allow_download=allow_download, verify=verify, dataset=dataset)
    return Split(torch.from_numpy(a.images), torch.from_numpy(a.labels), a.md5)


def load_mnist(data_dir=None, *, allow_download: bool = True, verify=True, dataset="mnist"):
    """(train, test) splits of MNIST (or of Fashion-MNIST with dataset="fashion-mnist")."""
    kw = {"allow_download": allow_download, "verify": verify, "dataset": dataset}
    return load_split("train", data_dir, **kw), load_split("test", data_dir, **kw)


def normalize(images: torch.Tensor, mean: float = MEAN, std: float = STD) -> torch.Tensor:
    """uint8 (N, 28, 28) or float [0, 1] (N, 28, 28) -> float (N, 1, 28, 28), (x - mean) / std
    (MNIST's mean and std unless given)."""
    import torch

    x = images.float() if images.dtype != torch.float32 else images.clone()  # never in place
    if images.dtype == torch.uint8:
        x.div_(255.0)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return x.sub_(mean).div_(std)
