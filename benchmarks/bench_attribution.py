"""Attribution on the seeded ResNet-18 (benchmarks/resnet.py): convsee's attribute_batch against
captum, torchcam and pytorch-grad-cam (each where installed, each method where a peer has it;
maps at the layer's resolution, so nobody's resize is timed except convsee's placement),
alternated run by run (order rotated), median of several runs, at 1 and 2 threads. The maps
are checked equal before timing (<= 1e-4 relative) where the peer computes the same numbers.
Wall and CPU seconds (time.process_time, all threads) are both kept: on a shared machine the
wall time also measures the other jobs.

    python benchmarks/bench_attribution.py            # Grad-CAM at layer4, 50 images 224x224
    python benchmarks/bench_attribution.py --methods all --runs 3   # every method (CASES)
    python benchmarks/bench_attribution.py --quick    # 4 images at 64x64, 2 runs (the test)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import peers  # noqa: E402
import resnet  # noqa: E402
from common import save_result  # noqa: E402

warnings.filterwarnings("ignore")

# method: (images, side, layer, convsee options): what --methods all times. Grad-CAM's
# images come from --images; Score-CAM (512 masked passes per image), integrated gradients
# (steps passes) and occlusion (a pass per patch) are timed on fewer, smaller inputs.
CASES = {
    "gradcam": (None, 224, "layer4", {}),
    "gradcam++": (16, 224, "layer4", {}),
    "xgradcam": (16, 224, "layer4", {}),
    "layercam": (16, 224, "layer4", {}),
    "eigencam": (16, 224, "layer4", {}),
    "saliency": (16, 224, None, {}),
    "scorecam": (2, 112, "layer4", {}),
    "integrated-gradients": (4, 224, None, {"steps": 16}),
    "occlusion": (2, 112, None, {"window": 16, "stride": 8}),
}
QUICK = {"scorecam": (1, 64, "layer4", {})}
# pairs whose numbers differ by design (docs/attribution.md): timed, not compared
NOT_EQUAL = {
    ("gradcam++", "torchcam"): "another denominator",
    ("eigencam", "grad-cam"): "the SVD's sign is left free",
    ("scorecam", "torchcam"): "mask upsampling differs",
    ("scorecam", "grad-cam"): "mask upsampling differs",
}


def contenders(method, model, x, t, layer, opts, spec):
    from convsee.run.attribution import attribute_batch

    xn = x.numpy()
    tt = torch.tensor(t)
    mod = dict(model.named_modules()).get(layer)

    def ours():
        r = attribute_batch(model, xn, spec, method=method, layer=layer, target=t, **opts)
        return r.layer_maps if layer else r.channels

    out = {"convsee": ours}
    cp = peers.captum()
    if cp is not None:
        if method == "gradcam":
            out["captum"] = lambda: (
                cp.LayerGradCam(model, mod)
                .attribute(x, target=tt, relu_attributions=True)[:, 0]
                .detach()
                .numpy()
            )
        elif method == "saliency":
            out["captum"] = lambda: cp.Saliency(model).attribute(x, target=tt, abs=True).numpy()
        elif method == "integrated-gradients":
            out["captum"] = lambda: (
                cp.IntegratedGradients(model)
                .attribute(x, target=tt, n_steps=opts["steps"], internal_batch_size=64)
                .detach()
                .numpy()
            )
        elif method == "occlusion":
            k, s = opts["window"], opts["stride"]
            out["captum"] = lambda: (
                cp.Occlusion(model)
                .attribute(
                    x,
                    (3, k, k),
                    strides=(3, s, s),
                    target=tt,
                    perturbations_per_eval=max(1, 64 // len(x)),
                )
                .numpy()
            )
    if peers.torchcam() is not None and method in peers.TORCHCAM_CLASSES:
        out["torchcam"] = lambda: peers.torchcam_map(method, model, layer, x, t)
    if peers.grad_cam() is not None and method in peers.GRAD_CAM_CLASSES:
        out["grad-cam"] = lambda: peers.grad_cam_map(method, model, mod, x, t)
    return out


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def bench(method, n, size, layer, opts, runs):
    from convsee.spec import describe

    model = resnet.resnet18()
    spec = describe(model, (3, size, size), "cpu")
    x = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    t = [int(v) for v in np.random.default_rng(0).integers(0, 1000, n)]
    fns = contenders(method, model, x, t, layer, opts, spec)
    ref = fns["convsee"]()
    agree, differ = {}, {}
    for name, f in fns.items():
        m = f()  # also the warm-up
        if (method, name) in NOT_EQUAL:
            differ[name] = NOT_EQUAL[(method, name)]
            continue
        agree[name] = float(np.abs(m - ref).max() / (np.abs(ref).max() + 1e-30))
        assert agree[name] <= 1e-4, (method, name, agree[name])
    at = f" at {layer}" if layer else ""
    res = {
        "what": f"{method}{at} of the seeded ResNet-18, {n} images {size}x{size}, one batch, "
        f"median seconds{'' if not opts else ', ' + str(opts)}",
        "agreement_max_relative": agree,
        "not_compared": differ,
        "threads": {},
    }
    for threads in (1, 2):
        torch.set_num_threads(threads)
        wall = {k: [] for k in fns}
        cpu = {k: [] for k in fns}
        names = list(fns)
        for i in range(runs):
            # alternated: each run times every library once, the order rotated run by run
            for name in names[i % len(names) :] + names[: i % len(names)]:
                f = fns[name]
                c0, t0 = time.process_time(), time.perf_counter()
                f()
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        med = {k: round(statistics.median(v), 4) for k, v in wall.items()}
        cmed = {k: round(statistics.median(v), 4) for k, v in cpu.items()}

        def ratio(d):
            fastest = min((v for k, v in d.items() if k != "convsee"), default=None)
            return None if not fastest else round(d["convsee"] / fastest, 3)

        res["threads"][str(threads)] = {
            "median_s": med,
            "median_cpu_s": cmed,
            "convsee_vs_fastest_peer": ratio(med),
            "convsee_vs_fastest_peer_cpu": ratio(cmed),
        }
        print(method, threads, res["threads"][str(threads)], file=sys.stderr, flush=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 images at 64x64, 2 runs")
    ap.add_argument("--images", type=int, default=50, help="Grad-CAM's images")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--methods", default="gradcam", help="comma-separated methods of CASES, or 'all'"
    )
    a = ap.parse_args(argv)
    methods = list(CASES) if a.methods == "all" else a.methods.split(",")
    bad = [m for m in methods if m not in CASES]
    if bad:
        ap.error(f"unknown method {bad[0]}; methods: {', '.join(CASES)}")
    runs = 2 if a.quick else a.runs
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": git_commit()}
    result["load_before"] = [round(v, 2) for v in os.getloadavg()]
    out = {}
    for method in methods:
        n, size, layer, opts = CASES[method]
        n = a.images if n is None else n
        if a.quick:
            n, size, layer, opts = QUICK.get(method, (min(n, 4), 64, layer, opts))
        out[method] = bench(method, n, size, layer, opts, runs)
    result["load_after"] = [round(v, 2) for v in os.getloadavg()]
    first = out[methods[0]]
    # the first method's figures at the top (as before --methods), every method's below
    result.update({k: first[k] for k in ("what", "agreement_max_relative", "threads")})
    result["methods"] = out
    return save_result(
        "bench_attribution" + ("" if methods == ["gradcam"] else "_methods"), result, a.quick
    )


if __name__ == "__main__":
    sys.exit(main())
