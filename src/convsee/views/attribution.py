"""`attribution` as a library function: the checks `convsee attribution` makes before the
work (one score per class, the target among them, the layer known), then the Attributions of
Network.attribution with one Figure per input."""

from __future__ import annotations

from ..errors import ConvseeError
from .network import with_views

__all__ = ["DEFAULT_INPUTS", "attribution"]

DEFAULT_INPUTS = ("sample:3", "sample:7")


def attribution(
    net,
    inputs=None,
    layer: str | None = None,
    method: str = "gradcam",
    target: int | None = None,
    *,
    data=None,
    dataset: str | None = None,
    **options,
):
    """Attributions (with .figures) for inputs (INPUT specs and the rest; None: DEFAULT_INPUTS)
    of a model whose chosen output is one score per class (K, or K x H x W per position);
    target: a class index (None: each input's prediction). options: as Network.attribution's
    (quantity, placement, position, steps, window, noise, noise_sigma...)."""
    outs = net.spec.outputs
    out = net.scores_output()
    if len(out.shape) not in (1, 3):
        shape = "x".join(map(str, out.shape)) or "a scalar"
        raise ConvseeError(
            "attribution needs one score per class; the model's {param} is "
            f"{shape} per input" + (" (choose another {param})" if len(outs) > 1 else ""),
            "output",
        )
    k = out.shape[0]
    if target is not None and not 0 <= target < k:
        raise ConvseeError(f"{{param}} must be 0..{k - 1}, got {target}", "target")
    if layer:
        net.spec.layer(layer)  # unknown names: one line listing the layers
    if inputs is None or isinstance(inputs, (list, tuple)) and not inputs:
        inputs = list(DEFAULT_INPUTS)
    if isinstance(inputs, (list, tuple)) and all(isinstance(i, str) for i in inputs):
        inputs = net.inputs(list(inputs), data, dataset)
    return with_views(net).attribution(inputs, layer=layer, method=method, target=target, **options)
