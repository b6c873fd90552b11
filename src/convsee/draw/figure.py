"""A rendered picture as a Python object: shows itself in Jupyter, saves as PNG + sidecar."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Figure"]


@dataclass
class Figure:
    """One picture convsee drew (a layer for an input, a view), with what it was drawn from."""

    name: str  # e.g. "conv1/3.png"
    png: bytes  # the PNG as written by the CLI
    sidecar: dict = field(default_factory=dict)  # the JSON sidecar the CLI writes beside it

    def _repr_png_(self) -> bytes:  # Jupyter displays this
        return self.png

    def __repr__(self) -> str:
        layer = self.sidecar.get("layer")
        what = f" layer {layer}" if layer else ""
        return f"Figure({self.name!r}{what}, {len(self.png):,} bytes PNG)"

    @property
    def image(self):
        """The picture as a Pillow image."""
        from PIL import Image

        return Image.open(io.BytesIO(self.png))

    def save(self, path) -> Path:
        """Write the PNG, and its sidecar as .json beside it."""
        from ..models.checkpoint import atomic_write

        p = Path(path)
        atomic_write(p, self.png)
        atomic_write(p.with_suffix(".json"), (json.dumps(self.sidecar, indent=2) + "\n").encode())
        return p
