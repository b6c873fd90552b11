"""`convsee exemplars`."""

from __future__ import annotations

import time

import numpy as np

from ..draw.render import finish
from ..errors import ConvseeError
from .options import Formatter, add_data, add_out
from .views_common import lenet_layers

HELP = "for every channel, the dataset patches that excite it most"


def add(sub) -> None:
    e = sub.add_parser("exemplars", help=HELP, description=HELP, formatter_class=Formatter)
    e.add_argument(
        "--checkpoint", metavar="FILE", help="LeNet-5 weights (default: the shipped ones)"
    )
    add_data(e)
    e.add_argument("--layers", default="conv1,conv2", help="conv1, conv2, fc1, fc2, fc3")
    e.add_argument("-k", type=int, default=9, help="patches per channel (1..64)")
    add_out(e, "media")
    e.set_defaults(func=run)


def run(a) -> int:
    from ..datasets.idx import load_split
    from ..draw.render import png_bytes, sidecar
    from ..draw.views import exemplar_image
    from ..run.exemplars import top_exemplars
    from .options import network

    t0 = time.perf_counter()
    layers = lenet_layers(a.layers, ("conv1", "conv2", "fc1", "fc2", "fc3"))
    if not 1 <= a.k <= 64:
        raise ConvseeError(f"-k must be 1..64, got {a.k}")
    net = network(a)
    model, meta = net.torch_model(), net.meta
    test = load_split("test", a.data, dataset=a.dataset)
    files = {}
    for layer in layers:
        ex = top_exemplars(model, test.images, net.spec.layer(layer), a.k)
        n = len(test.images)
        img = exemplar_image(ex, f"{layer}: top {a.k} of {n:,} test images, per channel")
        files[f"exemplars_{layer}.png"] = png_bytes(img)
        files[f"exemplars_{layer}.json"] = sidecar(
            meta,
            picture="exemplars",
            layer=layer,
            k=a.k,
            dataset_split="test",
            indices=ex.indices.tolist(),
            values=np.round(ex.values, 5).tolist(),
            positions=ex.positions.tolist(),
        )
    return finish(files, a.out, t0)
