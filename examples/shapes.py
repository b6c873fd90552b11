"""Coloured shapes: a small RGB model trained in well under a minute, to look at with convsee.

    python examples/shapes.py shapes/ shapes.safetensors          # data, training, checkpoint
    convsee render shapes/test/circle/0000.png --model examples/shapes.py:ShapesNet \
        --checkpoint shapes.safetensors --layers conv1,block
    convsee exemplars --model examples/shapes.py:ShapesNet --checkpoint shapes.safetensors \
        --data shapes/test

The script (1) writes an image folder, DATA_DIR/{train,test}/{circle,square,triangle}/NNNN.png:
40x40 RGB pictures of one shape of random colour, size, position and rotation on a random
colour gradient with a little noise (seeded: the same files every time); (2) trains ShapesNet
on DATA_DIR/train with plain torch.optim and reports its accuracy on DATA_DIR/test; (3) saves
the weights with everything convsee needs in the checkpoint (the preprocessing, the class
names, the reference colour ranges), so `--model` and `--checkpoint` are the only flags.

ShapesNet has what real networks have and LeNet-5 lacks: padding, BatchNorm, a strided
convolution, a residual block whose one ReLU module runs twice, global average pooling.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from convsee.run import threads

CLASSES = ("circle", "square", "triangle")
SIZE = 40  # pixels, square images


# --- the data ----------------------------------------------------------------------------


LUMA = np.array([0.299, 0.587, 0.114])  # a colour's lightness (ITU-R 601-2, as Pillow's "L")


def colour(rng: np.random.Generator, light: bool) -> np.ndarray:
    """A random RGB colour in [0, 1] whose lightness is over 0.6 (light) or under 0.4."""
    while True:
        c = rng.uniform(0, 1, 3)
        if (c @ LUMA > 0.6) if light else (c @ LUMA < 0.4):
            return c


def shape_image(kind: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """One (size, size, 3) uint8 picture: a shape of kind on a random colour gradient.

    The shape is always lighter than its background: ShapesNet then learns in ~8 epochs, every
    seed we tried. With light and dark shapes mixed it needed 10-20 epochs and some seeds never
    got there; with a contrast in hue alone it stayed near chance."""
    c0, c1 = colour(rng, light=False), colour(rng, light=False)  # the gradient's two ends
    a = rng.uniform(0, 2 * math.pi)  # its direction
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    t = np.clip(0.5 + math.cos(a) * xx + math.sin(a) * yy, 0, 1)[..., None]
    background = c0 + t * (c1 - c0)  # (size, size, 3) in [0, 1]
    fill = colour(rng, light=True)
    r = rng.uniform(0.2, 0.4) * size  # circumradius, pixels
    cx, cy = rng.uniform(r, size - r, 2)
    turn = rng.uniform(0, 2 * math.pi)
    s = 4  # drawn 4x larger, then averaged down: smooth edges
    mask = Image.new("L", (size * s, size * s), 0)
    draw = ImageDraw.Draw(mask)
    if kind == "circle":
        draw.ellipse([s * (cx - r), s * (cy - r), s * (cx + r), s * (cy + r)], fill=255)
    else:
        n = 4 if kind == "square" else 3
        corners = [
            (s * (cx + r * math.cos(turn + 2 * math.pi * k / n)),
             s * (cy + r * math.sin(turn + 2 * math.pi * k / n)))
            for k in range(n)
        ]  # fmt: skip
        draw.polygon(corners, fill=255)
    alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), np.float32)[..., None]
    alpha /= 255
    image = background * (1 - alpha) + fill * alpha + rng.normal(0, 0.03, (size, size, 3))
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def write_dataset(root: Path, per_class: int, seed: int = 0) -> None:
    """root/train/{class}/NNNN.png (per_class each) and root/test/... (a quarter as many)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("test", max(1, per_class // 4))):
        for kind in CLASSES:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(shape_image(kind, rng)).save(folder / f"{i:04d}.png")


def read_split(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, H, W) in [0, 1] and labels (N,) of one split, classes in CLASSES order."""
    images, labels = [], []
    for label, kind in enumerate(CLASSES):
        for path in sorted((folder / kind).glob("*.png")):
            images.append(np.asarray(Image.open(path).convert("RGB")))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return x, torch.tensor(labels)


# --- the model ---------------------------------------------------------------------------


class Residual(nn.Module):
    """conv-BN-ReLU-conv-BN, plus the input, then the same ReLU module again."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class ShapesNet(nn.Module):
    """3x40x40 -> 3 classes. 40x40 (conv1) -> 20x20 (conv2) -> 10x10 (conv3, block) -> 1x1."""

    def __init__(self, classes: int = len(CLASSES)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)  # 8x40x40
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)  # 16x20x20
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False)  # 32x10x10
        self.bn3 = nn.BatchNorm2d(32)
        self.relu3 = nn.ReLU()
        self.block = Residual(32)  # 32x10x10; each unit sees 25x25 input pixels
        self.pool = nn.AdaptiveAvgPool2d(1)  # 32x1x1
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        x = self.block(x)
        return self.fc(self.pool(x).flatten(1))


