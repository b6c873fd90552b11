"""LeNet-5's layer vocabulary, without importing torch: names, kinds and parameter shapes.

Users address layers by these names; checkpoints are checked against these shapes.
"""

from __future__ import annotations

from collections import OrderedDict

from ..errors import ConvseeError

__all__ = ["LAYER_INFO", "LAYERS", "check_layers", "state_shapes"]

# layer name -> (kind, after_relu): kind is "map" (C, H, W) or "vector" (N,)
LAYER_INFO = OrderedDict(
    conv1=("map", False),
    relu1=("map", True),
    pool1=("map", True),
    conv2=("map", False),
    relu2=("map", True),
    pool2=("map", True),
    flatten=("vector", True),
    fc1=("vector", False),
    relu3=("vector", True),
    fc2=("vector", False),
    relu4=("vector", True),
    fc3=("vector", False),
)
LAYERS = tuple(LAYER_INFO)


def state_shapes(in_channels: int = 1, image_size: int = 28, num_classes: int = 10) -> dict:
    """Parameter name -> shape, in state-dict order."""
    feat = ((image_size - 4) // 2 - 4) // 2  # 28 -> 24 -> 12 -> 8 -> 4
    return {
        "conv1.weight": (6, in_channels, 5, 5),
        "conv1.bias": (6,),
        "conv2.weight": (16, 6, 5, 5),
        "conv2.bias": (16,),
        "fc1.weight": (120, 16 * feat * feat),
        "fc1.bias": (120,),
        "fc2.weight": (84, 120),
        "fc2.bias": (84,),
        "fc3.weight": (num_classes, 84),
        "fc3.bias": (num_classes,),
    }


def check_layers(layers) -> list[str]:
    """Validate layer names (a list or a comma-separated string)."""
    if isinstance(layers, str):
        layers = [x.strip() for x in layers.split(",") if x.strip()]
    layers = list(layers)
    for name in layers:
        if name not in LAYERS:
            raise ConvseeError(f"unknown layer {name!r}; valid: {', '.join(LAYERS)}")
    if not layers:
        raise ConvseeError(f"no layers given; valid: {', '.join(LAYERS)}")
    return layers
