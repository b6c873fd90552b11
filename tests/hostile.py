"""Hostile files for the tests: tiny images that declare huge sizes, and PostScript."""

from __future__ import annotations

import struct
import zlib

__all__ = ["png_bomb", "gif_bomb", "EPS"]


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


def gif_bomb() -> bytes:
    """35 bytes: a GIF whose logical screen is 65535 x 65535."""
    return (
        b"GIF89a"
        + struct.pack("<HH", 65535, 65535)
        + b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
