"""Time `convsee train` (whole command) against one epoch of the original project's recipe,
and `convsee train --epochs 1` alone, two at once, and beside a busy loop, per thread policy.

The original: per-sample PIL -> tensor transforms through a DataLoader, batch 128, SGD lr 0.03
momentum 0.9, 30 epochs, LeNet-5 with a ReLU on the logits. Both run here, in one process
tree, back to back.

Thread policies (run/threads.py), each as whole `convsee train --epochs 1` processes:
  auto    convsee's policy: threads = cores the other processes leave idle, re-measured
  fixed   torch's default, one thread per core, whatever the load (convsee before the policy)
  one     OMP_NUM_THREADS=1
  passive fixed, with OMP_WAIT_POLICY=PASSIVE (waiting threads sleep instead of spinning)
Scenarios: alone; two started together (the slower one's wall time counts); one beside a
pure-Python busy loop that keeps one core busy. Configurations and scenarios are
interleaved round by round, so a change in host load hits all alike; the load average is
recorded before and after. The figures go to stdout and benchmarks/out/train.json.

    python benchmarks/bench_train.py [--data ../shared/data/mnist] [--runs 3] [--rounds 3]
    python benchmarks/bench_train.py --part threads --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
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
from common import SHARED_MNIST, add_quick, save_result
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


SRC = str(Path(__file__).resolve().parents[1] / "src")  # this tree's convsee, not another
CLI = "import sys; from convsee.cli import main; sys.exit(main())"


def _env(extra: dict | None = None) -> dict:
    """This process's environment without thread settings, running this tree's convsee."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "MKL_"))}
    env.pop("CONVSEE_THREADS", None)
    env["PYTHONPATH"] = SRC
    env.update(extra or {})
    return env


def _train_cmd(data_dir, out: Path, *args: str) -> list[str]:
    cmd = [sys.executable, "-c", CLI, "train", "--data", str(data_dir), "--out", str(out)]
    return cmd + ["--quiet", *args]


def convsee_train(data_dir, seed: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "m.safetensors"
        t = time.perf_counter()
        cmd = _train_cmd(data_dir, out, "--seed", str(seed))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=_env())
        wall = time.perf_counter() - t
        return wall, json.loads(out.with_suffix(".json").read_text())["test_accuracy"]


CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
POLICIES = {
    "auto": {},
    "fixed": {"CONVSEE_THREADS": str(CORES)},
    "one": {"OMP_NUM_THREADS": "1"},
    "passive": {"CONVSEE_THREADS": str(CORES), "OMP_WAIT_POLICY": "PASSIVE"},
}
SCENARIOS = ("alone", "pair", "beside_busy_loop")


def epoch_runs(data_dir, policy: str, scenario: str) -> float:
    """Wall seconds of `convsee train --epochs 1` (the slowest, for a pair)."""
    n = 2 if scenario == "pair" else 1
    hog = None
    if scenario == "beside_busy_loop":
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)  # the load is there before training starts, as on a busy machine
    try:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            procs = [
                subprocess.Popen(
                    _train_cmd(data_dir, Path(d) / f"m{i}.safetensors", "--epochs", "1"),
                    env=_env(POLICIES[policy]),
                    stdout=subprocess.DEVNULL,
                )
                for i in range(n)
            ]
            walls = []
            for p in procs:
                if p.wait() != 0:
                    raise RuntimeError(f"convsee train failed ({policy}, {scenario})")
                walls.append(time.perf_counter() - t)
            return max(walls)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def thread_policies(data_dir, rounds: int, policies) -> dict:
    times = {p: {s: [] for s in SCENARIOS} for p in policies}
    loads = [_loadavg()]
    for r in range(rounds):
        for s in SCENARIOS:
            for p in policies:
                times[p][s].append(round(epoch_runs(data_dir, p, s), 2))
        loads.append(_loadavg())
        print(f"round {r + 1}/{rounds} done, load average {loads[-1]}", file=sys.stderr)
    med = {p: {s: statistics.median(v) for s, v in times[p].items()} for p in policies}
    alone_fixed = med.get("fixed", med[policies[0]])["alone"]
    summary = {
        p: {
            "alone_s": med[p]["alone"],
            "pair_s": med[p]["pair"],
            "beside_busy_loop_s": med[p]["beside_busy_loop"],
            "pair_over_own_alone": round(med[p]["pair"] / med[p]["alone"], 2),
            "alone_over_fixed_alone": round(med[p]["alone"] / alone_fixed, 2),
        }
        for p in policies
    }
    return {
        "command": "convsee train --epochs 1 --quiet (whole process)",
        "cores": CORES,
        "rounds": rounds,
        "load_average_per_round": loads,
        "wall_s": times,
        "median": summary,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SHARED_MNIST))
    ap.add_argument("--runs", type=int, default=3, help="whole trainings against the original")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the thread-policy runs")
    ap.add_argument("--part", choices=["all", "speed", "threads"], default="all")
    ap.add_argument("--policies", default=",".join(POLICIES), help="of: " + ",".join(POLICIES))
    add_quick(ap)
    a = ap.parse_args()
    if a.quick:  # one round of one-epoch runs, convsee's own policy only
        a.part, a.rounds, a.policies = "threads", 1, "auto"
    result = {"machine": f"{platform.machine()}, {CORES} cores, torch {torch.__version__}"}
    if a.part in ("all", "threads"):
        result["threads"] = thread_policies(a.data, a.rounds, a.policies.split(","))
    if a.part in ("all", "speed"):
        result.update(speed(a.data, a.runs))
    return save_result("train", result, a.quick)


def speed(data_dir, runs: int) -> dict:
    ours, orig = [], []
    for seed in range(runs):  # interleaved, so a change in host speed hits both alike
        ours.append(convsee_train(data_dir, seed))
        orig.append(original_epoch(data_dir))
    walls = [w for w, _ in ours]
    result = {
        "load_average": _loadavg(),
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
    return result


if __name__ == "__main__":
    sys.exit(main())
