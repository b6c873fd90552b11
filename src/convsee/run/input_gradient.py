"""d score / d input, the last step of the backward pass done as one matrix product.

A backward pass to the input (saliency, integrated gradients, SmoothGrad) ends in the
backward of the layer that reads the input: in most CNNs a convolution with 1-3 input
channels (the stem). oneDNN's backward-data kernel is slow for so few channels: for
ResNet-18's 7x7/2 stem it took 4 times its forward pass (193 ms of a 1.6 s saliency pass of
16 images at 224x224, 1 thread). The same gradient is W^T (C*kh*kw, K) @ dS/dy (K, L),
folded back onto the input (col2im, F.fold): 0.68x that kernel's time for that stem, 0.3-0.5x
for MobileNetV2's 3x3/2, ConvNeXt's 4x4/4, VGG's 3x3 and LeNet-5's 5x5 first convolutions,
and as close to a float64 computation (benchmarks/README.md#attribution).

Only the backward changes: the forward pass, and so every ReLU gate and max-pool choice, is
the one autograd records; the gradient differs from autograd's by float32 rounding (~5e-7 of
its maximum). The hand step is taken only when the graph shows that the score depends on the
input through that one convolution alone (an input also used elsewhere, a model that pads,
scales or reshapes it first, a grouped or transposed convolution, or one with more than
STEM_CHANNELS input channels: autograd's own backward).
"""

from __future__ import annotations

STEM_CHANNELS = 4  # input channels up to which the stem's input gradient is done by hand


def _edges_into(root, x) -> list:
    """Every autograd node of the graph under `root` with an edge into the leaf x's
    gradient accumulator (one entry per edge)."""
    seen, todo, into = {root}, [root], []
    while todo:
        node = todo.pop()
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            if getattr(nxt, "variable", None) is x:
                into.append(node)
            elif nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return into


def stem_node(s, x):
    """The convolution node through which alone the scalar s depends on the leaf x (N, C, H,
    W), when its input gradient can be done by hand (an ungrouped, untransposed 2-D
    convolution with at most STEM_CHANNELS input channels); else None."""
    if s.grad_fn is None or x.ndim != 4 or x.shape[1] > STEM_CHANNELS:
        return None
    into = _edges_into(s.grad_fn, x)
    if len(into) != 1 or type(into[0]).__name__ != "ConvolutionBackward0":
        return None
    node = into[0]
    if node.next_functions[0][0] is None or node.next_functions[0][0].variable is not x:
        return None  # x is not the convolution's input (its weight, say)
    if node._saved_transposed or node._saved_groups != 1 or node._saved_weight.ndim != 4:
        return None
    return node


def input_gradient(s, x):
    """d s / d x for a scalar s and a leaf x that requires grad (zeros where s does not
    depend on x), as torch.autograd.grad gives it, its last step by hand where stem_node
    finds a stem convolution."""
    import torch
    import torch.nn.functional as F
    from torch.autograd.graph import GradientEdge

    node = stem_node(s, x)
    if node is None:
        (g,) = torch.autograd.grad(s, [x], allow_unused=True)
        return torch.zeros_like(x) if g is None else g
    (gy,) = torch.autograd.grad(s, [GradientEdge(node, 0)])  # d s / d (the stem's output)
    with torch.no_grad():  # a weight that requires grad must not record the fold
        w = node._saved_weight  # (K, C, kh, kw)
        n, k, oh, ow = gy.shape
        cols = w.reshape(k, -1).t().to(gy.dtype) @ gy.reshape(n, k, oh * ow)  # (N, C*kh*kw, L)
        return F.fold(
            cols,
            tuple(x.shape[2:]),
            tuple(w.shape[2:]),
            dilation=tuple(node._saved_dilation),
            padding=tuple(node._saved_padding),
            stride=tuple(node._saved_stride),
        ).to(x.dtype)
