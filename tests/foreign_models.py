"""Models that are not LeNet-5, defined here so tests can load them with --model
tests/foreign_models.py:Name. Each has a trap that tools in this field get wrong.

RGBNet       RGB input, padding, stride, dilation, BatchNorm, global pooling (3x32x32, 5 classes)
ResidualNet  a residual block whose one ReLU(inplace=True) module runs three times, a functional
             F.relu and `x + y`, `out += identity` (1x28x28, 10 classes)
TwoHeads     returns a tuple (logits, probabilities from nn.Softmax); a submodule that itself
             returns a tuple (1x28x28, 4 and 10 classes)
Seq1d        a 1-D conv net over a sequence (1x1x64 reshaped): its layers are not maps
Strip        a wide, low input (1x5x16, 3 classes): conv2's centre neuron (2, 8) sees input rows
             -1..5, cols 5..11, a field that leaves the image above and below without covering
             it; conv1's centre neuron sees rows 1..3, cols 7..9, inside

Weights are seeded (`make(name)`), so every test sees the same numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RGBNet(nn.Module):
    def __init__(self, classes: int = 5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(12)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(12, 16, 3, padding=2, dilation=2)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.pool(self.conv3(x))
        return self.fc(torch.flatten(self.gap(x), 1))


class Block(nn.Module):
    """ResNet's BasicBlock: conv-bn-relu-conv-bn, += identity, relu; one ReLU module reused."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity  # in place, on bn2's output
        return self.relu(out)


class ResidualNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.block = Block(8)
        self.side = nn.Conv2d(8, 8, 1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(8 * 14 * 14, classes)

    def forward(self, x):
        x = self.relu(self.stem(x))
        x = self.block(x)
        y = F.relu(self.side(x))  # functional: no module sees this ReLU
        x = self.pool(x + y)
        return self.head(x.flatten(1))


class Split(nn.Module):
    """A submodule that returns a tuple: the first and second half of the channels."""

    def forward(self, x):
        c = x.shape[1] // 2
        return x[:, :c], x[:, c:]


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 5)
        self.split = Split()
        self.pool = nn.MaxPool2d(4)
        self.coarse = nn.Linear(3 * 6 * 6, 4)
        self.fine = nn.Linear(3 * 6 * 6, 10)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        a, b = self.split(torch.relu(self.conv(x)))
        coarse = self.coarse(self.pool(a).flatten(1))
        fine = self.softmax(self.fine(self.pool(b).flatten(1)))
        return coarse, fine


class Seq1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 5)
        self.fc = nn.Linear(4 * 60, 3)

    def forward(self, x):  # x: (N, 1, 1, 64)
        h = self.conv(x.flatten(2))
        return self.fc(h.flatten(1))


class Strip(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 5, padding=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.conv2(self.relu(self.conv1(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


def make(name: str, seed: int = 0) -> nn.Module:
    """A seeded instance in eval mode, BatchNorm statistics made non-trivial."""
    torch.manual_seed(seed)
    models = {"RGBNet": RGBNet, "ResidualNet": ResidualNet, "TwoHeads": TwoHeads, "Seq1d": Seq1d}
    model = {**models, "Strip": Strip}[name]()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return model.eval()


def seeded_rgbnet() -> nn.Module:
    """A factory (a function returning a module), for --model tests."""
    return make("RGBNet")
