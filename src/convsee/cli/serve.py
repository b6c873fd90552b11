"""`convsee serve`: the live page."""

from __future__ import annotations

from .options import Formatter, add_data

HELP = "a live page: draw or load an input, watch every layer"


def add(sub) -> None:
    sv = sub.add_parser("serve", help=HELP, description=HELP, formatter_class=Formatter)
    sv.add_argument(
        "--checkpoint", metavar="FILE", help="LeNet-5 weights (default: the shipped ones)"
    )
    add_data(sv, help_data="folder with the dataset's IDX files (for random test images)")
    sv.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (loopback only by default)"
    )
    sv.add_argument("--port", type=int, default=8000, help="port to listen on")
    sv.set_defaults(func=run)


def run(a) -> int:
    from ..web.runner import serve

    return serve(a.checkpoint, a.data, a.dataset, host=a.host, port=a.port)
