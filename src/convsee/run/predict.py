"""Inference helpers: batches for LeNet-5's torch model (the views that need gradients use
them), and predictions from dense (per-position) class scores."""

from __future__ import annotations

import numpy as np

__all__ = ["batch", "dense_predictions"]


def batch(images, device: str = "cpu", mean: float = 0.1307, std: float = 0.3081):
    """Stack [0, 1] 28x28 images into one normalised (N, 1, 28, 28) tensor."""
    import torch

    arr = np.stack([np.asarray(im, np.float32) for im in images])
    return ((torch.from_numpy(arr)[:, None] - mean) / std).to(device)


def dense_predictions(inputs, probs: np.ndarray, classes: list[str]) -> list:
    """Predictions from per-position class probabilities (N, K, H, W), as a fully
    convolutional detector outputs them (MTCNN's PNet: face or not at every 12x12 window).

    Each class's score is its maximum over the positions, at the first (row, col) reaching it
    (row-major); the prediction is the class with the highest such maximum. The whole map
    travels with the Prediction (`.map`, (K, H, W)) to be drawn."""
    from ..models.network import Prediction

    probs = np.asarray(probs, np.float32)
    if probs.ndim != 4:
        raise ValueError(f"dense scores are (N, K, H, W), got shape {probs.shape}")
    n, k, h, w = probs.shape
    flat = probs.reshape(n, k, h * w)
    best = flat.argmax(2)  # first maximum, row-major
    out = []
    for i, inp in enumerate(inputs):
        tops = [float(flat[i, c, best[i, c]]) for c in range(k)]
        where = tuple((int(best[i, c]) // w, int(best[i, c]) % w) for c in range(k))
        out.append(
            Prediction(
                inp, int(np.argmax(tops)), tops, tuple(classes), map=probs[i], positions=where
            )
        )
    return out
