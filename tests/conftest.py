"""Shared fixtures: the real MNIST in ../shared (never the network) and tiny synthetic IDX files."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# the real MNIST: $CONVSEE_TEST_DATA, else $CONVSEE_DATA (where convsee itself looks), else
# ../shared/data/mnist beside the repository
SHARED_MNIST = Path(
    os.environ.get("CONVSEE_TEST_DATA")
    or os.environ.get("CONVSEE_DATA")
    or REPO.parent / "shared" / "data" / "mnist"
)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, tmp_path):
    """Tests never download: every dataset's mirror is an empty local folder."""
    from dataclasses import replace

    from convsee.datasets.registry import DATASETS

    empty = tmp_path / "no-mirror"
    empty.mkdir()
    for name, ds in list(DATASETS.items()):
        monkeypatch.setitem(DATASETS, name, replace(ds, mirrors=(empty.as_uri() + "/",)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CONVSEE_DATA", raising=False)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.fail(
            f"real MNIST expected in {SHARED_MNIST}: set CONVSEE_TEST_DATA or CONVSEE_DATA to "
            "the folder with the four .gz files (default: ../shared/data/mnist)"
        )
    return SHARED_MNIST


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, magic: int, gz: bool = True) -> Path:
    data = idx_bytes(array, magic)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def make_tiny_mnist(root: Path, n_train=60000, n_test=10000, gz=True, seed=0) -> Path:
    """Four IDX files with the real counts but random content (valid, tiny when gzipped)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = np.zeros((n, 28, 28), np.uint8)
        imgs[:, 10:18, 10:18] = rng.integers(0, 255, (n, 1, 1), dtype=np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte", imgs, 2051, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n), 2049, gz)
    return root


def hatch_stripes(h: int, w: int) -> np.ndarray:
    """(h, w) float32: the hatch as draw/channel_views.hatched words it, computed here: diagonal
    stripes of HATCH's two greys, a seventh of the patch wide (at least 2 px), the first first."""
    from convsee.draw.channel_views import HATCH

    width = max(2, max(h, w) // 7)
    i, j = np.indices((h, w))
    return np.where((i + j) // width % 2 == 0, *np.float32(HATCH)).astype(np.float32)
