"""The library names the parameter at fault (ConvseeError.param, its Python name); the CLI
names the flag that sets it. This table is the one place that says which flag that is
(as click's param_hint does)."""

from __future__ import annotations

from ..errors import ConvseeError

__all__ = ["FLAGS", "flag", "said"]

# parameter (Python name) → the flag that sets it, where it is not "--" + the name with "-"
FLAGS = {
    "inputs": "INPUT",
    "input": "INPUT",
    "k": "-k",
    "budget": "--time-budget",
    # Preprocess fields without a flag of their own: set in the --preprocess file
    "crop_pct": "--preprocess crop_pct",
    "interpolation": "--preprocess interpolation",
    "resize_size": "--preprocess resize_size",
}


def flag(param: str) -> str:
    """The flag for a parameter: FLAGS, else --name-with-dashes (a flag passes as it is)."""
    if param.startswith("-"):
        return param
    return FLAGS.get(param, "--" + param.replace("_", "-"))


def said(e: ConvseeError) -> str:
    """The error's message as the CLI prints it: the parameter named by its flag."""
    return e.render(flag(e.param)) if e.param else str(e)
