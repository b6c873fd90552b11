"""Drawing primitives on NumPy arrays and Pillow images: colormaps, tiling, text, colour bars.

Nothing here knows about models. Colours come from matplotlib's colormap registry (no pyplot).
Writers accept a path or a binary file object.
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import ConvseeError

__all__ = [
    "BG",
    "FG",
    "MUTED",
    "font",
    "colormap",
    "apply_cmap",
    "upscale",
    "text_size",
    "text_right",
    "colorbar",
    "colorbar_width",
    "save_image",
    "save_gif",
    "to_palette",
]

BG = (255, 255, 255)  # page background
FG = (20, 20, 30)  # text
MUTED = (110, 110, 120)  # secondary text
ACCENT = (214, 39, 40)  # highlights: the prediction, dead channels


@functools.lru_cache(maxsize=16)
def font(size: int = 14) -> ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font at size px (no system fonts needed)."""
    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=32)
def colormap(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of a matplotlib colormap.

    Common maps come from assets/colormaps.npz (sampled from matplotlib, saving its import
    time); any other name is looked up in matplotlib's registry.
    """
    from importlib import resources

    with resources.files("convsee").joinpath("assets/colormaps.npz").open("rb") as f:
        bundled = np.load(f)
        if name in bundled.files:
            return bundled[name]
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        common = "viridis, magma, inferno, gray, RdBu_r, coolwarm, seismic, PuOr_r"
        raise ConvseeError(
            f"unknown colormap {name!r}; try one of: {common} (any matplotlib colormap name)",
            "cmap",
        ) from None
    lut = cmap(np.linspace(0, 1, 256))[:, :3]
    return np.round(lut * 255).astype(np.uint8)


def apply_cmap(a: np.ndarray, vmin: float, vmax: float, lut: np.ndarray) -> np.ndarray:
    """Map values to colours: (..., H, W) -> (..., H, W, 3) uint8; clipped to [vmin, vmax]."""
    span = vmax - vmin if vmax > vmin else 1.0
    idx = np.clip((a - vmin) * (255.0 / span), 0, 255).astype(np.uint8)
    return lut[idx]


def upscale(a: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour enlargement of the first two axes by an integer factor."""
    return a.repeat(k, axis=0).repeat(k, axis=1)


def text_size(text: str, size: int) -> tuple[int, int]:
    left, top, right, bottom = font(size).getbbox(text)
    return right - left, bottom - top


def text_right(text: str, size: int) -> int:
    """How far right of its x a line of text drawn left-aligned ends (its last pixel + 1)."""
    return font(size).getbbox(text)[2]


def colorbar(
    draw: ImageDraw.ImageDraw,
    img: Image.Image,
    xy: tuple[int, int],
    height: int,
    vmin: float,
    vmax: float,
    lut: np.ndarray,
    width: int = 14,
    label: str = "",
) -> None:
    """A vertical colour bar with min, max (and 0 when inside) labelled."""
    x, y = xy
    grad = lut[np.linspace(255, 0, height).astype(np.uint8)]  # top = vmax
    bar = np.repeat(grad[:, None, :], width, axis=1)
    img.paste(Image.fromarray(bar), (x, y))
    draw.rectangle([x - 1, y - 1, x + width, y + height], outline=MUTED)
    ticks = [(vmax, y), (vmin, y + height)]
    if vmin < 0 < vmax:
        ticks.append((0.0, y + round(height * vmax / (vmax - vmin))))
    for value, ty in ticks:
        draw.line([x + width, ty, x + width + 4, ty], fill=MUTED)
        draw.text((x + width + 6, ty), f"{value:.3g}", fill=FG, font=font(12), anchor="lm")
    if label:
        draw.text((x + width // 2, y - 6), label, fill=MUTED, font=font(11), anchor="md")


def colorbar_width(vmin: float, vmax: float, width: int = 14, label: str = "") -> int:
    """How far right of its x colorbar(..., vmin, vmax, width, label) draws: the bar, its
    ticks and the widest number (or the label centred over the bar, if wider)."""
    ticks = [vmax, vmin] + ([0.0] if vmin < 0 < vmax else [])
    numbers = width + 6 + max(text_right(f"{v:.3g}", 12) for v in ticks)
    return max(numbers, width // 2 + (text_size(label, 11)[0] + 1) // 2 if label else 0)


UI_COLORS = [
    BG,
    FG,
    MUTED,
    ACCENT,
    (200, 200, 205),
    (230, 230, 235),
    (238, 238, 242),
    (90, 120, 200),
]


@functools.lru_cache(maxsize=32)
def _palette_image(lut_names: tuple[str, ...]) -> Image.Image:
    """A fixed 256-colour palette: the UI colours, grays, each colormap's colours, and with
    the name "colour" among them a 5x5x5 colour cube for colour inputs."""
    colour = "colour" in lut_names
    lut_names = tuple(n for n in lut_names if n != "colour")
    # grays, none close to white: the quantizer is approximate and would take 251 for 255
    grays = [(v, v, v) for v in np.linspace(0, 240, 24 if colour else 64).round().astype(int)]
    colors = list(UI_COLORS) + grays
    if colour:
        steps = np.linspace(0, 255, 5).round().astype(int)
        colors += [(int(r), int(g), int(b)) for r in steps for g in steps for b in steps]
    per_lut = (256 - len(colors)) // max(1, len(lut_names))
    for name in lut_names:
        lut = colormap(name)
        colors += [tuple(int(c) for c in lut[i]) for i in np.linspace(0, 255, per_lut).astype(int)]
    colors += [BG] * (256 - len(colors))
    pal = Image.new("P", (1, 1))
    pal.putpalette([c for rgb in colors for c in rgb])
    return pal


def to_palette(img: Image.Image, lut_names) -> Image.Image:
    """RGB -> 8-bit palette image on a fixed palette (fast to encode, same colours in every
    frame of a GIF). Colormap colours are kept to 1/64 or better of their range."""
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return rgb.quantize(palette=_palette_image(tuple(lut_names)), dither=Image.Dither.NONE)


def _is_file_obj(dest) -> bool:
    return hasattr(dest, "write")


def save_image(img: Image.Image, dest, compress_level: int = 1) -> None:
    """Save a PNG to a path (parent folders made) or a binary file object."""
    if not _is_file_obj(dest):
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
    img.save(dest, format="PNG", optimize=False, compress_level=compress_level)


def encode_png(img: Image.Image, compress_level: int = 1) -> bytes:
    """The one PNG encoder: img as PNG bytes (level 1: fast; 6 for photos, smaller)."""
    buf = io.BytesIO()
    save_image(img, buf, compress_level)
    return buf.getvalue()


def encode_gif(frames: list[Image.Image], duration_ms=1000, luts=()) -> bytes:
    """The one GIF encoder: an animated, looping GIF as bytes (see save_gif)."""
    buf = io.BytesIO()
    save_gif(frames, buf, duration_ms, luts)
    return buf.getvalue()


def save_gif(frames: list[Image.Image], dest, duration_ms: int = 1000, luts=()) -> None:
    """An animated, looping GIF; every frame on one fixed palette (see to_palette)."""
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    if not _is_file_obj(dest):
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
    indexed = [f if f.mode == "P" else to_palette(f, luts) for f in frames]
    indexed[0].save(
        dest,
        format="GIF",
        save_all=True,
        append_images=indexed[1:],
        duration=duration_ms,
        loop=0,
        optimize=False,
        disposal=1,
    )


def dest_name(dest) -> str:
    return os.fspath(dest) if not _is_file_obj(dest) else "<file>"
