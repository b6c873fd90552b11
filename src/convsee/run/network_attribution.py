"""Attribution for a Network: the torch model, spec, normalisation and chosen output a
Network holds, handed to run/attribution.py's functions in one place (Network.attribution
and the live page's overlays both call these)."""

from __future__ import annotations

import numpy as np

__all__ = ["scores_output", "attribute_network"]


def scores_output(net):
    """The output spec the network's class scores come from: the one `net.output` names,
    else its first; None when the spec lists no outputs."""
    want = getattr(net, "output", None)
    outs = net.spec.outputs
    return next((o for o in outs if o.name == want), outs[0] if outs else None)


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
        output=getattr(net, "output", None),
        output_spec=scores_output(net),
        std=net.prep.channel_std(),
        mean=net.prep.channel_mean(),
        **options,
    )
