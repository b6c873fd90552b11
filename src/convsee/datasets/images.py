"""Reading image files and arrays: one place that opens images, for the CLI and the server.

Decoding is guarded, because a small file can declare a huge picture (a 20 KB PNG can say
13000x13000, 169 million pixels, which decodes to gigabytes):

- only a few common formats are read (`FORMATS`); nothing else is even identified, so
  PostScript, TIFF and the rest never reach a decoder;
- the size an image declares is checked against a pixel limit before any pixel is decoded
  (Pillow's `Image.open` is lazy), and Pillow's own bomb error becomes a `ConvseeError`;
- only the first frame of an animation (GIF, APNG, WebP, MPO) is decoded;
- a JPEG's scans are counted in its byte stream before decoding (`MAX_SCANS`): a
  progressive JPEG of tens of thousands of empty scans makes the decoder pass over every
  coefficient once a scan, seconds of CPU for a few hundred kilobytes;
- the blocks a file's structure is made of (PNG chunks, JPEG segments, GIF extension
  blocks) are counted before Pillow walks them, one at a time in Python, 10-20 us each:
  a 700 KB PNG of 58,000 empty chunks took a second to open, a JPEG of 175,000 empty APP
  segments 2.4 s, a GIF of 350,000 comment sub-blocks 0.7 s (`MAX_BLOCKS`);
- `check_aspect` refuses images thinner than `MAX_ASPECT`: scaled to a model's shorter
  side, a 1x100000 strip would become 256x25,600,000 pixels (tens of gigabytes).
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ConvseeError, no_file

__all__ = [
    "FORMATS",
    "MAX_ASPECT",
    "MAX_PIXELS",
    "MAX_SCANS",
    "MAX_BLOCKS",
    "check_structure",
    "check_aspect",
    "declared_size",
    "jpeg_scans",
    "open_image",
    "reduce_to",
    "to_gray",
]

FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")  # what convsee reads; the page sends PNG
# what Image.open may return for them: a JPEG holding several pictures (many phone photos)
# opens as "MPO", through the JPEG opener
_OPENED_AS = (*FORMATS, "MPO")
# Default limit for files (the CLI, the Python API): a 48-50 MP phone photo still opens; the
# preprocessing needs about 15 bytes a pixel, so this is ~750 MB at worst. The server passes a
# much smaller limit.
MAX_PIXELS = 50_000_000
# The longer side may be at most this many times the shorter: a 64:1 strip still opens (wide
# panoramas are 4:1 to 10:1), a thinner one is refused before any resize.
MAX_ASPECT = 64
# Scans (SOS markers) a JPEG may hold: baseline files have 1 (one per component at most 4),
# progressive ones about 10 (libjpeg's default script), rarely more than 20.
MAX_SCANS = 100
# Blocks of a file's structure before its first picture's pixels: PNG chunks before the image
# data, JPEG segments up to the first EOI, GIF blocks before the first frame (real files have
# tens; one of Photoshop's with a large XMP packet a few hundred). A PNG's first picture may
# besides hold 4096 + 1 per 1024 pixels of IDAT chunks (libpng writes 8 KB each).
MAX_BLOCKS = 4096
ORIENTATION_TAG = 0x0112  # EXIF: how the stored pixels are to be turned (1: as stored)


def _megapixels(n: float) -> str:
    return f"{n / 1e6:.1f}".removesuffix(".0")


def _openers() -> list[str]:
    Image.init()
    return [f for f in FORMATS if f in Image.OPEN]  # a Pillow built without WebP has no WEBP


def check_aspect(w: int, h: int, at: str = "", limit: float = MAX_ASPECT) -> None:
    """Raise ConvseeError when a w x h image is thinner than limit:1 (at: "FILE: " or "")."""
    long, short = max(w, h), min(w, h)
    if short < 1 or long > limit * short:
        ratio = f"{long // max(short, 1):,}:1"
        raise ConvseeError(
            f"{at}image too thin: {w}x{h} pixels, {ratio}; "
            f"the longer side may be at most {limit:g} times the shorter"
        )


# a marker: 0xFF then a byte that is not stuffing (00), fill (FF) or a restart (D0-D7)
_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
_NO_LENGTH = {0x01, 0xD8}  # TEM and SOI carry no length (nor do RSTn, never matched)
_BLOCK = 1 << 20


def jpeg_scans(fp, stop: int = MAX_SCANS + 1) -> int:
    """How many scans (SOS segments) the first picture of the JPEG in fp (a binary file
    object, read from its start) holds, counting up to stop at most.

    The stream is walked segment by segment as a decoder does: segment bodies are skipped by
    their length (so a thumbnail inside EXIF is not counted), entropy-coded data is searched
    block by block for the next marker, and the count ends at the first EOI (an MPO file's
    further pictures are never decoded). Reads a block of 1 MB at a time."""
    return _jpeg_walk(fp, stop)[0]


def _jpeg_walk(fp, stop: int, stop_segments: int | None = None) -> tuple[int, int]:
    """(scans, segments with a length) of the first picture, as jpeg_scans counts them,
    up to stop scans or stop_segments segments."""
    fp.seek(0)
    if fp.read(2) != b"\xff\xd8":
        return 0, 0
    pos, n, segments = 2, 0, 0
    stop_segments = stop_segments or (1 << 62)
    base, block = 0, b""  # the bytes read last, from offset base
    while n < stop and segments < stop_segments:
        if not base <= pos <= base + len(block) - 4:  # a marker and its length: 4 bytes
            fp.seek(pos)
            base, block = pos, fp.read(_BLOCK)
            if len(block) < 2:
                return n, segments
        m = _MARKER.search(block, pos - base)
        if m is None:
            if len(block) < _BLOCK:  # the end of the file
                return n, segments
            pos = base + len(block) - 1  # the last byte may be the 0xFF of a marker
            block = b""
            continue
        code = block[m.start() + 1]
        pos = base + m.end()
        if code == 0xD9:  # EOI: the end of the first picture
            return n, segments
        if code in _NO_LENGTH:
            continue
        head = block[pos - base : pos - base + 2]
        if len(head) < 2:
            fp.seek(pos)
            head = fp.read(2)
            if len(head) < 2:
                return n, segments
        pos += int.from_bytes(head, "big")  # the length counts its own 2 bytes
        segments += 1
        if code == 0xDA:
            n += 1
    return n, segments


def _png_blocks(fp, stop: int) -> int:
    """Chunks of a PNG up to the end of its first picture's image data (IDAT), counting
    those before it plus those of it beyond its allowance (see MAX_BLOCKS)."""
    fp.seek(8)
    n, allowance, in_data = 0, 4096, False
    while n < stop:
        head = fp.read(8)
        if len(head) < 8:
            return n
        size, kind = int.from_bytes(head[:4], "big"), head[4:]
        if kind == b"IHDR" and size >= 8:
            w, h = struct.unpack(">II", fp.read(8))
            allowance += w * h // 1024
            size -= 8
        if kind == b"IDAT":
            in_data = True
            allowance -= 1
            n += allowance < 0
        elif in_data or kind == b"IEND":
            return n  # the first picture's data has ended
        else:
            n += 1
        fp.seek(size + 4, io.SEEK_CUR)  # its data and CRC
    return n


def _gif_blocks(fp, stop: int) -> int:
    """Blocks and sub-blocks of a GIF before its first frame's image descriptor."""
    head = fp.read(13)
    if len(head) < 13:
        return 0
    if head[10] & 0x80:  # a global colour table
        fp.seek(3 << ((head[10] & 7) + 1), io.SEEK_CUR)
    n = 0
    while n < stop:
        kind = fp.read(1)
        if kind != b"!":  # an image descriptor (the first frame), the end, or damage
            return n
        fp.seek(1, io.SEEK_CUR)  # the extension's label
        n += 1
        while n < stop:
            length = fp.read(1)
            if not length or length == b"\0":
                break
            fp.seek(length[0], io.SEEK_CUR)
            n += 1
    return n


