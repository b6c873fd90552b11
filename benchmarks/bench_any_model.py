"""Time `convsee render` on a ResNet-18 (3x224x224, one image, every Conv2d output, every
channel) against the common way people do it: forward hooks on the Conv2d modules and one
matplotlib figure per layer with one subplot per channel. Both run as whole processes,
alternately, several times; wall time and peak RSS (from wait4) go to stdout and
benchmarks/out/any_model.json.

    python benchmarks/bench_any_model.py [--runs 3]

The model is benchmarks/resnet.py (torchvision's ResNet-18 architecture, seeded weights).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from common import add_quick, save_result
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent

COMMON_WAY = textwrap.dedent(
    """
    import math, sys
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from PIL import Image
    sys.path.insert(0, {here!r})
    from resnet import resnet18

    image, out = sys.argv[1], sys.argv[2]
    only = sys.argv[3] if len(sys.argv) > 3 else None  # one layer's name (--quick)
    model = resnet18()
    acts = {{}}
    def keep(name):
        return lambda m, i, o: acts.__setitem__(name, o.detach().clone())
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d) and only in (None, name):
            m.register_forward_hook(keep(name))
    img = Image.open(image).convert("RGB")
    s = 256 / min(img.size)
    img = img.resize((round(img.width * s), round(img.height * s)), Image.BILINEAR)
    left, top = (img.width - 224) // 2, (img.height - 224) // 2
    a = np.asarray(img.crop((left, top, left + 224, top + 224)), np.float32) / 255
    a = (a - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    x = torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32))[None]
    with torch.no_grad():
        model(x)
    for name, t in acts.items():
        c = t.shape[1]
        cols = math.ceil(math.sqrt(c))
        rows = math.ceil(c / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.2))
        for i, ax in enumerate(np.ravel(axes)):
            if i < c:
                ax.imshow(t[0, i].numpy(), cmap="viridis")
                ax.set_title(str(i), fontsize=6)
            ax.axis("off")
        fig.suptitle(name)
        fig.savefig(f"{{out}}/{{name}}.png")
        plt.close(fig)
    """
)


def scene(path: Path) -> None:
    """A 400x300 colour photo stand-in: gradients and two shapes."""
    yy, xx = np.mgrid[:300, :400]
    a = np.stack([xx * 255 / 400, yy * 255 / 300, np.full_like(xx, 120)], -1).astype(np.uint8)
    img = Image.fromarray(a)
    d = ImageDraw.Draw(img)
    d.ellipse([60, 50, 220, 210], fill=(230, 40, 40))
    d.rectangle([240, 80, 360, 250], fill=(30, 60, 200))
    img.save(path, quality=90)


def run(cmd) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of a whole process."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"{cmd[:3]} failed: {p.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each, alternated")
    add_quick(ap)
    a = ap.parse_args()
    if a.quick:
        a.runs = 1
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        image = d / "scene.jpg"
        scene(image)
        script = d / "common_way.py"
        script.write_text(COMMON_WAY.format(here=str(HERE)))
        convsee = [
            sys.executable,
            "-m",
            "convsee",
            "render",
            str(image),
            "--model",
            f"{HERE / 'resnet.py'}:resnet18",
            "--layers",
            "conv1" if a.quick else "type:Conv2d",
            "--channels",
            "all",
        ]
        for i in range(a.runs):
            out1, out2 = d / f"ours{i}", d / f"theirs{i}"
            out2.mkdir()
            ours.append(run([*convsee, "--out", str(out1)]))
            layer = ["conv1"] if a.quick else []
            theirs.append(run([sys.executable, str(script), str(image), str(out2), *layer]))
            n1 = len(list(out1.rglob("*.png")))
            n2 = len(list(out2.glob("*.png")))
    med = statistics.median
    result = {
        "convsee_render_s": [round(w, 2) for w, _ in ours],
        "convsee_peak_rss_mb": [round(r) for _, r in ours],
        "common_way_s": [round(w, 2) for w, _ in theirs],
        "common_way_peak_rss_mb": [round(r) for _, r in theirs],
        "convsee_median_s": round(med(w for w, _ in ours), 2),
        "common_way_median_s": round(med(w for w, _ in theirs), 2),
        "speedup": round(med(w for w, _ in theirs) / med(w for w, _ in ours), 1),
        "pictures": {"convsee": n1, "common_way": n2},
    }
    return save_result("any_model", result, a.quick)


if __name__ == "__main__":
    sys.exit(main())
