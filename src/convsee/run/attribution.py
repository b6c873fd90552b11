"""Which pixels decide a class: saliency (the input gradient) and Grad-CAM, for any model.

The class score is one element of the model's chosen output (a tuple or dict output: the one
`output` names). It is a logit, or a probability / log-probability when the model itself ends
in a softmax / log-softmax: `Attribution.quantity` says which was differentiated.

saliency: |d score / d pixel| on the [0, 1] scale of the picture the model sees (the gradient
  with respect to the normalised input divided by each channel's std); for several channels
  the largest over the channels, per pixel.
Grad-CAM (Selvaraju et al. 2017) at a map layer with output A (C, h, w): alpha_c is the spatial
  mean of d score / d A_c and the map is ReLU(sum_c alpha_c A_c), (h, w). It is drawn on the
  input by placing map pixel (i, j) at the centre of its receptive field (start + i * stride
  in input pixels, from the model's description) and interpolating bilinearly between those
  centres; where the field is unknown the map is stretched over the input instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

import numpy as np

from ..errors import ConvseeError
from ..spec import Field, Layer
from . import cams
from .cams import CAM_METHODS, GRADIENT_CAMS, frozen, grab
from .units import device_dtype, one_input

__all__ = [
    "METHODS",
    "PLACEMENTS",
    "Attributions",
    "attribute_batch",
    "cam_candidates",
    "Attribution",
    "attribute",
    "place",
    "stretch_field",
    "default_cam_layer",
    "score_quantity",
    "saliency",
    "grad_cam",
]


@dataclass(frozen=True)
class Attribution:
    target: int  # class index differentiated
    score: float  # its value
    quantity: str  # "logit", "probability" or "log-probability": what was differentiated
    saliency: np.ndarray  # (H, W) >= 0, max over channels of |d score / d pixel|
    gradient: np.ndarray  # (C, H, W) signed d score / d pixel, [0, 1] pixel scale
    layer: str  # Grad-CAM layer
    cam: np.ndarray  # (h, w) >= 0, at the layer's resolution
    alpha: np.ndarray  # (C_layer,) channel weights
    placed: np.ndarray  # (H, W): cam on the input's pixel grid
    field: Field  # where each cam pixel was placed (stretch_field when the real one is unknown)
    field_known: bool  # False: the receptive field is unknown and the map was stretched


def score_quantity(output_spec) -> str:
    """What the chosen output holds: 'probability', 'log-probability' or 'logit'."""
    if output_spec is not None and getattr(output_spec, "probabilities", False):
        return "probability"
    if output_spec is not None and getattr(output_spec, "log_probabilities", False):
        return "log-probability"
    return "logit"


def default_cam_layer(spec) -> Layer:
    """The last map layer a convolution outputs (LeNet-5: conv2)."""
    convs = [x for x in spec.layers if x.kind == "map" and x.kernel is not None]
    if not convs:
        raise ConvseeError(
            "Grad-CAM needs a map layer (C,H,W) made by a convolution; the model has none"
        )
    return convs[-1]


def stretch_field(hw_map, hw_in) -> Field:
    """The 'field' of a map stretched over the input: each map pixel covers an equal block."""
    (h, w), (H, W) = hw_map, hw_in
    sy, sx = H / h, W / w
    return Field((round(sy), round(sx)), (sy, sx), ((sy - 1) / 2, (sx - 1) / 2))


def _axis_weights(n_in: int, n_map: int, start: float, stride: float) -> np.ndarray:
    """(n_in, n_map) bilinear weights: input pixel y takes the map at u = (y - start) / stride,
    clamped to the map's first and last centre."""
    u = np.clip((np.arange(n_in, dtype=np.float64) - start) / stride, 0, n_map - 1)
    lo = np.floor(u).astype(int)
    hi = np.minimum(lo + 1, n_map - 1)
    t = u - lo
    m = np.zeros((n_in, n_map))
    m[np.arange(n_in), lo] += 1 - t
    m[np.arange(n_in), hi] += t
    return m


def place(cam: np.ndarray, field: Field, hw) -> np.ndarray:
    """cam (h, w) on the input's (H, W) pixel grid: map pixel (i, j) sits at field.centre(i, j),
    values in between interpolated bilinearly, beyond the outermost centres held constant."""
    h, w = cam.shape
    H, W = hw
    ry = _axis_weights(H, h, field.start[0], field.stride[0])
    rx = _axis_weights(W, w, field.start[1], field.stride[1])
    return (ry @ cam.astype(np.float64) @ rx.T).astype(np.float32)


