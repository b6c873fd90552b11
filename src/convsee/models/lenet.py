"""LeNet-5 as in LeCun et al. 1998 (with ReLU and max pooling), with stable layer names.

The module names are part of the public surface: users address layers by them, and state
dicts saved by the original project (keys conv1.weight ... fc3.bias) load unchanged.
Unlike the original project there is no ReLU on the logits (it could kill a class).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .lenet_layers import LAYERS, LENET5, Row, trace

__all__ = ["LAYERS", "ModelConfig", "LeNet5", "module_of"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture; stored in every checkpoint so loading rebuilds the model."""

    name: str = "lenet5"
    in_channels: int = 1  # grayscale
    image_size: int = 28  # pixels, MNIST
    num_classes: int = 10

    def to_dict(self) -> dict:
        return asdict(self)


def module_of(r: Row, wshape: tuple[int, ...] | None) -> nn.Module:
    """The torch module of a table row (wshape: its traced weight shape)."""
    if r.op == "Conv2d":
        out, cin, k, _ = wshape
        return nn.Conv2d(cin, out, k, stride=r.stride, padding=r.padding)
    if r.op == "Linear":
        return nn.Linear(wshape[1], wshape[0])
    if r.op == "ReLU":
        return nn.ReLU()
    if r.op == "MaxPool2d":
        return nn.MaxPool2d(r.kernel, r.stride)
    if r.op == "Flatten":
        return nn.Flatten()
    raise ValueError(f"LeNet table: unknown op {r.op!r} in row {r.name}")


class LeNet5(nn.Sequential):
    """conv1 (1->6, 5x5) relu1 pool1 conv2 (6->16, 5x5) relu2 pool2 flatten fc1 relu3 fc2 relu4 fc3,
    built from the table models/lenet_layers.LENET5.

    Input: (N, 1, 28, 28) MNIST-normalised; output: (N, 10) logits.
    """

    def __init__(self, config: ModelConfig = ModelConfig(), rows: tuple[Row, ...] = LENET5):
        c = config
        size = (c.in_channels, c.image_size, c.image_size)
        traced = trace(size, c.num_classes, None, rows)
        super().__init__(OrderedDict((r.name, module_of(r, ws)) for r, _, ws in traced))
        self.config = config
        self.rows = rows

    def fast_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same logits as self(x), for training: pools before each ReLU that a pool follows.

        max and ReLU commute exactly, so the values are identical, but the ReLU then runs on
        a quarter of the pixels (~15% faster training here). Only the conv and linear
        modules' hooks fire.
        """
        rows, i = self.rows, 0
        while i < len(rows):
            r = rows[i]
            if r.op == "ReLU" and i + 1 < len(rows) and rows[i + 1].op == "MaxPool2d":
                p = rows[i + 1]
                x = F.relu(F.max_pool2d(x, p.kernel, p.stride))
                i += 2
                continue
            if r.op == "ReLU":
                x = F.relu(x)
            elif r.op == "MaxPool2d":
                x = F.max_pool2d(x, r.kernel, r.stride)
            elif r.op == "Flatten":
                x = x.flatten(1)
            else:
                x = self[i](x)
            i += 1
        return x

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax over the logits, in eval mode, mode restored afterwards."""
        was_training = self.training
        self.eval()
        try:
            return torch.softmax(self(x), dim=1)
        finally:
            self.train(was_training)