def check_structure(fp, at: str = "") -> None:
    """Raise ConvseeError when the file in fp (a binary file object) is made of more than
    MAX_BLOCKS blocks before its first picture (see MAX_BLOCKS); fp is left at its start."""
    fp.seek(0)
    sig = fp.read(8)
    fp.seek(0)
    stop = MAX_BLOCKS + 1
    if sig == b"\x89PNG\r\n\x1a\n":
        n, what = _png_blocks(fp, stop), "chunks"
    elif sig[:2] == b"\xff\xd8":
        n, what = _jpeg_walk(fp, MAX_SCANS + 1, stop)[1], "segments"
    elif sig[:4] == b"GIF8":
        n, what = _gif_blocks(fp, stop), "blocks"
    else:
        n, what = 0, ""
    fp.seek(0)
    if n > MAX_BLOCKS:
        raise ConvseeError(
            f"{at}an image file of over {MAX_BLOCKS} {what} before its picture (real files "
            "have tens): refused, as reading each one takes the decoder time"
        )


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) the image in data declares, read from its header without decoding
    a pixel; None when it is not an image convsee reads (open_image then says why)."""
    try:
        check_structure(io.BytesIO(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=_openers()) as img:
                return img.size if img.format in _OPENED_AS else None
    except Exception:  # hostile headers: whatever Pillow raises, the answer is "no size"
        return None


def open_image(
    source, *, max_pixels: int = MAX_PIXELS, max_aspect: float | None = None
) -> Image.Image:
    """A loaded PIL image (its first frame) from a path, bytes or file object.

    Raises ConvseeError, in its own words, for a missing file, a format outside `FORMATS`,
    an image declaring more than `max_pixels` pixels or (max_aspect given) thinner than
    max_aspect:1 (both checked before decoding), a JPEG of over `MAX_SCANS` scans and damaged
    data. A PIL image passed in is returned as is: the caller opened it.
    """
    if isinstance(source, Image.Image):
        return source
    is_path = isinstance(source, (str, os.PathLike))
    at = f"{source}: " if is_path else ""  # messages name files, never echo data
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    if is_path and not Path(source).is_file():
        raise ConvseeError(f"{source}{no_file(source)}")
    limit = f"the limit is {_megapixels(max_pixels)} megapixels"
    if is_path:
        with open(source, "rb") as f:
            check_structure(f, at)
    elif getattr(source, "seekable", lambda: False)():
        check_structure(source, at)
    try:
        # Pillow warns from 89 MP and refuses from 179 MP, itself, inside open(); the size
        # check below says it better. (catch_warnings is not thread-safe: at worst an extra
        # "ignore" for this one warning is left behind, which changes nothing here.)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(source, formats=_openers())
    except Image.DecompressionBombError as e:  # its message: "Image size (N pixels) ..."
        found = re.search(r"\((\d{1,15}) pixels\)", str(e))
        size = f" ({_megapixels(int(found.group(1)))} megapixels)" if found else ""
        raise ConvseeError(f"{at}image too large{size}; {limit}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise ConvseeError(
            f"{at}not an image convsee reads (it reads {', '.join(FORMATS)})"
        ) from None
    try:
        w, h = img.size
        if img.format not in _OPENED_AS:  # open() was told the formats; never trust it
            raise ConvseeError(f"{at}not an image convsee reads (it reads {', '.join(FORMATS)})")
        if w < 1 or h < 1:
            raise ConvseeError(f"{at}empty image (0 pixels)")
        if w * h > max_pixels:
            raise ConvseeError(
                f"{at}image too large: {w}x{h} pixels ({_megapixels(w * h)} megapixels); {limit}"
            )
        if max_aspect is not None:
            check_aspect(w, h, at, max_aspect)
        if img.format in ("JPEG", "MPO") and getattr(img, "fp", None) is not None:
            at_pos = img.fp.tell()
            scans = jpeg_scans(img.fp)
            img.fp.seek(at_pos)
            if scans > MAX_SCANS:
                raise ConvseeError(
                    f"{at}a JPEG of over {MAX_SCANS} scans (progressive JPEGs have about 10): "
                    "refused, as decoding each scan passes over the whole picture"
                )
        try:
            img.load()  # the first frame only
        except Exception:  # any decoder failure on hostile data is a damaged image
            raise ConvseeError(f"{at}the image data is damaged or incomplete") from None
        if getattr(img, "fp", None) is not None:  # animations keep the file open: detach
            img = img.copy()
        img = upright(img)
    except BaseException:
        img.close()
        raise
    return img


def upright(img: Image.Image) -> Image.Image:
    """img turned as its EXIF Orientation tag says (phones store photos sideways and tag
    them); img itself without the tag. The turned copy keeps `info["convsee_turned"]`, the
    tag's value, so that notes can say so."""
    try:
        tag = img.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block: read the pixels as stored
        return img
    if tag not in range(2, 9):
        return img
    try:
        turned = ImageOps.exif_transpose(img)
    except Exception:
        return img
    turned.info["convsee_turned"] = tag
    return turned


