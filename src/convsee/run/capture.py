"""The hook utility now lives in convsee.capture (below spec, which uses it too); this name
stays so that `from .capture import ...` inside run/ keeps working."""

from ..capture import activations, capture, eval_mode, flatten_output, select_output

__all__ = ["eval_mode", "flatten_output", "capture", "activations", "select_output"]
