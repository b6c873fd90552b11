"""Attribution for a Network: the torch model, spec, normalisation and chosen output a
Network holds, handed to run/attribution.py's functions in one place (Network.attribution
and the live page's overlays both call these)."""

from __future__ import annotations

import numpy as np

__all__ = ["attribute_network"]


def attribute_network(net, x: np.ndarray, **options):
    """attribute_batch (run/attribution.py) on a Network's torch model for a batch x (N, C,
    H, W), with its spec, output and normalisation; options as attribute_batch takes them
    (method, layer, target, quantity, position, placement, steps, ...). The torch model's
    hooks are used: where it is shared between threads, call this under its lock."""
    from .attribution import attribute_batch

    return attribute_batch(
        net.torch_model(),
        x,
        net.spec,
        output=net.output,
        output_spec=net.scores_output(),
        std=net.prep.channel_std(),
        mean=net.prep.channel_mean(),
        **options,
    )
