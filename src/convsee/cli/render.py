"""`convsee render`: pictures of what each layer sees, with JSON sidecars."""

from __future__ import annotations

from ..errors import ConvseeError
from .options import (
    Formatter,
    add_channels,
    add_data,
    add_inputs,
    add_layers,
    add_model,
    add_out,
    network,
    parse_blur,
)

HELP = "pictures of what each layer sees"
DESCRIPTION = """pictures of what each layer sees: OUT/{layer}/{input}.png and a JSON sidecar
each; with several inputs also OUT/{layer}.gif. With no arguments: the original project's
45 pictures of LeNet-5's conv1 and conv2 for the ten sample digits (no torch needed)."""


def add(sub) -> None:
    r = sub.add_parser("render", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    add_inputs(r)
    add_model(r)  # --device when a torch model runs; LeNet-5 alone runs in NumPy
    add_data(r, help_data="folder with the dataset's IDX files (for test:N, train:N)")
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

    from ..draw.render import RenderOptions, finish, render_set
    from ..views.render import diff, kernels
    from .options import out_dir_ok

    t0 = time.perf_counter()
    if a.kernels and a.diff:
        raise ConvseeError("--kernels and --diff are separate pictures: give one of them")
    if (a.kernels or a.diff) and a.inputs:
        what = "--kernels draws the kernels alone" if a.kernels else "--diff A B compares A and B"
        raise ConvseeError(f"{what}; it takes no INPUT (got {' '.join(a.inputs)[:80]})")
    out_dir_ok(a.out)
    opts = RenderOptions(
        layers=a.layers,
        scale=a.scale,
        cmap=a.cmap,
        blur=parse_blur(a.blur),
        with_kernels=a.with_kernels,
        channels=a.channels,
    )
    net = network(a)  # LeNet-5 without --model: NumPy, no torch import
    if a.kernels:
        files = kernels(net, a.cmap).files()
    elif a.diff:
        x, y = a.diff
        files = diff(
            net, x, y, a.layers, a.cmap, a.channels, data=a.data, dataset=a.dataset
        ).files()
    else:
        inputs = net.inputs(a.inputs, a.data, a.dataset)
        files, probs, _ = render_set(net, inputs, opts)
        if probs is not None:
            classes = net.class_names(probs.shape[1])
            for inp, p in zip(inputs, probs, strict=True):
                true = "" if inp.label is None else f" (true {classes[inp.label]})"
                print(f"{inp.name}: predicted {classes[int(p.argmax())]} {p.max():.1%}{true}")
    return finish(files, a.out, t0)
