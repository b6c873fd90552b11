"""Attribution for a Network: the torch model, spec, normalisation and chosen output a
Network holds, handed to run/attribution.py's functions in one place (Network.attribution
and the live page's overlays both call these)."""

from __future__ import annotations

import numpy as np

__all__ = ["attribute_network", "faithfulness_network"]


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


def faithfulness_network(net, x: np.ndarray, maps, metric: str = "road", **options):
    """run/faithfulness.py's road or infidelity of maps (N, H, W) on a Network's inputs x
    (N, C, H, W, as net.batch makes them), with its model, chosen output and scores.
    Infidelity's perturbations are on the [0, 1] pixel scale of the maps (divided by the
    normalisation's std before they reach the model)."""
    from ..errors import ConvseeError
    from .faithfulness import infidelity, road

    common = dict(output_spec=net.scores_output(), output=net.output)
    if metric == "road":
        return road(net.torch_model(), x, maps, **common, **options)
    if metric == "infidelity":
        std = net.prep.channel_std()
        return infidelity(net.torch_model(), x, maps, **common, std=std, **options)
    raise ConvseeError(f"{{param}} must be 'road' or 'infidelity', got {metric!r}", "metric")
