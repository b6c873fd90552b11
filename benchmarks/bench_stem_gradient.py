"""The last step of a backward pass to the input: oneDNN's backward-data kernel for the stem
convolution (what autograd runs) against convsee's two hand forms (run/input_gradient.py):
the phase form (one forward convolution over the stride's phases, used for every undilated
stem) and W^T @ dS/dy folded onto the input (col2im, used for a dilated one). Each stem's
gradient dS/dy is random; the three results are checked equal (<= 1e-5 of the maximum) before
timing; alternated run by run (order rotated), median of several runs, at 1 and 2 threads.

    python benchmarks/bench_stem_gradient.py            # 8 images, the stems of STEMS
    python benchmarks/bench_stem_gradient.py --quick    # 1 image at 32x32, 2 runs (the test)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import add_quick, save_result  # noqa: E402

# name: (output channels, input channels, kernel, stride, padding, input side)
STEMS = {
    "ResNet 7x7/2": (64, 3, 7, 2, 3, 224),
    "MobileNetV2 3x3/2": (32, 3, 3, 2, 1, 224),
    "ConvNeXt 4x4/4": (96, 3, 4, 4, 0, 224),
    "VGG 3x3/1": (64, 3, 3, 1, 1, 224),
    "LeNet-5 5x5/1": (6, 1, 5, 1, 0, 28),
}


def contenders(k, c, kernel, stride, padding, side, n):
    from convsee.run.input_gradient import _by_phases

    g = torch.Generator().manual_seed(0)
    w = torch.randn(k, c, kernel, kernel, generator=g)
    out = (side + 2 * padding - kernel) // stride + 1
    gy = torch.randn(n, k, out, out, generator=g)
    x = torch.empty(n, c, side, side)
    s, p = (stride, stride), (padding, padding)

    def onednn():
        return torch.ops.aten.convolution_backward(
            gy, x, w, None, list(s), list(p), [1, 1], False, [0, 0], 1, [True, False, False]
        )[0]

    def phases():
        return _by_phases(gy, w, (side, side), s, p)

    def fold():
        cols = w.reshape(k, -1).t() @ gy.reshape(n, k, out * out)
        return F.fold(cols, (side, side), (kernel, kernel), padding=p, stride=s)

    return {"autograd (oneDNN)": onednn, "phases": phases, "fold": fold}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_quick(ap)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args(argv)
    n, runs = (1, 2) if a.quick else (a.images, a.runs)
    result = {"what": f"{n} images, milliseconds (median of {runs})", "stems": {}}
    for name, (k, c, kernel, stride, padding, side) in STEMS.items():
        side = min(side, 32) if a.quick else side
        fns = contenders(k, c, kernel, stride, padding, side, n)
        ref = fns["autograd (oneDNN)"]()
        for f in fns.values():
            err = float((f() - ref).abs().max() / ref.abs().max())
            assert err <= 1e-5, (name, err)
        row = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            ts = {key: [] for key in fns}
            names = list(fns)
            for i in range(runs):
                for key in names[i % len(names) :] + names[: i % len(names)]:
                    t0 = time.perf_counter()
                    fns[key]()
                    ts[key].append(time.perf_counter() - t0)
            med = {key: round(statistics.median(v) * 1000, 2) for key, v in ts.items()}
            base = med["autograd (oneDNN)"]
            row[str(threads)] = {
                "ms": med,
                "phases_vs_autograd": round(med["phases"] / base, 3),
                "fold_vs_autograd": round(med["fold"] / base, 3),
            }
            print(name, threads, row[str(threads)], file=sys.stderr, flush=True)
        result["stems"][name] = row
    return save_result("bench_stem_gradient", result, a.quick)


if __name__ == "__main__":
    sys.exit(main())
