import gzip
import hashlib

import numpy as np
import pytest
import torch
from conftest import idx_bytes, make_tiny_mnist, write_idx

from convsee.datasets import idx as data
from convsee.errors import ConvseeError


def test_parse_raw_and_gz(tmp_path):
    imgs = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    raw = write_idx(tmp_path / "a", imgs, 2051, gz=False)
    gz = write_idx(tmp_path / "b", imgs, 2051, gz=True)
    assert np.array_equal(data.read_idx(raw, "images"), imgs)
    assert np.array_equal(data.read_idx(gz, "images", 2), imgs)
    labels = write_idx(tmp_path / "l", np.array([0, 9, 3]), 2049)
    assert data.read_idx(labels, "labels").tolist() == [0, 9, 3]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "truncated"),
        (b"\x00\x00\x08\x03\x00", "truncated"),
        (b"GARBAGE-GARBAGE-GARBAGE", "not an MNIST IDX file"),
        (idx_bytes(np.zeros((2, 28, 28)), 2051)[:-5], "truncated"),
        (idx_bytes(np.zeros((2, 28, 28)), 2051) + b"xx", "trailing bytes"),
        (idx_bytes(np.zeros((2, 20, 20)), 2051), "expected 28x28"),
        (idx_bytes(np.array([1, 2]), 2049), "holds labels, expected images"),
    ],
)
def test_bad_image_files(tmp_path, content, message):
    p = tmp_path / "bad-images"
    p.write_bytes(content)
    with pytest.raises(ConvseeError, match=message) as e:
        data.read_idx(p, "images")
    assert str(p) in str(e.value)


def test_bad_labels_and_counts(tmp_path):
    p = write_idx(tmp_path / "l", np.array([1, 12]), 2049)
    with pytest.raises(ConvseeError, match="label 12 out of range"):
        data.read_idx(p, "labels")
    p = write_idx(tmp_path / "l2", np.array([1, 2]), 2049)
    with pytest.raises(ConvseeError, match="holds 2 items, expected 5"):
        data.read_idx(p, "labels", 5)


def test_corrupt_gzip(tmp_path):
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(b"0123456789" * 100)[:30])
    with pytest.raises(ConvseeError, match="cannot read it"):
        data.read_idx(p)


def test_search_order_and_torchvision_layout(tmp_path, monkeypatch):
    a = make_tiny_mnist(tmp_path / "a" / "MNIST" / "raw", 10, 5)
    monkeypatch.setenv("CONVSEE_DATA", str(tmp_path / "a"))
    found = data.find_data_dir()
    assert all(str(p).startswith(str(a)) for p in found.values())
    b = make_tiny_mnist(tmp_path / "b", 10, 5, gz=False)
    found = data.find_data_dir(b)  # --data wins over the environment
    assert found["train-images-idx3-ubyte"] == b / "train-images-idx3-ubyte"


def test_mismatched_count_across_files(tmp_path):
    root = make_tiny_mnist(tmp_path / "m", 60000, 10000)
    write_idx(root / "t10k-labels-idx1-ubyte", np.zeros(9999), 2049)
    with pytest.raises(ConvseeError, match="holds 9999 items, expected 10000"):
        data.load_split("test", root)


def test_checksum_mismatch_is_reported(tmp_path):
    root = make_tiny_mnist(tmp_path / "m")
    with pytest.raises(ConvseeError, match="md5 .* expected 2646ac"):
        data.load_split("test", root)  # checked by default
    split = data.load_split("test", root, verify=False)  # the synthetic set loads without
    assert split.images.shape == (10000, 28, 28) and split.images.dtype == torch.uint8


def test_offline_empty_dir_names_where_it_looked(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConvseeError) as e:
        data.load_split("train", empty)
    msg = str(e.value)
    assert "MNIST not found" in msg and str(empty) in msg and "cache" in msg
    assert "train-images-idx3-ubyte.gz" in msg
    assert not list(empty.glob("*.part")) and not list(empty.glob("*.gz"))


