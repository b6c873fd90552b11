"""The functions of the Python API: convsee.load, convsee.wrap and convsee.predict.

load and wrap are models/load.py's, returning Networks with the view methods
(views/network.py)."""

from __future__ import annotations

import functools

from ..errors import ConvseeError
from ..models import load as _load
from ..models.network import Network
from .network import with_views

__all__ = ["load", "wrap", "predict"]


@functools.wraps(_load.load)
def load(*args, **kwargs):
    return with_views(_load.load(*args, **kwargs))


@functools.wraps(_load.wrap)
def wrap(*args, **kwargs):
    return with_views(_load.wrap(*args, **kwargs))


def predict(net, inputs=None):
    """Predictions of a Network (or of a torch module, wrapped with its defaults) for inputs
    (INPUT specs, arrays, Pillow images or Inputs; None: the bundled samples)."""
    if not isinstance(net, Network):
        if isinstance(net, (str, bytes, list, tuple)) or hasattr(net, "shape"):
            raise ConvseeError(
                "predict(net, inputs): the first argument is the network (convsee.load() for "
                f"LeNet-5, or a torch module), not the inputs (got {type(net).__name__})",
                "net",
            )
        net = wrap(net)
    return net.predict(net.inputs() if inputs is None else inputs)
