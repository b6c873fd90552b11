"""convsee: what does a convolution see? Every layer of LeNet-5 or your own CNN, made visible.

The Python API under the `convsee` command::

    import convsee
    net = convsee.load()                          # LeNet-5 with the shipped weights
    [p] = net.predict(["my_digit.png"])           # Prediction(my_digit.png: 7 99.1%)
    acts, probs = net.activations(["sample:3"], "conv1,pool2")   # NumPy arrays
    figs = net.render("sample:3", layers="conv1")                # Figures: show in Jupyter

    net = convsee.load("my_model.py:Net", "weights.pth", input_size=(3, 224, 224))
    net = convsee.wrap(my_module, input_size=(3, 224, 224), mean=..., std=..., classes=[...])

Names are imported on first use, so `import convsee` (and torch-free paths such as
`convsee render`) do not pay for importing torch. No submodule shares a public name, so the
names below mean the same whatever has been imported.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "load": "views.api",
    "wrap": "views.api",
    "predict": "views.api",
    "preprocess": "datasets.digits",
    "samples": "datasets.inputs",
    "describe": "spec",
    "Network": "models.network",
    "Prediction": "models.network",
    "Input": "datasets.inputs",
    "Figure": "draw.figure",
    "Figures": "draw.figure",
    "Preprocess": "datasets.transforms",
    "ConvseeError": "errors",
    "LeNet5": "models.lenet",
    "load_checkpoint": "models.checkpoint",
    "save_checkpoint": "models.checkpoint",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function; a submodule never wins
        return value
    raise AttributeError(f"module 'convsee' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
