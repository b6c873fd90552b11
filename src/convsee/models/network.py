"""A model as convsee runs it: the one object every command, the page and the Python API use.

A `Network` holds a model's description (spec.ModelSpec), how inputs are prepared for it
(datasets.transforms.Preprocess), its class names and the metadata that goes into sidecars.
`run(x, layers)` returns every requested layer's output as NumPy arrays (batch axis first)
and the class probabilities. Two kinds:

- `LeNetNetwork`: LeNet-5 in NumPy (no torch import; `convsee render` stays fast); a torch
  copy is built on demand for the views that need gradients.
- `TorchNetwork`: any torch.nn.Module, captured with forward hooks (run/capture.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..datasets.inputs import Input, resolve_inputs
from ..datasets.transforms import Preprocess
from ..errors import ConvseeError
from ..spec import Layer, ModelSpec

__all__ = ["Network", "LeNetNetwork", "TorchNetwork", "Prediction", "softmax"]


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    input: Input
    prediction: int | None  # None: the model's output is not class scores
    probabilities: list[float]
    classes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        if self.prediction is None:
            return "-"
        if self.classes and self.prediction < len(self.classes):
            return self.classes[self.prediction]
        return str(self.prediction)

    def to_dict(self) -> dict:
        return {
            "path": self.input.source or self.input.name,
            "input": self.input.name,
            "label": self.input.label,
            "prediction": self.prediction,
            "class": self.label,
            "probabilities": [round(p, 6) for p in self.probabilities],
        }

    def __repr__(self) -> str:
        if self.prediction is None:
            return f"Prediction({self.input.name}: no class scores)"
        p = self.probabilities[self.prediction]
        true = ""
        if self.input.label is not None:
            names = self.classes
            t = self.input.label
            true = f", true {names[t] if names and t < len(names) else t}"
        return f"Prediction({self.input.name}: {self.label} {p:.1%}{true})"


class Network:
    """Shared behaviour; see LeNetNetwork and TorchNetwork."""

    kind = "base"
    spec: ModelSpec
    prep: Preprocess
    classes: list[str] | None
    meta: dict
    notes: list[str]  # what was assumed while loading (e.g. default preprocessing)
    dataset: str | None = None  # chosen by the caller; None: the checkpoint's, else MNIST

    def __repr__(self) -> str:
        name = "LeNet-5" if self.kind == "lenet" else self.meta.get("model", "model")
        size = "x".join(map(str, self.prep.input_size))
        out = self.spec.outputs[0].shape if self.spec.outputs else ()
        k = f", {out[0]} classes" if len(out) == 1 else ""
        data = f", trained on {self.meta['dataset']}" if self.meta.get("dataset") else ""
        return f"<convsee {name}: input {size}{k}{data}, {len(self.spec.layers)} layers>"

    def takes(self, dataset: str) -> bool:
        """Whether the dataset's images are what this model takes: it takes one channel (gray,
        as the datasets' images are) or its classes are the dataset's."""
        from ..datasets.idx import spec as dataset_spec

        if self.prep.input_size[0] == 1:
            return True
        return [str(c) for c in self.classes or []] == list(dataset_spec(dataset)["classes"])

    def class_names(self, k: int) -> list[str]:
        if self.classes and len(self.classes) == k:
            return list(self.classes)
        return [str(i) for i in range(k)]

    # -- layers --------------------------------------------------------------------------------
    def layers(self) -> list[Layer]:
        return list(self.spec.layers)

    def select(self, text, default=None) -> list[Layer]:
        return self.spec.select(text, default)

    # -- inputs --------------------------------------------------------------------------------
    def inputs(self, specs=None, data_dir=None, dataset: str | None = None) -> list[Input]:
        """Inputs for INPUT specs (None: the dataset's bundled samples), prepared for the model.

        dataset: where sample:D, test:N and train:N come from (default: the dataset the
        checkpoint was trained on, else MNIST). A dataset item's true label is kept only when
        the dataset's classes are the model's."""
        from dataclasses import replace

        from ..datasets.idx import spec as dataset_spec
        from ..datasets.idx import trained_on

        dataset = dataset or self.dataset or trained_on(self.meta)

        inputs = resolve_inputs(specs, self.prep, data_dir, dataset)
        theirs = list(dataset_spec(dataset)["classes"])
        k = self.spec.outputs[0].shape[0] if self.spec.outputs[0].shape else 0
        ours = self.class_names(k) if len(self.spec.outputs[0].shape) == 1 else []
        if ours != theirs:
            inputs = [replace(i, label=None) if i.label is not None else i for i in inputs]
        return inputs

    @staticmethod
    def batch(inputs: list[Input]) -> np.ndarray:
        return np.stack([i.x for i in inputs]).astype(np.float32)

    # -- running -------------------------------------------------------------------------------
    def run(self, x: np.ndarray, layers=()) -> tuple[dict, np.ndarray | None]:
        raise NotImplementedError

    def _as_inputs(self, inputs) -> list[Input]:
        if isinstance(inputs, (str, Input)) or hasattr(inputs, "shape"):
            inputs = [inputs]
        return [i if isinstance(i, Input) else self.inputs([i])[0] for i in inputs]

    def predict(self, inputs, batch_size: int = 64) -> list[Prediction]:
        """One Prediction per input (INPUT specs such as "photo.jpg" or "sample:3", arrays,
        Pillow images, or Inputs)."""
        inputs = self._as_inputs(inputs)
        preds = []
        for i in range(0, len(inputs), batch_size):
            chunk = inputs[i : i + batch_size]
            _, probs = self.run(self.batch(chunk))
            rows = probs if probs is not None else [None] * len(chunk)
            for inp, p in zip(chunk, rows, strict=True):
                if p is None:
                    preds.append(Prediction(inp, None, [], ()))
                else:
                    names = tuple(self.class_names(len(p)))
                    preds.append(Prediction(inp, int(np.argmax(p)), [float(v) for v in p], names))
        return preds

    def activations(self, inputs, layers="all"):
        """({layer name: array, batch first}, probabilities) for inputs (specs or Inputs)."""
        inputs = self._as_inputs(inputs)
        return self.run(self.batch(inputs), self.select(layers))

    def render(self, inputs=None, layers=None, **options) -> list:
        """Pictures of layers for inputs, as Figures (they display themselves in Jupyter;
        fig.save("x.png") writes the PNG and its sidecar). options: scale, cmap, blur,
        with_kernels, channels, as for `convsee render`."""
        from ..draw.figure import Figure
        from ..draw.render import RenderOptions, render_set

        inputs = self.inputs() if inputs is None else self._as_inputs(inputs)
        opts = RenderOptions(layers=layers, gifs=False, **options)
        files, _, _ = render_set(self, inputs, opts)
        figs = []
        for name, data in files.items():
            if name.endswith(".png") and name != "samples.png":
                side = json.loads(files[name[:-4] + ".json"])
                figs.append(Figure(name, data, side))
        return figs

    def explain(self, input, layer: str, unit, top: int = 10):
        """How one value of a layer was computed from what the layer received, with its
        numbers: an Explanation (run/explain.py; .to_dict() is JSON). unit: (channel, row,
        col) of a map, an index of a vector; layer "softmax": the class probabilities."""
        from ..run.explain import explain

        return explain(self, input, layer, unit, top=top)

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
        from ..draw.channel_views import optimize_files
        from ..draw.figure import Figure
        from ..run.optimize import OptimizeConfig, optimize

        picked = self.select(layers, "conv1" if self.kind == "lenet" else None)
        cfg = OptimizeConfig(steps=steps, rounds=rounds, seed=seed, **config)
        if channels is None:
            choice = {x.name: ("all", None) if x.channels <= 16 else ("top", 16) for x in picked}
        elif isinstance(channels, str) and channels.startswith("top:") and channels[4:].isdigit():
            choice = ("top", int(channels[4:]))
        elif isinstance(channels, str):
            raise ConvseeError(f"channels takes None, 'top:K' or a list, got {channels[:40]!r}")
        else:
            choice = [int(c) for c in channels]
        done = optimize(self, picked, cfg, choice, n_random=n_random, budget=time_budget)
        figs = []
        for layer, (res, base) in zip(picked, done, strict=False):
            files = optimize_files(self, layer, res, base, cfg)
            png, side = (files[k] for k in sorted(files, key=lambda k: not k.endswith(".png")))
            name = next(k for k in files if k.endswith(".png"))
            figs.append(Figure(name, png, json.loads(side)))
        return figs

    def scores(self, x: np.ndarray) -> np.ndarray | None:
        """Class probabilities only (N, K), or None when the output is not class scores."""
        return self.run(x)[1]

    def torch_model(self):
        raise NotImplementedError

    def kernel(self, name: str):
        """The weights (out, in/groups, kh, kw) of conv layer `name` as a NumPy array, or None."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.spec.model_type} ({self.prep.describe()})"


class LeNetNetwork(Network):
    """LeNet-5 from a NumPy state dict: forward in NumPy, torch only when asked."""

    kind = "lenet"

    def __init__(self, weights: dict, meta: dict, prep: Preprocess, classes=None):
        from .lenet_numpy import lenet_spec

        self.weights = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        self.meta = meta
        self.prep = prep
        self.classes = classes
        self.output = None
        self.notes = []
        self.spec = lenet_spec(self.weights, prep.input_size)
        self._torch = None

    def run(self, x, layers=()):
        from .lenet_numpy import forward_all

        acts, logits = forward_all(self.weights, x)
        names = [layer.name for layer in layers]
        return {n: acts[n] for n in names}, softmax(logits)

    def scores(self, x):
        if self._torch is None:
            return self.run(x)[1]
        import torch

        with torch.inference_mode():
            logits = self._torch.fast_forward(torch.from_numpy(np.ascontiguousarray(x)))
        return softmax(logits.numpy())

    def kernel(self, name: str):
        w = self.weights.get(f"{name}.weight")
        return None if w is None or w.ndim != 4 else w

    def torch_model(self, device: str = "cpu"):
        if self._torch is None:
            import torch

            from .lenet import LeNet5, ModelConfig

            c, h, _ = self.prep.input_size
            model = LeNet5(
                ModelConfig(in_channels=c, image_size=h, num_classes=self.spec.outputs[0].shape[0])
            )
            model.load_state_dict({k: torch.from_numpy(v) for k, v in self.weights.items()})
            self._torch = model.to(device).eval()
        return self._torch


class TorchNetwork(Network):
    """Any torch.nn.Module. Layers are captured with hooks (values cloned, eval mode)."""

    kind = "torch"

    def __init__(
        self,
        model,
        prep: Preprocess,
        meta: dict | None = None,
        classes=None,
        output: str | None = None,
        device: str = "cpu",
        spec: ModelSpec | None = None,
    ):
        from ..spec import describe

        self.model = model
        self.prep = prep
        self.meta = dict(meta or {})
        self.classes = classes
        self.device = device
        self.notes = []
        self.spec = spec or describe(model, prep.input_size, device)
        # a torch.export program is traced for the batch size it was exported with (often 1)
        self.one_at_a_time = type(model).__name__ == "UnflattenedModule"
        names = [o.name for o in self.spec.outputs]
        if output not in (None, "") and str(output) not in names:
            if names == [""]:  # a plain tensor: the outputs of a tuple or dict are 0, 1, ...
                raise ConvseeError(
                    f"the model has no output {str(output)[:40]!r}: its one output is the "
                    "model's return value (an output is chosen only from a tuple or dict)"
                )
            raise ConvseeError(
                f"the model has no output {str(output)[:40]!r}; its outputs: {', '.join(names)}"
            )
        self.output = None if output in (None, "") else str(output)

    def _scores_spec(self):
        want = self.output if self.output is not None else self.spec.outputs[0].name
        return next(o for o in self.spec.outputs if o.name == want)

    def run(self, x, layers=()):
        import torch

        from ..run.capture import activations

        xt = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device)
        try:
            if self.one_at_a_time and len(xt) > 1:  # exported with a fixed batch of one
                parts = [self.run(x[i : i + 1], layers) for i in range(len(x))]
                acts = {k: np.concatenate([a[k] for a, _ in parts]) for k in parts[0][0]}
                probs = None if parts[0][1] is None else np.concatenate([p for _, p in parts])
                return acts, probs
            acts, scores = activations(self.model, xt, list(layers), output=self.output)
        except ConvseeError:
            raise
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0][:300]
            raise ConvseeError(
                f"the model failed on an input of shape {tuple(x.shape)}: {first}"
            ) from None
        out = self._scores_spec()
        s = scores.detach().float().cpu().numpy()
        if s.ndim != 2:
            return acts, None
        if out.probabilities:
            return acts, s.astype(np.float32)
        if out.log_probabilities:
            return acts, np.exp(s).astype(np.float32)
        return acts, softmax(s)

    def torch_model(self, device: str | None = None):
        return self.model

    def kernel(self, name: str):
        layer = self.spec.layer(name)
        m = dict(self.model.named_modules()).get(layer.module)
        w = getattr(m, "weight", None)
        if w is None or w.dim() != 4:
            return None
        return w.detach().float().cpu().numpy()
