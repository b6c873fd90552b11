"""SGD with Nesterov momentum, the one-cycle schedule and Adam, in a few lines of plain torch.

Why not torch.optim: building any torch.optim optimizer imports torch._dynamo, which takes
~1.5 s here, a tenth of the whole `convsee train` budget. The arithmetic below is exactly
torch.optim.SGD(nesterov=True, weight_decay=wd) driven by OneCycleLR(pct_start=warmup) with
its default cosine annealing and momentum cycling, and torch.optim.Adam with its defaults;
tests/test_optim.py checks that both give bit-identical weights.
"""

from __future__ import annotations

import math

import torch

__all__ = ["one_cycle", "NesterovSGD", "Adam"]

DIV_START = 25.0  # the cycle starts at peak_lr / 25 (OneCycleLR's div_factor)
DIV_FINAL = 1e4  # and ends at start / 1e4 (final_div_factor)
MOMENTUM_DIP = 0.1  # momentum falls by this much while the lr rises (0.95 -> 0.85)


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def one_cycle(
    step: int, total: int, peak_lr: float, warmup: float, momentum: float
) -> tuple[float, float]:
    """(lr, momentum) for step 0..total-1: cosine up to peak_lr over the first `warmup`
    fraction of the steps, then cosine down to nearly zero; momentum moves the other way."""
    if not 0 <= step < total:
        raise ValueError(f"step {step} is outside the schedule of {total} steps")
    lo = peak_lr / DIV_START
    rise_end = float(warmup * total) - 1
    low_momentum = momentum - MOMENTUM_DIP
    if step <= rise_end:
        pct = step / rise_end
        return _cos(lo, peak_lr, pct), _cos(momentum, low_momentum, pct)
    pct = (step - rise_end) / (total - 1 - rise_end)
    return _cos(peak_lr, lo / DIV_FINAL, pct), _cos(low_momentum, momentum, pct)


class _Optimizer:
    def __init__(self, params):
        self.params = [p for p in params if p.requires_grad]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


class NesterovSGD(_Optimizer):
    """p -= lr * (g + m * buf), buf = m * buf + g, g = grad + weight_decay * p."""

    def __init__(self, params, weight_decay: float = 0.0):
        super().__init__(params)
        self.weight_decay = weight_decay
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    @torch.no_grad()
    def step(self, lr: float, momentum: float) -> None:
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if self.weight_decay:
                g = g.add(p, alpha=self.weight_decay)
            buf = self.buffers[i]
            if buf is None:
                buf = self.buffers[i] = g.clone()
            else:
                buf.mul_(momentum).add_(g)
            p.add_(g.add(buf, alpha=momentum), alpha=-lr)

    def state_dict(self) -> dict:
        return {"buffers": [None if b is None else b.clone() for b in self.buffers]}

    def load_state_dict(self, state: dict) -> None:
        bufs = state["buffers"]
        if len(bufs) != len(self.params):
            raise ValueError(f"state has {len(bufs)} buffers, optimizer has {len(self.params)}")
        self.buffers = [None if b is None else b.clone() for b in bufs]


class Adam(_Optimizer):
    """Adam (Kingma & Ba) with bias correction, as torch.optim.Adam with betas and eps given."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.steps = 0
        self.avg = [torch.zeros_like(p) for p in self.params]
        self.avg_sq = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        self.steps += 1
        step_size = self.lr / (1 - b1**self.steps)
        sqrt_bc2 = math.sqrt(1 - b2**self.steps)
        for p, m, v in zip(self.params, self.avg, self.avg_sq, strict=True):
            if p.grad is None:
                continue
            m.lerp_(p.grad, 1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m, (v.sqrt() / sqrt_bc2).add_(self.eps), value=-step_size)
