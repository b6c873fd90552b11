"""Time `convsee train` (whole command) against one epoch of the original project's recipe.

The original: per-sample PIL -> tensor transforms through a DataLoader, batch 128, SGD lr 0.03
momentum 0.9, 30 epochs, LeNet-5 with a ReLU on the logits. Both run here, in one process
tree, back to back; the figures go to stdout and benchmarks/out/train.json.

    python benchmarks/bench_train.py --data ../shared/data/mnist [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import SHARED_MNIST, save_result
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from convsee.datasets.idx import load_split
from convsee.models.lenet import LeNet5


class OriginalMNIST(Dataset):
    """Per-sample work as torchvision does it: uint8 -> PIL image -> float tensor -> normalise."""

    def __init__(self, split):
        self.images, self.labels = split.images.numpy(), split.labels.numpy()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i], mode="L")
        x = torch.from_numpy(np.asarray(img, np.float32) / 255.0).unsqueeze(0)  # ToTensor
        x = (x - 0.1307) / 0.3081  # Normalize
        return x, int(self.labels[i])


class OriginalLeNet(LeNet5):
    def forward(self, x):  # the original applied a ReLU to the logits
        return F.relu(super().forward(x))


def original_epoch(data_dir) -> float:
    torch.manual_seed(0)
    loader = DataLoader(OriginalMNIST(load_split("train", data_dir)), batch_size=128, shuffle=True)
    model = OriginalLeNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    t = time.perf_counter()
    model.train()
    for x, y in loader:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return time.perf_counter() - t


def convsee_train(data_dir, seed: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "m.safetensors"
        t = time.perf_counter()
        cmd = [
            "convsee",
            "train",
            "--data",
            str(data_dir),
            "--out",
            str(out),
            "--quiet",
            "--seed",
            str(seed),
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        return wall, json.loads(out.with_suffix(".json").read_text())["test_accuracy"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SHARED_MNIST))
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    ours, orig = [], []
    for seed in range(a.runs):  # interleaved, so a change in host speed hits both alike
        ours.append(convsee_train(a.data, seed))
        orig.append(original_epoch(a.data))
    walls = [w for w, _ in ours]
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}",
        "convsee_train_wall_s": walls,
        "convsee_train_median_s": statistics.median(walls),
        "convsee_test_accuracy": [acc for _, acc in ours],
        "original_epoch_s": orig,
        "original_epoch_median_s": statistics.median(orig),
        "original_30_epochs_estimate_s": 30 * statistics.median(orig),
    }
    result["speedup_vs_original_30_epochs"] = (
        result["original_30_epochs_estimate_s"] / result["convsee_train_median_s"]
    )
    return save_result("train", result)


if __name__ == "__main__":
    sys.exit(main())