# --- training ----------------------------------------------------------------------------


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        return float((model(x).argmax(1) == y).float().mean())


def train(data: Path, out: Path, epochs: int = 15, per_class: int = 400, seed: int = 0) -> dict:
    t0 = time.perf_counter()
    if (data / "train").is_dir():
        print(f"using the images already in {data}")
    else:
        write_dataset(data, per_class, seed)
        print(f"wrote {data}/train and {data}/test in {time.perf_counter() - t0:.1f} s")
    x, y = read_split(data / "train")
    x_test, y_test = read_split(data / "test")
    mean, std = x.mean((0, 2, 3)), x.std((0, 2, 3))  # per channel, on the [0, 1] scale
    x = (x - mean[:, None, None]) / std[:, None, None]
    x_test = (x_test - mean[:, None, None]) / std[:, None, None]

    torch.manual_seed(seed)
    model = ShapesNet()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * math.ceil(len(x) / 32)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    t1 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for batch in torch.randperm(len(x)).split(32):
            xb = x[batch]
            if torch.rand(()) < 0.5:  # the classes do not care about mirroring
                xb = xb.flip(3)
            loss = nn.functional.cross_entropy(model(xb), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            threads.adapt()  # (once started) measured every 0.5 s: fewer threads when busy
            sched.step()
        acc = accuracy(model, x_test, y_test)
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, test accuracy {acc:.1%}")
    train_seconds = time.perf_counter() - t1

    preprocess = {
        "input_size": [3, SIZE, SIZE],
        "mean": [round(float(v), 4) for v in mean],
        "std": [round(float(v), 4) for v in std],
        "resize": "stretch",  # an image of another size is stretched to 40x40
    }
    meta = {
        "model": "examples/shapes.py:ShapesNet",
        "preprocess": preprocess,
        "classes": list(CLASSES),
        "dataset": f"shapes ({len(x)} training images, written by examples/shapes.py)",
        "test_accuracy": acc,
        "epochs_done": epochs,
        "train_seconds": round(train_seconds, 2),
        **reference(model, preprocess, data / "test"),
    }
    from convsee.models.checkpoint import save_checkpoint

    save_checkpoint(model, out, meta)
    seconds = time.perf_counter() - t0
    print(f"test accuracy {acc:.2%} on {len(x_test)} images; wrote {out} in {seconds:.1f} s")
    return meta


def reference(model: nn.Module, preprocess: dict, test: Path) -> dict:
    """Each layer's colour range over the test images, read as convsee reads them, so
    "--scale global" means the same in every picture (as `convsee train` stores it)."""
    from convsee.datasets.folder import open_source
    from convsee.models.load import wrap
    from convsee.run.ranges import reference_ranges

    r = reference_ranges(wrap(model.eval(), preprocess=preprocess), open_source(test))
    return {"reference_ranges": r["ranges"], "reference_ranges_from": r["from"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("data", type=Path, help="dataset folder (written if it has no train/)")
    ap.add_argument("out", type=Path, help="checkpoint to write (.safetensors)")
    ap.add_argument("--epochs", type=int, default=15, help="passes over the training set")
    ap.add_argument("--per-class", type=int, default=400, help="training images per class")
    ap.add_argument("--seed", type=int, default=0, help="the data and the training")
    a = ap.parse_args(argv)
    threads.start()  # the commands' thread policy: the cores other work leaves idle
    train(a.data, a.out, a.epochs, a.per_class, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
