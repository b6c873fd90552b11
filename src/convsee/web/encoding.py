"""The answers' bytes: the maps of a layer averaged down to thumbnails and quantized to 8 bits
for the page, floats inline (JSON lists, base64 float32), and the binary frame the page reads
(`encode_frame`: magic, header length, JSON header, data)."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np

__all__ = [
    "Out",
    "thumbnails",
    "thumb_factor",
    "quantize",
    "encode_image",
    "encode_frame",
    "decode_frame",
    "THUMB",
    "FRAME_MAGIC",
]

THUMB = 56  # px: for the page, larger maps are averaged down by a whole factor to at most this
FRAME_MAGIC = b"CVS1"  # binary answers: magic, header length (uint32 LE), JSON header, data


def thumb_factor(h: int, w: int) -> int:
    return max(1, -(-max(h, w) // THUMB))


def thumbnails(maps: np.ndarray) -> tuple[np.ndarray, int]:
    """(C, H, W) maps averaged over f x f blocks (f the smallest whole factor that brings
    the larger side to at most THUMB; edge blocks average what they hold), and f."""
    c, h, w = maps.shape
    f = thumb_factor(h, w)
    if f == 1:
        return maps, 1
    rows, cols = np.arange(0, h, f), np.arange(0, w, f)
    s = np.add.reduceat(np.add.reduceat(maps, rows, axis=1), cols, axis=2)
    nr = np.minimum(rows + f, h) - rows
    nc = np.minimum(cols + f, w) - cols
    return (s / (nr[:, None] * nc[None, :])).astype(np.float32), f


def quantize(a: np.ndarray, lo, hi) -> np.ndarray:
    """a (n, ...) to uint8 with row i spanning [lo[i], hi[i]] (0 where lo == hi)."""
    lo = np.asarray(lo, np.float32).reshape(-1, *[1] * (a.ndim - 1))
    hi = np.asarray(hi, np.float32).reshape(-1, *[1] * (a.ndim - 1))
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.rint((a - lo) / span * 255.0)
    return np.clip(q, 0, 255).astype(np.uint8)


class Out:
    """Where the arrays of one answer go: inline (lists, base64 float32) or the binary
    frame's data part (8-bit), referenced by offset and length."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        self.blobs: list[bytes] = []
        self.size = 0

    def floats(self, a: np.ndarray):
        if self.encoding == "list":
            return np.round(a.astype(np.float64), 4).tolist()
        if self.encoding == "f32":
            return base64.b64encode(np.ascontiguousarray(a, "<f4").tobytes()).decode()
        return self.bytes(quantize(a.reshape(1, -1), [0.0], [1.0]).reshape(a.shape))

    def bytes(self, q: np.ndarray) -> dict:
        data = np.ascontiguousarray(q, np.uint8).tobytes()
        ref = {"offset": self.size, "length": len(data)}
        self.blobs.append(data)
        self.size += len(data)
        return ref


def encode_image(image: np.ndarray, out: Out):
    img = np.clip(np.asarray(image, np.float32), 0, 1)
    if out.encoding == "u8":
        return out.bytes(np.rint(img * 255).astype(np.uint8))
    return out.floats(img)


def encode_frame(head: dict, blobs: list[bytes]) -> bytes:
    """The binary answer: b"CVS1", the JSON header's length (uint32, little-endian), the
    header (UTF-8 JSON), then the data; offsets in the header count from the data's start."""
    h = json.dumps(head, separators=(",", ":"), allow_nan=False).encode()
    return b"".join([FRAME_MAGIC, struct.pack("<I", len(h)), h, *blobs])


def decode_frame(data: bytes) -> tuple[dict, memoryview]:
    """(header, data) of a binary answer (for tests and clients in Python)."""
    if data[:4] != FRAME_MAGIC:
        raise ValueError("not a convsee frame")
    (n,) = struct.unpack("<I", data[4:8])
    return json.loads(data[8 : 8 + n]), memoryview(data)[8 + n :]
