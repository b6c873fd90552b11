"""Reading image files and arrays: one place that opens images, for the CLI and the server."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConvseeError

__all__ = ["open_image", "to_gray"]


def open_image(source) -> Image.Image:
    """A PIL image from a path, bytes or file object; a clear error if it is not an image."""
    if isinstance(source, Image.Image):
        return source
    name = str(source) if isinstance(source, (str, os.PathLike)) else "image"
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise ConvseeError(f"{name}: no such file")
    try:
        img = Image.open(source)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ConvseeError(f"{name}: not an image Pillow can read ({e})") from None
    return img


def to_gray(image) -> np.ndarray:
    """float32 (H, W) in [0, 1]; where the alpha channel varies, alpha is the ink."""
    if isinstance(image, np.ndarray):
        a = np.asarray(image, dtype=np.float32)
        if image.dtype == np.uint8:
            a = a / 255.0
        if a.ndim == 3:
            if a.shape[2] == 4 and a[..., 3].min() < a[..., 3].max():
                return a[..., 3]
            a = a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        if a.ndim != 2:
            raise ConvseeError(f"expected a 2-D image array, got shape {image.shape}")
        return np.clip(a, 0, 1)
    img = open_image(image)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
        if alpha.min() < alpha.max():
            return alpha.astype(np.float32) / 255.0
    if img.mode in ("I", "I;16", "F"):
        a = np.asarray(img, dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
