"""`convsee render`: pictures of what each layer sees, with JSON sidecars."""

from __future__ import annotations

from .options import (
    Formatter,
    add_channels,
    add_inputs_and_model,
    add_layers,
    add_out,
    finish,
    network,
    out_dir_ok,
    parse_blur,
    picked,
)

HELP = "pictures of what each layer sees"
DESCRIPTION = """pictures of what each layer sees: OUT/{layer}/{input}.png and a JSON sidecar
each; with several inputs also OUT/{layer}.gif. With no arguments: the original project's
45 pictures of LeNet-5's conv1 and conv2 for the ten sample digits (no torch needed)."""


def add(sub) -> None:
    r = sub.add_parser("render", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    add_inputs_and_model(r)
    add_out(r, "media")
    add_layers(
        r,
        None,
        "layers to draw: names from `convsee layers`, NAME#k, globs like 'layer1.*', "
        "type:Conv2d, all (default: conv1,conv2 for LeNet-5, every Conv2d otherwise)",
    )
    add_channels(r)
    r.add_argument(
        "--scale",
        choices=["map", "layer", "global"],
        help="colour range per map, per layer and input, or per layer fixed (the checkpoint's "
        "reference range, else over the inputs drawn) (default: global, so pictures compare)",
    )
    r.add_argument(
        "--cmap", help="matplotlib colormap (default: RdBu_r for signed maps, viridis for >= 0)"
    )
    r.add_argument(
        "--blur",
        metavar="K,SIGMA",
        help="also draw Gaussian-blurred maps (_blur pictures) with this kernel and sigma "
        "(default: LeNet-5's conv1 5,3 and conv2 3,3, as the original project)",
    )
    r.add_argument("--kernels", action="store_true", help="draw the conv kernels only")
    r.add_argument(
        "--with-kernels", action="store_true", help="under each map, the kernels that made it"
    )
    r.add_argument("--diff", nargs=2, metavar=("A", "B"), help="compare two inputs' maps")
    r.set_defaults(func=run)


def run(a) -> int:
    import time

    from ..views.render import check_request, render_outputs

    t0 = time.perf_counter()
    blur = parse_blur(a.blur)
    check_request(a.inputs, a.kernels, a.diff)  # before the work, and creating nothing
    out_dir_ok(a.out)
    net = network(a)  # LeNet-5 without --model: NumPy, no torch import
    files, lines = render_outputs(
        net,
        a.inputs,
        kernels_only=a.kernels,
        diff_of=a.diff,
        blur=blur,
        **picked(a, "data", "dataset", "layers", "scale", "cmap", "with_kernels", "channels"),
    )
    for line in lines:
        print(line)
    return finish(files, a.out, t0)
