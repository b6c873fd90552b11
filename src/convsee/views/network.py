"""Network methods for every view, attached above the layers they need.

A Network (models/network.py) can run a model and say what it holds; it cannot draw, since
drawing (draw/) and the views' computations (run/) sit above models/ and a module may only
import downwards. `Views` is the mixin that adds the view methods, each one line calling the
view's library function (views/*.py); `with_views(net)` gives a Network those methods by
making it an instance of the subclass of its own class with the mixin. convsee.load and
convsee.wrap (views/api.py) return such Networks, so in Python `net.render(...)`,
`net.kernels()` and the rest just work, while models/ never imports upwards.
"""

from __future__ import annotations

from ..models.network import Network

__all__ = ["Views", "with_views"]


class Views:
    """The view methods of a Network (see each function for its arguments)."""

    def render(self, inputs=None, layers=None, **options):
        """Pictures of layers for inputs, as Figures (they display themselves in Jupyter;
        fig.save("x.png") writes the PNG and its sidecar). options: scale, cmap, blur,
        with_kernels, channels, as for `convsee render`."""
        from .render import render

        return render(self, inputs, layers, **options)

    def kernels(self, cmap: str | None = None):
        """Every conv layer's kernels, one signed colour scale per picture (Figures)."""
        from .render import kernels

        return kernels(self, cmap)

    def diff(self, a, b, layers=None, cmap=None, channels=None, **where):
        """Two inputs' maps and their difference per map layer, with cosine similarities."""
        from .common import arguments, check_options
        from .render import diff

        check_options(where, arguments(Views.diff, diff), "diff")
        return diff(self, a, b, layers, cmap, channels, **where)

    def animate(self, input="sample:3", layer=None, channel=None, frame_ms: int = 150, **where):
        """One channel of a conv (or max pooling) computed frame by frame: a GIF Figure."""
        from .animate import animate
        from .common import arguments, check_options

        check_options(where, arguments(Views.animate, animate), "animate")
        return animate(self, input, layer, channel, frame_ms, **where)

    def sweep(self, input="sample:3", layer=None, kind="all", channels=None, frame_ms=500, **where):
        """A layer's maps as the input is blurred, shifted, rotated, noised or occluded."""
        from .common import arguments, check_options
        from .sweep import sweep

        check_options(where, arguments(Views.sweep, sweep), "sweep")
        return sweep(self, input, layer, kind, channels, frame_ms, **where)

    def exemplars(self, layers=None, k: int = 9, channels=None, **options):
        """Per channel, the k dataset inputs that excite it most (options: data, dataset,
        batch_size, limit, device)."""
        from .common import arguments, check_options
        from .exemplars import exemplars

        check_options(options, arguments(Views.exemplars, exemplars), "exemplars")
        return exemplars(self, layers, k, channels, **options)

    def evolution(
        self, input="sample:3", layers=None, frame_ms: int = 400, checkpoint=None, **where
    ):
        """The kernels and maps forming during training, from the snapshots recorded beside
        this network's checkpoint (`train(..., snapshots=N)`)."""
        from .common import arguments, check_options
        from .evolution import evolution

        check_options(
            where, arguments(Views.evolution, evolution, but=("self", "net", "model")), "evolution"
        )
        ckpt = checkpoint or self.provenance.checkpoint
        return evolution(ckpt, None, layers, input, frame_ms, net=self, **where)

    def explain(self, input, layer: str, unit, top: int = 10):
        """How one value of a layer was computed from what the layer received, with its
        numbers: an Explanation (run/explain.py; .to_dict() is JSON). unit: (channel, row,
        col) of a map, an index of a vector; layer "softmax": the class probabilities."""
        from ..run.explain import explain

        return explain(self, input, layer, unit, top=top)

    def attribution(
        self,
        inputs=None,
        layer: str | None = None,
        method: str = "gradcam",
        target=None,
        quantity: str | None = None,
        placement: str = "field",
        position=None,
        figures: bool = True,
        **options,
    ):
        """Attribution maps for a batch of inputs, in one pass per chunk: an Attributions
        (run/attribution.py) with maps (N, H, W) on the input grid, layer_maps (N, h, w) for
        CAM methods, targets, scores, and .figures (one Figure per input) unless
        figures=False. method: gradcam, gradcam++, xgradcam, layercam, scorecam, eigencam,
        saliency, integrated-gradients, occlusion; target: a class, one per input, None (the
        predictions) or a callable(output) -> (N,) tensor; quantity: "logit" (default where
        reachable, also before a final nn.Softmax) or "probability"; placement: "field" or
        "stretch"; position: (row, col) or "sum" for a dense output; options: steps,
        baseline, window, stride, noise, noise_sigma, seed, batch_size."""
        from ..errors import ConvseeError
        from ..run.network_attribution import attribute_network
        from .common import check_options

        check_options(options, ATTRIBUTION_OPTIONS, "attribution")
        inputs = self.inputs() if inputs is None else self._as_inputs(inputs)
        if not inputs:
            raise ConvseeError("{param} is empty: give at least one input", "inputs")
        if not self.spec.layers:
            raise ConvseeError("attribution needs the model's layers; this program has none")
        what = {"method": method, "layer": layer, "target": target, "quantity": quantity}
        where = {"position": position, "placement": placement}
        res = attribute_network(self, self.batch(inputs), **what, **where, **options)
        if figures:
            from ..draw.attribution import attribution_figures

            res.figures = attribution_figures(self, inputs, res, getattr(self, "output", None))
        return res

    def faithfulness(self, inputs, maps, metric: str = "road", target=None, **options):
        """How faithful attribution maps (N, H, W) of inputs are (run/faithfulness.py):
        metric "road" gives (N, fractions) score changes when the most (order="most") or least
        ("least") relevant pixels are removed and imputed, or "combined"; "infidelity" gives
        (N,) mean squared errors over Gaussian pixel perturbations. maps: e.g.
        net.attribution(inputs).maps; target: as attribution's (None: each prediction).
        options: order, fractions, noise, seed (road); samples, sigma, normalize, seed
        (infidelity)."""
        from ..errors import ConvseeError
        from ..run.network_attribution import faithfulness_network

        inputs = self._as_inputs(inputs)
        if not inputs:
            raise ConvseeError("{param} is empty: give at least one input", "inputs")
        return faithfulness_network(
            self, self.batch(inputs), maps, metric, target=target, **options
        )

    def optimize(
        self,
        layers=None,
        channels=None,
        *,
        steps: int = 150,
        rounds: int = 3,
        seed: int = 0,
        time_budget: float | None = None,
        n_random: int = 200,
        **config,
    ) -> list:
        """The input each channel of `layers` wants most, one Figure per layer (as `convsee
        optimize` draws it; fig.sidecar["excited"] says which beat the best of n_random random
        inputs). channels: None (all up to 16, else the top 16), "top:K", a list of numbers.
        time_budget: seconds; steps are cut to fit and the layers done by then are returned.
        config: more OptimizeConfig fields (restarts, param, objective, batch, redirect...)."""
        import json
        from dataclasses import fields

        from ..draw.channel_views import optimize_files
        from ..draw.figure import Figure, Figures
        from ..errors import ConvseeError
        from ..run.optimize import OptimizeConfig, optimize
        from .common import check_options

        # OptimizeConfig's fields but those optimize() takes by name
        valid = {f.name for f in fields(OptimizeConfig)} - {"steps", "rounds", "seed"}
        check_options(config, valid, "optimize")
        if time_budget is not None and not _positive(time_budget):
            raise ConvseeError(
                f"{{param}} must be a number of seconds > 0 (None: no budget), got {time_budget!r}",
                "time_budget",
            )
        picked = self.select(layers, self.default_layer)
        cfg = OptimizeConfig(steps=steps, rounds=rounds, seed=seed, **config)
        if channels is None:
            choice = {x.name: ("all", None) if x.channels <= 16 else ("top", 16) for x in picked}
        elif isinstance(channels, str) and channels.startswith("top:") and channels[4:].isdigit():
            choice = ("top", int(channels[4:]))
        elif isinstance(channels, str):
            raise ConvseeError(
                f"{{param}} takes None, 'top:K' or a list, got {channels[:40]!r}", "channels"
            )
        else:
            choice = [int(c) for c in channels]
        done = optimize(self, picked, cfg, choice, n_random=n_random, budget=time_budget)
        if time_budget is not None and not any(res.units for res, _ in done):
            raise ConvseeError(
                f"nothing finished within {{param}} {time_budget:g} s: give it more time",
                "time_budget",
            )
        figs = []
        for layer, (res, base) in zip(picked, done, strict=False):
            files = optimize_files(self, layer, res, base, cfg)
            png, side = (files[k] for k in sorted(files, key=lambda k: not k.endswith(".png")))
            name = next(k for k in files if k.endswith(".png"))
            figs.append(Figure(name, png, json.loads(side)))
        return Figures(figs)


# the keyword arguments attribution(**options) passes on
ATTRIBUTION_OPTIONS = frozenset(
    ("steps", "baseline", "window", "stride", "noise", "noise_sigma", "seed", "batch_size")
)


def _positive(v) -> bool:
    import math

    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    return ok and math.isfinite(v) and v > 0


_CLASSES: dict[type, type] = {}


def with_views(net: Network) -> Network:
    """net, now also an instance of Views (the same object, its class the subclass of its
    class with the view methods)."""
    if not isinstance(net, Network):
        raise TypeError(f"with_views takes a Network, not {type(net).__name__}")
    cls = type(net)
    if not issubclass(cls, Views):
        if cls not in _CLASSES:
            _CLASSES[cls] = type(cls.__name__, (cls, Views), {"__module__": __name__})
        net.__class__ = _CLASSES[cls]
    return net
