"""Does a map point where the model looks? Two faithfulness metrics of attribution maps, the
ones the peers ship, computed with the same scores attribution differentiates
(run/targets.py's Scorer):

- road (Rong et al. 2022, "A consistent and efficient evaluation strategy for attribution
  methods"; pytorch-grad-cam's ROADMostRelevantFirst / ROADLeastRelevantFirst): remove a
  fraction of the pixels, the most relevant first ("most": those at or above the map's
  (1 - f) quantile) or the least ("least": at or below its f quantile), fill them by noisy
  linear imputation (each removed pixel the weighted mean of its 8 neighbours, 1/6 the sides
  and 1/12 the corners, all removed pixels solved together) and report score(filled) -
  score(x). A faithful map: a large drop removing the most relevant, a small one the least.
- infidelity (Yeh et al. 2019; captum.metrics.infidelity): the mean over Gaussian
  perturbations I of (sum(I * map) - (S(x) - S(x - I)))^2, optionally with the map first
  scaled by its best factor (normalize). Small is faithful.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConvseeError
from .attribution import rows_per_pass
from .units import device_dtype

__all__ = ["FRACTIONS", "NEIGHBOURS", "impute", "road", "infidelity"]

FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # pytorch-grad-cam's percentiles
# (row, col) offset -> weight: the paper's 8-neighbourhood, summing to 1
NEIGHBOURS = {(dr, dc): (1 / 12 if dr and dc else 1 / 6) for dr in (-1, 0, 1) for dc in (-1, 0, 1)}
NEIGHBOURS.pop((0, 0))
MAX_SAMPLES = 1000  # infidelity's perturbations per input (each a forward pass's row)
CG_TOL = 1e-12  # relative residual at which the imputation's conjugate gradients stop


def _shift(v, dr, dc):
    """v (..., H, W) moved so out[..., r, c] = v[..., r + dr, c + dc], zero outside."""
    out = np.zeros_like(v)
    h, w = v.shape[-2:]
    rs, re = max(0, -dr), min(h, h - dr)
    cs, ce = max(0, -dc), min(w, w - dc)
    out[..., rs:re, cs:ce] = v[..., rs + dr : re + dr, cs + dc : ce + dc]
    return out


def impute(img, keep, noise: float = 0.0, rng=None):
    """img (C, H, W) with the pixels where keep (H, W) is False replaced by the solution of
    sum_j w_ij (x_j - x_i) = 0 over each one's in-image neighbours j (conjugate gradients on
    that symmetric positive definite system, float64), plus Gaussian noise of std `noise`."""
    img = np.asarray(img, np.float64)
    keep = np.asarray(keep, bool)
    gone = ~keep
    if keep.all():
        return img.copy()
    if not keep.any():
        raise ConvseeError("{param} removes every pixel: nothing is left to fill from", "fraction")
    inside = np.ones(keep.shape)
    diag = sum(w * _shift(inside, dr, dc) for (dr, dc), w in NEIGHBOURS.items())

    def op(v):  # v (C, H, W), zero where kept -> M v on the removed pixels
        nb = sum(w * _shift(v, dr, dc) for (dr, dc), w in NEIGHBOURS.items())
        return (diag * v - nb) * gone

    known = img * keep
    b = sum(w * _shift(known, dr, dc) for (dr, dc), w in NEIGHBOURS.items()) * gone
    x = np.zeros_like(img)
    r = b - op(x)
    p = r.copy()
    rr = (r * r).sum((1, 2))  # per channel: C independent systems, one matrix
    stop = CG_TOL**2 * np.maximum((b * b).sum((1, 2)), 1e-300)
    for _ in range(4 * int(gone.sum()) + 10):  # exact after n steps in exact arithmetic
        if (rr <= stop).all():
            break
        q = op(p)
        a = rr / np.maximum((p * q).sum((1, 2)), 1e-300)
        x += a[:, None, None] * p
        r -= a[:, None, None] * q
        rr, prev = (r * r).sum((1, 2)), rr
        p = r + (rr / np.maximum(prev, 1e-300))[:, None, None] * p
    if noise:
        x += gone * (rng or np.random.default_rng(0)).normal(0.0, noise, img.shape)
    return np.where(keep, img, x)


def _kept(m, f: float, order: str):
    """(H, W) bool: the pixels left when the fraction f of map m (H, W) is removed, the most
    or the least relevant first. As many pixels go as pytorch-grad-cam's percentile rule
    removes from a map without ties (so the two agree there); ties are broken by position,
    so a flat map (or a CAM's zeros) still loses exactly that many, never every pixel."""
    n = m.size
    k = int((np.arange(n) >= np.percentile(np.arange(n), 100 * (1 - f))).sum())
    ranked = np.argsort(m.ravel(), kind="stable")  # least relevant first
    keep = np.ones(n, bool)
    keep[ranked[n - k :] if order == "most" else ranked[:k]] = False
    return keep.reshape(m.shape)


SCORED = ("target", "quantity", "position", "output", "output_spec")  # as attribute_batch's


class _Scored:
    """The scores of one model for the inputs x (N, C, H, W): the Scorer of `what` (SCORED
    keys), `base` (N,) float64 of x itself (which also fixes each input's class), and
    `of(batch (B, C, H, W) NumPy, rows)` for perturbed copies of inputs `rows`."""

    def __init__(self, model, x, what: dict):
        import torch

        from .capture import eval_mode
        from .targets import Scorer

        bad = sorted(set(what) - set(SCORED))
        if bad:
            raise ConvseeError(f"unknown option {bad[0]!r}; options: {', '.join(SCORED)}", bad[0])
        if x.ndim != 4 or not len(x):
            raise ConvseeError(f"{{param}} must be a batch (N, C, H, W), got shape {x.shape}", "x")
        self.model, self.output = model, what.get("output")
        self.device, self.dtype = device_dtype(model)
        self.scorer = Scorer(
            what.get("target"),
            what.get("quantity"),
            what.get("position"),
            what.get("output_spec"),
            n=len(x),
        )
        step = rows_per_pass(x.shape)  # a large batch in slices: bounded memory
        with eval_mode(model):
            self.base = np.concatenate(
                [
                    self._pass(
                        torch.from_numpy(x[i : i + step]),
                        np.arange(i, min(i + step, len(x))),
                        True,
                    )
                    for i in range(0, len(x), step)
                ]
            )

    def _pass(self, xt, rows, plain):
        import torch

        from .capture import select_output
        from .targets import softmax_inputs

        with softmax_inputs(self.model) as seen, torch.no_grad():
            out = self.model(xt.to(self.device, self.dtype))
            s = self.scorer(select_output(out, self.output), seen, rows, plain)
            return s.double().cpu().numpy()

    def of(self, batch, rows):
        import torch

        from .capture import eval_mode

        with eval_mode(self.model):
            return self._pass(torch.from_numpy(np.asarray(batch, np.float32)), rows, False)


def _check_maps(maps, x):
    maps = np.asarray(maps, np.float64)
    n, c, h, w = x.shape
    if maps.shape not in ((n, h, w), (n, c, h, w)):
        raise ConvseeError(
            f"{{param}} must be (N, H, W) or (N, C, H, W) like the inputs {x.shape}, got "
            f"{maps.shape}",
            "maps",
        )
    return maps


def road(
    model,
    x,
    maps,
    *,
    order: str = "most",
    fractions=FRACTIONS,
    noise: float = 0.0,
    seed: int = 0,
    **what,
):
    """(N, len(fractions)) score(x with the fraction f of its pixels removed and imputed) -
    score(x), for maps (N, H, W) on the input grid (e.g. Attributions.maps); order "most" or
    "least" relevant first, or "combined" ((least - most) / 2, pytorch-grad-cam's ROADCombined;
    large is faithful). x: (N, C, H, W) model inputs (normalised as the model takes them);
    what: target, quantity, position, output, output_spec as attribute_batch takes them.
    noise: std of the imputation's noise (the paper's 0.01 on its inputs; 0 makes the metric
    deterministic)."""
    if order not in ("most", "least", "combined"):
        raise ConvseeError(
            f"{{param}} must be 'most', 'least' or 'combined', got {order!r}", "order"
        )
    if order == "combined":
        kw = dict(fractions=fractions, noise=noise, seed=seed, **what)
        most = road(model, x, maps, order="most", **kw)
        return (road(model, x, maps, order="least", **kw) - most) / 2
    x = np.asarray(x, np.float32)
    fr = [float(f) for f in fractions]
    if not fr or not all(0 < f < 1 for f in fr):
        raise ConvseeError(f"{{param}} must be fractions in (0, 1), got {fractions!r}", "fractions")
    scored = _Scored(model, x, what)
    maps = _check_maps(maps, x)
    maps = maps if maps.ndim == 3 else maps.sum(1)
    rng = np.random.default_rng(seed)
    out = np.zeros((len(x), len(fr)))
    for i, (img, m) in enumerate(zip(x, maps, strict=True)):
        filled = [impute(img, _kept(m, f, order), noise, rng) for f in fr]
        out[i] = scored.of(np.stack(filled), np.full(len(fr), i)) - scored.base[i]
    return out


def infidelity(
    model,
    x,
    maps,
    *,
    samples: int = 10,
    sigma: float = 0.1,
    normalize: bool = False,
    seed: int = 0,
    perturbations=None,
    std=None,
    **what,
):
    """(N,) infidelity of maps (N, C, H, W), or (N, H, W) applied to every channel, for inputs
    x (N, C, H, W): the mean over `samples` perturbations I ~ N(0, sigma^2) per input of
    (sum(I * map) - (S(x) - S(x - I)))^2; normalize: the map first scaled by the factor that
    makes that mean least (captum's normalize). perturbations: (N, samples, C, H, W) to use
    instead of the seeded draws. std: per channel; when given, I is on the pixel scale of
    the maps and reaches the model as I / std (x normalised as (pixel - mean) / std). what:
    as road's."""
    x = np.asarray(x, np.float32)
    scored = _Scored(model, x, what)
    maps = _check_maps(maps, x)
    maps = np.broadcast_to(maps if maps.ndim == 4 else maps[:, None], x.shape)
    n = len(x)
    if perturbations is None:
        if not (isinstance(samples, int) and 1 <= samples <= MAX_SAMPLES) or not sigma > 0:
            raise ConvseeError(
                f"{{param}} must be 1..{MAX_SAMPLES} and sigma > 0, got {samples!r}, {sigma!r}",
                "samples",
            )
        perturbations = np.random.default_rng(seed).normal(0.0, sigma, (n, samples, *x.shape[1:]))
    pert = np.asarray(perturbations, np.float32)
    if pert.ndim != 5 or pert.shape[0] != n or pert.shape[2:] != x.shape[1:]:
        raise ConvseeError(f"{{param}} must be (N, S, C, H, W), got {pert.shape}", "perturbations")
    s = pert.shape[1]
    scale = 1.0 if std is None else np.resize(np.asarray(std, np.float32), x.shape[1])
    scale = np.reshape(scale, (-1, 1, 1))
    after = np.zeros((n, s))
    step = rows_per_pass(x.shape)
    for i in range(n):  # at most a pass's worth of perturbed inputs at a time
        for k in range(0, s, step):
            moved = x[i] - pert[i, k : k + step] / scale
            after[i, k : k + step] = scored.of(moved, np.full(len(moved), i))
    drop = scored.base[:, None] - after  # (N, S)
    said = np.einsum("nschw,nchw->ns", pert, maps.astype(np.float32), dtype=np.float64)
    if normalize:
        beta = (said * drop).mean(1) / np.maximum((said * said).mean(1), 1e-300)
        said = beta[:, None] * said
    return ((said - drop) ** 2).mean(1)
