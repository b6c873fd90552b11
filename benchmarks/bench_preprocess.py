"""Time preprocess() on what it meets (the live page's 280x280 canvas PNG, a photo, a
12 MP photo, a 28x28 digit) against the preprocessing before photos were handled (issue
12), alternating the two; and how many synthetic photos each reads right.

    python benchmarks/bench_preprocess.py [--data DIR] [--runs 200]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from common import SHARED_MNIST, add_quick, save_result
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def baseline(image, *, size=28, box=20):
    """preprocess() as it was before issue 12 (MNIST mode): the border's median is the
    background, everything brighter than 10% of the peak counts as ink when cropping."""
    from convsee.datasets.images import to_gray

    g = to_gray(image).copy()
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    if np.median(border) > 0.5:
        g, border = 1.0 - g, 1.0 - border
    g = np.clip(g - np.median(border), 0, None)
    if g.max() < 0.08:
        raise ValueError("blank")
    g /= g.max()
    rows, cols = np.flatnonzero(g.max(1) > 0.1), np.flatnonzero(g.max(0) > 0.1)
    g = g[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = g.shape
    s = box / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = Image.fromarray(g, mode="F").resize((nw, nh), Image.Resampling.LANCZOS)
    small = np.clip(np.asarray(small, dtype=np.float32), 0, 1)
    cy, cx = (np.indices(small.shape) * small).reshape(2, -1).sum(1) / max(small.sum(), 1e-8)
    top = int(np.clip(round(size / 2 - cy), 0, size - nh))
    left = int(np.clip(round(size / 2 - cx), 0, size - nw))
    out = np.zeros((size, size), np.float32)
    out[top : top + nh, left : left + nw] = small
    return out


def canvas_png() -> bytes:
    """A 2 drawn on the page: white strokes on an opaque black 280x280 canvas, as its PNG."""
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    d = ImageDraw.Draw(img)
    d.line([(70, 90), (140, 50), (200, 100), (80, 230), (220, 230)], fill="white", width=22)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def times(fns: dict, runs: int) -> dict:
    """Median and min ms of each function, the functions alternating run by run."""
    got = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            got[name].append(time.perf_counter() - t)
    return {
        name: {"median_ms": round(statistics.median(v) * 1e3, 3), "min_ms": round(min(v) * 1e3, 3)}
        for name, v in got.items()
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SHARED_MNIST))
    ap.add_argument("--runs", type=int, default=200)
    add_quick(ap)
    a = ap.parse_args()
    if a.quick:
        a.runs = 3
    from test_photos import N_MNIST, photograph

    from convsee.datasets.digits import preprocess
    from convsee.datasets.idx import MEAN, STD, read_idx
    from convsee.datasets.images import open_image
    from convsee.datasets.inputs import samples
    from convsee.models.checkpoint import load_weights
    from convsee.models.lenet_numpy import forward_all

    rng = np.random.default_rng(0)
    photo = photograph(samples()[5].image, rng)
    big = open_image(photo).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    big_jpeg = buf.getvalue()
    cases = {
        "canvas PNG 280x280": (canvas_png(), a.runs),
        "photo JPEG ~500 px": (photo, a.runs),
        "12 MP photo, decoded (PIL RGB)": (big, max(3, a.runs // 20)),
        "12 MP photo, JPEG bytes": (big_jpeg, max(3, a.runs // 20)),
        "28x28 digit (array)": (samples()[3].image, a.runs),
    }
    result = {"runs": a.runs, "ms": {}}
    for name, (x, runs) in cases.items():
        fns = {"before": lambda x=x: baseline(x), "after": lambda x=x: preprocess(x)}
        if "JPEG bytes" in name:
            fns["decode only"] = lambda x=x: open_image(x).load()
        result["ms"][name] = times(fns, runs)

    images = read_idx(Path(a.data) / "t10k-images-idx3-ubyte.gz", "images")
    labels = read_idx(Path(a.data) / "t10k-labels-idx1-ubyte.gz", "labels")
    rng = np.random.default_rng(12)  # the photos of tests/test_photos.py
    chosen = [(s.image, s.label) for s in samples()]
    chosen += [(images[i] / 255, int(labels[i])) for i in rng.choice(len(images), N_MNIST, False)]
    if a.quick:
        chosen = chosen[:12]
    photos = [(photograph(d, rng), y) for d, y in chosen]
    weights, _ = load_weights()
    result["photos_read_right"] = {}
    for name, fn in (("before", baseline), ("after", preprocess)):
        seen = []
        for jpeg, _ in photos:
            try:
                seen.append(fn(jpeg))
            except Exception:
                seen.append(np.zeros((28, 28), np.float32))
        x = (np.stack(seen)[:, None] - MEAN) / STD
        right = np.mean(forward_all(weights, x)[1].argmax(1) == [y for _, y in photos])
        result["photos_read_right"][name] = f"{right:.3f} of {len(photos)}"
    return save_result("preprocess", result, a.quick)


if __name__ == "__main__":
    sys.exit(main())
