"""convsee: what does a convolution see? LeNet-5 on MNIST, every layer made visible.

The Python API under the `convsee` command::

    import convsee
    model, meta = convsee.load_model()          # the shipped checkpoint
    x = convsee.preprocess("my_digit.jpg")      # any image -> 28x28 MNIST form
    [p] = convsee.predict(model, [x])

Names are imported on first use, so `import convsee` (and torch-free paths such as
`convsee render`) do not pay for importing torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "ConvseeError": "errors",
    "LAYERS": "models.lenet_layers",
    "LeNet5": "models.lenet",
    "Input": "datasets.inputs",
    "Prediction": "run.predict",
    "load_checkpoint": "models.checkpoint",
    "load_weights": "models.checkpoint",
    "save_checkpoint": "models.checkpoint",
    "load_model": "run.predict",
    "predict": "run.predict",
    "preprocess": "datasets.digits",
    "resolve_input": "datasets.inputs",
    "samples": "datasets.inputs",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'convsee' has no attribute {name!r}")