def reduce_to(img: Image.Image, pixels: int) -> Image.Image:
    """img averaged down by a whole factor (box filter, 8-bit, cheap) to at most about
    `pixels` pixels; img itself when it is no larger. Modes keep what `to_gray` reads from
    them (alpha stays alpha; 16-bit stays 32-bit integer)."""
    w, h = img.size
    k = math.ceil(math.sqrt(w * h / pixels))
    if k <= 1:
        return img
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode in ("P", "PA"):  # average colours, never palette indices
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    elif img.mode.startswith("I;16"):
        img = img.convert("I")
    return img.reduce(k)


def to_gray(image, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """float32 (H, W) in [0, 1]; where the alpha channel varies, alpha is the ink.

    image: a path, bytes, a file object, a PIL image or an array; files go through
    `open_image` with `max_pixels`.
    """
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
    img = open_image(image, max_pixels=max_pixels)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # the alpha channel alone, 1 byte a pixel, before any float copy
        alpha = (img if img.mode in ("RGBA", "LA") else img.convert("RGBA")).getchannel("A")
        lo, hi = alpha.getextrema()
        if lo < hi:
            a = np.asarray(alpha, dtype=np.float32)
            a /= 255.0
            return a
    if img.mode in ("I", "I;16", "F"):
        a = np.asarray(img, dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    a = np.asarray(img.convert("L"), dtype=np.float32)
    a /= 255.0
    return a
