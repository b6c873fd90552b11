"""`convsee evaluate`: test accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

import sys

from .options import (
    Formatter,
    add_batch_size,
    add_data,
    add_model,
    add_out,
    check_ranges,
    network,
    out_file_ok,
    write_file,
)

HELP = "test accuracy, per-class accuracy and confusion matrix"


def add(sub) -> None:
    e = sub.add_parser("evaluate", help=HELP, description=HELP, formatter_class=Formatter)
    add_model(e)
    add_data(
        e,
        help_data="the test set: a folder with MNIST-style IDX files, or a folder of images with "
        "one subfolder per class",
    )
    add_out(e, "confusion.png", kind="FILE.png", help="confusion matrix picture")
    add_batch_size(e)
    e.add_argument(
        "--class-map",
        metavar="JSON_OR_FILE",
        help="which model class each class folder of --data DIR is, as a JSON object "
        '\'{"FOLDER": "CLASS" or INDEX, ...}\' or a file holding one (needed when the folder '
        "names are not the model's class names, even ignoring case)",
    )
    e.set_defaults(func=run)


def run(a) -> int:
    from ..datasets.folder import read_class_map
    from ..views.evaluate import evaluate

    check_ranges(("--batch-size", a.batch_size, 1, None))
    if a.out:
        out_file_ok(a.out, "--out", ".png")  # before the work, and creating nothing
    explicit = None if a.class_map is None else read_class_map(a.class_map)
    net = network(a)
    if net.torch_free:
        net.torch_model()  # batches of 10,000 images run faster in torch
    ev = evaluate(net, a.data, a.dataset, a.batch_size, explicit)
    if a.out:  # the picture first: a reader that stops early (`| head`) must not cost it
        write_file(a.out, ev.picture())
    print(f"model {net.provenance.model} · checkpoint {net.provenance.checkpoint}")
    print(f"data {ev.source}: {ev.n} images, classes matched {ev.how}")
    print(f"test accuracy {ev.accuracy:.2%}\n")
    print("\n".join(ev.table()))
    if a.out:
        print(f"\nwrote {a.out}")
    sys.stdout.flush()
    return 0
