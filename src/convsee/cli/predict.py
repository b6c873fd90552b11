"""`convsee predict`: the class and probabilities for each input."""

from __future__ import annotations

import json
import sys

from ..errors import ConvseeError
from .errors import said
from .options import Formatter, add_data, add_inputs, add_model, network, out_dir_ok

HELP = "classify images (default: the bundled samples)"


def add(sub) -> None:
    pr = sub.add_parser("predict", help=HELP, description=HELP, formatter_class=Formatter)
    add_inputs(pr)
    add_model(pr)
    add_data(pr, help_data="folder with the dataset's IDX files (for test:N, train:N)")
    pr.add_argument(
        "--show-input", metavar="DIR", help="save each input as the model sees it, as PNG, in DIR"
    )
    pr.add_argument("--json", action="store_true", help="one JSON object per input")
    pr.add_argument("--top", type=int, default=3, help="how many classes to list per input")
    pr.set_defaults(func=run)


def run(a) -> int:
    from ..draw.render import stems, write_outputs

    if a.top < 1:
        raise ConvseeError(f"--top must be positive, got {a.top}")
    if a.show_input:
        out_dir_ok(a.show_input, "--show-input")  # before the work, and creating nothing
    net = network(a)
    failed = 0
    inputs = []
    specs = a.inputs or [None]
    for s in specs:
        try:
            inputs += net.inputs(None if s is None else [s], a.data, a.dataset)
        except ConvseeError as e:
            if len(specs) == 1:
                raise
            print(
                f"convsee: error: {s}: {said(e)}"
                if str(s) not in str(e)
                else f"convsee: error: {said(e)}",
                file=sys.stderr,
            )
            failed += 1
    if not inputs:
        raise ConvseeError(f"none of the {len(specs)} inputs could be read")
    preds = net.predict(inputs)
    if a.show_input:
        from ..draw.figures import picture

        files = {}
        for p, stem in zip(preds, stems(inputs), strict=True):
            import io

            buf = io.BytesIO()
            img = p.input.image  # at the model's own resolution: gray (L) or RGB
            pic = picture(img, max(img.shape[:2]))
            (pic.convert("L") if img.ndim == 2 else pic).save(buf, "PNG")
            files[f"{stem}.png"] = buf.getvalue()
        write_outputs(files, a.show_input)  # all or nothing, before anything is printed
    for p in preds:
        if a.json:
            print(json.dumps(p.to_dict()))
            continue
        if p.prediction is None:
            print(f"{p.input.name}: the model's output is not class scores")
            continue
        names = p.classes
        label = (
            ""
            if p.input.label is None
            else f" (true {names[p.input.label] if p.input.label < len(names) else p.input.label})"
        )
        top = sorted(range(len(names)), key=lambda k: -p.probabilities[k])[: a.top]
        others = ", ".join(f"{names[k]} {p.probabilities[k]:.1%}" for k in top)
        print(f"{p.input.name}: {p.label}{label}  [{others}]")
    if a.show_input:
        n = len(preds)
        print(
            f"wrote {n} model input picture{'' if n == 1 else 's'} to {a.show_input}/",
            file=sys.stderr,
        )
    if failed:
        print(f"convsee: {failed} of {len(specs)} inputs could not be read", file=sys.stderr)
        return 2
    return 0
