"""The `convsee` command: a thin layer over the Python API, one module per command.

Every user-caused error ends as one line on stderr and exit status 2, never a traceback.
Shared options (model, data, --out, --layers, --channels) are defined once in options.py.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys

from ..errors import ConvseeError
from .errors import prefix, said
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


class Parser(argparse.ArgumentParser):
    """argparse, except that its errors are one line naming the flag ("convsee render: error:
    --scale: invalid choice: ..."), exit 2, never the usage block. An option given no value
    says how to write one starting with '-' (`--input-size -1,28,28`), which argparse takes
    for an option. (Subparsers are of the parent's class.)"""

    commands: dict[str, argparse.ArgumentParser] | None = None

    def parse_args(self, args=None, namespace=None):
        args, extra = self.parse_known_args(args, namespace)
        if extra:  # by the command's parser, so that the line names the command
            where = (self.commands or {}).get(getattr(args, "command", None), self)
            where.error(f"unrecognized arguments: {' '.join(extra)}")
        return args

    def error(self, message):
        m = re.fullmatch(r"argument ((?:-\S+?/)*)(-\S+): expected one argument", message)
        if m:
            flag = m.group(2)
            message = f"{flag} needs a value (one starting with '-' is written {flag}=VALUE)"
        else:  # "argument -o/--out: ..." -> "--out: ..."
            message = re.sub(r"^argument (?:\S+/)*(\S+): ", r"\1: ", message)
        hint = f" (`{self.prog} --help` lists them)" if "arguments" in message else ""
        print(f"{self.prog}: error: {message}{hint}", file=sys.stderr)
        sys.exit(2)


class _Stdout:
    """sys.stdout that outlives its reader (`convsee evaluate | head -3`): once the pipe is
    closed the rest of the output is dropped and the command goes on, so the files it writes
    after printing are still written; main() then returns 141, as for SIGPIPE."""

    def __init__(self, stream):
        self.stream = stream
        self.broken = False

    def write(self, text):
        if not self.broken:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._broke()
        return len(text)

    def flush(self):
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._broke()

    def _broke(self):
        self.broken = True
        try:  # what is still buffered goes nowhere at exit, instead of a second error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass

    def __getattr__(self, name):
        return getattr(self.stream, name)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from .. import __version__

    p = Parser(
        prog="convsee",
        description="What does a convolution see? Pictures of every layer of LeNet-5 or your "
        "own CNN. `convsee COMMAND --help` for each command.",
    )
    p.add_argument("--version", action="version", version=f"convsee {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add(sub)
    p.commands = dict(sub.choices)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..run.threads import start
    from .options import data_dir_ok

    start()  # once torch is imported: threads by how busy the machine is (run/threads.py)
    out = sys.stdout = _Stdout(sys.stdout)
    try:
        data_dir_ok(args)
        resolve_dataset(args)
        status = args.func(args)
        out.flush()  # a closed pipe shows here, inside the handler, not at exit
        return 141 if out.broken and status == 0 else status
    except ConvseeError as e:  # in argparse's form, naming the flag this command has
        where = (parser.commands or {}).get(args.command)
        print(f"{prefix(args.command)}{said(e, where)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convsee: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`convsee predict | head`) where _Stdout was bypassed
        out._broke()
        return 141
    finally:
        sys.stdout = out.stream


if __name__ == "__main__":
    sys.exit(main())
