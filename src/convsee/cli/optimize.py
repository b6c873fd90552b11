"""`convsee optimize`."""

from __future__ import annotations

import contextlib
import sys
import time

from ..errors import ConvseeError
from .options import (
    Formatter,
    add_channels,
    add_data,
    add_layers,
    add_model,
    add_out,
    add_quiet,
    network,
    out_dir_ok,
    parse_channels,
)

DEFAULT_TOP = 16  # channels of a wide layer optimised by default (the top 16 by mean)
HELP = "the input each channel or class responds to most"
DESCRIPTION = """activation maximisation: for every channel of a layer, the input that excites
it most (a map channel's centre neuron, or with --objective mean its mean over the map; a
vector unit or class logit), found by gradient ascent on a bounded image (sigmoid pixels, or
a 1/f Fourier spectrum and decorrelated colours for RGB) seen randomly shifted, scaled and
rotated at each step, with restarts. Prints, per channel, the value reached against the mean
and best of random inputs and the best of a dataset sample, and flags channels that end below
them (those get more rounds first). Channels run in batches; each layer's
OUT/optimize_{layer}.png and JSON sidecar are written as soon as it is done, so Ctrl-C,
SIGTERM or --time-budget keep the finished layers (and what the layer under way has)."""


def add(sub) -> None:
    o = sub.add_parser("optimize", help=HELP, description=DESCRIPTION, formatter_class=Formatter)
    add_model(o)
    add_data(o, help_data="IDX files or a folder of images, for the dataset baseline")
    add_layers(
        o,
        None,
        "layers: names from `convsee layers`, globs, type:Conv2d (default: conv1,conv2,fc3 for "
        "LeNet-5, else the first and the last conv layer and the class scores)",
        alias=True,
    )
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
    o.add_argument(
        "--time-budget",
        type=float,
        default=240.0,
        metavar="SECONDS",
        help="stop after this long with what is done, and say so; steps are cut to fit "
        "(0: no budget)",
    )
    add_quiet(o)
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
    from ..draw.channel_views import optimize_files
    from ..draw.render import write_outputs
    from ..run.optimize import OptimizeConfig, Stop, excited, optimize_each
    from ..run.units import check_layers

    t0 = time.perf_counter()
    for flag, v, lo, hi in (
        ("--steps", a.steps, 1, 100000),
        ("--restarts", a.restarts, 1, 64),
        ("--rounds", a.rounds, 1, 10),
        ("--sample", a.sample, 0, 1000000),
        ("--random", a.random, 1, 100000),
        ("--time-budget", a.time_budget, 0, 1e7),
    ):
        if not lo <= v <= hi:
            raise ConvseeError(f"{flag} must be {lo}..{hi}, got {v}")
    out_dir_ok(a.out)
    net = network(a)
    layers = check_layers(net.select(a.layers, default_layers(net)), "optimize")
    choices = {
        x.name: parse_channels(a.channels, x.channels, DEFAULT_TOP, layer=x.name) for x in layers
    }
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
    stop = Stop(t0 + a.time_budget if a.time_budget else None)
    bar = _Bar(a.quiet)
    written = 0
    with _signals(stop):
        try:
            each = optimize_each(
                net,
                layers,
                cfg,
                choices,
                data_x=data_x,
                n_random=a.random,
                device=getattr(a, "device", None),
                stop=stop,
                progress=bar.update,
            )
            for layer, (res, base) in zip(layers, each, strict=False):
                bar.close()
                labels = None
                if layer.name == scores:
                    names = net.class_names(layer.channels)
                    labels = [names[u] for u in res.units]
                _print_table(layer.name, res, base, labels, data_note)
                files = optimize_files(net, layer, res, base, cfg, data_note, scores)
                write_outputs(files, a.out)  # at once: a stop later keeps this layer
                written += 1
                good = excited(res, base)
                print(
                    f"  {int(good.sum())} of {len(res.units)} beat the best of {base.n_random} "
                    f"random inputs; wrote {', '.join(files)}"
                )
                if res.stopped:
                    break
        finally:
            bar.close()
    seconds = time.perf_counter() - t0
    why = stop.why()
    if why:
        left = len(layers) - written
        more = f"; {left} layer{'s' if left != 1 else ''} not done" if left else ""
        print(f"stopped early ({why}) after {seconds:.1f} s: kept what was done{more}")
    print(
        f"wrote {written} picture{'s' if written != 1 else ''} (+ JSON sidecars) to {a.out}/ "
        f"in {seconds:.2f} s"
    )
    return 130 if stop.requested else 0


class _Bar:
    """A tqdm bar on stderr per layer (unit-steps of its first round), or nothing when quiet or
    stderr is not a terminal."""

    def __init__(self, quiet: bool):
        self.on = not quiet and sys.stderr.isatty()
        self.bar = None
        self.layer = None

    def update(self, layer, done: int, total: int) -> None:
        if not self.on:
            return
        if self.bar is None or self.layer != layer.name:
            self.close()
            from tqdm import tqdm

            self.layer = layer.name
            self.bar = tqdm(total=total, desc=layer.name, unit="step", file=sys.stderr, leave=False)
        if done > self.bar.total:
            self.bar.total = done
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def _signals(stop):
    """SIGINT and SIGTERM ask the optimisation to stop at the next step (it then writes what
    it has); a second one interrupts at once. Handlers restored on exit."""
    import signal
    import threading

    old = {}

    def handle(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = "interrupted by " + signal.Signals(signum).name

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is not signal.SIG_IGN:
                old[sig] = signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


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
