"""A rendered picture as a Python object: shows itself in Jupyter, saves as PNG/GIF + sidecar.

`Figures` is a list of them that shows every picture in Jupyter (each view returns one)."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Figure", "Figures"]


@dataclass
class Figure:
    """One picture convsee drew (a layer for an input, a view), with what it was drawn from."""

    name: str  # e.g. "conv1/3.png" or "animate_conv1.gif": where the CLI writes it
    data: bytes  # the PNG or GIF as the CLI writes it
    sidecar: dict = field(default_factory=dict)  # the JSON sidecar the CLI writes beside it
    # where the sidecar is written: "" beside the picture ({stem}.json); None: not by this
    # figure (a sidecar shared by several pictures, written once by their Figures)
    sidecar_file: str | None = ""

    @property
    def format(self) -> str:
        return "gif" if self.name.lower().endswith(".gif") else "png"

    @property
    def png(self) -> bytes:
        """The picture's bytes (the GIF's for an animation)."""
        return self.data

    def _repr_png_(self) -> bytes | None:  # Jupyter displays this (a GIF through the HTML)
        return self.data if self.format == "png" else None

    def _repr_html_(self) -> str:
        b64 = base64.b64encode(self.data).decode()
        return f'<img src="data:image/{self.format};base64,{b64}" alt="{html.escape(self.name)}">'

    def __repr__(self) -> str:
        layer = self.sidecar.get("layer")
        what = f" layer {layer}" if layer else ""
        return f"Figure({self.name!r}{what}, {len(self.data):,} bytes {self.format.upper()})"

    @property
    def image(self):
        """The picture as a Pillow image (an animation: its first frame; seek for others)."""
        from PIL import Image

        return Image.open(io.BytesIO(self.data))

    def files(self) -> dict:
        """{relative path: bytes}: the picture and its sidecar, as the CLI writes them."""
        if self.sidecar_file is None:
            return {self.name: self.data}
        side = self.sidecar_file or self.name.rsplit(".", 1)[0] + ".json"
        return {self.name: self.data, side: sidecar_bytes(self.sidecar)}

    def save(self, path) -> Path:
        """Write the picture, and its sidecar as .json beside it."""
        from ..models.checkpoint import atomic_write

        p = Path(path)
        atomic_write(p, self.data)
        atomic_write(p.with_suffix(".json"), sidecar_bytes(self.sidecar))
        return p


def sidecar_bytes(side: dict) -> bytes:
    """A sidecar as written to disk: indented JSON and a final newline."""
    return (json.dumps(side, indent=2) + "\n").encode()


def from_files(files: dict, shared: str | None = None, shown=None) -> Figures:
    """The Figures of a {relative path: bytes} set as a view renders it: each picture with
    its sidecar beside it ({stem}.json). A picture without one gets the sidecar named shared
    (written once, by the Figures), else none; other files are kept in Figures.extra, so
    Figures.files() is the set again. shown(name): whether a picture is a figure (default:
    all); the others go to Figures.extra (an animation's frames, say)."""
    figs = Figures()
    paired = set()
    for name, data in files.items():
        if _picture(name) and (shown is None or shown(name)):
            own = name.rsplit(".", 1)[0] + ".json"
            if own in files:
                paired.add(own)
                figs.append(Figure(name, data, json.loads(files[own])))
            else:
                side = json.loads(files[shared]) if shared in files else {}
                figs.append(Figure(name, data, side, sidecar_file=None))
    drawn = {f.name for f in figs}
    figs.extra = {k: v for k, v in files.items() if k not in paired and k not in drawn}
    return figs


def _picture(name: str) -> bool:
    return name.lower().endswith((".png", ".gif"))


class Figures(list):
    """A list of Figures that Jupyter shows as pictures, one after another; save(folder)
    writes them all (with sidecars) as the CLI would, all or nothing. extra: files that go
    with the pictures but are none (a sidecar several share), {relative path: bytes}."""

    def __init__(self, figures=(), extra: dict | None = None):
        super().__init__(figures)
        self.extra = dict(extra or {})

    def __add__(self, other) -> Figures:
        extra = {**self.extra, **getattr(other, "extra", {})}
        return Figures([*self, *other], extra)

    def __getitem__(self, i):
        got = super().__getitem__(i)
        return Figures(got) if isinstance(i, slice) else got

    def _repr_html_(self) -> str:
        return "".join(f"<div>{f._repr_html_()}</div>" for f in self)

    def __repr__(self) -> str:
        return "[" + ", ".join(repr(f) for f in self) + "]"

    def files(self) -> dict:
        """{relative path: bytes}: every picture, its sidecar, and the extra files."""
        out = {}
        for f in self:
            out.update(f.files())
        out.update(self.extra)
        return out

    def save(self, folder) -> list[Path]:
        """Write every picture and its sidecar under folder; the paths of the pictures."""
        from ..files import write_outputs

        written = write_outputs(self.files(), folder)
        return [p for p in written if p.suffix.lower() in (".png", ".gif")]
