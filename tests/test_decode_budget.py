"""Files small on the wire but slow to open: structures of many blocks (PNG chunks, JPEG
segments, GIF sub-blocks) are refused before Pillow walks them one by one, while real
files of every format convsee reads (animations included) still open."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from convsee.datasets import images
from convsee.errors import ConvseeError


def chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(w: int, h: int, before: bytes = b"", idat_pieces: int = 1, level: int = 6) -> bytes:
    rows = b"".join(b"\0" + bytes((x * 7 + y) % 256 for x in range(w)) for y in range(h))
    raw = zlib.compress(rows, level)
    cuts = [len(raw) * i // idat_pieces for i in range(idat_pieces + 1)]
    idats = b"".join(chunk(b"IDAT", raw[a:b]) for a, b in zip(cuts, cuts[1:], strict=False))
    head = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + head + before + idats + chunk(b"IEND", b"")


def gif(comment_blocks: int) -> bytes:
    """Pillow's 2x2 GIF with a comment extension of comment_blocks sub-blocks put in front."""
    buf = io.BytesIO()
    Image.new("L", (2, 2), 200).save(buf, "GIF")
    data = buf.getvalue()
    start = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    comment = b"\x21\xfe" + b"\x01x" * comment_blocks + b"\0"
    return data[:start] + comment + data[start:]


def jpeg(app_segments: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, "JPEG")
    data = buf.getvalue()
    return data[:2] + b"\xff\xe5\x00\x02" * app_segments + data[2:]


def blocks(data: bytes) -> int:
    """How many blocks check_structure counts, read through a refusal's absence."""
    f = io.BytesIO(data)
    sig = data[:8]
    if sig.startswith(b"\x89PNG"):
        return images._png_blocks(f, 10**9)
    if sig.startswith(b"GIF"):
        return images._gif_blocks(f, 10**9)
    return images._jpeg_walk(f, 10**9)[1]


def test_blocks_are_counted_as_by_hand():
    text = chunk(b"tEXt", b"a\0b")
    assert blocks(png(8, 8)) == 1  # IHDR
    assert blocks(png(8, 8, text * 5)) == 6
    assert blocks(png(8, 8, idat_pieces=3)) == 1  # IDAT chunks within the allowance
    assert blocks(gif(10)) == blocks(gif(0)) + 10  # the comment's 10 sub-blocks
    assert blocks(gif(0)) == 1 + blocks(gif(0)[:13] + b"\x3b")  # the empty comment
    plain = blocks(jpeg(0))
    assert blocks(jpeg(7)) == plain + 7
    # Pillow's (libjpeg's) grey baseline JPEG: APP0, DQT, SOF0, DHT (DC), DHT (AC), SOS
    assert plain == 6


@pytest.mark.parametrize(
    "data",
    [
        png(8, 8, chunk(b"zzZz", b"") * (images.MAX_BLOCKS + 1)),
        gif(images.MAX_BLOCKS + 1),
        jpeg(images.MAX_BLOCKS + 1),
    ],
    ids=["png-chunks", "gif-sub-blocks", "jpeg-segments"],
)
def test_too_many_blocks_are_refused_before_decoding(data):
    with pytest.raises(ConvseeError, match=f"over {images.MAX_BLOCKS} .* before its picture"):
        images.open_image(data)
    assert images.declared_size(data) is None  # the server's heavy-lane test says so too


def test_just_under_the_limit_opens():
    data = png(8, 8, chunk(b"zzZz", b"") * (images.MAX_BLOCKS - 1))
    assert images.open_image(data).size == (8, 8)
    assert images.open_image(gif(images.MAX_BLOCKS - 10)).size == (2, 2)
    assert images.open_image(jpeg(images.MAX_BLOCKS - 6)).size == (16, 16)


def test_idat_chunks_allowed_by_pixels():
    # 128x128: 4096 + 16 IDAT chunks allowed, and IHDR plus those beyond it count up to
    # MAX_BLOCKS: 8207 IDAT chunks open, 8209 do not (the data is 16.5 KB, stored)
    allowed = 4096 + 128 * 128 // 1024 + images.MAX_BLOCKS - 1
    ok = png(128, 128, idat_pieces=allowed, level=0)
    assert blocks(ok) == images.MAX_BLOCKS
    assert np.asarray(images.open_image(ok)).shape == (128, 128)
    with pytest.raises(ConvseeError, match="chunks"):
        images.open_image(png(128, 128, idat_pieces=allowed + 2, level=0))


def test_real_files_of_every_format_open(tmp_path):
    rng = np.random.default_rng(0)
    pic = Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
    frames = [Image.new("RGB", (50, 40), (i * 20, 0, 0)) for i in range(12)]
    info = PngImagePlugin.PngInfo()
    for i in range(40):
        info.add_text(f"k{i}", "v" * 100)
    saves = {
        "text.png": lambda p: pic.save(p, "PNG", pnginfo=info),
        "plain.png": lambda p: pic.save(p, "PNG", optimize=True),
        "anim.png": lambda p: frames[0].save(p, "PNG", save_all=True, append_images=frames[1:]),
        "anim.gif": lambda p: frames[0].save(p, "GIF", save_all=True, append_images=frames[1:]),
        "progressive.jpg": lambda p: pic.save(p, "JPEG", progressive=True, exif=b"Exif\0\0"),
        "photo.jpg": lambda p: pic.save(p, "JPEG", quality=90),
        "pic.bmp": lambda p: pic.save(p, "BMP"),
    }
    if "WEBP" in Image.SAVE:
        saves["anim.webp"] = lambda p: frames[0].save(
            p, "WEBP", save_all=True, append_images=frames[1:]
        )
    for name, save in saves.items():
        path = tmp_path / name
        save(path)
        img = images.open_image(path)
        assert img.size == (50, 40), name
        with Image.open(path) as ref:  # the first frame, as Pillow reads it
            assert np.array_equal(np.asarray(img), np.asarray(ref.convert(img.mode))), name
