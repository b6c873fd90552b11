"""A model as convsee runs it: the one object every command, the page and the Python API use.

A `Network` holds a model's description (spec.ModelSpec), how inputs are prepared for it
(datasets.transforms.Preprocess), its class names and where it came from (`provenance`, a
models.provenance.Provenance: what goes into sidecars).
`run(x, layers)` returns every requested layer's output as NumPy arrays (batch axis first)
and the class probabilities. Two kinds:

- `LeNetNetwork`: LeNet-5 in NumPy (no torch import; `convsee render` stays fast); a torch
  copy is built on demand for the views that need gradients.
- `TorchNetwork`: any torch.nn.Module, captured with forward hooks (convsee/capture.py).

The methods that draw or explain (render, kernels, explain, ...) are not here: they live in
the layers above (run, draw) and are attached by views/network.py, which convsee.load and
convsee.wrap use. A Network from models.load has only what models/ can do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..datasets.inputs import Input, resolve_inputs
from ..datasets.transforms import Preprocess
from ..errors import ConvseeError
from ..spec import Layer, ModelSpec
from .lenet_layers import LENET5, Row, row, smallest_side, snapshot_rows, trace
from .params import ConvParams, PoolParams
from .provenance import Provenance

__all__ = [
    "Network",
    "LeNetNetwork",
    "TorchNetwork",
    "Prediction",
    "check_lenet_size",
    "softmax",
]


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    input: Input
    prediction: int | None  # None: the model's output is not class scores
    probabilities: list[float]  # per class; for a dense output, its maximum over positions
    classes: tuple[str, ...] = ()
    # a dense output (K scores per position, (K, H, W)): the probabilities at every position,
    # and where each class's maximum is, (row, col) on that grid (dense_predictions)
    map: np.ndarray | None = None
    positions: tuple[tuple[int, int], ...] = ()

    @property
    def where(self) -> tuple[int, int] | None:
        """(row, col) of the predicted class's maximum on a dense output's grid, else None."""
        return self.positions[self.prediction] if self.positions else None

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
            **(
                {"map_shape": list(self.map.shape), "positions": [list(q) for q in self.positions]}
                if self.map is not None
                else {}
            ),
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
        at = ""
        if self.where is not None:
            at = f" at {self.where} of {'x'.join(map(str, self.map.shape[1:]))}"
        return f"Prediction({self.input.name}: {self.label} {p:.1%}{at}{true})"


class Network:
    """Shared behaviour; see LeNetNetwork and TorchNetwork."""

    kind = "base"
    spec: ModelSpec
    prep: Preprocess
    classes: list[str] | None
    meta: dict  # the rest of what loading found (a checkpoint's metadata, reference ranges)
    provenance: Provenance  # the model, checkpoint and preprocessing, as sidecars record them
    output: str | None = None  # the output chosen to hold the class scores (None: the first)
    notes: list[str]  # what was assumed while loading (e.g. default preprocessing)
    warnings: tuple[str, ...] = ()  # what looks wrong (e.g. the first output is not scores)
    dataset: str | None = None  # chosen by the caller; None: the checkpoint's, else MNIST

    def __repr__(self) -> str:
        name = self.display_name
        size = "x".join(map(str, self.prep.input_size))
        out = self.spec.outputs[0].shape if self.spec.outputs else ()
        k = f", {out[0]} classes" if len(out) == 1 else ""
        trained = self.provenance.dataset
        data = f", trained on {trained}" if trained else ""
        return f"<convsee {name}: input {size}{k}{data}, {len(self.spec.layers)} layers>"

    def takes(self, dataset: str) -> bool:
        """Whether the dataset's images are what this model takes: it takes one channel (gray,
        as the datasets' images are) or its classes are the dataset's."""
        from ..datasets.registry import lookup

        if self.prep.input_size[0] == 1:
            return True
        return [str(c) for c in self.classes or []] == list(lookup(dataset).classes)

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

        from ..datasets.registry import lookup

        dataset = dataset or self.dataset or self.provenance.trained_on()

        inputs = resolve_inputs(specs, self.prep, data_dir, dataset)
        theirs = list(lookup(dataset).classes)
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
            x = self.batch(chunk)
            _, probs = self.run(x)
            dense = self.dense_scores(x) if probs is None else None
            if dense is not None:
                preds += dense_predictions(chunk, dense, self.class_names(dense.shape[1]))
                continue
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

    def scores(self, x: np.ndarray) -> np.ndarray | None:
        """Class probabilities only (N, K), or None when the output is not class scores."""
        return self.run(x)[1]

    def scores_output(self):
        """The model output (a spec.Output) holding its class scores: the one chosen when the
        network was made (`output`), else its first; None when the spec lists no outputs.
        scores(), predict(), evaluate(), attribution and the class-name checks read this
        output; its shape is (K,) for K classes per image, (K, H, W) for scores per position,
        anything else for an output that is not class scores."""
        outs = self.spec.outputs
        return next((o for o in outs if o.name == self.output), outs[0] if outs else None)

    def dense_scores(self, x: np.ndarray) -> np.ndarray | None:
        """Class probabilities per position (N, K, H, W) when the scores output is dense (a
        fully convolutional detector's, MTCNN's PNet), else None."""
        return None

    def torch_model(self):
        raise NotImplementedError

    def kernel(self, name: str):
        """The weights (out, in/groups, kh, kw) of conv layer `name` as a NumPy array (None
        where its module holds no 4-D weight); a layer without a kernel is refused."""
        raise NotImplementedError

    def conv_params(self, layer: Layer) -> ConvParams:
        """The weights, bias, stride, padding... of conv layer `layer` (animate, explain)."""
        raise NotImplementedError

    def pool_params(self, layer: Layer) -> PoolParams:
        """The window of max-pooling layer `layer` (animate, explain)."""
        raise NotImplementedError

    def layer_input(self, layer: Layer, x: np.ndarray) -> np.ndarray:
        """(C, H, W): what the layer's module receives for the model input x (C, H, W)."""
        raise NotImplementedError

    # -- what the views do with this model when not told ---------------------------------------
    # Each answers one question for any model; LeNet-5's answers come from its table
    # (models/lenet_layers.py), another model's are the generic ones below.

    @property
    def display_name(self) -> str:
        """How pictures and repr name the model."""
        return self.provenance.model or "model"

    @property
    def torch_free(self) -> bool:
        """Whether run() works without importing torch (a server may import it later, in
        the background, for the views that need gradients)."""
        return False

    @property
    def thread_safe(self) -> bool:
        """Whether run() may be called from several threads at once: no hooks on a shared
        torch module, so no lock is needed."""
        return False

    @property
    def plain_chain(self) -> bool:
        """Whether every layer receives the previous layer's output (the first the input),
        each a Conv2d, ReLU, MaxPool2d, Flatten or Linear answered by conv_params, pool_params
        and linear_params: explain then redoes it without hooks."""
        return False

    def linear_params(self, layer: Layer) -> tuple[np.ndarray, np.ndarray]:
        """(weight (out, in), bias (out,)) of Linear layer `layer` of a plain chain."""
        raise NotImplementedError

    @property
    def logits_layer(self) -> str | None:
        """The layer whose output is the class scores softmax turns into probabilities, when
        known without running the model (None: watch a forward pass to find out)."""
        return None

    def default_blur(self, layer: Layer) -> tuple[int, float] | None:
        """(size, sigma) of the blurred copy `render` adds to map layer `layer` by default,
        or None: no blurred copy unless asked."""
        return None

    def preferred_channel(self, layer: Layer) -> int | None:
        """The channel of `layer` a one-channel view (animate) shows unless asked, or None:
        the view picks (the strongest response)."""
        return None

    @property
    def default_layer(self) -> str | None:
        """The layer one-layer views (optimize) start from unless asked, or None: theirs."""
        return None

    @property
    def kernel_sheet(self) -> tuple[str, str] | None:
        """The two conv layers whose kernels are drawn together on one sheet (kernels.png),
        or None: one picture per conv layer (kernels/NAME.png)."""
        return None

    @property
    def snapshot_convs(self) -> tuple[str, ...]:
        """The conv layers whose weights alone replay their maps at a training snapshot (a
        chain of convs, ReLUs and pools from the input: `train --snapshots` records only
        them), or (): snapshots hold the whole state dict and are replayed by the model."""
        return ()

    @property
    def also_shown(self) -> tuple[str, ...]:
        """Layers the web page shows beside its default ones (LeNet-5: the ReLUs that turn
        conv's signed maps non-negative)."""
        return ()

    @property
    def ranges_from_samples(self) -> bool:
        """Whether a layer without a reference range in the checkpoint gets one from the
        bundled samples (a fixed colour range on the page), rather than none."""
        return False

    def layer_settings(self) -> dict | None:
        """{layer name: {"in": input shape, "type", and for Conv2d / MaxPool2d kernel, stride,
        pad, dilation (, groups, cin, bias)}} known without running the model, or None: read
        them off the modules with hooks."""
        return None

    def _kernel_layer(self, name: str) -> Layer:
        """The layer `name`, which the spec says has a kernel, else a ConvseeError naming the
        layers that have one."""
        try:
            layer = self.spec.layer(name)
        except ConvseeError as e:
            e.param = "name"  # the argument of kernel(name)
            raise
        if layer.kernel is None:
            some = ", ".join(x.name for x in self.spec.layers if x.kernel is not None)
            raise ConvseeError(
                f"layer {layer.name} has no kernel; layers with kernels: {some or 'none'}",
                "name",
            )
        return layer

    def describe(self) -> str:
        return f"{self.spec.model_type} ({self.prep.describe()})"


