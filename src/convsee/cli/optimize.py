"""`convsee optimize`."""

from __future__ import annotations

import sys
import time

import numpy as np

from ..errors import ConvseeError
from .options import (
    Formatter,
    add_channels,
    add_data,
    add_layers,
    add_model,
    add_out,
    network,
    out_dir_ok,
    parse_channels,
)

HELP = "the input each channel or class responds to most"
DESCRIPTION = """activation maximisation: for every channel of a layer, the input that excites
it most (a map channel's centre neuron, or with --objective mean its mean over the map; a
vector unit or class logit), found by gradient ascent on a bounded image (sigmoid pixels, or
a 1/f Fourier spectrum and decorrelated colours for RGB) seen randomly shifted, scaled and
rotated at each step, with restarts. Prints, per channel, the value reached against the mean
and best of random inputs and the best of a dataset sample, and flags channels that end below
them (those get more rounds first). OUT/optimize_{layer}.png and a JSON sidecar."""


def add(sub) -> None:
    o = sub.add_parser("optimize", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    add_model(o)
    add_data(o, help_data="IDX files or a folder of images, for the dataset baseline")
    add_layers(
        o,
        None,
        "layers: names from `convsee layers`, globs, type:Conv2d (default: conv1,conv2,fc3 for "
        "LeNet-5, else the first and the last conv layer and the class scores)",
    )
    o.add_argument("--layer", dest="layers", metavar="L", help="the same as --layers")
    add_channels(o)
    o.add_argument(
        "--objective",
        choices=["centre", "mean"],
        default="centre",
        help="what a map channel maximises: its centre neuron, or its mean over the map",
    )
    o.add_argument("--steps", type=int, default=150, help="gradient-ascent steps (first round)")
    o.add_argument(
        "--restarts", type=int, default=1, help="starts per channel side by side, best kept"
    )
    o.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="at most this many rounds for a channel below a "
        "baseline (each later round: new starts, twice the steps, weaker transforms)",
    )
    o.add_argument(
        "--param",
        choices=["auto", "pixel", "fft"],
        default="auto",
        help="image parameterisation: free pixels, or a 1/f Fourier spectrum (auto: fft for "
        "colour models, pixel for grayscale)",
    )
    o.add_argument("--seed", type=int, default=0, help="the starts and the random transforms")
    o.add_argument(
        "--sample", type=int, default=1000, help="dataset images for the baseline (0: none)"
    )
    o.add_argument("--random", type=int, default=200, help="random inputs for the baseline")
    add_out(o, "media")
    o.set_defaults(func=run)


def default_layers(net) -> str:
    return net.spec.default_layers("optimize", getattr(net, "output", None))


def score_layer(net) -> str | None:
    """The last vector layer shaped like the model's class scores (its logits), if any."""
    return net.spec.scores_layer(getattr(net, "output", None))


def dataset_sample(a, net, n: int):
    """(x (n, C, H, W), description) of the dataset baseline's sample, or (None, why not)."""
    from ..datasets.folder import open_source
    from ..run.exemplars import sample_inputs

    if n <= 0:
        return None, "no dataset baseline (--sample 0)"
    if a.data is None:
        if not net.takes(a.dataset):
            return None, "no dataset baseline: give --data DIR (IDX files or an image folder)"
        from ..datasets.idx import load_split, spec
        from ..run.exemplars import ArraySource

        try:  # the model's dataset, only when it is already on disk: never download for this
            split = load_split("test", None, allow_download=False, dataset=a.dataset)
        except ConvseeError:
            return None, f"no dataset baseline: the {a.dataset} test set is not on disk (--data)"
        source = ArraySource(split.images.numpy(), f"{spec(a.dataset)['name']} test")
    else:
        source = open_source(a.data, dataset=a.dataset)
    _, x = sample_inputs(source, net.prep, n)
    return x, f"{len(x):,} images of {source.name}"


