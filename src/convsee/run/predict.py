"""The Python API for inference: load a model once, predict many inputs in one pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..datasets.idx import normalize
from ..datasets.inputs import Input, resolve_input, resolve_inputs
from ..models.checkpoint import load_checkpoint

__all__ = ["Prediction", "load_model", "predict", "batch", "as_input"]


@dataclass(frozen=True)
class Prediction:
    input: Input
    prediction: int
    probabilities: list[float]

    def to_dict(self) -> dict:
        return {
            "path": self.input.source or self.input.name,
            "input": self.input.name,
            "label": self.input.label,
            "prediction": self.prediction,
            "probabilities": [round(p, 6) for p in self.probabilities],
        }


def load_model(checkpoint=None, device: str = "cpu"):
    """(model in eval mode, metadata). checkpoint=None: the shipped one."""
    return load_checkpoint(checkpoint, device)


def batch(images, device: str = "cpu") -> torch.Tensor:
    """Stack [0, 1] 28x28 images into one normalised (N, 1, 28, 28) tensor."""
    arr = np.stack([np.asarray(im, np.float32) for im in images])
    return normalize(torch.from_numpy(arr)).to(device)


def as_input(item, data_dir=None, dataset: str = "mnist") -> Input:
    """An Input from an Input, a spec string, an MNIST-form 28x28 [0, 1] array or any image."""
    if isinstance(item, Input):
        return item
    if isinstance(item, np.ndarray) and item.shape == (28, 28) and item.dtype.kind == "f":
        return Input("array", item.astype(np.float32))
    return resolve_input(item, data_dir, dataset)


def predict(
    model, inputs=None, data_dir=None, device: str = "cpu", dataset: str = "mnist"
) -> list[Prediction]:
    """Predict inputs (Input objects or specs; None: the ten samples) in one forward pass."""
    if inputs is None:
        inputs = resolve_inputs(None, data_dir, dataset)
    else:
        inputs = [as_input(i, data_dir, dataset) for i in inputs]
    probs = model.probabilities(batch([i.image for i in inputs], device)).cpu()
    return [
        Prediction(inp, int(p.argmax()), p.tolist()) for inp, p in zip(inputs, probs, strict=True)
    ]
