"""Grad-CAM for a batch of images on the seeded ResNet-18 (benchmarks/resnet.py) at layer4:
convsee's attribute_batch against captum's LayerGradCam, torchcam's GradCAM and
pytorch-grad-cam's GradCAM (each where installed; maps at the layer's resolution, so nobody's
resize is timed except convsee's placement), alternated run by run, median of several runs,
at 1 and 2 threads. The maps are checked equal before timing (<= 1e-4 relative).

    python benchmarks/bench_attribution.py            # 50 images at 224x224, 5 runs
    python benchmarks/bench_attribution.py --quick    # 4 images at 64x64, 2 runs (the test)
"""

from __future__ import annotations

import argparse
import statistics
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


def contenders(model, spec, x, t):
    from convsee.run.attribution import attribute_batch

    xn = x.numpy()
    tt = torch.tensor(t)
    out = {
        "convsee": lambda: (
            attribute_batch(model, xn, spec, layer="layer4", target=t, batch_size=len(t)).layer_maps
        )
    }
    cp = peers.captum()
    if cp is not None:

        def captum():
            g = cp.LayerGradCam(model, model.layer4).attribute(x, target=tt, relu_attributions=True)
            return g[:, 0].detach().numpy()

        out["captum"] = captum
    if peers.torchcam() is not None:
        out["torchcam"] = lambda: peers.torchcam_map("gradcam", model, "layer4", x, t)
    if peers.grad_cam() is not None:
        out["grad-cam"] = lambda: peers.grad_cam_map("gradcam", model, model.layer4, x, t)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 images at 64x64, 2 runs")
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args(argv)
    n, size, runs = (4, 64, 2) if a.quick else (a.images, 224, a.runs)
    from convsee.spec import describe

    model = resnet.resnet18()
    spec = describe(model, (3, size, size), "cpu")
    x = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    t = [int(v) for v in np.random.default_rng(0).integers(0, 1000, n)]
    fns = contenders(model, spec, x, t)
    ref = fns["convsee"]()
    agree = {}
    for name, f in fns.items():
        m = f()
        agree[name] = float(np.abs(m - ref).max() / (np.abs(ref).max() + 1e-30))
        assert agree[name] <= 1e-4, (name, agree[name])
    result = {
        "what": f"Grad-CAM at layer4 of the seeded ResNet-18, {n} images {size}x{size}, "
        "one batch, median seconds",
        "date": time.strftime("%Y-%m-%d"),
        "agreement_max_relative": agree,
        "threads": {},
    }
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times = {k: [] for k in fns}
        names = list(fns)
        for i in range(runs):
            # alternated: each run times every library once, the order rotated run by run
            for name in names[i % len(names) :] + names[: i % len(names)]:
                f = fns[name]
                t0 = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t0)
        med = {k: round(statistics.median(v), 4) for k, v in times.items()}
        fastest_peer = min((v for k, v in med.items() if k != "convsee"), default=None)
        result["threads"][str(threads)] = {
            "median_s": med,
            "convsee_vs_fastest_peer": None
            if fastest_peer is None
            else round(med["convsee"] / fastest_peer, 3),
        }
    return save_result("bench_attribution", result, a.quick)


if __name__ == "__main__":
    sys.exit(main())
