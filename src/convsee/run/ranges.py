"""A checkpoint's reference colour range per layer, so "global" means the same everywhere.

Measured once over the dataset (a percentile, so one freak image does not mute the rest) and
stored with the weights: `convsee render`, the live page and the views colour a layer on the
same scale whatever is drawn together. Values beyond the range saturate; sidecars keep the
actual value range of every picture.
"""

from __future__ import annotations

import numpy as np

__all__ = ["reference_ranges", "PERCENTILE"]

PERCENTILE = 99.9  # of |value| (signed layers) or value (non-negative ones), over all positions


def reference_ranges(net, source, limit: int = 2000, batch: int = 250) -> dict:
    """{layer name: [lo, hi]} over the first `limit` items of a dataset source (folder.py),
    and a note saying what they are. Every map and vector layer; memory: one sample of
    values per layer (up to 200,000), not every activation."""
    layers = [x for x in net.spec.layers if x.kind in ("map", "vector")]
    rng = np.random.default_rng(0)
    keep = 200_000 // max(1, min(limit, len(source)))  # values kept per image and layer
    samples: dict[str, list[np.ndarray]] = {x.name: [] for x in layers}
    n = 0
    for _, inputs in source.batches(net.prep, batch, limit):
        acts, _ = net.run(net.batch(inputs), layers)
        for x in layers:
            v = acts[x.name].reshape(len(inputs), -1)
            v = np.abs(v) if not x.nonneg else v
            if v.shape[1] > keep:
                idx = rng.choice(v.shape[1], keep, replace=False)
                v = v[:, idx]
            samples[x.name].append(v.ravel())
        n += len(inputs)
    out = {}
    for x in layers:
        hi = float(np.percentile(np.concatenate(samples[x.name]), PERCENTILE))
        hi = hi if hi > 0 else 1e-6
        out[x.name] = [0.0, hi] if x.nonneg else [-hi, hi]
    note = f"{PERCENTILE:g}th percentile of each layer's values over {n:,} images of {source.name}"
    return {"ranges": out, "from": note}
