"""The views beside a map on the live page, for any model: a channel's top dataset exemplars
(patches cut to its receptive field) and the input it responds to most.

Nothing is computed up front. `Views.status(layer, unit)` answers at once: the view when it
is ready, else "computing" (and the job is queued). One background thread (jobs.py) runs the
jobs, the most recently asked for first, on its own copy of the torch model, so the page's
updates (which use the model's hooks under TORCH_LOCK) never wait for a view. Each job is
bounded in time: the dataset scan of a layer ranks as many images as fit in `SCAN_SECONDS`
(all 10,000 MNIST test images for LeNet-5; about a hundred for a ResNet-18 at 224x224), the
optimisation runs as many steps as fit in `OPTIMIZE_SECONDS` (between `MIN_STEPS` and
`MAX_STEPS`), and the answer says how many. Results, the per-layer rankings and the queue
are bounded.
"""

from __future__ import annotations

import base64
import copy
import logging
import threading
import time
from collections import OrderedDict

import numpy as np

from ..errors import ConvseeError
from .jobs import QUEUE, RESULTS, Jobs
from .keys import said

__all__ = ["Views", "tile", "K", "SCAN_SECONDS", "OPTIMIZE_SECONDS", "QUEUE", "RESULTS"]

K = 6  # exemplars per channel
SCAN_SECONDS = 4.0  # s: a layer's ranking of dataset images stops after about this long
OPTIMIZE_SECONDS = 4.0  # s: one channel's optimisation takes about this long at most
MIN_STEPS, MAX_STEPS = 16, 100  # optimisation steps (LeNet-5: 100, as `maximize` ran)
TILE = 64  # px: patches and optimised inputs are sent at most this large
PROBE = 16  # images a scan ranks at least
BATCH_VALUES = 1_500_000  # input values in one scan batch (a 3x224x224 image is 150,528)
RANKINGS = 8  # layers whose dataset ranking (top-k per channel) is kept
log = logging.getLogger("convsee.web")


def tile(image: np.ndarray) -> tuple[str, list[int]]:
    """(base64 of 8-bit pixels, shape) of an (h, w) or (h, w, 3) image in [0, 1], averaged
    down to at most TILE px on its longer side."""
    from PIL import Image

    a = np.rint(np.clip(np.asarray(image, np.float32), 0, 1) * 255).astype(np.uint8)
    h, w = a.shape[:2]
    if max(h, w) > TILE:
        s = TILE / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        a = np.asarray(Image.fromarray(a).resize(size, Image.Resampling.BOX))
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode(), list(a.shape)