def check_lenet_size(weights: dict, input_size, rows: tuple[Row, ...] = LENET5) -> None:
    """Raise ConvseeError, in one line naming the size it takes, when LeNet-5 with these
    weights cannot take inputs of input_size (C, H, W): conv1 reads a fixed number of
    channels and fc1 a fixed number of values (16x4x4 = 256 for 28x28 inputs)."""
    c, h, w = input_size
    convs = [r for r in rows if r.op == "Conv2d"]
    fc = next(r for r in rows if r.op == "Linear")
    first, values = convs[0], weights[f"{fc.name}.weight"].shape[1]
    cin = weights[f"{first.name}.weight"].shape[1]
    maps = weights[f"{convs[-1].name}.weight"].shape[0]
    before = rows[: rows.index(fc)]
    _, oh, ow = [s for _, s, _ in trace((cin, h, w), 0, weights, before) if len(s) == 3][-1]
    if c == cin and maps * oh * ow == values:
        return
    g = math.isqrt(values // maps)
    if maps * g * g == values:  # square inputs: the smallest side that gives g x g
        kernels = {r.name: weights[f"{r.name}.weight"].shape[-1] for r in convs}
        n = smallest_side(g, kernels, before)
        takes, reads = f"{cin}x{n}x{n}", f"{maps}x{g}x{g} = {values}"
        hint = f": give {{param}} {cin},{n},{n} or leave it out"
    else:
        takes, reads, hint = f"{cin}-channel", f"{values}", ""
    if c != cin:
        why = f"{c} channel{'' if c == 1 else 's'}; {first.name} reads {cin}"
    else:
        why = f"that gives {maps}x{oh}x{ow} = {maps * oh * ow}" if oh and ow else "too small"
    raise ConvseeError(
        f"LeNet-5 takes {takes} inputs (its {fc.name} reads {reads} values), not {c}x{h}x{w} "
        f"({why}){hint}",
        param="input_size",
    )


class LeNetNetwork(Network):
    """LeNet-5 from a NumPy state dict: forward in NumPy, torch only when asked. Every
    answer about its layers comes from its table, `rows` (models/lenet_layers.py)."""

    kind = "lenet"
    rows: tuple[Row, ...] = LENET5

    def __init__(
        self,
        weights: dict,
        meta: dict,
        prep: Preprocess,
        classes=None,
        provenance: Provenance | None = None,
    ):
        from .lenet_numpy import lenet_spec

        self.weights = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        check_lenet_size(self.weights, prep.input_size, self.rows)
        self.meta = meta
        self.provenance = provenance or Provenance(preprocess=prep.to_dict())
        self.prep = prep
        self.classes = classes
        self.output = None
        self.notes = []
        self.spec = lenet_spec(self.weights, prep.input_size, self.rows)
        self._torch = None

    def run(self, x, layers=()):
        from .lenet_numpy import forward_all

        acts, logits = forward_all(self.weights, x, self.rows)
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
        name = self._kernel_layer(name).module or name
        w = self.weights.get(f"{name}.weight")
        return None if w is None or w.ndim != 4 else w

    def torch_model(self, device: str | None = None):
        if self._torch is None:
            import torch

            from .lenet import LeNet5, ModelConfig

            c, h, _ = self.prep.input_size
            k = self.spec.outputs[0].shape[0]
            model = LeNet5(ModelConfig(in_channels=c, image_size=h, num_classes=k), self.rows)
            model.load_state_dict({k: torch.from_numpy(v) for k, v in self.weights.items()})
            self._torch = model.to(device or "cpu").eval()
        return self._torch

    # -- the layers, from the table ------------------------------------------------------------
    def _row(self, layer: Layer, op: str | None = None) -> Row:
        r = row(layer.module, self.rows)
        if r is None or (op is not None and r.op != op):
            want = f"a {op} layer" if op else "a layer"
            raise ConvseeError(f"{layer.name} is not {want} of LeNet-5")
        return r

    def conv_params(self, layer):
        r = self._row(layer, "Conv2d")
        w = self.weights[f"{r.name}.weight"]
        b = self.weights[f"{r.name}.bias"]
        p = r.padding
        return ConvParams(
            np.asarray(w, np.float32), np.asarray(b, np.float32), (r.stride,) * 2, (p, p, p, p)
        )

    def pool_params(self, layer):
        r = self._row(layer, "MaxPool2d")
        return PoolParams((r.kernel, r.kernel), (r.stride, r.stride), (0, 0))

    def linear_params(self, layer):
        r = self._row(layer, "Linear")
        return self.weights[f"{r.name}.weight"], self.weights[f"{r.name}.bias"]

    def layer_input(self, layer, x):
        names = self.spec.names()
        i = names.index(layer.name)
        if i == 0:
            return np.asarray(x, np.float32)
        prev = names[i - 1]
        acts, _ = self.run(np.asarray(x, np.float32)[None], [self.spec.layer(prev)])
        return acts[prev][0]

    @property
    def display_name(self) -> str:
        return "LeNet-5"

    @property
    def torch_free(self) -> bool:
        return True

    @property
    def thread_safe(self) -> bool:
        return True

    @property
    def plain_chain(self) -> bool:
        return True

    @property
    def logits_layer(self) -> str:
        return self.rows[-1].name

    def default_blur(self, layer):
        r = row(layer.module, self.rows)
        return None if r is None else r.blur

    def preferred_channel(self, layer):
        r = row(layer.module, self.rows)
        c = None if r is None else r.channel
        return c if c is not None and c < layer.channels else None

    @property
    def default_layer(self) -> str:
        return next(r.name for r in self.rows if r.op == "Conv2d")

    @property
    def kernel_sheet(self):
        convs = tuple(r.name for r in self.rows if r.op == "Conv2d")
        return convs if len(convs) == 2 else None

    @property
    def snapshot_convs(self):
        return tuple(r.name for r in snapshot_rows(self.rows) if r.op == "Conv2d")

    @property
    def also_shown(self):
        return tuple(r.name for r in self.rows if r.on_page)

    @property
    def ranges_from_samples(self) -> bool:
        return True

    def layer_settings(self):
        out, prev = {}, tuple(self.spec.input_shape)
        for layer in self.spec.layers:
            r = self._row(layer)
            s = {"in": prev, "type": layer.type}
            if r.op == "Conv2d":
                s.update(
                    kernel=tuple(layer.kernel[2:]),
                    stride=(r.stride, r.stride),
                    pad=(r.padding, r.padding),
                    dilation=(1, 1),
                )
                s.update(groups=1, cin=layer.kernel[1], bias=True)
            elif r.op == "MaxPool2d":
                s.update(kernel=(r.kernel,) * 2, stride=(r.stride,) * 2, pad=(0, 0))
                s.update(dilation=(1, 1))
            out[layer.name] = s
            prev = tuple(layer.shape)
        return out


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
        provenance: Provenance | None = None,
    ):
        from ..spec import describe

        self.model = model
        self.prep = prep
        self.meta = dict(meta or {})
        self.provenance = provenance or Provenance(preprocess=prep.to_dict())
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
                    "model's return value (an output is chosen only from a tuple or dict)",
                    "output",
                )
            raise ConvseeError(
                f"the model has no output {str(output)[:40]!r}; its outputs: {', '.join(names)}",
                "output",
            )
        self.output = None if output in (None, "") else str(output)
        from ..spec import output_warning

        warn = output_warning(self.spec, self.output)
        self.warnings = (warn,) if warn else ()

    def run(self, x, layers=()):
        import torch

        from ..capture import activations

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
        s = scores.detach().float().cpu().numpy()
        if s.ndim != 2:
            return acts, None
        return acts, self._probabilities(s)

    def _probabilities(self, s: np.ndarray) -> np.ndarray:
        """Scores (N, K, ...) as probabilities over axis 1 (softmaxed unless they are)."""
        out = self.scores_output()
        if out.probabilities:
            return s.astype(np.float32)
        if out.log_probabilities:
            return np.exp(s).astype(np.float32)
        return softmax(s)

    def dense_scores(self, x):
        from ..spec import score_kind

        if score_kind(self.scores_output()) != "dense":
            return None
        import torch

        from ..capture import activations

        xt = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device)
        _, scores = activations(self.model, xt, [], output=self.output)
        return self._probabilities(scores.detach().float().cpu().numpy())

    def torch_model(self, device: str | None = None):
        return self.model

    def kernel(self, name: str):
        layer = self._kernel_layer(name)
        m = dict(self.model.named_modules()).get(layer.module)
        w = getattr(m, "weight", None)
        if w is None or w.dim() != 4:
            return None
        return w.detach().float().cpu().numpy()

    def conv_params(self, layer):
        from .params import torch_conv_params

        return torch_conv_params(self._module(layer))

    def pool_params(self, layer):
        from .params import torch_pool_params

        return torch_pool_params(self._module(layer), layer.name)

    def _module(self, layer):
        return dict(self.torch_model().named_modules())[layer.module]

    def layer_input(self, layer, x):
        import torch

        from ..capture import eval_mode

        model = self.torch_model()
        module = dict(model.named_modules())[layer.module]
        seen = {"calls": 0}
        got = {}

        def start(_m, _args):
            seen["calls"] = 0

        def pre(_m, args):
            seen["calls"] += 1
            if seen["calls"] == layer.call and args and isinstance(args[0], torch.Tensor):
                got["x"] = args[0].detach().clone()

        try:
            p = next(model.parameters())
            device, dtype = p.device, p.dtype
        except StopIteration:
            device, dtype = torch.device("cpu"), torch.float32
        xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None].to(device, dtype)
        handles = [model.register_forward_pre_hook(start), module.register_forward_pre_hook(pre)]
        try:
            with eval_mode(model), torch.no_grad():
                model(xt)
        finally:
            for h in handles:
                h.remove()
        if "x" not in got:
            raise ConvseeError(f"layer {layer.name} did not run in the forward pass")
        return got["x"][0].float().cpu().numpy()


def dense_predictions(inputs, probs: np.ndarray, classes: list[str]) -> list:
    """Predictions from per-position class probabilities (N, K, H, W), as a fully
    convolutional detector outputs them (MTCNN's PNet: face or not at every 12x12 window).

    Each class's score is its maximum over the positions, at the first (row, col) reaching it
    (row-major); the prediction is the class with the highest such maximum. The whole map
    travels with the Prediction (`.map`, (K, H, W)) to be drawn."""
    probs = np.asarray(probs, np.float32)
    if probs.ndim != 4:
        raise ValueError(f"dense scores are (N, K, H, W), got shape {probs.shape}")
    n, k, h, w = probs.shape
    flat = probs.reshape(n, k, h * w)
    best = flat.argmax(2)  # first maximum, row-major
    out = []
    for i, inp in enumerate(inputs):
        tops = [float(flat[i, c, best[i, c]]) for c in range(k)]
        where = tuple((int(best[i, c]) // w, int(best[i, c]) % w) for c in range(k))
        out.append(
            Prediction(
                inp, int(np.argmax(tops)), tops, tuple(classes), map=probs[i], positions=where
            )
        )
    return out