def attribute(
    model,
    x: np.ndarray,
    layer: Layer,
    target: int | None = None,
    *,
    output=None,
    output_spec=None,
    std=None,
) -> Attribution:
    """Saliency and Grad-CAM of one input for one class, in one forward and backward pass.

    x: (C, H, W) the normalised model input; layer: a map layer of the model's description;
    target: class index (None: the predicted one); output: which element of a tuple/dict
    output holds the class scores; output_spec: its spec.Output (says whether it is already
    probabilities); std: per-channel std of the normalisation (gradients are reported on the
    [0, 1] pixel scale), None for 1.
    """
    import torch

    from .capture import capture, eval_mode, select_output

    if layer.kind != "map":
        shape = "x".join(map(str, layer.shape)) or "a scalar"
        raise ConvseeError(
            f"Grad-CAM needs a map layer (C,H,W); {layer.name} outputs {shape} per input",
            "layer",
        )
    xt = one_input(model, x)
    xt.requires_grad_(True)
    with eval_mode(model), torch.enable_grad(), capture(model, [layer], grad=True) as acts:
        out = model(xt)
        scores = select_output(out, output)
        if scores.dim() != 2 or scores.shape[0] != 1:
            shape = "x".join(map(str, scores.shape[1:]))
            raise ConvseeError(
                f"attribution needs one score per class; the model's output is {shape} per "
                "input (choose the class-score output with {param})",
                "output",
            )
        k = scores.shape[1]
        t = int(scores[0].argmax()) if target is None else int(target)
        if not 0 <= t < k:
            raise ConvseeError(f"target class {t} is out of range: classes 0..{k - 1}", "target")
        if layer.name not in acts:
            raise ConvseeError(f"layer {layer.name} did not run in the forward pass")
        a = acts[layer.name]
        score = scores[0, t]
        gx, ga = torch.autograd.grad(score, [xt, a], allow_unused=True)
    if gx is None:
        gx = torch.zeros_like(xt)
    if ga is None:  # the score does not depend on this layer (another head)
        ga = torch.zeros_like(a)
    gx = gx[0].detach().float().cpu().numpy()
    s = np.ones(gx.shape[0], np.float32) if std is None else np.resize(np.asarray(std), gx.shape[0])
    grad = (gx / s.astype(np.float32)[:, None, None]).astype(np.float32)
    sal = np.abs(grad).max(0)
    a0 = a[0].detach().double().cpu()
    alpha = ga[0].detach().double().cpu().mean((1, 2))
    cam = torch.relu((alpha[:, None, None] * a0).sum(0)).numpy().astype(np.float32)
    hw = tuple(x.shape[-2:])
    known = layer.field is not None and not layer.field.whole
    fld = layer.field if known else stretch_field(cam.shape, hw)
    return Attribution(
        target=t,
        score=float(score.detach()),
        quantity=score_quantity(output_spec),
        saliency=sal.astype(np.float32),
        gradient=grad,
        layer=layer.name,
        cam=cam,
        alpha=alpha.numpy().astype(np.float32),
        placed=place(cam, fld, hw),
        field=fld,
        field_known=known,
    )


# -------------------------------------------------------------------------------------------
# LeNet-5 on 28x28 MNIST-normalised digits: what the live page calls (web/server.py)
# -------------------------------------------------------------------------------------------


def _lenet_conv2() -> Layer:
    """LeNet-5's last conv layer (conv2: 14x14 fields, stride 2, start 6.5), from its table."""
    from ..models.lenet_layers import state_shapes
    from ..models.lenet_numpy import lenet_spec

    spec = lenet_spec({k: np.zeros(s, np.float32) for k, s in state_shapes().items()})
    return [x for x in spec.layers if x.type == "Conv2d"][-1]


def _lenet_x(image):
    from ..datasets.registry import MEAN, STD

    return ((np.asarray(image, np.float32) - MEAN) / STD)[None], (STD,)


def saliency(model, image: np.ndarray, target: int) -> np.ndarray:
    """LeNet-5: (28, 28) |d logit_target / d pixel| on the [0, 1] scale."""
    x, std = _lenet_x(image)
    return attribute(model, x, _lenet_conv2(), target, std=std).saliency


def grad_cam(model, image: np.ndarray, target: int):
    """LeNet-5: (cam 8x8 >= 0, cam placed on the 28x28 input, alpha per conv2 channel)."""
    x, std = _lenet_x(image)
    r = attribute(model, x, _lenet_conv2(), target, std=std)
    return r.cam, r.placed, r.alpha


# -------------------------------------------------------------------------------------------
# The batch API: every method, one forward (and backward) pass per chunk of inputs
# -------------------------------------------------------------------------------------------

