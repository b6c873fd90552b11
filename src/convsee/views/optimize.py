"""`convsee optimize` as a library job: the layers and channels chosen, the dataset baseline's
sample, then each layer optimised in turn with its files, its table and its summary, so that
a caller can write and print each layer as soon as it is done."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConvseeError
from ..values import parse_channels

__all__ = ["DEFAULT_TOP", "OptimizedLayer", "OptimizeJob", "dataset_baseline", "optimize_table"]

DEFAULT_TOP = 16  # channels of a wide layer optimised by default (the top 16 by mean)


@dataclass
class OptimizedLayer:
    """One layer done: its Optimized and Baselines, the files (optimize_{layer}.png and its
    sidecar), the table of values as lines, and how many channels beat the random inputs."""

    layer: object
    result: object
    baselines: object
    files: dict
    table: list[str] = field(default_factory=list)
    summary: str = ""


def dataset_baseline(net, n: int, data=None, dataset: str | None = None):
    """(x (n, C, H, W), description) of the dataset baseline's sample, or (None, why not)."""
    from ..datasets.folder import open_source
    from ..run.exemplars import sample_inputs

    if n <= 0:
        return None, "no dataset baseline (a sample of 0 images)"
    if data is None:
        if not net.takes(dataset):
            return None, (
                "no dataset baseline: give IDX files or an image folder (--data DIR; in "
                "Python data=DIR)"
            )
        from ..datasets.idx import read_split
        from ..datasets.registry import lookup
        from ..run.exemplars import ArraySource

        try:  # the model's dataset, only when it is already on disk: never download for this
            split = read_split("test", None, allow_download=False, dataset=dataset)
        except ConvseeError:
            return None, (
                f"no dataset baseline: the {dataset} test set is not on disk (--data DIR; in "
                "Python data=DIR)"
            )
        source = ArraySource(split.images, f"{lookup(dataset).title} test")
    else:
        source = open_source(data, dataset=dataset)
    _, x = sample_inputs(source, net.prep, n)
    return x, f"{len(x):,} images of {source.name}"


class OptimizeJob:
    """The layers (default: the spec's optimize layers) and channel choices (None: all up to
    DEFAULT_TOP, else the top DEFAULT_TOP) checked and the baseline sample read now; iterating
    optimises one layer at a time, yielding OptimizedLayer, and ends early once stop is due.
    data_note says what the dataset baseline is (data_x None: there is none, and why)."""

    def __init__(
        self,
        net,
        layers=None,
        channels=None,
        cfg=None,
        *,
        sample: int = 1000,
        data=None,
        dataset: str | None = None,
        n_random: int = 200,
        device: str | None = None,
        stop=None,
        progress=None,
    ):
        from ..run.optimize import OptimizeConfig
        from ..run.units import check_layers

        out = getattr(net, "output", None)
        self.net = net
        self.layers = check_layers(
            net.select(layers, net.spec.default_layers("optimize", out)), "optimize"
        )
        self.choices = {
            x.name: parse_channels(channels, x.channels, DEFAULT_TOP, layer=x.name)
            for x in self.layers
        }
        self.cfg = cfg or OptimizeConfig()
        self.data_x, self.data_note = dataset_baseline(net, sample, data, dataset)
        self.scores = net.spec.scores_layer(out)  # the class-score layer, labelled by class
        self.n_random, self.device, self.stop, self.progress = n_random, device, stop, progress
        self.done = 0

    def __iter__(self):
        from ..draw.channel_views import optimize_files
        from ..run.optimize import excited, optimize_each

        each = optimize_each(
            self.net,
            self.layers,
            self.cfg,
            self.choices,
            data_x=self.data_x,
            n_random=self.n_random,
            device=self.device,
            stop=self.stop,
            progress=self.progress,
        )
        for layer, (res, base) in zip(self.layers, each, strict=False):
            labels = None
            if layer.name == self.scores:
                names = self.net.class_names(layer.channels)
                labels = [names[u] for u in res.units]
            note, scores = self.data_note, self.scores
            files = optimize_files(self.net, layer, res, base, self.cfg, note, scores)
            good = excited(res, base)
            summary = f"{int(good.sum())} of {len(res.units)} beat the best of {base.n_random} "
            self.done += 1
            yield OptimizedLayer(
                layer,
                res,
                base,
                files,
                optimize_table(layer.name, res, base, labels),
                summary + "random inputs",
            )
            if res.stopped:
                return


def optimize_table(name, res, base, labels=None) -> list[str]:
    """The lines of one layer's table: per channel the value reached against the baselines,
    flagged where below one."""
    lines = [f"{name}: {res.objective}; {len(res.units)} optimised in {res.seconds:.2f} s"]
    has_data = base.data_best is not None
    what = "channel" if res.objective.endswith("map") else "unit"
    tags = [labels[i] if labels else f"ch {u}" for i, u in enumerate(res.units)]
    n = min(24, max([10, *map(len, tags)]))  # class names whole (up to 24 characters)
    cols = f"  {what:>{n}} {'reached':>9} {'rand mean':>10} {'rand best':>10}"
    lines.append(cols + (f" {'data best':>10}" if has_data else ""))
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
        lines.append(line)
    below = sum(1 for v, b in zip(res.values, base.bar(), strict=True) if not v > b)
    if below:
        lines.append(
            f"  {below} of {len(res.units)} below a baseline after {max(res.rounds)} rounds"
        )
    return lines
