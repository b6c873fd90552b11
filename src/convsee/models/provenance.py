"""Where a loaded network came from: one record, made where the network is loaded.

`Provenance` is the one owner of these facts: the sidecar of every picture
(draw/render.sidecar), the page's /api/info (web/info.py) and `Network.evolution` read them
from `Network.provenance`, never from metadata keys.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Provenance"]


@dataclass(frozen=True)
class Provenance:
    """A network's model, checkpoint and preprocessing, as the sidecars record them.

    model: how it was asked for ("LeNet-5 (convsee)", "net.py:Net", "hf:...", a class name).
    checkpoint: the weights file's path (None: weights given in Python, or an hf: folder).
    checkpoint_sha256: the SHA-256 of that file's bytes (hex).
    test_accuracy: the test accuracy `convsee train` recorded in the checkpoint, if any.
    dataset: the dataset the checkpoint records it was trained on, as written there.
    preprocess: the preprocessing used (Preprocess.to_dict()).
    preprocess_from: an hf: model's: where each preprocessing value came from.
    """

    model: str | None = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    test_accuracy: float | None = None
    dataset: str | None = None
    preprocess: dict | None = None
    preprocess_from: dict | None = None

    def to_dict(self) -> dict:
        """The sidecar's fields, under the sidecar's keys (preprocess_from only when known)."""
        return {
            "model": self.model,
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "checkpoint_test_accuracy": self.test_accuracy,
            "preprocess": self.preprocess,
            **({"preprocess_from": self.preprocess_from} if self.preprocess_from else {}),
        }

    def trained_on(self, default: str = "mnist") -> str:
        """The dataset the checkpoint says it was trained on, if convsee knows it; else default."""
        from ..datasets.registry import trained_on

        return trained_on({"dataset": self.dataset}, default)

    @classmethod
    def of_checkpoint(cls, path, sha256: str, meta: dict, **fields) -> Provenance:
        """The record for the checkpoint at path (its bytes' SHA-256 given) whose metadata is
        meta (checkpoint.read_meta's): the test accuracy and dataset training wrote there."""
        return cls(
            checkpoint=str(path),
            checkpoint_sha256=sha256,
            test_accuracy=meta.get("test_accuracy"),
            dataset=meta.get("dataset"),
            **fields,
        )
