"""Inference helpers: batches for LeNet-5's torch model (the views that need gradients use
them). Predictions from dense (per-position) class scores are models/network.py's
dense_predictions."""

from __future__ import annotations

import numpy as np

__all__ = ["batch"]


def batch(images, device: str = "cpu", mean: float = 0.1307, std: float = 0.3081):
    """Stack [0, 1] 28x28 images into one normalised (N, 1, 28, 28) tensor."""
    import torch

    arr = np.stack([np.asarray(im, np.float32) for im in images])
    return ((torch.from_numpy(arr)[:, None] - mean) / std).to(device)
