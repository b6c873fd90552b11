"""A small CNN for Fashion-MNIST: the README's worked example of `--model`.

    convsee train --model examples/small_cnn.py:SmallCNN --dataset fashion-mnist \
        --out small_cnn.safetensors
    convsee render test:0 --model examples/small_cnn.py:SmallCNN \
        --checkpoint small_cnn.safetensors --dataset fashion-mnist

Any file like this works: define an nn.Module (or a function returning one) and name it as
FILE.py:Name. This one has what real networks have and LeNet-5 lacks: padding, a strided
convolution, BatchNorm, a residual block whose ReLU module runs twice, global pooling.
"""

from __future__ import annotations

from torch import nn


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class SmallCNN(nn.Module):
    """1x28x28 -> 10 classes. 28x28 -> 28 (conv1) -> 14 (conv2, stride 2) -> 7 (conv3) -> 1.
    About 1.4 M multiply-adds an image (LeNet-5: 0.4 M): an epoch takes ~20 s on 2 cores."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)  # 8x28x28
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)  # 16x14x14
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU(inplace=True)
        self.block = Residual(16)  # 16x14x14
        self.conv3 = nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False)  # 32x7x7
        self.bn3 = nn.BatchNorm2d(32)
        self.relu3 = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)  # 32x1x1
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.block(x)
        x = self.relu3(self.bn3(self.conv3(x)))
        return self.fc(self.pool(x).flatten(1))
