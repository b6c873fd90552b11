"""What the LeNet-5 views share while they are not yet generalised."""

from __future__ import annotations

from ..errors import ConvseeError


def ckpt(a):
    """--checkpoint, or the shipped checkpoint of --dataset."""
    from ..models.checkpoint import default_checkpoint

    return getattr(a, "checkpoint", None) or default_checkpoint(getattr(a, "dataset", "mnist"))


def lenet_layers(text: str, allowed: tuple[str, ...]) -> list[str]:
    from ..models.lenet_layers import check_layers

    layers = check_layers(text)
    bad = [x for x in layers if x not in allowed]
    if bad:
        raise ConvseeError(f"layer {bad[0]!r} not supported here; valid: {', '.join(allowed)}")
    return layers