INPUT_METHODS = ("saliency", "integrated-gradients", "occlusion")
METHODS = (*CAM_METHODS, *INPUT_METHODS)
PLACEMENTS = ("field", "stretch")
PROBE = 8  # map layers tried at a time, from the end, when the CAM layer is not given
SCORE_MASKS = 32  # Score-CAM's masked inputs per pass (torchcam's default batch)
PASS_VALUES = 16 * 3 * 224 * 224  # input values per forward pass (rows_per_pass)
INPUT_GRADIENT_SHARE = 2  # a pass back to the input takes PASS_VALUES / this (rows_per_pass)
# input pixels from which a pass runs channels-last (_layout), by where its gradient goes:
# forward-only passes (Score-CAM, occlusion) and passes whose gradient stops at a layer (CAMs)
CHANNELS_LAST_PIXELS = {None: 96 * 96, "layers": 128 * 128}
NEGLIGIBLE = 1e-3  # of the largest first-order contribution sum |A * dS/dA| among them


@dataclass
class Attributions:
    """What `attribute_batch` (and Network.attribution) returns, batch first.

    maps (N, H, W) on the input's pixel grid: CAM methods their layer map placed there;
    saliency max over channels of |dS/dpixel|; integrated gradients and occlusion the sum over
    channels of the per-channel attribution `channels` (N, C, H, W), signed."""

    method: str
    quantity: str  # "logit", "probability", "log-probability" or "custom"
    targets: np.ndarray  # (N,) class differentiated (-1 for a custom target)
    scores: np.ndarray  # (N,) the differentiated value for each input
    maps: np.ndarray  # (N, H, W)
    layer: str | None = None  # the CAM layer
    layer_maps: np.ndarray | None = None  # (N, h, w) the CAM on the layer's own grid
    weights: np.ndarray | None = None  # (N, C) channel weights (Grad-CAM's alpha, ...)
    channels: np.ndarray | None = None  # (N, C, H, W) per-channel input attribution
    placement: str | None = None  # "field" or "stretch" (CAM methods)
    field: Field | None = None  # where each layer-map pixel was placed
    field_known: bool = False
    signed: bool = False  # maps can be negative
    position: object = None  # (row, col) of a dense output, "sum", or None
    noise: int = 0  # noise-tunnel samples averaged (0: none)
    noise_sigma: float = 0.0  # their std, on the [0, 1] pixel scale
    notes: list = dc_field(default_factory=list)
    figures: list = dc_field(default_factory=list)  # filled by Network.attribution

    def __len__(self) -> int:
        return len(self.maps)

    def __repr__(self) -> str:  # one line: the arrays are attributes, not the repr
        at = f" at {self.layer}" if self.layer else ""
        return (
            f"<Attributions {self.method}{at}: {len(self)} input(s), maps "
            f"{'x'.join(map(str, self.maps.shape))}, targets {self.targets.tolist()}, "
            f"{len(self.figures)} figure(s)>"
        )

    def _repr_html_(self) -> str:  # Jupyter shows the pictures (Figures display themselves)
        shown = "".join(f"<div>{f._repr_html_()}</div>" for f in self.figures)
        return shown or f"<pre>{self!r}</pre>"


def _mappable(layer: Layer) -> bool:
    if layer.kind == "map":
        return layer.shape[1] * layer.shape[2] > 1
    return cams.token_grid(layer.shape) is not None


def _post_order(layers: list[Layer]) -> list[Layer]:
    """The layers in the order their outputs are complete: the model's description lists a
    container when it starts (before its children); its output is ready after theirs."""

    def inside(child: Layer, parent: Layer) -> bool:
        return parent.module == "" or child.module.startswith(parent.module + ".")

    out, stack = [], []
    for x in layers:
        while stack and not inside(x, stack[-1]):
            out.append(stack.pop())
        stack.append(x)
    return out + stack[::-1]


def cam_candidates(spec) -> list[Layer]:
    """Layers a CAM can use, in the order their outputs are complete: maps (C, h, w) larger
    than 1x1, and token outputs (T, C) whose tokens form a square grid (a CLS token first
    allowed)."""
    return [x for x in _post_order(list(spec.layers)) if _mappable(x)]


def _check_cam_layer(spec, layer: Layer) -> None:
    if _mappable(layer):
        return
    shape = "x".join(map(str, layer.shape)) or "a scalar"
    some = [x.name for x in cam_candidates(spec)]
    names = ", ".join(some[-6:]) or "none"
    if len(layer.shape) == 2:
        why = f"its {layer.shape[0]} tokens are not a square grid (with or without a CLS token)"
    elif layer.kind == "map":
        why = "a 1x1 map has nothing to place"
    else:
        why = "not maps (C,H,W) or tokens (T,C)"
    raise ConvseeError(
        f"layer {layer.name} outputs {shape} per input: {why}; layers a CAM can use "
        f"(the last few): {names}",
        "layer",
    )


