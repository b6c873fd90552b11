"""Class activation maps from a layer's output A (N, C, h, w) and d score / d A, batch first.

Each formula is the one its paper gives and pytorch-grad-cam implements (the tests compare):

- gradcam (Selvaraju et al. 2017): w_c = mean_ij dS/dA_cij; ReLU(sum_c w_c A_c).
- gradcam++ (Chattopadhay et al. 2018, eq. 19): a_cij = g^2 / (2 g^2 + sum_ab A_cab g^3 + eps)
  where g != 0 (else 0); w_c = sum_ij a_cij ReLU(g_cij); ReLU(sum_c w_c A_c).
- xgradcam (Fu et al. 2020): w_c = sum_ij g_cij A_cij / (sum_ij A_cij + eps).
- layercam (Jiang et al. 2021): ReLU(sum_c ReLU(g_c) * A_c), per position.
- eigencam (Muhammad & Yeasin 2020): A centred over positions, projected on its first
  principal direction (no gradient); the sign, which an SVD leaves free, is chosen so that
  the projection agrees with the channel sum of A (pytorch-grad-cam keeps whatever sign the
  SVD returns, so its map can be the ReLU of the negated map); then ReLU.
- scorecam (Wang et al. 2020): each channel, placed on the input and scaled to [0, 1], masks
  the input; w = softmax over channels of the score of each masked input (forward passes only).

Token outputs (N, T, C) of ViT-like layers become maps (N, C, g, g) where T or T - 1 (a CLS
token first) is a square g*g: `token_grid`, as the peers' `reshape_transform`.
"""

from __future__ import annotations

import contextlib
import math

from ..errors import ConvseeError

__all__ = [
    "CAM_METHODS",
    "GRADIENT_CAMS",
    "token_grid",
    "as_map",
    "frozen",
    "grab",
    "cam_from",
    "eigen_cam",
]

GRADIENT_CAMS = ("gradcam", "gradcam++", "xgradcam", "layercam")
CAM_METHODS = (*GRADIENT_CAMS, "scorecam", "eigencam")


def token_grid(shape) -> tuple[int, int] | None:
    """(skip, side) for a token layer's shape (T, C): T = side^2 + skip, skip 0 or 1 (CLS)."""
    if len(shape) != 2:
        return None
    t = shape[0]
    for skip in (1, 0):
        g = math.isqrt(max(t - skip, 0))
        if g >= 3 and g * g == t - skip:  # 2x2 would take (4, L) sequences for tokens
            return skip, g
    return None


def as_map(t, shape):
    """A captured tensor as (N, C, h, w): maps as they are, tokens (N, T, C) reshaped."""
    if t.dim() == 4:
        return t
    grid = token_grid(shape)
    if t.dim() != 3 or grid is None:
        raise ConvseeError(f"a layer of shape {tuple(shape)} is not a map")
    skip, g = grid
    return t[:, skip:].reshape(t.shape[0], g, g, t.shape[2]).permute(0, 3, 1, 2)


@contextlib.contextmanager
def frozen(model):
    """Parameters stop requiring gradients for the block (no weight gradients, and no graph is
    built before the first captured layer); restored afterwards."""
    ps = [p for p in model.parameters() if p.requires_grad]
    for p in ps:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in ps:
            p.requires_grad_(True)


def grab(model, layers, *, grad: bool):
    """capture (convsee/capture.py) for attribution: with grad, the first captured layer that
    needs no gradient yet becomes a leaf, so the backward pass stops at the layer. The rest of
    the network gets a clone, so in-place operations after the layer never change the
    captured value. grad=False: detached values, no graph."""
    from ..capture import capture

    return capture(model, layers, grad=grad, leaf=True)


def eigen_cam(a):
    """(N, h, w) Eigen-CAM of A (N, C, h, w), float64, before the ReLU."""
    import torch

    n, c, h, w = a.shape
    m = a.double().reshape(n, c, h * w).transpose(1, 2)  # (N, hw, C)
    m = m - m.mean(1, keepdim=True)
    _, _, vh = torch.linalg.svd(m, full_matrices=False)
    p = m @ vh[:, 0, :, None]  # (N, hw, 1)
    ref = a.double().sum(1).reshape(n, h * w, 1)
    sign = torch.sign(((p - p.mean(1, keepdim=True)) * (ref - ref.mean(1, keepdim=True))).sum(1))
    sign[sign == 0] = 1
    return (p * sign[:, None]).reshape(n, h, w)


def cam_from(method: str, a, g):
    """(cam (N, h, w) >= 0, channel weights (N, C) or None) for a gradient CAM method."""
    import torch

    a = a.double()
    g = g.double()
    if method == "gradcam":
        w = g.mean((2, 3))
    elif method == "gradcam++":
        g2 = g * g
        g3 = g2 * g
        asum = a.sum((2, 3), keepdim=True)
        aij = g2 / (2 * g2 + asum * g3 + 1e-6)
        aij = torch.where(g != 0, aij, torch.zeros_like(aij))
        w = (torch.relu(g) * aij).sum((2, 3))
    elif method == "xgradcam":
        w = (g * a).sum((2, 3)) / (a.sum((2, 3)) + 1e-7)
    elif method == "layercam":
        return torch.relu((torch.relu(g) * a).sum(1)), None
    else:
        raise ValueError(method)
    return torch.relu((w[:, :, None, None] * a).sum(1)), w
