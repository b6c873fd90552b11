"""convsee: what does a convolution see? LeNet-5 on MNIST, every layer made visible.

The Python API under the `convsee` command::

    import convsee
    model, meta = convsee.load_model()          # the shipped checkpoint
    x = convsee.preprocess("my_digit.jpg")      # any image -> 28x28 MNIST form
    [p] = convsee.predict(model, [x])
"""

__version__ = "0.1.0"

from .checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from .errors import ConvseeError  # noqa: E402
from .inputs import Input, resolve_input, samples  # noqa: E402
from .model import LAYERS, LeNet5  # noqa: E402
from .predict import Prediction, load_model, predict  # noqa: E402
from .preprocess import preprocess  # noqa: E402

__all__ = [
    "__version__",
    "ConvseeError",
    "LAYERS",
    "LeNet5",
    "Input",
    "Prediction",
    "load_checkpoint",
    "save_checkpoint",
    "load_model",
    "predict",
    "preprocess",
    "resolve_input",
    "samples",
]
