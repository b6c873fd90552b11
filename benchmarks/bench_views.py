"""Time the views beyond activation maps against their targets (exemplars over the whole
MNIST test set <= 10 s; optimize <= 2 s per layer), in process and as whole commands.

    python benchmarks/bench_views.py [--data DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

from common import SHARED_MNIST, add_quick, save_result


def median_time(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SHARED_MNIST))
    ap.add_argument("--runs", type=int, default=3)
    add_quick(ap)
    a = ap.parse_args()
    if a.quick:
        a.runs = 1
    from convsee.datasets.idx import load_split
    from convsee.models.checkpoint import load_checkpoint
    from convsee.run.exemplars import top_exemplars
    from convsee.run.optimize import maximize
    from convsee.spec import describe

    model, _ = load_checkpoint()
    spec = describe(model, (1, 28, 28))
    test = load_split("test", a.data)
    images = test.images[:500] if a.quick else test.images
    result = {"in_process_s": {}, "whole_command_s": {}}
    for layer in ("conv1", "conv2", "fc1"):
        result["in_process_s"][f"exemplars_{layer}_10000_images"] = median_time(
            lambda layer=layer: top_exemplars(model, images, spec.layer(layer), 9), a.runs
        )
    for layer, units in (("conv1", 6), ("conv2", 16), ("fc3", 10)):
        result["in_process_s"][f"optimize_{layer}_{units}_units"] = median_time(
            lambda layer=layer, units=units: maximize(model, layer, units), a.runs
        )
    commands = {
        "exemplars": ["exemplars"],
        "optimize": ["optimize"],
        "animate": ["animate"],
        "evolution": ["evolution"],
        "sweep (all five kinds)": ["sweep"],
        "attribution": ["attribution"],
    }
    with tempfile.TemporaryDirectory() as d:
        for name, args in commands.items():
            cmd = ["convsee", *args, "--out", d]
            if name in ("exemplars",):
                cmd += ["--data", a.data] + (["--limit", "500"] if a.quick else [])
            result["whole_command_s"][name] = median_time(
                lambda cmd=cmd: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL), a.runs
            )
    return save_result("views", result, a.quick)


if __name__ == "__main__":
    sys.exit(main())
