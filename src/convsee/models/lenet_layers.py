"""LeNet-5's parameter shapes, without importing torch: checkpoints are checked against them.

Layer names, shapes and receptive fields come from the model description (spec.py;
models/lenet_numpy.py builds LeNet-5's without torch).
"""

from __future__ import annotations

__all__ = ["state_shapes"]


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
