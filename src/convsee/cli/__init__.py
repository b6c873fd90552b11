"""The `convsee` command: a thin layer over the Python API, one module per command.

Every user-caused error ends as one line on stderr and exit status 2, never a traceback.
Shared options (model, data, --out, --layers, --channels) are defined once in options.py.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConvseeError
from .options import resolve_dataset

__all__ = ["main", "build_parser", "COMMANDS"]

# in the order --help lists them
COMMANDS = (
    "predict",
    "render",
    "layers",
    "activations",
    "evaluate",
    "train",
    "serve",
    "exemplars",
    "optimize",
    "attribution",
    "animate",
    "sweep",
    "evolution",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from .. import __version__

    p = argparse.ArgumentParser(
        prog="convsee",
        description="What does a convolution see? Pictures of every layer of LeNet-5 or your "
        "own CNN. `convsee COMMAND --help` for each command.",
    )
    p.add_argument("--version", action="version", version=f"convsee {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..run.threads import start

    start()  # once torch is imported: threads by how busy the machine is (run/threads.py)
    try:
        resolve_dataset(args)
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return status
    except ConvseeError as e:
        print(f"convsee: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convsee: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`convsee evaluate | head`): stop quietly, as cat does
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 141


if __name__ == "__main__":
    sys.exit(main())