def test_download_verifies_and_renames(tmp_path):
    """The downloader against a local file:// mirror: good files land, a bad one never does."""
    mirror = tmp_path / "mirror"
    make_tiny_mnist(mirror, 10, 5)
    target = tmp_path / "target"
    problems = data.download(target, mirrors=(mirror.as_uri() + "/",))
    # the synthetic files do not carry MNIST's checksums, so every one is refused
    assert problems and "checksum mismatch" in problems[0]
    assert not any(target.iterdir())
    # with the checksums of the mirror's own files, everything is taken
    sums = {
        n: hashlib.md5(gzip.decompress((mirror / (n + ".gz")).read_bytes())).hexdigest()
        for n in data.FILES
    }
    fake = {n: (k, c, sums[n]) for n, (k, c, _) in data.FILES.items()}
    assert data.download(target, mirrors=(mirror.as_uri() + "/",), files=fake) == []
    assert sorted(p.name for p in target.iterdir()) == sorted(n + ".gz" for n in data.FILES)


def test_real_mnist(mnist_dir):
    train, test = data.load_mnist(mnist_dir, verify=True)
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert train.labels.bincount().tolist()[1] == 6742
    x = data.normalize(train.images[:1000])
    assert x.shape == (1000, 1, 28, 28)
    assert abs(x.mean().item()) < 0.1


def test_normalize_float_and_uint8_agree():
    u = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    assert torch.allclose(data.normalize(u), data.normalize(u.float() / 255))
    assert torch.allclose(
        data.normalize(torch.zeros(1, 28, 28)), torch.tensor(-data.MEAN / data.STD)
    )


def test_test_split_alone_is_enough(tmp_path):
    root = make_tiny_mnist(tmp_path / "m", 60000, 10000)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (root / name).unlink()
    assert data.load_split("test", root, verify=False).images.shape == (10000, 28, 28)
    with pytest.raises(ConvseeError, match="train-images-idx3-ubyte.gz"):
        data.load_split("train", root)


def _decoded(path, header: int) -> np.ndarray:
    """An IDX file's items, decoded here without convsee's reader."""
    return np.frombuffer(gzip.decompress(path.read_bytes())[header:], np.uint8)


def test_read_split_is_the_published_files_as_arrays(mnist_dir):
    a = data.read_split("test", mnist_dir, allow_download=False)
    images = _decoded(mnist_dir / "t10k-images-idx3-ubyte.gz", 16).reshape(10000, 28, 28)
    labels = _decoded(mnist_dir / "t10k-labels-idx1-ubyte.gz", 8)
    assert a.images.dtype == np.uint8 and a.images.flags.writeable
    assert np.array_equal(a.images, images)
    assert a.labels.dtype == np.int64 and np.array_equal(a.labels, labels)
    assert a.md5 == {
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    }
    t = data.load_split("test", mnist_dir, allow_download=False)  # the same, as tensors
    assert np.array_equal(t.images.numpy(), images) and t.labels.dtype == torch.int64
    assert np.array_equal(t.numpy().labels, labels) and t.md5 == a.md5


def test_read_split_never_downloads_when_told(tmp_path, monkeypatch):
    """allow_download=False: a mirror holding the files is not asked."""
    from dataclasses import replace

    from convsee.datasets.registry import DATASETS

    mirror = make_tiny_mnist(tmp_path / "mirror", 10, 5)
    raw = {n: gzip.decompress((mirror / (n + ".gz")).read_bytes()) for n in data.FILES}
    count = {"train": 10, "t10k": 5}
    files = {
        n: (k, count[n.split("-")[0]], hashlib.md5(raw[n]).hexdigest())
        for n, (k, _, _) in data.FILES.items()
    }
    ds = replace(DATASETS["mnist"], files=files, mirrors=(mirror.as_uri() + "/",))
    monkeypatch.setitem(DATASETS, "mnist", ds)
    target = tmp_path / "target"
    with pytest.raises(ConvseeError, match="downloading was not allowed"):
        data.read_split("test", target, allow_download=False)
    assert not target.exists()
    got = data.read_split("test", target)  # allowed: taken from the mirror, md5 checked
    assert np.array_equal(got.labels, _decoded(mirror / "t10k-labels-idx1-ubyte.gz", 8))
    assert got.md5 == {n: files[n][2] for n in data.SPLITS["test"]}
    assert sorted(p.name for p in target.iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
