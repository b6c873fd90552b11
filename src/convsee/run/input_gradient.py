"""d score / d input, the last step of the backward pass done by hand.

A backward pass to the input (saliency, integrated gradients, SmoothGrad) ends in the
backward of the layer that reads the input: in most CNNs a convolution with 1-3 input
channels (the stem). oneDNN's backward-data kernel is slow for so few channels: for
ResNet-18's 7x7/2 stem it took 4 times its forward pass (193 ms of a 1.6 s saliency pass of
16 images at 224x224, 1 thread).

The same gradient is a forward convolution, which oneDNN does fast. Split the input by the
phase of its pixels modulo the stride (s_h * s_w phases): each phase's gradient is a plain
correlation of dS/dy (N, K, oh, ow) with a flipped, subsampled slice of W. The slices are
zero-padded to one kernel and stacked as C * s_h * s_w output channels, so one F.conv2d
gives every phase, and a reshape interleaves them onto the input grid (_phase_kernel,
_by_phases). For ResNet-18's stem and 8 images at 224x224 that took 59 ms against 111 ms for
oneDNN's kernel at 1 thread, 38 against 60 ms at 2 (benchmarks/bench_stem_gradient.py). Stems
whose kernel spans two strides or less (stride 1: VGG, LeNet-5; MobileNetV2's 3x3/2,
ConvNeXt's 4x4/4) and dilated ones take W^T (C*kh*kw, K) @ dS/dy (K, L) folded back onto
the input (col2im, F.fold) instead: 0.35-0.91x oneDNN's time there (_phases_pay).

Only the backward changes: the forward pass, and so every ReLU gate and max-pool choice, is
the one autograd records; the gradient differs from autograd's by float32 rounding (~6e-7 of
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


def _phase_kernel(w, stride, padding):
    """W (K, C, kh, kw) of a convolution (dilation 1) as the kernel of the correlation that
    gives its input gradient phase by phase: (C * sh * sw, K, Jh, Jw), with (Lh, Lw) rows and
    columns of zeros to put before dS/dy. Along one axis (kernel k, stride s, padding p) an
    input pixel Y = s*u + r gets sum_j W[s*j + rho] dy[u + q - j] with q, rho = divmod(r + p,
    s); all phases share the offset L and length J that hold every tap."""
    k_h, k_w = w.shape[2:]
    axes = []
    for k, s, p in ((k_h, stride[0], padding[0]), (k_w, stride[1], padding[1])):
        phases = []
        for r in range(s):
            q, rho = divmod(r + p, s)
            phases.append((q, rho, len(range(rho, k, s))))
        lead = max(n - 1 - q for q, _, n in phases)
        axes.append((phases, lead, max(q for q, _, _ in phases) + lead + 1))
    (ph_h, lead_h, j_h), (ph_w, lead_w, j_w) = axes
    kk, c = w.shape[:2]
    v = w.new_zeros(c, stride[0], stride[1], kk, j_h, j_w)
    for r1, (q1, rho1, n1) in enumerate(ph_h):
        for r2, (q2, rho2, n2) in enumerate(ph_w):
            for a in range(n1):
                for b in range(n2):
                    tap = w[:, :, stride[0] * a + rho1, stride[1] * b + rho2]  # (K, C)
                    v[:, r1, r2, :, q1 - a + lead_h, q2 - b + lead_w] = tap.t()
    return v.reshape(c * stride[0] * stride[1], kk, j_h, j_w), (lead_h, lead_w)


def _by_phases(gy, w, size, stride, padding):
    """d S / d x (N, C, H, W) of size (H, W) from gy = d S / d y (N, K, oh, ow) of y =
    conv2d(x, w, stride, padding), as one forward convolution and an interleave."""
    import torch.nn.functional as F

    v, (lead_h, lead_w) = _phase_kernel(w, stride, padding)
    n, _, oh, ow = gy.shape
    c, (sh, sw) = w.shape[1], stride
    u, t = -(-size[0] // sh), -(-size[1] // sw)  # pixels of each phase, rounded up
    rows, cols = u + v.shape[2] - 1, t + v.shape[3] - 1  # dy rows and columns it reads
    g = F.pad(gy, (lead_w, max(0, cols - ow - lead_w), lead_h, max(0, rows - oh - lead_h)))
    o = F.conv2d(g[:, :, :rows, :cols], v)  # (N, C*sh*sw, u, t)
    o = o.reshape(n, c, sh, sw, u, t).permute(0, 1, 4, 2, 5, 3).reshape(n, c, u * sh, t * sw)
    return o[:, :, : size[0], : size[1]]


def _phases_pay(kernel, stride) -> bool:
    """Whether the phase form beats the fold for an undilated stem: where its kernel spans more
    than two strides along both axes (ResNet's 7x7/2: 0.53-0.63x oneDNN's time, the fold
    0.67-1.09x). Otherwise its zero-padded taps and few output channels cost more than the
    fold (stride 1, VGG's 3x3: 1.4x against 0.54-0.64x; MobileNetV2's 3x3/2, ConvNeXt's 4x4/4:
    about the same; benchmarks/bench_stem_gradient.py)."""
    return all(s > 1 and k > 2 * s for k, s in zip(kernel, stride, strict=True))


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
    with torch.no_grad():  # a weight that requires grad must not record this step
        w = node._saved_weight.to(gy.dtype)  # (K, C, kh, kw)
        stride, padding = tuple(node._saved_stride), tuple(node._saved_padding)
        size = tuple(x.shape[2:])
        if tuple(node._saved_dilation) == (1, 1) and _phases_pay(w.shape[2:], stride):
            return _by_phases(gy, w, size, stride, padding).to(x.dtype)
        n, k, oh, ow = gy.shape
        cols = w.reshape(k, -1).t() @ gy.reshape(n, k, oh * ow)  # (N, C*kh*kw, L)
        return F.fold(
            cols,
            size,
            tuple(w.shape[2:]),
            dilation=tuple(node._saved_dilation),
            padding=padding,
            stride=stride,
        ).to(x.dtype)