def run(a) -> int:
    from ..draw.channel_views import optimize_image, png_rgb
    from ..draw.render import finish, sidecar
    from ..run.optimize import (
        OptimizeConfig,
        field_patches,
        optimize_each,
    )
    from ..run.units import check_layers
    from ..views.exemplars import safe

    t0 = time.perf_counter()
    for flag, v, lo, hi in (
        ("--steps", a.steps, 1, 100000),
        ("--restarts", a.restarts, 1, 64),
        ("--rounds", a.rounds, 1, 10),
        ("--sample", a.sample, 0, 1000000),
        ("--random", a.random, 1, 100000),
    ):
        if not lo <= v <= hi:
            raise ConvseeError(f"{flag} must be {lo}..{hi}, got {v}")
    out_dir_ok(a.out)
    net = network(a)
    layers = check_layers(net.select(a.layers, default_layers(net)), "optimize")
    choices = {x.name: parse_channels(a.channels, x.channels, layer=x.name) for x in layers}
    cfg = OptimizeConfig(
        steps=a.steps,
        restarts=a.restarts,
        rounds=a.rounds,
        param=a.param,
        objective=a.objective,
        seed=a.seed,
    )
    data_x, data_note = dataset_sample(a, net, a.sample)
    if data_x is None:
        print(f"convsee: note: {data_note}", file=sys.stderr)
    scores = score_layer(net)
    c, h, w = net.prep.input_size
    files = {}
    each = optimize_each(
        net,
        layers,
        cfg,
        choices,
        data_x=data_x,
        n_random=a.random,
        device=getattr(a, "device", None),
    )
    for layer, (res, base) in zip(layers, each, strict=True):
        units = res.units
        below = [u for u, v, b in zip(units, res.values, base.bar(), strict=True) if not v > b]
        classes = layer.name == scores
        labels = None
        if classes:
            names = net.class_names(layer.channels)
            labels = [names[u] for u in units]
        _print_table(layer.name, res, base, labels, data_note)
        if res.whole:
            shown = f"the whole {h}x{w} input"
        else:
            bh, bw = res.boxes[0, 1] - res.boxes[0, 0] + 1, res.boxes[0, 3] - res.boxes[0, 2] + 1
            shown = f"the {bh}x{bw} receptive field of that neuron, cut from the {h}x{w} input"
        notes = [
            f"objective: {res.objective}; shown: {shown}",
            f"{res.param} parameterisation, {cfg.steps} steps with random shift, scale and "
            f"rotation, {cfg.restarts} start(s) a round, best kept; seed {cfg.seed}",
            "under each: value reached; best of "
            f"{base.n_random} random inputs"
            + (f" and of {data_note}" if data_x is not None else ""),
        ]
        if len(units) < layer.channels:
            notes.append(f"{len(units)} of {layer.channels} channels shown")
        if (res.rounds > 1).any():
            notes.append(
                "a channel below a baseline gets another round: twice the steps, weaker transforms "
                "(the last round: none, and free pixels)"
            )
        what = "class" if classes else "channel" if layer.kind == "map" else "unit"
        img = optimize_image(
            res.images if res.whole else field_patches(res, net.prep),
            units,
            res.values,
            base.random_best,
            base.data_best,
            f"{layer.name}: the input each {what} wants most",
            notes,
            labels,
            base.random_mean,
            res.rounds,
        )
        files[f"optimize_{safe(layer.name)}.png"] = png_rgb(img)
        files[f"optimize_{safe(layer.name)}.json"] = sidecar(
            net.meta,
            picture="optimize",
            layer=layer.name,
            objective=res.objective,
            config=vars(cfg),
            param=res.param,
            seconds=round(res.seconds, 3),
            units=units,
            values=np.round(res.values, 5).tolist(),
            random_mean=np.round(base.random_mean, 5).tolist(),
            random_best=np.round(base.random_best, 5).tolist(),
            random_inputs=base.n_random,
            dataset_best=None if base.data_best is None else np.round(base.data_best, 5).tolist(),
            dataset_sample=base.n_data,
            dataset=data_note,
            rounds=res.rounds.tolist(),
            below_baseline=below,
            field_box=res.boxes[0].tolist() if len(units) else None,
        )
    return finish(files, a.out, t0)


def _print_table(name, res, base, labels, data_note) -> None:
    head = f"{name}: {res.objective}; {len(res.units)} optimised in {res.seconds:.2f} s"
    print(head)
    has_data = base.data_best is not None
    what = "channel" if res.objective.endswith("map") else "unit"
    tags = [labels[i] if labels else f"ch {u}" for i, u in enumerate(res.units)]
    n = min(24, max([10, *map(len, tags)]))  # class names whole (up to 24 characters)
    cols = f"  {what:>{n}} {'reached':>9} {'rand mean':>10} {'rand best':>10}"
    print(cols + (f" {'data best':>10}" if has_data else ""))
    for i, tag in enumerate(tags):
        line = (
            f"  {tag[:n]:>{n}} {res.values[i]:9.3f} {base.random_mean[i]:10.3f} "
            f"{base.random_best[i]:10.3f}"
        )
        if has_data:
            line += f" {base.data_best[i]:10.3f}"
        flags = []
        if not res.values[i] > base.random_best[i]:
            flags.append("random best")
        if has_data and not res.values[i] > base.data_best[i]:
            flags.append("data best")
        if flags:
            line += "   BELOW " + " and ".join(flags)
        elif res.rounds[i] > 1:
            line += f"   ({res.rounds[i]} rounds)"
        print(line)
    below = sum(1 for v, b in zip(res.values, base.bar(), strict=True) if not v > b)
    if below:
        print(f"  {below} of {len(res.units)} below a baseline after {max(res.rounds)} rounds")
