"""The preprocessing convsee assumes for a torch model that came without any: one guess,
used by load (a model file, a module) and hf (a Hugging Face model without a processor)."""

from __future__ import annotations

from ..datasets.transforms import Preprocess, imagenet

__all__ = ["default_preprocess", "default_preprocess_trusted", "first_conv_channels"]


def first_conv_channels(model) -> int | None:
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            return m.in_channels
        if isinstance(m, torch.nn.Linear):
            return None
    return None


def default_preprocess(model) -> tuple[Preprocess, str]:
    """A guess for a model that came with no preprocessing, and the note that says so."""
    c = first_conv_channels(model) or 3
    if c == 1:
        p = Preprocess()
        return p, f"no preprocessing given: assuming {p.describe()} (MNIST's)"
    if c == 3:
        p = imagenet()
        return p, f"no preprocessing given: assuming {p.describe()} (torchvision's ImageNet)"
    p = Preprocess((c, 224, 224), (0.5,), (0.5,), "crop")
    return p, f"no preprocessing given: assuming {p.describe()}"


def default_preprocess_trusted(module):
    try:
        return default_preprocess(module)
    except Exception:  # noqa: BLE001 - a ScriptModule may not list its children
        p = imagenet()
        return p, f"no preprocessing given: assuming {p.describe()}"
