"""The library names the parameter at fault (ConvseeError.param, its Python name); the CLI
names the flag that sets it. This table is the one place that says which flag that is
(as click's param_hint does), with the command's own parser first: the flag it lists for
that parameter (`attribution --layers`, whose value lands in `layer`)."""

from __future__ import annotations

import argparse

from ..errors import ConvseeError

__all__ = ["FLAGS", "flag", "prefix", "said"]

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


def _listed(action) -> str | None:
    """The flag --help lists for an option (its long spelling), None for a hidden one."""
    if not action.option_strings or action.help == argparse.SUPPRESS:
        return None
    return next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])


def _flag_in(parser, param: str) -> str | None:
    """The listed flag of the command's parser that sets param: the option whose value lands
    in param, else the listed spelling beside a hidden --param (`--layer` -> `--layers`)."""
    actions = parser._actions
    hidden = "--" + param.replace("_", "-")
    dests = [param] + [a.dest for a in actions if hidden in a.option_strings]
    for dest in dests:
        for a in actions:
            if a.dest == dest and _listed(a):
                return _listed(a)
    return None


def flag(param: str, parser=None) -> str:
    """The flag for a parameter: the one the command's parser lists for it, else FLAGS, else
    --name-with-dashes (a flag passes as it is)."""
    if param.startswith("-"):
        return param
    named = _flag_in(parser, param) if parser is not None else None
    return named or FLAGS.get(param, "--" + param.replace("_", "-"))


def said(e: ConvseeError, parser=None) -> str:
    """The error's message as the CLI prints it: the parameter named by its flag (the one
    parser, the command's, has)."""
    return e.render(flag(e.param, parser)) if e.param else str(e)


def prefix(command: str | None) -> str:
    """How an error line starts, as argparse's own do: "convsee render: error: "."""
    return f"convsee {command}: error: " if command else "convsee: error: "
