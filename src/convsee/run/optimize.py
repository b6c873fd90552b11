"""Activation maximisation: the 28x28 input each channel or class responds to most.

Gradient ascent on the input from a fixed seed, all channels of a layer at once (one image
per channel in the batch), with random jitter (shifts of up to 2 px), an L2 penalty and a
total-variation (smoothness) penalty so the result is an image, not noise. Pixels stay in
[0, 1] through a sigmoid parametrisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..datasets.idx import MEAN, STD
from .optim import Adam

__all__ = ["OptimizeConfig", "maximize", "target_value"]


@dataclass
class OptimizeConfig:
    steps: int = 150  # Adam steps
    lr: float = 0.1  # on the pre-sigmoid parameters
    l2: float = 0.02  # weight of the mean squared pixel value
    tv: float = 0.5  # weight of the total variation (mean absolute neighbour difference)
    jitter: int = 2  # random shift of the whole image each step, px
    seed: int = 0


def target_value(model, x: torch.Tensor, layer: str) -> torch.Tensor:
    """Per image n in x (N, 1, 28, 28) MNIST-normalised: layer output for unit n.

    Maps: channel n at the centre of its map (one neuron, whose receptive field is the
    middle of the input); vectors (fc): unit n. No gradients.
    """
    with torch.no_grad():
        return _live_target(model, x, layer)


def _unit(a: torch.Tensor, count: int) -> torch.Tensor:
    n = torch.arange(count)
    if a.dim() == 4:
        return a[n, n, a.shape[2] // 2, a.shape[3] // 2]
    return a[n, n]


def maximize(model, layer: str, units: int, cfg: OptimizeConfig | None = None):
    """(images (units, 28, 28) in [0, 1], final target values). Mode restored afterwards."""
    cfg = cfg or OptimizeConfig()
    was = model.training
    model.eval()
    g = torch.Generator().manual_seed(cfg.seed)
    p = (torch.randn(units, 1, 28, 28, generator=g) * 0.1 - 2.0).requires_grad_(True)
    opt = Adam([p], lr=cfg.lr)
    try:
        for _ in range(cfg.steps):
            img = torch.sigmoid(p)
            dy, dx = (int(v) for v in torch.randint(-cfg.jitter, cfg.jitter + 1, (2,), generator=g))
            shifted = torch.roll(img, (dy, dx), (2, 3))
            act = _live_target(model, (shifted - MEAN) / STD, layer)
            tv = (img[..., 1:, :] - img[..., :-1, :]).abs().mean((1, 2, 3)) + (
                img[..., :, 1:] - img[..., :, :-1]
            ).abs().mean((1, 2, 3))
            loss = (-act + cfg.l2 * (img**2).mean((1, 2, 3)) * 10 + cfg.tv * tv * 10).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            img = torch.sigmoid(p)
            final = target_value(model, (img - MEAN) / STD, layer)
    finally:
        model.train(was)
    return img[:, 0].detach().numpy(), final.numpy()


def _live_target(model, x, layer):
    """target_value with gradients: a forward hook, always removed."""
    out = {}
    h = getattr(model, layer).register_forward_hook(lambda m, i, o: out.__setitem__("a", o))
    try:
        model(x)
    finally:
        h.remove()
    return _unit(out["a"], len(x))