def _place_batch(maps, fld: Field, hw):
    """(N, h, w) float64 tensor placed on the (H, W) grid (place() for a batch)."""
    import torch

    h, w = maps.shape[1:]
    ry = torch.from_numpy(_axis_weights(hw[0], h, fld.start[0], fld.stride[0]))
    rx = torch.from_numpy(_axis_weights(hw[1], w, fld.start[1], fld.stride[1]))
    return ry @ maps.double().cpu() @ rx.T


def rows_per_pass(shape, grads_to=None) -> int:
    """Rows of inputs shaped `shape` (N, ...) per pass: PASS_VALUES input values at most (16
    images of 3x224x224). On a CPU a ResNet-18 takes about a third more time per image in one
    pass of 48 images than in passes of 8-16 (its activations no longer fit the caches); small
    inputs (LeNet's 28x28) are not split. A pass whose gradient goes back to the input
    (grads_to="input": saliency, integrated gradients) keeps every activation for its backward
    pass and takes 1 / INPUT_GRADIENT_SHARE of that: in a fresh process saliency of 16
    ResNet-18 images at 224x224 took 8% less time in passes of 8 than in one pass (132k page
    faults for a pass of 16, 50k for one of 8), bit-identical gradients; once the process
    holds the memory the two took the same time. Passes that stop at a layer or run forward
    only gained nothing from smaller slices."""
    per = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    values = PASS_VALUES // (INPUT_GRADIENT_SHARE if grads_to == "input" else 1)
    return max(1, values // max(1, per))


def _layout(xt, grads_to):
    """xt in the memory layout its pass runs fastest in. On a CPU, a 224x224 batch through
    ResNet-18, ConvNeXt or MobileNetV2 runs 4-16% faster channels-last (the model is left as
    it is), a forward-only pass of ResNet-18 13-15% faster from 96x96; at 64x64 both are
    slower, so only inputs of CHANNELS_LAST_PIXELS or more change. Gradients to the input
    stay in the plain layout: channels-last changes the float32 rounding, which flips ReLU
    gates near 0 and moves a seeded ResNet-18's saliency by 3.6% of its maximum away from
    captum's (benchmarks/README.md)."""
    import torch

    least = CHANNELS_LAST_PIXELS.get(grads_to)
    if least is None or xt.ndim != 4 or xt.device.type != "cpu":
        return xt
    if xt.shape[2] * xt.shape[3] < least:
        return xt
    return xt.contiguous(memory_format=torch.channels_last)


def _noisy(xt, noise: int, sigma: float, std, seed: int):
    """(rows, inputs): each input repeated `noise` times with Gaussian noise of std sigma on
    the [0, 1] pixel scale (sigma / std in normalised units), as captum's NoiseTunnel draws
    it (torch.normal on the repeated batch, a generator seeded with `seed`)."""
    import torch

    n = len(xt)
    rows = np.repeat(np.arange(n), noise)
    rep = xt.repeat_interleave(noise, dim=0)
    s = torch.as_tensor(sigma / np.asarray(std, np.float64), dtype=xt.dtype).reshape(-1, 1, 1)
    scale = torch.broadcast_to(s, rep.shape[1:]).expand(rep.shape).contiguous()
    g = torch.Generator(device=xt.device).manual_seed(seed)
    return rows, rep + torch.normal(torch.zeros_like(rep), scale, generator=g)


def _positive(v) -> bool:
    return (
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and v > 0
    )


def _count(v, name: str, least: int) -> None:
    """A whole number >= least, else a ConvseeError naming the parameter."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
        raise ConvseeError(f"{{param}} must be a whole number >= {least}, got {v!r}", name)


def _check_args(method, placement, noise, noise_sigma, steps, batch_size, window, stride, x):
    """attribute_batch's arguments checked (a ConvseeError naming the one at fault); x as a
    float32 array."""
    if method not in METHODS:
        raise ConvseeError(f"unknown method {method!r}; methods: {', '.join(METHODS)}", "method")
    if placement not in PLACEMENTS:
        raise ConvseeError(
            f"{{param}} must be 'field' or 'stretch', got {placement!r}", "placement"
        )
    _count(noise, "noise", 0)
    if noise and not _positive(noise_sigma):
        raise ConvseeError(f"{{param}} must be a number > 0, got {noise_sigma!r}", "noise_sigma")
    _count(steps, "steps", 1)
    _count(batch_size, "batch_size", 1)
    for v, name in ((window, "window"), (stride, "stride")):
        if v is not None:
            _count(v, name, 1)
    x = np.asarray(x, np.float32)
    if x.ndim != 4:
        raise ConvseeError(f"{{param}} must be a batch (N, C, H, W), got shape {x.shape}", "x")
    if x.shape[0] == 0:
        raise ConvseeError("no inputs to attribute: give at least one", "inputs")
    return x


class _Passes:
    """The passes of one attribute_batch call over its inputs xt (N, C, H, W) on the model's
    device: the model, the Scorer of its chosen output, the inputs in chunks of batch_size
    (with their noise copies), and the score of each plain input as it is found."""

    def __init__(self, model, scorer, output, xt, batch_size, noise, noise_sigma, std, seed):
        self.model, self.scorer, self.output, self.xt = model, scorer, output, xt
        self.batch_size, self.noise, self.noise_sigma = batch_size, noise, noise_sigma
        self.std, self.seed = std, seed  # std: per channel (the noise is on the pixel scale)
        self.scores = np.zeros(len(xt))
        self.fast = True  # channels-last passes allowed (until the model refuses one)

    def one(self, xt, rows, plain, layers, grads_to):
        """One pass of xt, channels-last where _layout says so (the plain layout from the
        first pass the model refuses)."""
        xl = _layout(xt, grads_to) if self.fast else xt
        if xl is xt:
            return self._run(xt, xt, rows, plain, layers, grads_to)
        try:
            return self._run(xl, xt, rows, plain, layers, grads_to)
        except RuntimeError:  # e.g. x.view(n, -1) on a channels-last map: the plain layout
            self.fast = False
            return self._run(xt, xt, rows, plain, layers, grads_to)

    def _run(self, xl, xt, rows, plain, layers, grads_to):
        """One pass of xl (xt in the layout chosen for the pass)."""
        import torch

        from .capture import select_output
        from .input_gradient import input_gradient
        from .targets import softmax_inputs

        need = grads_to is not None
        with (
            softmax_inputs(self.model) as seen,
            grab(self.model, layers, grad=need) as acts,
            torch.enable_grad() if need else torch.no_grad(),
        ):
            out = self.model(xl)
            s = self.scorer(select_output(out, self.output), seen, rows, plain)
            missing = [x.name for x in layers if x.name not in acts]
            if missing:
                raise ConvseeError(f"layer {missing[0]} did not run in the forward pass")
            got = [acts[x.name] for x in layers]
            gs = []
            if grads_to == "input":
                gs = [input_gradient(s.sum(), xt)]
            elif need:
                gs = torch.autograd.grad(s.sum(), got, allow_unused=True)
                gs = [torch.zeros_like(v) if g is None else g for g, v in zip(gs, got, strict=True)]
        return s.detach(), [v.detach() for v in got], gs

    def forward(self, xt, rows, *, plain=False, layers=(), grads_to=None):
        """(scores (rows,), captured layers, gradients) of a pass over xt; grads_to:
        None (no gradient), "input" (d scores / d xt) or "layers". Large batches run in
        slices of rows_per_pass rows (faster on a CPU than one large pass), the results
        concatenated."""
        import torch

        step = rows_per_pass(xt.shape, grads_to)
        if len(xt) <= step:
            return self.one(xt, rows, plain, layers, grads_to)
        rows = np.asarray(rows)
        parts = []
        for i in range(0, len(xt), step):
            xi = xt[i : i + step]
            if grads_to == "input":
                xi = xi.detach().requires_grad_(True)
            parts.append(self.one(xi, rows[i : i + step], plain, layers, grads_to))
        s = torch.cat([p[0] for p in parts])
        got = [torch.cat(v) for v in zip(*(p[1] for p in parts), strict=True)]
        gs = [torch.cat(v) for v in zip(*(p[2] for p in parts), strict=True)]
        return s, got, gs

    def keep(self, idx, s) -> None:
        """The scores s of the plain inputs idx."""
        self.scores[idx] = s.double().cpu().numpy()

    def chunks(self):
        """(rows of the inputs, the pass's input, its rows, plain): noise copies when asked;
        the plain inputs first when the classes or scores are still to be found."""
        for i0 in range(0, len(self.xt), self.batch_size):
            xt = self.xt[i0 : i0 + self.batch_size]
            idx = np.arange(i0, i0 + len(xt))
            if not self.noise:
                yield idx, xt, idx, True
                continue
            s0, _, _ = self.forward(xt, idx, plain=True)
            self.keep(idx, s0)
            r, xin = _noisy(xt, self.noise, self.noise_sigma, self.std, self.seed + i0)
            yield idx, xin, r + i0, False

    def mean(self, t, b):
        """t of b inputs' rows: the mean over each input's noise copies."""
        return t if not self.noise else t.reshape(b, self.noise, *t.shape[1:]).mean(1)

    def result(self, method: str, notes: list, **maps) -> Attributions:
        """The Attributions of these passes with the maps (and their layer, field ...)."""
        return Attributions(
            method=method,
            quantity=self.scorer.quantity,
            targets=_targets(self.scorer, len(self.xt)),
            scores=self.scores,
            position=self.scorer.position,
            noise=self.noise,
            noise_sigma=self.noise_sigma if self.noise else 0.0,
            notes=notes,
            **maps,
        )


def attribute_batch(
    model,
    x: np.ndarray,
    spec,
    *,
    method: str = "gradcam",
    layer: Layer | str | None = None,
    target=None,
    quantity: str | None = None,
    position=None,
    output=None,
    output_spec=None,
    std=None,
    mean=None,
    placement: str = "field",
    steps: int = 50,
    baseline: float = 0.0,
    window: int | None = None,
    stride: int | None = None,
    noise: int = 0,
    noise_sigma: float = 0.15,
    seed: int = 0,
    batch_size: int = 64,
) -> Attributions:
    """One attribution map per input of the batch x (N, C, H, W), the normalised inputs.

    method: one of METHODS. CAM methods (gradcam, gradcam++, xgradcam, layercam, scorecam,
    eigencam) work at `layer` (None: the last map layer with a non-negligible gradient) and
    back-propagate to that layer only; saliency and integrated gradients take the input
    gradient; occlusion and scorecam run forward passes only. target, quantity, position: what
    is differentiated (run/targets.py). std, mean: the normalisation per channel (maps are on
    the [0, 1] pixel scale; the baseline of integrated gradients and occlusion is the pixel
    value `baseline`). placement: "field" (each layer-map pixel at the centre of its receptive
    field) or "stretch" (the map stretched over the input, bilinear, as the peers draw it).
    steps: integrated-gradients steps (Gauss-Legendre, as captum); window, stride: occlusion's
    square patch (default: an eighth of the shorter side, half of it). noise > 0: the map is
    the mean over `noise` copies of each input with Gaussian noise of std `noise_sigma`
    (SmoothGrad / captum's NoiseTunnel; seeded by `seed`).
    """
    import torch

    from .capture import eval_mode
    from .targets import Scorer

    x = _check_args(method, placement, noise, noise_sigma, steps, batch_size, window, stride, x)
    n, c, hh, ww = x.shape
    std = np.ones(c) if std is None else np.resize(np.asarray(std, np.float64), c)
    mean = np.zeros(c) if mean is None else np.resize(np.asarray(mean, np.float64), c)
    device, dtype = device_dtype(model)
    xt_all = torch.from_numpy(np.ascontiguousarray(x)).to(device, dtype)
    scorer = Scorer(target, quantity, position, output_spec, n=n)
    passes = _Passes(model, scorer, output, xt_all, batch_size, noise, noise_sigma, std, seed)
    notes: list[str] = []
    with eval_mode(model), frozen(model):
        if method in CAM_METHODS:
            return _cam_maps(passes, spec, method, layer, placement, (hh, ww), notes)
        return _input_maps(passes, method, mean, baseline, steps, window, stride, notes)


def _cam_layer(passes: _Passes, spec, layer, notes) -> Layer:
    """The CAM layer: the one given (a name or a Layer, checked), else _default_layer's."""
    if isinstance(layer, str):
        layer = spec.layer(layer)
    if layer is not None:
        _check_cam_layer(spec, layer)
        return layer
    return _default_layer(spec, passes.forward, passes.xt[: passes.batch_size], notes)


def _layer_cam(passes: _Passes, method, layer, xin, rows, a, gs, hw, placement):
    """(cam (B, h, w), channel weights (B, C) or None) of one pass's inputs xin from the
    layer's output A (B, C, h, w) and its gradient gs[0] (the gradient CAMs)."""
    import torch

    if method in GRADIENT_CAMS:
        return cams.cam_from(method, a, cams.as_map(gs[0], layer.shape))
    if method == "eigencam":
        return torch.relu(cams.eigen_cam(a)), None
    return _score_cam(passes.forward, xin, a, layer, hw, placement, rows)


def _cam_maps(passes: _Passes, spec, method, layer, placement, hw, notes) -> Attributions:
    """The CAM methods: the layer's map of each input (the mean over its noise copies),
    placed on the input's (H, W) grid at the receptive-field centres or stretched."""
    import torch

    chosen = _cam_layer(passes, spec, layer, notes)
    maps_l, weights_l = [], []
    for idx, xin, rows, plain in passes.chunks():
        wants = "layers" if method in GRADIENT_CAMS else None
        s, acts, gs = passes.forward(xin, rows, plain=plain, layers=[chosen], grads_to=wants)
        if plain:
            passes.keep(idx, s)
        a = cams.as_map(acts[0], chosen.shape)
        cam, w = _layer_cam(passes, method, chosen, xin, rows, a, gs, hw, placement)
        maps_l.append(passes.mean(cam.double().cpu(), len(idx)))
        weights_l.append(None if w is None else passes.mean(w.double().cpu(), len(idx)))
    layer_maps = torch.cat(maps_l)
    fld, known = _field_for(chosen, layer_maps.shape[1:], hw, placement)
    placed = _place_batch(layer_maps, fld, hw).numpy().astype(np.float32)
    if placement == "field" and not known:
        notes.append(
            f"the receptive field of {chosen.name} is unknown"
            + (" (each pixel sees the whole input)" if chosen.field is not None else "")
            + ": the map is stretched over the input"
        )
    return passes.result(
        method,
        notes,
        maps=placed,
        layer=chosen.name,
        layer_maps=layer_maps.numpy().astype(np.float32),
        weights=None if weights_l[0] is None else torch.cat(weights_l).numpy().astype(np.float32),
        placement="field" if placement == "field" and known else "stretch",
        field=fld,
        field_known=known,
    )


def _input_maps(passes: _Passes, method, mean, baseline, steps, window, stride, notes):
    """The input methods (saliency, integrated gradients, occlusion): the per-channel
    attribution of each input (the mean over its noise copies) and its map."""
    import torch

    xt, std, c = passes.xt, passes.std, passes.xt.shape[1]
    base = torch.as_tensor((baseline - mean) / std, dtype=xt.dtype, device=xt.device)
    base = base.reshape(1, c, 1, 1)
    sd = torch.as_tensor(std, dtype=torch.float64).reshape(1, c, 1, 1)
    chans = []
    for idx, xin, rows, plain in passes.chunks():
        if method == "saliency":
            xin = xin.detach().requires_grad_(True)
            s, _, (g,) = passes.forward(xin, rows, plain=plain, grads_to="input")
            if plain:
                passes.keep(idx, s)
            ch = g.double().abs().cpu() / sd
        else:
            if plain:
                s0, _, _ = passes.forward(xin, rows, plain=True)
                passes.keep(idx, s0)
            per = passes.batch_size
            if method == "integrated-gradients":
                ch = _integrated(passes.forward, xin, rows, base, steps, per)
            else:
                ch = _occlusion(passes.forward, xin, rows, base, window, stride, per)
        chans.append(passes.mean(ch.double().cpu(), len(idx)))
    ch = torch.cat(chans)
    maps = ch.max(1).values if method == "saliency" else ch.sum(1)
    return passes.result(
        method,
        notes,
        maps=maps.numpy().astype(np.float32),
        channels=ch.numpy().astype(np.float32),
        signed=method != "saliency",
    )


def _default_layer(spec, forward, xt, notes) -> Layer:
    """The last CAM candidate with a non-negligible gradient: sum |A dS/dA| (over the map's
    positions; a CLS token does not count) at least NEGLIGIBLE of the largest among the layers
    probed, PROBE at a time from the end, further back while every one is exactly 0 (the
    layers after a ViT's last attention: only the CLS token reaches the head). Among layers
    with the same values (a stage, its last block, that block's last activation) the
    shallowest module output."""
    import torch

    cands = cam_candidates(spec)
    if not cands:
        raise ConvseeError(
            "a CAM needs a layer whose output is a map (C,H,W) larger than 1x1 or a square grid "
            "of tokens; the model has none (use saliency, integrated-gradients or occlusion)"
        )
    rows = np.arange(len(xt))
    end = len(cands)
    while end > 0:
        probe = cands[max(0, end - PROBE) : end]
        _, acts, gs = forward(xt, rows, plain=True, layers=probe, grads_to="layers")
        amaps = [cams.as_map(a, x.shape) for a, x in zip(acts, probe, strict=True)]
        gmaps = [cams.as_map(g, x.shape) for g, x in zip(gs, probe, strict=True)]
        contrib = [float((a * g).abs().sum()) for a, g in zip(amaps, gmaps, strict=True)]
        top = max(contrib)
        if top > 0:
            pick = max(i for i, v in enumerate(contrib) if v >= NEGLIGIBLE * top)
            same = [
                i
                for i in range(len(probe))
                if probe[i].shape == probe[pick].shape and torch.equal(acts[i], acts[pick])
            ]
            plain_outputs = [i for i in same if probe[i].element == ""] or same
            best = min(plain_outputs, key=lambda i: (probe[i].depth, -i))
            start = end - len(probe)
            names = {probe[i].name for i in same}
            skipped = [x.name for x in cands[start + pick + 1 :] if x.name not in names]
            if skipped:
                some = ", ".join(skipped[-3:]) + (" ..." if len(skipped) > 3 else "")
                notes.append(
                    f"default layer {probe[best].name}: the {len(skipped)} map layer(s) after "
                    f"it ({some}) have no gradient or less than {NEGLIGIBLE:g} of its sum |A dS/dA|"
                )
            return probe[best]
        end -= PROBE
    raise ConvseeError(
        "no map layer of the model has a gradient for this target: choose one with {param}",
        "layer",
    )


def _targets(scorer, n) -> np.ndarray:
    if scorer.classes is None:
        return np.full(n, -1, np.int64)
    return scorer.classes.copy()


def _field_for(layer: Layer, hw_map, hw, placement: str):
    known = layer.kind == "map" and layer.field is not None and not layer.field.whole
    if placement == "field" and known:
        return layer.field, True
    return stretch_field(hw_map, hw), known


def _score_cam(forward, xin, a, layer, hw, placement, rows):
    """Score-CAM weights and map for A (B, C, h, w) of the inputs xin. The masks are made
    SCORE_MASKS channels at a time (all of them at once would be B*C*H*W values: 13 GB in
    float64 for 64 images at layer4 of a ResNet-18 at 224x224)."""
    import torch

    b, c, h, w = a.shape
    fld, _ = _field_for(layer, (h, w), hw, placement)
    ry = torch.from_numpy(_axis_weights(hw[0], h, fld.start[0], fld.stride[0])).to(xin.dtype)
    rx = torch.from_numpy(_axis_weights(hw[1], w, fld.start[1], fld.stride[1])).to(xin.dtype)
    ry, rx = ry.to(xin.device), rx.to(xin.device)
    scores = torch.empty(b, c, dtype=torch.float64)
    base_rows = np.asarray(rows)
    for j in range(b):
        for k0 in range(0, c, SCORE_MASKS):
            up = ry @ a[j, k0 : k0 + SCORE_MASKS].to(xin.dtype) @ rx.T  # (k, H, W)
            lo = up.amin((1, 2), keepdim=True)
            hi = up.amax((1, 2), keepdim=True)
            m = ((up - lo) / (hi - lo + 1e-8))[:, None]  # (k, 1, H, W)
            s, _, _ = forward(xin[j : j + 1] * m, np.full(len(m), base_rows[j]))
            scores[j, k0 : k0 + len(m)] = s.double().cpu()
    w = torch.softmax(scores, 1)
    return torch.relu((w[:, :, None, None] * a.double().cpu()).sum(1)), w


def _integrated(forward, xin, rows, base, steps, batch_size):
    """captum's IntegratedGradients (gausslegendre): (x - b) * sum_k w_k dS/dx(b + a_k (x-b))."""
    import torch

    nodes, wts = np.polynomial.legendre.leggauss(steps)
    alphas, wts = 0.5 * (nodes + 1), 0.5 * wts
    total = torch.zeros_like(xin, dtype=torch.float64)
    diff = xin - base
    per = max(1, batch_size // max(1, len(xin)))
    for k0 in range(0, steps, per):
        al = alphas[k0 : k0 + per]
        pts = torch.cat([base + float(a) * diff for a in al]).detach().requires_grad_(True)
        r = np.tile(np.asarray(rows), len(al))
        _, _, (g,) = forward(pts, r, grads_to="input")
        g = g.double().reshape(len(al), *xin.shape)
        total += (torch.as_tensor(wts[k0 : k0 + per]).reshape(-1, 1, 1, 1, 1) * g).sum(0)
    return total * diff.double()


def _occlusion(forward, xin, rows, base, window, stride, batch_size):
    """captum's Occlusion with a square patch over all channels: each pixel gets the mean, over
    the patches covering it, of score(x) - score(x with the patch set to the baseline)."""
    import torch

    b, c, hh, ww = xin.shape
    k = max(2, min(hh, ww) // 8) if window is None else window
    st = max(1, k // 2) if stride is None else stride
    if not 1 <= k <= min(hh, ww):
        raise ConvseeError(f"{{param}} must be 1..{min(hh, ww)} px, got {k}", "window")
    s0, _, _ = forward(xin, rows)  # the reference score of each row (noise copies too)
    ys = range(0, hh - k + 1, st)
    xs = range(0, ww - k + 1, st)
    total = torch.zeros(b, hh, ww, dtype=torch.float64)
    count = torch.zeros(hh, ww, dtype=torch.float64)
    spots = [(y, x) for y in ys for x in xs]
    per = max(1, batch_size // b)
    for p0 in range(0, len(spots), per):
        part = spots[p0 : p0 + per]
        xo = xin.repeat(len(part), 1, 1, 1)
        for i, (y, x) in enumerate(part):
            xo[i * b : (i + 1) * b, :, y : y + k, x : x + k] = base.expand(b, c, k, k)
        s, _, _ = forward(xo, np.tile(np.asarray(rows), len(part)))
        d = (s0.double().repeat(len(part)) - s.double()).cpu().reshape(len(part), b)
        for i, (y, x) in enumerate(part):
            total[:, y : y + k, x : x + k] += d[i][:, None, None]
            count[y : y + k, x : x + k] += 1
    out = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))
    return out[:, None].expand(b, c, hh, ww)
