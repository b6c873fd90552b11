"""`convsee optimize`."""

from __future__ import annotations

import sys
import time

from .options import (
    Formatter,
    add_channel_layers,
    add_data,
    add_model,
    add_out,
    add_quiet,
    check_ranges,
    network,
    out_dir_ok,
    picked,
    wrote,
)
from .progress import Bar, stop_on_signals

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
    add_channel_layers(
        o,
        "conv1,conv2,fc3 for LeNet-5, else the first and the last conv layer and the class scores",
    )
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


def run(a) -> int:
    from ..run.optimize import OptimizeConfig, Stop
    from ..views.optimize import OptimizeJob

    t0 = time.perf_counter()
    cfg = OptimizeConfig(**picked(a, "steps", "restarts", "rounds", "param", "objective", "seed"))
    cfg.check()  # the library's ranges of --steps, --restarts, --rounds, before the model loads
    check_ranges(
        ("--sample", a.sample, 0, 1000000),
        ("--random", a.random, 1, 100000),
        ("--time-budget", a.time_budget, 0, 1e7),
    )
    out_dir_ok(a.out)
    stop = Stop(t0 + a.time_budget if a.time_budget else None)
    bar = Bar(a.quiet)
    where = picked(a, "sample", "data", "dataset", "device")
    net = network(a)
    job = OptimizeJob(
        net, a.layers, a.channels, cfg, n_random=a.random, stop=stop, progress=bar.update, **where
    )
    if job.data_x is None:
        print(f"convsee: note: {job.data_note}", file=sys.stderr)
    with stop_on_signals(stop):
        _write_each(job, bar, a.out)
    seconds = time.perf_counter() - t0
    if stop.why():
        print(_stopped(stop.why(), len(job.layers) - job.done, seconds))
    print(wrote(job.done, a.out, seconds))
    return 130 if stop.requested else 0


def _write_each(job, bar, out) -> None:
    """Each layer's table printed and its files written to out as soon as it is done, so that
    a stop later keeps it."""
    from ..draw.render import write_outputs  # (tests patch it there)

    try:
        for done in job:
            bar.close()
            print("\n".join(done.table))
            write_outputs(done.files, out)
            print(f"  {done.summary}; wrote {', '.join(done.files)}")
    finally:
        bar.close()


def _stopped(why: str, left: int, seconds: float) -> str:
    more = f"; {left} layer{'s' if left != 1 else ''} not done" if left else ""
    return f"stopped early ({why}) after {seconds:.1f} s: kept what was done{more}"
