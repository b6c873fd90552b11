"""Frames of `convsee sweep`: one layer's maps for each perturbed input, on one colour scale.

Arrays in, Pillow images out. The layout is figures.MapGrid's (input panel, channel grid,
colour bar); an occlusion patch is outlined on the input panel so it shows whatever lies under
it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .core import ACCENT, UI_COLORS, colormap
from .figures import PANEL, MapGrid, picture

__all__ = ["SweepFrames", "colour_palette", "on_palette"]

INPUT_XY = (20, 120)  # where MapGrid puts its input panel


class SweepFrames:
    """maps_shape (C, h, w) of the channels drawn; rng the one (vmin, vmax) of every frame."""

    def __init__(self, maps_shape, lut, title: list[str], rng, labels):
        self.grid = MapGrid(maps_shape, lut, title, bar=rng, labels=labels)
        self.rng = rng

    def draw(self, image, maps, caption: str, box=None):
        """One frame; box (row, col, side) in input pixels outlines an occlusion patch."""
        n = maps.shape[0]
        img = self.grid.draw(image, maps, [self.rng] * n, caption)
        if box is not None:
            h, w = image.shape[:2]
            pic = picture(image, PANEL)
            sy, sx = pic.height / h, pic.width / w
            r, c, side = box
            x0, y0 = INPUT_XY
            d = ImageDraw.Draw(img)
            d.rectangle(
                [
                    x0 + round(c * sx) - 1,
                    y0 + round(r * sy) - 1,
                    x0 + round((c + side) * sx),
                    y0 + round((r + side) * sy),
                ],
                outline=ACCENT,
                width=2,
            )
        return img


def colour_palette(lut_name: str, pictures) -> Image.Image:
    """A 256-colour palette for frames that show colour pictures: the UI colours, 32 grays,
    112 colours of the colormap and up to 96 colours taken from the pictures themselves
    (median cut over all of them, so every frame shares one palette)."""
    grays = [(v, v, v) for v in np.linspace(0, 240, 32).round().astype(int)]
    lut = colormap(lut_name)
    cmap = [tuple(int(c) for c in lut[i]) for i in np.linspace(0, 255, 112).astype(int)]
    stack = np.concatenate(
        [np.round(np.clip(p, 0, 1) * 255).astype(np.uint8).reshape(-1, 3) for p in pictures]
    )
    side = int(np.ceil(np.sqrt(len(stack))))
    canvas = np.zeros((side * side, 3), np.uint8)
    canvas[: len(stack)] = stack
    canvas[len(stack) :] = stack[0]
    q = Image.fromarray(canvas.reshape(side, side, 3)).quantize(
        256 - len(UI_COLORS) - len(grays) - len(cmap), method=Image.Quantize.MEDIANCUT
    )
    pal = q.getpalette()[: 3 * len(q.getcolors())]
    own = [tuple(pal[i : i + 3]) for i in range(0, len(pal), 3)]
    colors = list(UI_COLORS) + grays + cmap + own
    colors += [colors[0]] * (256 - len(colors))
    img = Image.new("P", (1, 1))
    img.putpalette([c for rgb in colors[:256] for c in rgb])
    return img


def on_palette(frame: Image.Image, palette: Image.Image) -> Image.Image:
    return frame.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE)
