"""Activation maximisation: the input each channel of any layer responds to most, for any model.

The image is a bounded parameterisation in the model's [0, 1] pixel space, normalised with the
model's mean and std before it goes in: pixels = sigmoid(decorrelate(raw) + logit(mean)),
where raw is either one free value per pixel ("pixel") or a spectrum scaled by 1/frequency
whose inverse FFT gives the image ("fft", Lucid's Fourier parameterisation, which favours the
smooth, natural-image-like patterns a network reads over high-frequency noise); for RGB the
colours live in Lucid's decorrelated colour space. Each Adam step sees the image randomly
shifted, scaled and rotated (one random transform per image, a differentiable affine resample;
the shift in proportion to the unit's receptive field, so a 5x5 field is not shaken off),
which keeps what is found robust, hence readable; the last steps run without transforms so the
value reached is the value of the image shown. Several restarts per unit run side by side in
one batch and the best is kept; units still below a baseline (the best of random inputs, the
best a dataset sample reaches) get more rounds: new starts, twice the steps of the round before,
and the random transforms weaker each round (none in the last, which also uses free pixels).

The objective of a map channel is its centre neuron (row H // 2, col W // 2: one unit, whose
receptive field is the middle of the input) or, with objective="mean", its mean over the map;
of a vector layer (a Linear layer, class logits) the unit itself.

The baselines use the same objective, except the dataset's, which for the centre neuron takes
each image's best position (a patch anywhere could be moved to the centre).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from ..datasets.transforms import Preprocess
from ..errors import ConvseeError
from ..spec import Layer, select_channels
from .units import (
    OBJECTIVES,
    centre_of,
    check_layers,
    crop,
    display,
    field_box,
    forward_to,
    model_device,
    outside,
    runner,
    torch_model,
    unit_values,
    whole_image,
)

__all__ = [
    "OptimizeConfig",
    "Optimized",
    "Baselines",
    "optimize_units",
    "optimize",
    "baselines",
    "choose_units",
    "random_inputs",
    "objective_name",
    "field_patches",
    "maximize",
    "target_value",
    "Stop",
    "excited",
    "pre_activation",
]

PARAMS = ("auto", "pixel", "fft")
BUDGET = "time budget reached"  # Stop.why() once its deadline is due
# with a time budget, the first chunk of units still runs this many steps (else a budget too
# short for anything would give an empty result)
MIN_STEPS = 3

# Lucid's colour decorrelation: the square root of ImageNet's colour correlation (from its
# SVD), columns scaled to unit norm at most
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
_COLOR = _COLOR_SQRT / np.max(np.linalg.norm(_COLOR_SQRT, axis=0))


@dataclass
class OptimizeConfig:
    steps: int = 150  # Adam steps in the first round (round r: steps * 2**r)
    lr: float | None = None  # Adam step size; None: 0.1 for pixel, 0.05 for fft (Lucid's)
    restarts: int = 1  # independent starts per unit, run side by side; the best is kept
    rounds: int = 3  # at most this many rounds for a unit below a baseline (1: no retry);
    # round r: new starts, steps * 2**r, transforms at strength 1 - r / (rounds - 1)
    param: str = "auto"  # pixel | fft | auto (fft for colour models, pixel for grayscale)
    decorrelate: bool = True  # RGB: optimise in Lucid's decorrelated colour space
    init: float | None = None  # std of the random start; None: 0.1 (pixel, logit units),
    # 0.01 (fft, Lucid's); 3x more each later round (a start where every ReLU is off has no
    # gradient)
    jitter: float = 0.1  # random shift each step: this fraction of the field's side, px
    max_jitter: int = 8  # px, the largest shift whatever the field
    scale: float = 0.05  # random scale each step in [1 - scale, 1 + scale]
    rotate: float = 5.0  # random rotation each step in [-rotate, rotate], degrees
    polish: float = 0.2  # fraction of the steps at the end without random transforms
    polish_lr: float = 0.2  # their step size, relative to lr (small: refine, do not re-draw)
    objective: str = "centre"  # map channels: centre neuron | mean over the map
    seed: int = 0  # the starts and the transforms
    batch: int | None = None  # images per forward pass (None: as many as ~1 GB of
    # activations holds, at most 64); the result does not depend on it
    redirect: bool = True  # where a unit is 0 after a ReLU, lead its gradient through the
    # ReLU to the pre-activation (Lucid's redirected ReLU), so a dead unit can still rise

    def check(self) -> None:
        if not 1 <= self.steps <= 100000:
            raise ConvseeError(f"{{param}} must be 1..100000, got {self.steps}", "steps")
        if not 1 <= self.restarts <= 64:
            raise ConvseeError(f"{{param}} must be 1..64, got {self.restarts}", "restarts")
        if not 1 <= self.rounds <= 10:
            raise ConvseeError(f"{{param}} must be 1..10, got {self.rounds}", "rounds")
        if self.param not in PARAMS:
            raise ConvseeError(f"unknown parameterisation {self.param!r}; valid: {PARAMS}", "param")
        if self.objective not in OBJECTIVES:
            raise ConvseeError(
                f"unknown {{param}} {self.objective!r}; valid: {OBJECTIVES}", "objective"
            )
        if self.batch is not None and not 1 <= self.batch <= 4096:
            raise ConvseeError(f"{{param}} must be 1..4096, got {self.batch}", "batch")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConvseeError(f"{{param}} must be a positive number, got {self.lr}", "lr")


@dataclass
class Optimized:
    layer: str
    units: list[int]  # the channels (or vector units) optimised, in order
    images: np.ndarray  # (U, H, W) or (U, H, W, 3): the whole input, pixels in [0, 1]
    x: np.ndarray  # (U, C, H, W) the normalised model input (what was evaluated)
    values: np.ndarray  # (U,) the objective reached by that input
    boxes: np.ndarray  # (U, 4) input rows and cols (inclusive) the objective sees
    whole: bool  # the objective sees the whole input
    objective: str  # in words, e.g. "centre neuron (12, 12) of each channel's map"
    rounds: np.ndarray  # (U,) rounds each unit ran (more than 1: it was retried)
    param: str  # the parameterisation used
    seconds: float
    steps: np.ndarray | None = None  # (U,) Adam steps the kept image ran (all rounds)
    stopped: str | None = None  # why the optimisation stopped early (time budget, signal)
    redirected: str | None = None  # the pre-activation optimised where the unit was 0
    outside: np.ndarray | None = None  # (U, h, w) bool: True where a unit's field (its box)
    # is off the image; None when no unit's field leaves it


@dataclass
class Baselines:
    random_mean: np.ndarray  # (U,) mean objective over random inputs
    random_best: np.ndarray  # (U,) best objective over random inputs
    n_random: int
    data_best: np.ndarray | None  # (U,) best over a dataset sample (maps: any position)
    n_data: int

    def bar(self) -> np.ndarray:
        """(U,) what a successful optimisation must beat: the best of both."""
        if self.data_best is None:
            return self.random_best
        return np.maximum(self.random_best, self.data_best)


def objective_name(layer: Layer, objective: str) -> str:
    if layer.kind != "map":
        return "unit (vector layer)"
    if objective == "mean":
        return "mean over each channel's map"
    r, c = centre_of(layer)
    return f"centre neuron (row {r}, col {c}) of each channel's map"


# ---------------------------------------------------------------------------------------------
# the parameterisation
# ---------------------------------------------------------------------------------------------


class _Image:
    """Parameters -> images (B, C, H, W) in [0, 1]."""

    def __init__(self, kind, b, prep: Preprocess, cfg: OptimizeConfig, gens, device, init: float):
        import torch

        c, h, w = prep.input_size
        self.kind, self.shape = kind, (b, c, h, w)
        mean = np.clip(prep.channel_mean(), 0.02, 0.98)
        self.offset = torch.tensor(np.log(mean / (1 - mean)), device=device).view(1, c, 1, 1)
        self.color = None
        if c == 3 and cfg.decorrelate:
            self.color = torch.tensor(_COLOR.T, device=device)
        if kind == "fft":
            fy = np.fft.fftfreq(h)[:, None]
            fx = np.fft.rfftfreq(w)[None, :]
            freqs = np.sqrt(fx * fx + fy * fy)
            scale = 1.0 / np.maximum(freqs, 1.0 / max(h, w))  # 1/f: natural images' spectrum
            self.scale = torch.tensor(scale, dtype=torch.float32, device=device)[None, None]
            shape = (b, c, h, w // 2 + 1, 2)
        else:
            shape = (b, c, h, w)
        # one generator per image: a unit's start does not depend on what it is batched with
        rows = [torch.randn(shape[1:], generator=g) for g in gens]
        self.param = (torch.stack(rows) * init).to(device).requires_grad_(True)

    def __call__(self):
        import torch

        b, c, h, w = self.shape
        p = self.param
        if self.kind == "fft":
            spec = torch.view_as_complex(p) * self.scale
            p = torch.fft.irfft2(spec, s=(h, w), norm="ortho") / 4  # Lucid's scaling
        if self.color is not None:
            p = torch.einsum("bchw,cd->bdhw", p, self.color)
        return torch.sigmoid(p + self.offset)


def _transform(img, gens, shift_px: int, scale: float, rotate: float):
    """A random shift (whole pixels), scale and rotation about the centre, one per image (each
    drawn from that image's generator); bilinear resampling, the border reflected."""
    import torch
    import torch.nn.functional as F

    b, _, h, w = img.shape
    if shift_px == 0 and scale == 0 and rotate == 0:
        return img
    u = torch.stack([torch.rand(4, generator=g) for g in gens])
    ang = (u[:, 0] * 2 - 1) * math.radians(rotate)
    s = 1 + (u[:, 1] * 2 - 1) * scale
    d = torch.stack([torch.randint(-shift_px, shift_px + 1, (2,), generator=g) for g in gens])
    d = d.float()
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    theta[:, 0, 2], theta[:, 1, 2] = 2 * d[:, 1] / w, 2 * d[:, 0] / h
    grid = F.affine_grid(theta.to(img.device, img.dtype), list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _normalise(img, prep: Preprocess):
    return (img - _stats(prep, 0, img.device)) / _stats(prep, 1, img.device)


def _stats(prep: Preprocess, which: int, device):
    """The model's mean (which=0) or std (1) as a (1, C, 1, 1) tensor."""
    import torch

    v = prep.channel_mean() if which == 0 else prep.channel_std()
    return torch.tensor(v, device=device).view(1, -1, 1, 1)


def _shift_px(layer: Layer, prep: Preprocess, cfg: OptimizeConfig) -> int:
    _, h, w = prep.input_size
    if whole_image(layer, (h, w)) or cfg.objective == "mean":
        side = min(h, w)
    else:
        side = min(layer.field.size)
    return int(min(cfg.max_jitter, math.floor(cfg.jitter * side)))


def _value(model, layer, x, units, objective, grad):
    out = forward_to(model, x, [layer], grad=grad)[layer.name]
    return unit_values(out.float(), units, objective)


class Stop:
    """When to stop early: a deadline (time.perf_counter() seconds) and/or a request (set by a
    signal handler). An optimisation checks it between Adam steps and keeps what it has."""

    def __init__(self, deadline: float | None = None):
        self.deadline = deadline
        self.requested: str | None = None

    def why(self) -> str | None:
        if self.requested:
            return self.requested
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            return BUDGET
        return None

    def cut(self, floor: bool = False) -> str | None:
        """why(), but None for a due deadline while floor (work that runs whatever the
        budget); a request (a signal) stops it all the same."""
        why = self.why()
        return None if floor and why == BUDGET else why


def _redirect_mode():
    """A torch function mode under which every ReLU and ReLU6 (modules, F.relu, torch.relu,
    F.relu6, F.hardtanh clamping at 0, in place or not) computes the same values, but passes
    its gradient back to the pre-activation for an image whose ReLU gradient is all zero
    (Lucid's redirected ReLU: the gradient that would push a negative input further down is
    dropped, and for ReLU6 the one that would push an input above 6 further up). The loss is
    minimised (-objective)."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    class Redirected(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, hi):
            ctx.save_for_backward(x)
            ctx.hi = hi
            return x.clamp(min=0) if hi is None else x.clamp(0, hi)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            hi = ctx.hi
            live = x > 0 if hi is None else (x > 0) & (x < hi)
            plain = g * live
            moved = torch.where((x < 0) & (g > 0), torch.zeros_like(g), g)
            if hi is not None:
                moved = torch.where((x > hi) & (g < 0), torch.zeros_like(g), moved)
            if x.dim() == 0:
                return plain, None
            dead = plain.flatten(1).abs().amax(1) == 0
            return torch.where(dead.view(-1, *[1] * (x.dim() - 1)), moved, plain), None

    relus = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}
    relus.add(getattr(F, "relu_", F.relu))
    in_place = {torch.relu_, torch.Tensor.relu_, getattr(F, "relu_", None)}

    def clamp_of(func, args, kwargs):
        """(upper bound or None, in place) if func is a ReLU or a ReLU6, else None."""
        if not args or not isinstance(args[0], torch.Tensor):
            return None
        if func in relus:
            return None, bool(kwargs.get("inplace", len(args) > 1 and args[1])) or (
                func in in_place
            )
        if func is F.relu6:
            return 6.0, bool(kwargs.get("inplace", len(args) > 1 and args[1]))
        if func is F.hardtanh:  # nn.ReLU6 is Hardtanh(0, 6)
            named = dict(zip(("min_val", "max_val", "inplace"), args[1:], strict=False))
            named.update(kwargs)
            if float(named.get("min_val", -1.0)) == 0.0:
                return float(named.get("max_val", 1.0)), bool(named.get("inplace", False))
        return None

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            c = clamp_of(func, args, kwargs)
            if c is not None:
                (hi, inplace), x = c, args[0]
                out = Redirected.apply(x, hi)
                if inplace and not x.requires_grad:
                    return x.copy_(out)
                return out
            return func(*args, **kwargs)

    return Mode()


def pre_activation(net_layers: list[Layer], layer: Layer) -> str | None:
    """In words, what the redirected ReLU optimises where `layer`'s unit is 0: the input of the
    last ReLU at or before it (through pooling), or None when no ReLU makes it non-negative."""
    if not layer.nonneg:
        return None
    names = [x.name for x in net_layers]
    if layer.name not in names:
        return None
    i = names.index(layer.name)
    if not layer.leaf:  # a container: its output is its last ReLU's (listed after it)
        inside = [j for j, x in enumerate(net_layers) if x.module.startswith(layer.module + ".")]
        if inside:
            i = inside[-1]
    for j in range(i, -1, -1):
        x = net_layers[j]
        if x.type in ("ReLU", "ReLU6"):
            if x.conv is not None and j > 0:
                return f"{net_layers[j - 1].name} (the input of {x.name})"
            return f"the input of {x.name}"
        if not x.nonneg:
            break
    if layer.type not in ("ReLU",) and layer.conv is None and not layer.leaf:
        return f"the input of the last ReLU in {layer.name}"
    return None


def _gens(seed: int, rnd: int, units, restarts: int):
    """One generator per (restart, unit) row, seeded by (seed, round, unit, restart) only."""
    import torch

    return [
        torch.Generator().manual_seed(int(seed) * 1_000_003 + rnd * 7919 + u * 131 + k)
        for k in range(restarts)
        for u in units
    ]


class _Chunk:
    """One round of a few units (each cfg.restarts times) side by side in one batch."""

    def __init__(self, run, layer, prep, units, cfg, rnd, steps, param, strength, lr, init, dev):
        import torch

        from .optim import Adam

        self.run, self.layer, self.prep, self.cfg = run, layer, prep, cfg
        u, r = len(units), cfg.restarts
        self.u, self.r = u, r
        self.gens = _gens(cfg.seed, rnd, units, r)
        self.image = _Image(param, u * r, prep, cfg, self.gens, dev, init)
        self.rows = torch.tensor(np.tile(np.asarray(units), r), device=dev)
        self.opt = Adam([self.image.param], lr=lr)
        self.lr = lr
        self.shift = int(_shift_px(layer, prep, cfg) * strength)
        self.scale, self.rotate = cfg.scale * strength, cfg.rotate * strength
        self.mean, self.std = _stats(prep, 0, dev), _stats(prep, 1, dev)
        self.steps, self.done = steps, 0

    def step(self) -> None:
        import torch

        free = self.steps - int(round(self.cfg.polish * self.steps))  # with random transforms
        img = self.image()
        if self.done < free:
            img = _transform(img, self.gens, self.shift, self.scale, self.rotate)
        else:
            self.opt.lr = self.lr * self.cfg.polish_lr
        out = self.run((img - self.mean) / self.std)[self.layer.name].float()
        val = unit_values(out, self.rows, self.cfg.objective)
        (g,) = torch.autograd.grad(-val.sum(), [self.image.param])
        self.image.param.grad = g
        self.opt.step()
        self.done += 1

    def result(self):
        """(images (R, U, C, H, W) in [0, 1], values (R, U)), evaluated without transforms."""
        import torch

        with torch.no_grad():
            img = self.image()
        out = self.run((img - self.mean) / self.std)[self.layer.name].detach().float()
        val = unit_values(out, self.rows, self.cfg.objective)
        shape = img.shape
        return (
            img.detach().float().cpu().numpy().reshape(self.r, self.u, *shape[1:]),
            val.float().cpu().numpy().reshape(self.r, self.u),
        )


def _lr(kind: str, cfg: OptimizeConfig, steps: int) -> float:
    """Adam's step size: cfg.lr, else 0.1 for pixels, 0.05 for fft (Lucid's), the fft one
    larger when there are fewer than 150 steps (up to 4x at 15 steps or fewer: on ResNet-18's
    layer4, 15 fft steps at 0.05 stayed below random inputs, at 0.2 they beat them 8 of 8)."""
    if cfg.lr:
        return cfg.lr
    if kind != "fft":
        return 0.1
    return 0.05 * min(4.0, max(1.0, (150 / max(steps, 1)) ** 0.6))


def auto_batch(layer_shapes, input_size, restarts: int = 1, memory: float = 1e9) -> int:
    """Images per forward pass: as many as ~`memory` bytes of activations (kept for the
    backward pass, about 3 floats per output value) hold, 1..64."""
    per = 4 * 3 * (int(np.prod(input_size)) + sum(int(np.prod(s)) for s in layer_shapes))
    return int(max(1, min(64, memory // max(per, 1))))


def _batch_for(model, layer, prep, cfg, spec_layers=None) -> int:
    if cfg.batch:
        return cfg.batch
    shapes = [layer.shape]
    if spec_layers:
        names = [x.name for x in spec_layers]
        if layer.name in names:
            shapes = [x.shape for x in spec_layers[: names.index(layer.name) + 1]]
    return auto_batch(shapes, prep.input_size, cfg.restarts)


def optimize_units(
    model,
    prep: Preprocess,
    layer: Layer,
    units,
    cfg: OptimizeConfig | None = None,
    bar: np.ndarray | None = None,
    *,
    stop: Stop | None = None,
    progress=None,
    spec_layers: list[Layer] | None = None,
) -> Optimized:
    """The input that maximises each unit's objective (see the module doc).

    bar: (U,) values each unit should beat (Baselines.bar()); units below it after a round
    get another, up to cfg.rounds. Units run cfg.batch images at a time (each unit's starts and
    transforms come from its own seed, so the result does not depend on the batching).
    stop: a Stop; with a deadline the steps are cut to what fits before it (measured on the
    first steps), and when it is due the units started keep the image they have, the others
    are left out (Optimized.stopped says why). progress(n): called after each step with the
    number of unit-steps done. The model's modes are restored and its parameters' .grad
    untouched."""
    cfg = cfg or OptimizeConfig()
    cfg.check()
    check_layers([layer], "optimize")
    units = _checked_units(layer, units)
    c = prep.input_size[0]
    param = cfg.param if cfg.param != "auto" else ("fft" if c == 3 else "pixel")
    t0 = time.perf_counter()
    search = _Search(model, prep, layer, units, cfg, param, stop, progress)
    per_batch = max(1, _batch_for(model, layer, prep, cfg, spec_layers) // cfg.restarts)
    with runner(model, [layer], grad=True) as run:
        search.run(run, bar, per_batch)
    return search.result(param, t0, spec_layers)


def _checked_units(layer: Layer, units) -> list[int]:
    """The units as ints, each a channel of the layer."""
    units = [int(u) for u in units]
    bad = [u for u in units if not 0 <= u < layer.channels]
    if bad:
        raise ConvseeError(
            f"channel {max(bad)} is out of range; {layer.name} has {layer.channels} channels "
            f"(0-{layer.channels - 1})",
            "channels",
        )
    return units


def _round_plan(cfg: OptimizeConfig, param: str, rnd: int):
    """(kind, strength, steps, lr, init) of round rnd: later rounds run twice the steps of the
    one before, from starts 3x wider, with transforms weaker and weaker (none in the last),
    which some units (high-frequency ones, untrained networks) need to reach their best; the
    last of several rounds uses free pixels, which reach any image fastest."""
    strength = 1.0 - rnd / (cfg.rounds - 1) if cfg.rounds > 1 else 1.0
    kind = "pixel" if rnd and rnd == cfg.rounds - 1 else param
    lr = _lr(kind, cfg, cfg.steps * 2**rnd)
    init = (cfg.init or (0.01 if kind == "fft" else 0.1)) * 3**rnd
    return kind, strength, cfg.steps * 2**rnd, lr, init


class _Search:
    """The rounds of optimize_units: per unit the best image and value so far and the rounds
    and steps it ran; the time one step takes (measured once) and why it stopped early."""

    def __init__(self, model, prep, layer, units, cfg, param, stop, progress):
        c, h, w = prep.input_size
        self.model, self.prep, self.layer, self.units, self.cfg = model, prep, layer, units, cfg
        self.param, self.stop, self.progress = param, stop, progress
        self.dev = model_device(model)
        self.best_img = np.zeros((len(units), c, h, w), np.float32)
        self.best_val = np.full(len(units), -np.inf, np.float32)
        self.rounds = np.zeros(len(units), np.int64)
        self.steps_run = np.zeros(len(units), np.int64)
        self.started = np.zeros(len(units), bool)
        self.stopped = None
        self.per_step = None  # seconds one step of one chunk takes
        self.mode = _redirect_mode() if cfg.redirect else contextlib.nullcontext()

    def run(self, run, bar, per_batch: int) -> None:
        """Round after round, the units still to do in chunks of per_batch; after a round only
        those at or below bar (none when bar is None)."""
        cfg, stop, layer, prep, dev = self.cfg, self.stop, self.layer, self.prep, self.dev
        todo = list(range(len(self.units)))
        for rnd in range(cfg.rounds):
            kind, strength, steps, lr, init = _round_plan(cfg, self.param, rnd)
            chunks = [todo[i : i + per_batch] for i in range(0, len(todo), per_batch)]
            if rnd and stop is not None and stop.deadline is not None and self.per_step:
                left = stop.deadline - time.perf_counter()
                fit = int(left * 0.9 / (self.per_step * len(chunks)))
                if fit < 4:
                    break
                steps = min(steps, fit)
                lr = _lr(kind, cfg, steps)
            for ci, idx in enumerate(chunks):
                # the first chunk runs whatever the budget (MIN_STEPS steps at least)
                first = rnd == 0 and ci == 0
                if stop is not None and stop.cut(first):
                    self.stopped = stop.why()
                    break
                sub = [self.units[i] for i in idx]
                ch = _Chunk(run, layer, prep, sub, cfg, rnd, steps, kind, strength, lr, init, dev)
                steps, lr = self._steps(ch, kind, first, len(chunks) - ci)
                self._keep(ch, idx)
                if self.stopped:
                    break
            if self.stopped or bar is None:
                break
            todo = [i for i in todo if not self.best_val[i] > bar[i]]
            if not todo:
                break

    def _steps(self, ch: _Chunk, kind: str, first: bool, chunks_left: int):
        """Run one chunk's steps. After the second step of the first chunk, how long one step
        takes is known: with a deadline, this chunk's steps and those of the chunks after it
        are cut to fit. (steps, lr) for the chunks after it."""
        stop, steps, lr = self.stop, ch.steps, ch.lr
        t_chunk = time.perf_counter()
        while ch.done < ch.steps:
            with self.mode:
                ch.step()
            if self.progress is not None:
                self.progress(ch.u)
            if ch.done == 2 and self.per_step is None:
                self.per_step = (time.perf_counter() - t_chunk) / 2
                if stop is not None and stop.deadline is not None:
                    left = stop.deadline - time.perf_counter()
                    fit = int(left * 0.9 / (self.per_step * chunks_left)) + 2
                    if fit < steps:
                        steps = ch.steps = max(fit, MIN_STEPS)
                        lr = ch.lr = ch.opt.lr = _lr(kind, self.cfg, steps)
            if stop is not None and stop.cut(first and ch.done < MIN_STEPS):
                self.stopped = stop.why()
                break
        return steps, lr

    def _keep(self, ch: _Chunk, idx: list[int]) -> None:
        """Each unit of the chunk keeps its best restart where it beats what it had."""
        imgs, vals = ch.result()
        pick = vals.argmax(0)
        for j, i in enumerate(idx):
            self.rounds[i] += 1
            self.started[i] = True
            if vals[pick[j], j] > self.best_val[i]:
                self.best_val[i] = vals[pick[j], j]
                self.best_img[i] = imgs[pick[j], j]
                self.steps_run[i] = ch.done

    def result(self, param: str, t0: float, spec_layers) -> Optimized:
        """The Optimized of the units started, their kept images evaluated again exactly as
        they will be seen (and written)."""
        import torch

        layer, prep, cfg, dev = self.layer, self.prep, self.cfg, self.dev
        keep = [i for i in range(len(self.units)) if self.started[i]]
        units = [self.units[i] for i in keep]
        best_img, rounds = self.best_img[keep], self.rounds[keep]
        with torch.no_grad():
            x = _normalise(torch.from_numpy(best_img).to(dev), prep)
            if len(units):
                chosen = torch.tensor(units, device=dev)
                values = _value(self.model, layer, x, chosen, cfg.objective, False)
            else:
                values = torch.zeros(0)
        whole, boxes = _boxes(layer, cfg, len(units), prep.input_size[1:])
        off = [outside(box, prep.input_size[1:]) for box in boxes]
        return Optimized(
            layer=layer.name,
            units=units,
            images=np.stack([display(i) for i in best_img]) if len(units) else best_img,
            x=x.float().cpu().numpy(),
            values=values.float().cpu().numpy(),
            boxes=np.asarray(boxes, np.int64).reshape(-1, 4),
            whole=bool(whole),
            objective=objective_name(layer, cfg.objective),
            rounds=rounds,
            param=param,
            seconds=time.perf_counter() - t0,
            steps=self.steps_run[keep],
            stopped=self.stopped,
            redirected=pre_activation(spec_layers, layer) if cfg.redirect and spec_layers else None,
            outside=np.stack(off) if any(o.any() for o in off) else None,
        )


def _boxes(layer: Layer, cfg: OptimizeConfig, n: int, hw):
    """(whole, (n, 4) boxes): whether the objective sees the whole input, and the input rows
    and cols (inclusive) it sees, the same for every unit (a map's centre neuron)."""
    h, w = hw
    whole = whole_image(layer, (h, w)) or cfg.objective == "mean"
    if whole or layer.kind != "map":
        return whole, np.tile([0, h - 1, 0, w - 1], (n, 1))
    return whole, np.tile(field_box(layer, *centre_of(layer), (h, w)), (n, 1))


def random_inputs(prep: Preprocess, n: int = 200, seed: int = 0) -> np.ndarray:
    """(n, C, H, W) normalised model inputs whose pixels are uniform in [0, 1]."""
    rng = np.random.default_rng(seed)
    c, h, w = prep.input_size
    pix = rng.random((n, c, h, w), np.float32)
    m = prep.channel_mean()[None, :, None, None]
    s = prep.channel_std()[None, :, None, None]
    return ((pix - m) / s).astype(np.float32)


def unit_table(
    model, layer: Layer, x: np.ndarray, units, objective, anywhere=False, batch: int = 64
):
    """(n, U): each input's objective for every unit (one forward pass per batch for all of
    them); anywhere=True: for a map, the channel's best position instead of its centre.
    objective a tuple of objectives: a tuple of such tables, from the same forward passes."""
    import torch

    many = isinstance(objective, tuple)
    objectives = objective if many else (objective,)
    dev = model_device(model)
    units_t = torch.tensor(list(units), device=dev)
    rows = [[] for _ in objectives]
    with runner(model, [layer]) as run:
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch])).to(dev)
            out = run(xb)[layer.name].float()[:, units_t]
            for k, obj in enumerate(objectives):
                a = out
                if a.dim() == 4:
                    if anywhere and obj == "centre":
                        a = a.flatten(2).max(2).values
                    elif obj == "mean":
                        a = a.mean((2, 3))
                    else:
                        a = a[:, :, a.shape[2] // 2, a.shape[3] // 2]
                rows[k].append(a.cpu().numpy())
    empty = np.zeros((0, len(units_t)), np.float32)
    tables = tuple(np.concatenate(r) if r else empty for r in rows)
    return tables if many else tables[0]


def baselines(
    model,
    prep: Preprocess,
    layer: Layer,
    units,
    objective: str = "centre",
    *,
    n_random: int = 200,
    seed: int = 0,
    data_x: np.ndarray | None = None,
) -> Baselines:
    """What random inputs (uniform pixels) and a dataset sample reach on each unit."""
    rand = unit_table(model, layer, random_inputs(prep, n_random, seed + 1), units, objective)
    data = None
    if data_x is not None and len(data_x):
        data = unit_table(model, layer, data_x, units, objective, anywhere=True).max(0)
    return Baselines(
        rand.mean(0), rand.max(0), n_random, data, 0 if data_x is None else len(data_x)
    )


def optimize(
    net, layers: list[Layer], cfg: OptimizeConfig | None = None, channels=None, **options
) -> list[tuple[Optimized, Baselines]]:
    """For each layer: the optimised input of its channels, and the baselines it is judged by.

    channels: None (all), a list, ('top', K) (the K with the highest mean over the dataset
    sample, else over the random inputs), or {layer name: one of those}. options: data_x,
    n_random, device, progress as optimize_each takes them, and budget: seconds for all
    layers (steps cut to fit; at the end, what is done is returned)."""
    budget = options.pop("budget", None)
    if budget is not None and not (isinstance(budget, (int, float)) and budget > 0):
        raise ConvseeError(
            f"{{param}} must be a number of seconds > 0 (None: no budget), got {budget!r}",
            "budget",
        )
    stop = Stop(None if budget is None else time.perf_counter() + budget)
    return list(optimize_each(net, layers, cfg, channels, stop=stop, **options))


def optimize_each(
    net,
    layers: list[Layer],
    cfg: OptimizeConfig | None = None,
    channels=None,
    *,
    data_x: np.ndarray | None = None,
    n_random: int = 200,
    device: str | None = None,
    stop: Stop | None = None,
    progress=None,
) -> Iterator[tuple[Optimized, Baselines]]:
    """optimize(), one layer at a time (for a caller that writes each as it is done). The
    arguments are checked now, not at the first layer. stop: a Stop shared by all layers
    (its deadline split evenly between the layers still to do); once it is due, the layer
    under way is returned with what it has and no later layer runs. progress(layer, n, total):
    after each step, n of total unit-steps of the layer's first round done."""
    cfg = cfg or OptimizeConfig()
    cfg.check()
    check_layers(layers, "optimize")
    model = torch_model(net, device)
    return _each(net, model, layers, cfg, channels, data_x, n_random, stop, progress)


def _each(net, model, layers, cfg, channels, data_x, n_random, stop, progress):
    for k, layer in enumerate(layers):
        if stop is not None and stop.cut(k == 0):  # the first layer runs whatever the budget
            return
        choice = channels.get(layer.name) if isinstance(channels, dict) else channels
        # one pass over the random inputs for every channel: the ranking and the baseline
        x_rand = random_inputs(net.prep, n_random, cfg.seed + 1)
        table, means = unit_table(
            model, layer, x_rand, range(layer.channels), (cfg.objective, "mean")
        )
        units = choose_units(
            model,
            net.prep,
            layer,
            choice,
            data_x,
            n_random,
            None if means is None else means.mean(0),
        )
        base = _baselines_from(model, layer, table[:, units], units, n_random, data_x, cfg)
        here = stop
        if stop is not None and stop.deadline is not None:
            share = (stop.deadline - time.perf_counter()) / (len(layers) - k)
            here = Stop(time.perf_counter() + share)
            here.requested = stop.requested
            outer = stop

            def why(here=here, outer=outer):
                return outer.why() or Stop.why(here)

            here.why = why
        tell = None
        if progress is not None:
            total = len(units) * cfg.steps
            done = [0]

            def tell(n, layer=layer, total=total, done=done):
                done[0] += n
                progress(layer, done[0], total)

        res = optimize_units(
            model,
            net.prep,
            layer,
            units,
            cfg,
            bar=base.bar(),
            stop=here,
            progress=tell,
            spec_layers=net.spec.layers,
        )
        keep = [units.index(u) for u in res.units]
        base = Baselines(
            base.random_mean[keep],
            base.random_best[keep],
            base.n_random,
            None if base.data_best is None else base.data_best[keep],
            base.n_data,
        )
        yield res, base
        if res.stopped and stop is not None and stop.why():
            return


def _baselines_from(model, layer, rand, units, n_random, data_x, cfg) -> Baselines:
    """baselines(), the random inputs' table (n, U) already computed (same inputs, seed + 1)."""
    data = None
    if data_x is not None and len(data_x):
        data = unit_table(model, layer, data_x, units, cfg.objective, anywhere=True).max(0)
    return Baselines(
        rand.mean(0), rand.max(0), n_random, data, 0 if data_x is None else len(data_x)
    )


def excited(res: Optimized, base: Baselines) -> np.ndarray:
    """(U,) bool: the unit's optimised value beats the best of the random inputs (False: the
    optimisation could not excite it, e.g. a unit stuck at 0 after a ReLU)."""
    return np.asarray(res.values > base.random_best, bool)


def choose_units(
    model, prep, layer, choice, data_x=None, n_random: int = 200, random_means=None
) -> list[int]:
    """Channels to optimise (spec.select_channels); 'top' ranks them by their mean over data_x
    (else over random inputs, or random_means: (C,) those means, already computed)."""

    def means():
        if random_means is not None and (data_x is None or not len(data_x)):
            return random_means
        x = data_x if data_x is not None and len(data_x) else random_inputs(prep, n_random)
        return unit_table(model, layer, x, range(layer.channels), "mean").mean(0)

    return select_channels(choice, layer.channels, means, layer.name)


def field_patches(res: Optimized, prep: Preprocess) -> np.ndarray:
    """(U, h, w) or (U, h, w, 3): each optimised input cut to what its objective sees (where
    that leaves the image, the mean colour; res.outside says where)."""
    fill = prep.channel_mean()
    out = []
    for img, box in zip(res.images, res.boxes, strict=True):
        out.append(crop(img, box, fill if img.ndim == 3 else fill[:1])[0])
    return np.stack(out) if out else np.zeros((0, 1, 1), np.float32)


# ---------------------------------------------------------------------------------------------
# LeNet-5 on 1x28x28, the signature the live page calls
# ---------------------------------------------------------------------------------------------


def maximize(model, layer: str, units: int, cfg: OptimizeConfig | None = None):
    """LeNet-5 (a torch module): (images (units, 28, 28) in [0, 1], values (units,)) for the
    first `units` channels of `layer` (no baselines, one round)."""
    from ..spec import describe

    prep = Preprocess()
    spec_layer = describe(model, prep.input_size).layer(layer)
    res = optimize_units(model, prep, spec_layer, range(units), cfg)
    return res.images, res.values


def target_value(model, x, layer: str, objective: str = "centre"):
    """Per image n of x (N, 1, 28, 28), normalised: the objective of unit n of LeNet-5's
    `layer` (centre neuron of a map channel, or the vector unit). No gradients."""
    import torch

    from ..spec import describe

    spec_layer = describe(model, tuple(x.shape[1:])).layer(layer)
    with torch.no_grad():
        return _value(model, spec_layer, x, torch.arange(len(x)), objective, False)


def config_dict(cfg: OptimizeConfig) -> dict:
    return asdict(cfg)
