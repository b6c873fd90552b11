"""The datasets convsee knows, one `Dataset` each: the one owner of their names, files and
checksums, mirrors, where they are looked for, classes and pixel statistics.

Callers look a dataset up by name at call time (`lookup`), so a test can replace an entry
(its mirrors, say) in `DATASETS` for the length of the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConvseeError

__all__ = ["Dataset", "DATASETS", "MEAN", "STD", "FILES", "lookup", "trained_on"]

MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel mean and std, on the [0, 1] scale

# name -> (kind, count, md5 of the uncompressed file)
FILES = {
    "train-images-idx3-ubyte": ("images", 60000, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": ("labels", 60000, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": ("images", 10000, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": ("labels", 10000, "27ae3e4e09519cfbb04c329615203637"),
}


@dataclass(frozen=True)
class Dataset:
    """One IDX dataset of 28x28 gray images and labels 0..9."""

    name: str  # what --dataset and dataset= say: "mnist"
    title: str  # what messages and pictures say: "MNIST"
    files: dict[str, tuple[str, int, str]]  # file name -> (kind, count, md5 uncompressed)
    mirrors: tuple[str, ...]  # URLs the files (FILE.gz) are downloaded from, in order
    env: str  # the environment variable naming its folder
    tv: str  # torchvision's folder name (DIR/tv/raw/FILE)
    system: tuple[Path, ...]  # folders a system package installs it in
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # training-set pixel mean per channel, [0, 1] scale
    std: tuple[float, ...]  # ... and standard deviation
    resize: str  # how an image becomes one of its items (see transforms.py)
    package: str = ""  # the system package that installs it, if there is one


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        title="MNIST",
        files=FILES,
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        env="CONVSEE_DATA",
        tv="MNIST",
        system=(),
        classes=tuple(str(i) for i in range(10)),
        mean=(MEAN,),
        std=(STD,),
        resize="mnist",
    ),
    # Fashion-MNIST (Xiao et al. 2017): same file names and format, other content
    "fashion-mnist": Dataset(
        name="fashion-mnist",
        title="Fashion-MNIST",
        files={
            "train-images-idx3-ubyte": ("images", 60000, "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
            "train-labels-idx1-ubyte": ("labels", 60000, "9018921c3c673c538a1fc5bad174d6f9"),
            "t10k-images-idx3-ubyte": ("images", 10000, "8181f5470baa50b63fa0f6fddb340f0a"),
            "t10k-labels-idx1-ubyte": ("labels", 10000, "15d484375f8d13e6eb1aabb0c3f46965"),
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        env="CONVSEE_FASHION_MNIST_DATA",
        tv="FashionMNIST",
        system=(Path("/usr/share/datasets/fashion-mnist"),),  # Debian's package
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        mean=(0.2860,),  # Fashion-MNIST training-set mean and std
        std=(0.3530,),
        resize="fashion",
        package="dataset-fashion-mnist",
    ),
}


def lookup(name: str = "mnist") -> Dataset:
    """The registered dataset of that name; an unknown one is refused with the valid names."""
    if not isinstance(name, str) or name not in DATASETS:
        raise ConvseeError(f"unknown {{param}} {name!r}; valid: {', '.join(DATASETS)}", "dataset")
    return DATASETS[name]


def trained_on(meta: dict | None, default: str = "mnist") -> str:
    """The dataset a checkpoint's metadata says it was trained on, if convsee knows it; else
    default."""
    found = (meta or {}).get("dataset")
    return found if isinstance(found, str) and found in DATASETS else default
