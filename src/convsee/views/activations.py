"""`activations` as a library function: chosen layers' outputs for inputs as one .npz, keyed
by layer name (batch axis first), with the model's input and its class probabilities."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

__all__ = ["Activations", "activations_npz"]


@dataclass
class Activations:
    arrays: dict  # {layer: array}, then "input" and (if the output is class scores) "probabilities"
    layers: list  # the layer names, in call order
    inputs: list

    def npz(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, **self.arrays)
        return buf.getvalue()

    def describe(self) -> str:
        """What the .npz holds, in one line."""
        shapes = ", ".join(f"{k} {list(self.arrays[k].shape)}" for k in self.layers)
        names = ", ".join(i.name for i in self.inputs)
        return f"{shapes} (batch axis first; 'input' is the model's input; inputs: {names})"


def activations_npz(net, inputs, layers="all", data=None, dataset=None) -> Activations:
    """The outputs of layers ("all", names, globs) for inputs (INPUT specs and the rest)."""
    inputs = net.inputs(inputs, data, dataset)
    x = net.batch(inputs)
    acts, probs = net.run(x, net.select(layers))
    arrays = {**acts, "input": x}
    if probs is not None:
        arrays["probabilities"] = probs
    return Activations(arrays, list(acts), inputs)
