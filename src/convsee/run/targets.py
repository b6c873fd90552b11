"""What an attribution differentiates: one number per input, taken from the model's output.

- a class per input (an int for all, one int per input, None: each input's prediction);
- the logit or the probability of that class. "logit" is the default; where the output is
  made by a final `nn.Softmax` / `nn.LogSoftmax` module, the logit is that module's input
  (captured with a hook), so a saturated softmax (p = 1.0, gradient ~1e-9) does not flatten
  every map. Where the softmax is functional the logit cannot be reached: the output itself is
  differentiated and `quantity` says so ("probability" / "log-probability");
- on a dense output (N, K, h, w): the class at one position (row, col) or summed over all;
- a custom callable `f(output) -> (N,) tensor` (the chosen output tensor, batch first).
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..errors import ConvseeError

__all__ = ["QUANTITIES", "softmax_inputs", "Scorer"]

QUANTITIES = ("logit", "probability")


@contextlib.contextmanager
def softmax_inputs(model):
    """Yield a list filled with (output tensor, input tensor) of every nn.Softmax /
    nn.LogSoftmax call while the model runs (hooks removed on exit)."""
    from torch import nn

    seen: list = []

    def hook(_m, inp, out):
        if inp:
            seen.append((out, inp[0]))

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Softmax, nn.LogSoftmax))
    ]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


class Scorer:
    """Turns the model's chosen output into the (N,) scores to differentiate.

    target: None, an int, a sequence of ints (one per input) or a callable; quantity: "logit",
    "probability" or None (the logit where it can be reached); position: (row, col) of a dense
    output, or None / "sum" for the sum over positions; output_spec: spec.Output of the chosen
    output (whether it already holds probabilities)."""

    def __init__(self, target=None, quantity=None, position=None, output_spec=None, n=None):
        if quantity not in (None, *QUANTITIES):
            raise ConvseeError(
                f"{{param}} must be 'logit' or 'probability', got {quantity!r}", "quantity"
            )
        if position is not None and position != "sum":
            try:
                r, c = (int(v) for v in position)
            except (TypeError, ValueError):
                raise ConvseeError(
                    f"{{param}} must be (row, col) or 'sum', got {position!r}", "position"
                ) from None
            position = (r, c)
        self.target = target
        self.asked = quantity
        self.position = position
        self.probs = bool(getattr(output_spec, "probabilities", False))
        self.logprobs = bool(getattr(output_spec, "log_probabilities", False))
        self.n = n  # how many inputs (checks a list of targets)
        if not callable(target) and target is not None and n is not None:
            t = np.atleast_1d(np.asarray(target))
            if t.size not in (1, n):
                raise ConvseeError(
                    f"{t.size} targets for {n} inputs: give one, or one each", "target"
                )
        self.classes: np.ndarray | None = None  # per input, -1 until known
        self.quantity: str | None = None  # what was differentiated

    def _quantity(self, have_logits: bool) -> str:
        if callable(self.target):
            return "custom"
        made = "log-probability" if self.logprobs else "probability" if self.probs else "logit"
        if self.asked in (None, "logit"):
            if made == "logit" or have_logits:
                return "logit"
            if self.asked == "logit":
                raise ConvseeError(
                    f"the logit cannot be reached: the output is a {made} made by a functional "
                    "softmax, not an nn.Softmax module (use quantity 'probability')",
                    "quantity",
                )
            return made
        return "probability"

    def __call__(self, scores, seen=(), rows=None, plain=True):
        """(N,) scores; scores: the chosen output (N, K) or (N, K, h, w); seen: what
        softmax_inputs captured during the same forward pass; rows: which input each row of
        the batch is (noise and path samples repeat inputs; None: 0..N-1); plain: the rows
        are the inputs themselves, so their predictions can fix the classes."""
        import torch

        n = scores.shape[0]
        if callable(self.target):
            s = self.target(scores)
            if not isinstance(s, torch.Tensor) or s.shape != (n,):
                raise ConvseeError(
                    f"a custom target must return one score per input, a tensor of shape "
                    f"({n},); it returned {type(s).__name__} {tuple(getattr(s, 'shape', ()))}",
                    "target",
                )
            self.quantity = "custom"
            return s
        if scores.dim() not in (2, 4):
            shape = "x".join(map(str, scores.shape[1:])) or "a scalar"
            raise ConvseeError(
                f"attribution needs class scores (K) or a dense map of them (K, h, w); the "
                f"output is {shape} per input (choose another output, or pass a callable target)",
                "output",
            )
        logits = next((i for o, i in seen if o is scores), None)
        q = self._quantity(logits is not None)
        if q == "logit":
            z = logits if logits is not None else scores
        elif q == "probability":
            z = scores if self.probs else scores.exp() if self.logprobs else scores.softmax(1)
        else:
            z = scores
        self.quantity = q
        dense = scores.dim() == 4
        if dense:
            h, w = scores.shape[2:]
            if self.position not in (None, "sum"):
                r, c = self.position
                if not (0 <= r < h and 0 <= c < w):
                    raise ConvseeError(
                        f"position ({r}, {c}) is outside the {h}x{w} output (rows 0..{h - 1}, "
                        f"columns 0..{w - 1})",
                        "position",
                    )
        elif self.position not in (None, "sum"):
            raise ConvseeError("{param} applies to a dense (K, h, w) output only", "position")
        k = scores.shape[1]
        rows = np.arange(n) if rows is None else np.asarray(rows)
        if self.classes is None:
            self.classes = np.full(int(rows.max()) + 1, -1, np.int64)
        if rows.max() >= len(self.classes):
            grown = np.full(int(rows.max()) + 1, -1, np.int64)
            grown[: len(self.classes)] = self.classes
            self.classes = grown
        if self.target is None:
            unknown = self.classes[rows] < 0
            if unknown.any():
                if not plain:
                    raise RuntimeError("the predicted classes come from a plain pass first")
                pick = scores.detach()
                if dense:
                    pick = (
                        pick.sum((2, 3))
                        if self.position in (None, "sum")
                        else pick[:, :, self.position[0], self.position[1]]
                    )
                self.classes[rows] = pick.argmax(1).cpu().numpy()
        else:
            t = np.atleast_1d(np.asarray(self.target))
            if t.dtype.kind not in "iu":
                raise ConvseeError(
                    f"{{param}} must be class indices, got {self.target!r}", "target"
                )
            bad = [int(v) for v in t if not 0 <= v < k]
            if bad:
                raise ConvseeError(
                    f"target class {bad[0]} is out of range: classes 0..{k - 1}", "target"
                )
            if t.size == 1:
                self.classes[rows] = t[0]
            elif self.n is not None and t.size != self.n:
                raise ConvseeError(
                    f"{t.size} targets for {self.n} inputs: give one, or one each", "target"
                )
            else:
                self.classes[rows] = t[rows]
        idx = torch.as_tensor(self.classes[rows], device=z.device)
        picked = z[torch.arange(n, device=z.device), idx]
        if dense:
            if self.position in (None, "sum"):
                return picked.sum((1, 2))
            return picked[:, self.position[0], self.position[1]]
        return picked
