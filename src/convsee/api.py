"""Functions of the Python API that are not methods of a Network."""

from __future__ import annotations

__all__ = ["predict"]


def predict(net, inputs=None):
    """Predictions of a Network (or of a torch module, wrapped with its defaults) for inputs
    (INPUT specs, arrays, Pillow images or Inputs; None: the bundled samples)."""
    from .errors import ConvseeError
    from .models.load import wrap
    from .models.network import Network

    if not isinstance(net, Network):
        if isinstance(net, (str, bytes, list, tuple)) or hasattr(net, "shape"):
            raise ConvseeError(
                "predict(net, inputs): the first argument is the network (convsee.load() for "
                f"LeNet-5, or a torch module), not the inputs (got {type(net).__name__})"
            )
        net = wrap(net)
    return net.predict(net.inputs() if inputs is None else inputs)
