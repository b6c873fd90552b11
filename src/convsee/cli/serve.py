"""`convsee serve`: the live page, for LeNet-5 or any model."""

from __future__ import annotations

from .options import Formatter, add_data, add_model

HELP = "a live page: draw or load an input, watch every layer"
DESCRIPTION = """a local page that shows every layer of the model for an input you draw
(1-channel models), drop, paste or choose (an image file), or pick from the dataset: maps,
vectors and the class probabilities, updated as you draw. It builds itself from the model's
description, so --model works as in the other commands. Listens on loopback only unless
--host says otherwise."""


def add(sub) -> None:
    sv = sub.add_parser("serve", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    add_model(sv)
    add_data(
        sv,
        help_data="test images for 'random' and the exemplars: IDX files or a folder of images "
        "(default: the dataset's test set where convsee finds it, never downloaded)",
    )
    sv.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (loopback only by default)"
    )
    sv.add_argument("--port", type=int, default=8000, help="port to listen on")
    sv.set_defaults(func=run)


def run(a) -> int:
    from ..web.runner import serve
    from .options import network

    # the model is loaded once the port is bound: a busy port fails at once
    return serve(lambda: network(a), a.data, a.dataset, host=a.host, port=a.port)
