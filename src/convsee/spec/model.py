"""The model description: every capturable layer of a model, its output shape, its receptive
field, its channels, and the model's outputs, with the questions commands, figures and the
live page ask of it (which layer holds the class scores, the default layers of a view, the
convolutions, the map layers, which channels to show, which output reads as class scores).

Built by the tracer (spec/tracer.py) for a torch model, and by models/lenet_numpy.py for
LeNet-5's torch-free path. No torch here.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import asdict, dataclass, field, replace

from ..errors import ConvseeError
from .field import Field

__all__ = [
    "Layer",
    "Output",
    "ModelSpec",
    "select_channels",
    "layer_name",
    "with_fields",
    "score_kind",
    "output_warning",
]


@dataclass(frozen=True)
class Layer:
    """One capturable output: a module call (or one element of a module's tuple output)."""

    name: str  # what users type: "layer1.0.conv1", "relu#2" (second call), "heads.0" (element)
    module: str  # qualified module name, state-dict style
    call: int  # which call of the module in one forward pass, from 1
    element: str  # path into a tuple/dict output ("" for a plain tensor), e.g. "0" or "logits"
    type: str  # the module's class name, e.g. "Conv2d"
    shape: tuple[int, ...]  # one sample's output shape, no batch axis
    params: int  # parameters of the module (with its children)
    calls: int  # how many times the module runs in one forward pass
    depth: int  # nesting depth of the module (0: a child of the model)
    leaf: bool  # the module has no child modules
    nonneg: bool  # output known to be >= 0 (after ReLU, softmax, pooling of such maps)
    field: Field | None  # receptive field of one output pixel (None: unknown or not a map)
    conv: str | None  # the conv layer whose kernels made this map (through element-wise ops)
    kernel: tuple[int, ...] | None = None  # conv weight shape (out, in/groups, kh, kw)
    # the module outputs (N, H, W, C), as after x.permute(0, 2, 3, 1) (ConvNeXt's pwconv1):
    # shape is given as (C, H, W) and capture permutes the values to it (run/capture.py)
    channels_last: bool = False

    @property
    def kind(self) -> str:
        """'map' (C, H, W), 'vector' (N,), or 'other' (sequences, 3-D maps, scalars)."""
        if len(self.shape) == 3:
            return "map"
        if len(self.shape) == 1:
            return "vector"
        return "other"

    @property
    def signed(self) -> bool:
        return not self.nonneg

    @property
    def channels(self) -> int:
        return self.shape[0] if self.shape else 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["field"] = None if self.field is None else self.field.to_dict()
        d["kernel"] = None if self.kernel is None else list(self.kernel)
        d["kind"] = self.kind
        return d


@dataclass(frozen=True)
class Output:
    """One element of the model's output (a tuple, list or dict is split)."""

    name: str  # "" for a plain tensor; "0", "1" or a key otherwise
    shape: tuple[int, ...]
    probabilities: bool  # produced by softmax (or exp of log_softmax): not softmaxed again
    log_probabilities: bool = False
    field: Field | None = None  # a map output's receptive field (dense scores: where each sits)


@dataclass
class ModelSpec:
    input_shape: tuple[int, int, int]  # (C, H, W)
    layers: list[Layer]
    outputs: list[Output]
    functional: list[str] = field(default_factory=list)  # ops no module hook can see
    model_type: str = ""

    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def layer(self, name: str, param: str = "layer") -> Layer:
        """The layer called name (NAME#k, or plain NAME for the first call of a module run
        several times); param: the parameter that named it, for the error."""
        name = name.strip()
        for layer in self.layers:
            if layer.name == name:
                return layer
        # plain NAME names the first call of a module run several times
        for layer in self.layers:
            if layer.call == 1 and layer.calls > 1 and _plain(layer) == name:
                return layer
        close = [n for n in self.names() if name.split(".")[-1] in n][:6]
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ConvseeError(
            f"unknown layer {name!r}{hint}; `convsee layers` lists the {len(self.layers)} "
            "valid names",
            param,
        )

    def select(self, text, default=None, param: str = "layers") -> list[Layer]:
        """Layers from a comma-separated list of names, NAME#k, glob patterns ('layer1.*'),
        'all', or 'type:Conv2d'. Whitespace around names is ignored; duplicates dropped.
        param: the parameter that gave text, for the errors."""
        if text is None:
            text = default
        items = text if isinstance(text, (list, tuple)) else str(text).split(",")
        items = [str(x).strip() for x in items if str(x).strip()]
        if not items:
            raise ConvseeError("no layers given; `convsee layers` lists the valid names", param)
        out: list[Layer] = []
        for item in items:
            if item == "all":
                found = list(self.layers)
            elif item.startswith("type:"):
                want = item[5:].lower()
                found = [x for x in self.layers if x.type.lower() == want]
                if not found:
                    types = sorted({x.type for x in self.layers})
                    raise ConvseeError(
                        f"no layer of type {item[5:]!r}; types: {', '.join(types)}", param
                    )
            elif any(c in item for c in "*?["):
                found = [x for x in self.layers if fnmatch.fnmatchcase(x.name, item)]
                if not found:
                    raise ConvseeError(
                        f"no layer matches {item!r}; `convsee layers` lists the valid names",
                        param,
                    )
            else:
                found = [self.layer(item, param)]
            for layer in found:
                if layer not in out:
                    out.append(layer)
        return out

    def maps(self) -> list[Layer]:
        return [x for x in self.layers if x.kind == "map"]

    def convs(self) -> list[Layer]:
        return [x for x in self.layers if x.kernel is not None and x.kind == "map"]

    def default_layers(self, purpose: str = "render", output: str | None = None) -> str:
        """The layers a view shows when none are asked for, as select() text. render: every
        Conv2d (else every map layer); exemplars: the first and the last conv (else map,
        else the last vector layer); optimize: the first and the last conv (else map) and
        the layer holding the class scores. (LeNet-5: conv1,conv2, and fc3 to optimize.)"""
        convs = [x.name for x in self.layers if x.type == "Conv2d" and x.kind == "map"]
        maps = [x.name for x in self.maps()]
        if purpose == "render":
            if convs:
                return "type:Conv2d"
            if not maps:
                raise ConvseeError(
                    "the model has no layer with map outputs (C, H, W) to draw", "model"
                )
            return ",".join(maps)
        ends = [convs[0], convs[-1]] if convs else [maps[0], maps[-1]] if maps else []
        if purpose == "exemplars":
            vectors = [x.name for x in self.layers if x.kind == "vector"]
            if not ends and not vectors:
                raise ConvseeError(
                    "the model has no map or vector layer to rank inputs by", "model"
                )
            return ",".join(dict.fromkeys(ends or vectors[-1:]))
        if purpose == "optimize":
            scores = self.scores_layer(output)
            out = ends + ([scores] if scores else [])
            if not out:
                raise ConvseeError("the model has no map or vector layer: name one", "layers")
            return ",".join(dict.fromkeys(out))
        raise ValueError(f"no default layers for {purpose!r}")

    def scores_layer(self, output: str | None = None) -> str | None:
        """The layer that holds the class scores (its logits, drawn as probabilities): the
        last vector layer shaped like the model's output (output: which one; default the
        first), or None when that output is not one vector per input."""
        out = next((o for o in self.outputs if o.name == output), None)
        out = out or (self.outputs[0] if self.outputs else None)
        if out is None or len(out.shape) != 1:
            return None
        found = [x.name for x in self.layers if x.kind == "vector" and x.shape == out.shape]
        return found[-1] if found else None

    def to_dict(self) -> dict:
        return {
            "model_type": self.model_type,
            "input_shape": list(self.input_shape),
            "layers": [x.to_dict() for x in self.layers],
            "outputs": [
                {"name": o.name, "shape": list(o.shape), "probabilities": o.probabilities}
                for o in self.outputs
            ],
            "functional": list(self.functional),
        }

    def table(self) -> str:
        """The layers as `convsee layers` prints them: outputs, one row per layer, notes."""
        outs = ", ".join(
            f"{o.name or 'output'} {'x'.join(map(str, o.shape))}"
            + (" (probabilities)" if o.probabilities else "")
            for o in self.outputs
        )
        rows = [("name", "type", "output", "params", "field / stride", "runs")]
        for x in self.layers:
            rows.append(
                (
                    "  " * x.depth + x.name,
                    x.type,
                    "x".join(map(str, x.shape)) or "-",
                    f"{x.params:,}" if x.params else "",
                    _field_text(x),
                    f"{x.call} of {x.calls}" if x.calls > 1 else "",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"outputs: {outs}"]
        lines += ["  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() for r in rows]
        lines.append(
            f"\n{len(self.layers)} layers. 'field / stride': the input pixels one output pixel "
            "sees and the step between neighbouring outputs."
        )
        last = [x.name for x in self.layers if x.channels_last]
        if last:
            lines.append(
                f"Channels-last (N,H,W,C) outputs, shown and drawn as CxHxW maps: {', '.join(last)}"
            )
        if self.functional:
            lines.append(
                "Functional ops no module hook can see (capture the module around or after "
                "them): " + ", ".join(self.functional)
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        size = "x".join(map(str, self.input_shape))
        return f"{self.model_type or 'model'}: input {size}\n{self.table()}"


def _field_text(layer: Layer) -> str:
    """'5 / 1' (size / stride), '9x5 / 2x1', 'whole input' or '-'."""
    f = layer.field
    if f is None:
        return "whole input" if layer.kind == "vector" else "-"
    if f.whole:
        return "whole input"
    size = f"{f.size[0]}x{f.size[1]}" if f.size[0] != f.size[1] else f"{f.size[0]}"
    s = f.stride
    stride = f"{s[0]:g}x{s[1]:g}" if s[0] != s[1] else f"{s[0]:g}"
    return f"{size} / {stride}"


def select_channels(
    choice, n: int, means=None, name: str = "the layer", param: str = "channels"
) -> list[int]:
    """The channels to show of a layer with n channels: choice is None (all), a list of
    numbers, or ('all'|'top'|'list', arg) as cli.options.parse_channels gives it; for 'top',
    means() returns each channel's mean activation (called only then), and the K highest are
    kept, in channel order. The one selection rule of render, the views and the page."""
    if choice is None:
        return list(range(n))
    if isinstance(choice, tuple) and len(choice) == 2 and isinstance(choice[0], str):
        kind, arg = choice
        if kind == "all":
            return list(range(n))
        if kind == "top":
            import numpy as np

            k = min(int(arg), n)
            order = np.argsort(-np.asarray(means(), np.float64), kind="stable")[:k]
            return sorted(int(c) for c in order)
        choice = arg
    chans = [int(c) for c in choice]
    bad = [c for c in chans if not 0 <= c < n]
    if bad:
        raise ConvseeError(
            f"channel {max(bad)} is out of range; {name} has {n} channels (0-{n - 1})", param
        )
    return chans


def _plain(layer: Layer) -> str:
    return layer.module + (f".{layer.element}" if layer.element else "")


def layer_name(module: str, call: int, calls: int, element: str) -> str:
    name = module + (f"#{call}" if calls > 1 else "")
    return name + (f".{element}" if element else "")


def with_fields(spec: ModelSpec, fields: dict[str, Field | None]) -> ModelSpec:
    """A copy with some layers' fields replaced (used by tests)."""
    layers = [replace(x, field=fields.get(x.name, x.field)) for x in spec.layers]
    return ModelSpec(spec.input_shape, layers, spec.outputs, spec.functional, spec.model_type)


# names an output of class scores does not have (box regression, landmarks, embeddings ...)
_NOT_SCORES = re.compile(
    r"(box|bbox|reg|landmark|keypoint|point|offset|coord|embed|feature|hidden|mask|depth)",
    re.I,
)
_SCORES = re.compile(r"(logit|score|prob|class|cls|pred)", re.I)


def score_kind(o: Output) -> str:
    """How an output reads as class scores: 'vector' (K scores per input), 'dense' (K scores
    per position, (K, H, W), as a fully convolutional detector returns them), or 'no' (a
    name saying otherwise, a scalar, 1-vectors, other ranks)."""
    if _NOT_SCORES.search(o.name or "") and not _SCORES.search(o.name or ""):
        return "no"
    if len(o.shape) == 1 and o.shape[0] >= 2:
        return "vector"
    if len(o.shape) == 3 and o.shape[0] >= 2:
        return "dense"
    return "no"


def output_warning(spec: ModelSpec, chosen: str | None) -> str | None:
    """A one-line warning when the output read as class scores (the first, unless chosen) is
    not plausibly class scores while another output is: it lists the outputs (index, name,
    shape) and how to choose one. None when the choice looks right or nothing looks better."""
    outs = spec.outputs
    if len(outs) < 2 or chosen not in (None, ""):
        return None
    first = outs[0]
    better = [o for o in outs[1:] if score_kind(o) != "no"]
    why = _not_scores_why(first, better)
    if why is None:
        return None
    listed = "; ".join(
        f"{i}: {'x'.join(map(str, o.shape)) or 'scalar'}"
        + (" (probabilities)" if o.probabilities else "")
        + (f" '{o.name}'" if o.name and o.name != str(i) else "")
        for i, o in enumerate(outs)
    )
    pick = better[0].name if better else outs[1].name
    return (
        f"the first output ({'x'.join(map(str, first.shape)) or 'a scalar'}) is read as the class "
        f"scores, but {why}; the outputs: {listed}; choose one with --output K|NAME "
        f"(--output {pick}; in Python output={pick!r})"
    )


def _not_scores_why(first: Output, better: list[Output]) -> str | None:
    kind = score_kind(first)
    if kind == "no":
        if _NOT_SCORES.search(first.name or "") and not _SCORES.search(first.name or ""):
            return f"its name {first.name!r} says it is not"
        return "it is not a vector of scores per input"
    # a plain vector: suspicious only beside an output that is probabilities and the first not
    probs = [o for o in better if o.probabilities and o.shape[:1] != first.shape[:1]]
    if not first.probabilities and probs and kind == score_kind(probs[0]):
        return f"output {probs[0].name} ends in a softmax and it does not"
    return None
