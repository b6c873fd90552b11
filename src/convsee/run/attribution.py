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

import numpy as np

from ..errors import ConvseeError
from ..spec import Field, Layer, conv_field, pool_field

__all__ = [
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
            f"Grad-CAM needs a map layer (C,H,W); {layer.name} outputs {shape} per input"
        )
    try:
        p = next(model.parameters())
        device, dtype = p.device, p.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None].to(device, dtype)
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
            raise ConvseeError(f"target class {t} is out of range: classes 0..{k - 1}")
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
    from ..spec import PIXEL

    fld = conv_field(pool_field(conv_field(PIXEL, 5), 2), 5)  # 14x14, stride 2, start 6.5
    return Layer("conv2", "conv2", 1, "", "Conv2d", (16, 8, 8), 0, 1, 0, True, False, fld, "conv2")


def _lenet_x(image):
    from ..datasets.idx import MEAN, STD

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