class Views:
    """Per (layer, unit): its exemplars and its optimised input, computed on request (as jobs
    of jobs.py: one at a time in a background thread, the last asked for first)."""

    def __init__(self, served, lock: threading.Lock):
        self.served = served
        self.lock = lock  # guards the served torch model (copied once, under it)
        self.jobs = Jobs(self._job, name="views")
        self._rankings: OrderedDict = OrderedDict()  # layer name -> TopK
        self._steps: dict = {}  # layer name -> optimisation steps that fit the budget
        self._model = None
        self._shared = False  # the model could not be copied: jobs hold the lock

    @property
    def _thread(self):
        return self.jobs._thread

    @property
    def computed(self) -> int:
        return self.jobs.computed

    # -- asking ------------------------------------------------------------------------------
    def status(self, layer, unit: int) -> dict:
        """{"exemplars": ..., "optimized": ...}, each {"status": "ready", ...}, "computing",
        "failed" (with "why") or "unavailable" (with "why"). Never waits."""
        out = {"layer": layer.name, "unit": unit}
        want = []
        for kind in ("optimized", "exemplars"):  # exemplars queued last: run first
            if kind == "exemplars" and self.served.source is None:
                out[kind] = {
                    "status": "unavailable",
                    "why": self.served.source_why
                    or "no dataset: start convsee serve with --data DIR (IDX files or a "
                    "folder of images)",
                }
                continue
            want.append((kind, layer.name, unit))
        for key, answer in self.jobs.ask(want).items():
            out[key[0]] = answer
        return out

    def stop(self, timeout: float = 10.0) -> None:
        """Drop the queue and wait (up to timeout) for the running view (see Jobs.stop)."""
        self.jobs.stop(timeout)

    def _job(self, key) -> dict:
        """One view's answer; a ConvseeError is its "failed" answer, its parameter named as
        /api/views' query names it."""
        try:
            return self._compute(key)
        except ConvseeError as e:
            return {"status": "failed", "why": said(e, ("layer", "unit"))[:200]}
        except Exception:  # noqa: BLE001 - any model can fail; the page says so
            log.exception("computing the %s view of %s failed", key[0], key[1])
            return {"status": "failed", "why": "it could not be computed (see the log)"}

    # -- computing ---------------------------------------------------------------------------
    def _torch(self):
        """The views' own copy of the torch model (made once, under the served model's lock:
        a copy taken while hooks are set would keep them)."""
        if self._model is None:
            with self.lock:
                model = self.served.torch_model()
                try:
                    self._model = copy.deepcopy(model).eval()
                except Exception:  # noqa: BLE001 - e.g. a TorchScript program
                    self._model, self._shared = model, True
        return self._model

    def _compute(self, key) -> dict:
        kind, name, unit = key
        layer = self.served.spec.layer(name)
        model = self._torch()
        run = self._exemplars if kind == "exemplars" else self._optimized
        if self._shared:
            with self.lock:
                return run(model, layer, unit)
        return run(model, layer, unit)

    def _ranking(self, model, layer):
        """The layer's top-K images per channel over as much of the dataset as fits in
        SCAN_SECONDS (cached per layer)."""
        import torch

        from ..run.exemplars import sample_inputs, scan
        from ..run.units import forward_to

        if layer.name in self._rankings:
            self._rankings.move_to_end(layer.name)
            return self._rankings[layer.name]
        prep, source = self.served.prep, self.served.source
        c, h, w = prep.input_size
        batch = max(1, min(256, BATCH_VALUES // (c * h * w)))
        # the cost of one image, from one batch of the size the scan uses (after a warm-up)
        _, x = sample_inputs(source, prep, batch)
        xt = torch.from_numpy(x)
        forward_to(model, xt[:1], [layer])
        t0 = time.perf_counter()
        forward_to(model, xt, [layer])
        per_image = (time.perf_counter() - t0) / max(1, len(x))
        limit = min(len(source), max(PROBE, int(SCAN_SECONDS / max(per_image, 1e-9))))
        top = scan(model, prep, source, [layer], min(K, limit), batch_size=batch, limit=limit)
        self._rankings[layer.name] = top[layer.name]
        while len(self._rankings) > RANKINGS:
            self._rankings.popitem(last=False)
        return top[layer.name]

    def _exemplars(self, model, layer, unit: int) -> dict:
        from ..draw.channel_views import OUTSIDE, hatched
        from ..run.exemplars import collect

        source = self.served.source
        top = self._ranking(model, layer)
        ex = collect(top, layer, [unit], self.served.prep, source)
        tiles, shape = [], []
        for j, patch in enumerate(ex.patches[0]):  # off the image: hatched, as the CLI draws it
            data, shape = tile(hatched(patch, None if ex.outside is None else ex.outside[0, j]))
            tiles.append(data)
        return {
            "status": "ready",
            "tiles": tiles,
            "shape": shape,
            "size": list(ex.size),  # the patches' size in input pixels
            "values": [round(float(v), 5) for v in ex.values[0]],
            "names": list(ex.names[0]),
            "whole": ex.whole,
            "padded": ex.padded,
            "padded_note": OUTSIDE if ex.padded else "",
            "seen": int(ex.seen),
            "of": len(source),
            "source": ex.source,
        }

    def _optimized(self, model, layer, unit: int) -> dict:
        from ..draw.channel_views import OUTSIDE, hatched
        from ..run.optimize import OptimizeConfig, field_patches, optimize_units

        prep = self.served.prep
        steps = self._steps.get(layer.name)
        if steps is None:
            t0 = time.perf_counter()
            optimize_units(model, prep, layer, [unit], OptimizeConfig(steps=2, rounds=1))
            per_step = (time.perf_counter() - t0) / 2
            steps = int(min(MAX_STEPS, max(MIN_STEPS, OPTIMIZE_SECONDS / max(per_step, 1e-9))))
            self._steps[layer.name] = steps
        cfg = OptimizeConfig(steps=steps, rounds=1)
        spec_layers = self.served.spec.layers
        res = optimize_units(model, prep, layer, [unit], cfg, spec_layers=spec_layers)
        best = self._random_best(model, layer)[unit]
        r0, r1, c0, c1 = (int(v) for v in res.boxes[0])
        padded = res.outside is not None  # some of its field is off the image
        img = res.images[0]
        if not res.whole:  # the part its objective sees; off the image: hatched, as the CLI
            img = hatched(field_patches(res, prep)[0], res.outside[0] if padded else None)
        data, shape = tile(img)
        return {
            "status": "ready",
            "tile": data,
            "shape": shape,
            "size": [r1 - r0 + 1, c1 - c0 + 1],
            "box": [r0, r1, c0, c1],
            "whole": bool(res.whole),
            "value": round(float(res.values[0]), 5),
            "steps": steps,
            "objective": res.objective,
            "random_best": round(float(best), 5),
            "excited": bool(res.values[0] > best),  # False: at or below the best random input
            "pre_activation": res.redirected,
            "padded": padded,
            "padded_note": OUTSIDE if padded else "",
        }

    def _random_best(self, model, layer):
        """(C,) each channel's best over 200 random inputs (64 for inputs over 64x64), once a
        layer: what an optimised input must beat to count as exciting its unit."""
        from ..run.optimize import random_inputs, unit_table

        key = ("random", layer.name)
        if key not in self._steps:
            c, h, w = self.served.prep.input_size
            n = 200 if h * w <= 64 * 64 else 64
            x = random_inputs(self.served.prep, n, 1)
            self._steps[key] = unit_table(model, layer, x, range(layer.channels), "centre").max(0)
        return self._steps[key]
