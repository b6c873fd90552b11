"""Whole-command time and memory of `convsee exemplars` and `convsee optimize`.

    python benchmarks/bench_channel_views.py [--data DIR] [--runs 5] [--baseline-src DIR]

- Time: each command with no arguments (LeNet-5, the shipped weights), as a whole process,
  `--runs` times; with --baseline-src (another checkout's src/, e.g. the previous version) the
  same commands from there, interleaved run by run so both see the same host load. Wall time
  and CPU time (user + system of the child) are reported as medians; on a shared host the CPU
  time is the steadier figure.
- Memory: peak RSS of `convsee exemplars` over the first 1,000 and over all 10,000 MNIST test
  images, and over a folder of 1,000 and 10,000 PNGs (written to a temporary folder), with a
  batch of 32: flat if only a running top-k is kept.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED_MNIST, add_quick, save_result

SRC = Path(__file__).resolve().parents[1] / "src"


def run(cmd, src: Path, env_extra=None) -> tuple[float, float, int]:
    """(wall s, cpu s, peak RSS KB) of one child process."""
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", **(env_extra or {}))
    t = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, "-c", "import sys; from convsee.cli import main; sys.exit(main())", *cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, ru = os.wait4(p.pid, 0)  # the child's own rusage (CPU time, peak RSS)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode()
    p.stderr.close()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.strip()[:300]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SHARED_MNIST))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--baseline-src", help="another checkout's src/ to time the same commands")
    add_quick(ap)
    a = ap.parse_args()
    sizes = (200,) if a.quick else (1000, 10000)
    if a.quick:
        a.runs = 1
    result: dict = {"runs": a.runs, "time": {}, "peak_rss_mb": {}}
    srcs = {"this": SRC}
    if a.baseline_src:
        srcs["baseline"] = Path(a.baseline_src)
    env = {"CONVSEE_DATA": a.data}
    with tempfile.TemporaryDirectory() as d:
        for name in ("optimize", "exemplars"):
            walls: dict = {k: [] for k in srcs}
            cpus: dict = {k: [] for k in srcs}
            for _ in range(a.runs):
                for k, src in srcs.items():
                    w, c, _ = run([name, "--out", f"{d}/{k}"], src, env)
                    walls[k].append(w)
                    cpus[k].append(c)
            for k in srcs:
                result["time"][f"{name} ({k})"] = {
                    "wall_median_s": round(statistics.median(walls[k]), 2),
                    "wall_range_s": [round(min(walls[k]), 2), round(max(walls[k]), 2)],
                    "cpu_median_s": round(statistics.median(cpus[k]), 2),
                }
        for n in sizes:
            _, _, rss = run(
                ["exemplars", "--limit", str(n), "--batch-size", "32", "--out", f"{d}/m"], SRC, env
            )
            result["peak_rss_mb"][f"exemplars, MNIST IDX, {n} images"] = round(rss / 1024, 1)
        folder = Path(d) / "pngs"
        _write_pngs(folder, max(sizes), a.data)
        for n in sizes:
            _, _, rss = run(
                ["exemplars", "--data", str(folder), "--limit", str(n), "--batch-size", "32"]
                + ["--out", f"{d}/m"],
                SRC,
                env,
            )
            result["peak_rss_mb"][f"exemplars, image folder, {n} images"] = round(rss / 1024, 1)
    return save_result("channel_views", result, a.quick)


def _write_pngs(folder: Path, n: int, data: str) -> None:
    """The first n MNIST test digits as PNGs, one subfolder per class."""
    sys.path.insert(0, str(SRC))
    from PIL import Image

    from convsee.datasets.idx import load_split

    split = load_split("test", data)
    for i in range(n):
        sub = folder / str(int(split.labels[i]))
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(split.images[i].numpy()).save(sub / f"{i:05d}.png")


if __name__ == "__main__":
    sys.exit(main())
