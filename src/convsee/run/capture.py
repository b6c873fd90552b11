"""Capture what every layer outputs, with forward hooks that are always removed.

`capture` is a context manager yielding a local dict that fills as the model runs;
`activations` runs one batch and returns NumPy arrays keyed by layer name. The model's
train/eval mode is restored afterwards; nothing global, nothing written from a hook.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..models.lenet_layers import LAYERS, check_layers

__all__ = ["check_layers", "capture", "activations"]


@contextlib.contextmanager
def capture(model: torch.nn.Module, layers):
    """Yield a dict {layer: output tensor}, filled by forward hooks removed on exit."""
    layers = check_layers(layers)
    out: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in layers:
            module = getattr(model, name)
            handles.append(
                module.register_forward_hook(
                    lambda _m, _i, o, name=name: out.__setitem__(name, o.detach())
                )
            )
        yield out
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def activations(model: torch.nn.Module, x: torch.Tensor, layers=LAYERS):
    """(dict {layer: float32 array with batch axis first}, probabilities (N, classes))."""
    was_training = model.training
    model.eval()
    try:
        with capture(model, layers) as acts:
            logits = model(x)
    finally:
        model.train(was_training)
    probs = torch.softmax(logits, 1).cpu().numpy()
    return {k: v.cpu().numpy().astype(np.float32) for k, v in acts.items()}, probs
