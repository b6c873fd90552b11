"""Hostile files for the tests: tiny images that declare huge sizes, thin images, a
progressive JPEG of thousands of scans, and PostScript."""

from __future__ import annotations

import io
import struct
import zlib

__all__ = ["png_bomb", "png_strip", "gif_bomb", "jpeg_scan_bomb", "jpeg_segments", "EPS"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bomb(side: int, rows: int | None = None) -> bytes:
    """A valid 1-bit side x side PNG of zeros, written directly: kilobytes for any side."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    n = side if rows is None else rows
    idat = b"".join(comp.compress(row) for _ in range(n)) + comp.flush()
    head = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", head) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def png_strip(width: int, height: int) -> bytes:
    """A valid 1-bit width x height PNG, black with a white first pixel row/column pattern
    (not blank), written directly: a few hundred bytes for a 1x100000 strip."""
    row = b"\x00" + b"\xaa" * ((width + 7) // 8)  # alternate black and white pixels
    idat = zlib.compress(row * height, 9)
    head = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", head) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    """(marker, offset) of every marker of a JPEG, walked independently of convsee's reader:
    segments skipped by length, entropy-coded data scanned byte by byte."""
    out, i = [], 2
    while i < len(data) - 1:
        if data[i] != 0xFF or data[i + 1] in (0x00, 0xFF) or 0xD0 <= data[i + 1] <= 0xD7:
            i += 1
            continue
        code = data[i + 1]
        out.append((code, i))
        if code == 0xD9:
            break
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return out


def jpeg_scan_bomb(side: int = 64, scans: int = 1000) -> bytes:
    """A progressive grey JPEG (made by Pillow) with `scans` extra empty AC scans before its
    EOI, 10 bytes each: every one makes a decoder pass over all side x side coefficients."""
    from PIL import Image

    buf = io.BytesIO()
    img = Image.radial_gradient("L").resize((side, side))
    img.save(buf, "JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    assert data.endswith(b"\xff\xd9")
    # SOS: length 8, one component (id 1, tables 0/0), spectral 1..63, Ah/Al 0
    sos = b"\xff\xda" + struct.pack(">HBBBBBB", 8, 1, 1, 0x00, 1, 63, 0x00)
    return data[:-2] + sos * scans + b"\xff\xd9"


def gif_bomb() -> bytes:
    """35 bytes: a GIF whose logical screen is 65535 x 65535."""
    return (
        b"GIF89a"
        + struct.pack("<HH", 65535, 65535)
        + b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
