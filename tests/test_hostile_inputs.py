"""Hostile inputs cost nothing (issue 18, items 1, 3 and 4): thin images, a progressive JPEG
of thousands of scans, input sizes a model cannot take, huge tensors and deep JSON. Each is
refused in one line (CLI exit 2, a 422 on the server) before the memory or the CPU is spent.

Where the old code would allocate gigabytes, a guard on Pillow's resize (and on NumPy's
reading of .npy data) fails the test instead, so that running these tests against a tree
without the limits fails quickly rather than swapping."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from foreign_models import make
from hostile import jpeg_scan_bomb, jpeg_segments, png_strip
from PIL import Image
from starlette.testclient import TestClient

from convsee.cli import main
from convsee.datasets import images, transforms
from convsee.datasets.images import open_image
from convsee.datasets.transforms import Preprocess, fit, imagenet, load_npy, read_preprocess
from convsee.errors import ConvseeError

HERE = Path(__file__).parent
RGBNET = ["--model", str(HERE / "foreign_models.py") + ":RGBNet"]
LOCAL = "http://127.0.0.1:8000"
THIN = [(1, 100_000), (65_535, 1), (1, 4_000_000)]
GUARD_PIXELS = 30_000_000  # a resize larger than this in a test is the bug itself


@pytest.fixture
def guarded(monkeypatch):
    """Pillow's resize fails the test when asked for a huge image (the result or its
    width-first intermediate), instead of allocating it; returns the sizes asked for."""
    asked = []
    real = Image.Image.resize

    def resize(self, size, *a, **k):
        asked.append((self.size, tuple(size)))
        if max(size[0] * size[1], size[0] * self.size[1]) > GUARD_PIXELS:
            raise AssertionError(f"resize of {self.size} to {tuple(size)} attempted")
        return real(self, size, *a, **k)

    monkeypatch.setattr(Image.Image, "resize", resize)
    return asked


@pytest.fixture
def decoded(monkeypatch):
    """The formats of the image files whose pixels were decoded (Pillow's load; images
    made in memory have no format)."""
    seen = []
    real = Image.Image.load

    def load(self):
        if self.format is not None:
            seen.append(self.format)
        return real(self)

    monkeypatch.setattr(Image.Image, "load", load)
    return seen


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert re.match(r"convsee [a-z]+: error: ", err) and err.count("\n") == 1, err
    assert "Traceback" not in err and len(err) < 300, err
    return err


def png_body(data: bytes) -> dict:
    return {"png": "data:image/png;base64," + base64.b64encode(data).decode()}


# ---------- 1. thin images ----------


@pytest.mark.parametrize("size", THIN, ids=lambda s: f"{s[0]}x{s[1]}")
def test_thin_images_are_refused_before_any_resize(size, guarded, decoded):
    w, h = size
    with pytest.raises(ConvseeError, match=rf"image too thin: {w}x{h} pixels, {max(w, h):,}:1"):
        fit(png_strip(w, h), imagenet())  # 3x224x224, crop: what a ResNet-18 takes
    assert guarded == [] and decoded == []  # from the declared size: not even decoded
    with pytest.raises(ConvseeError, match="image too thin"):  # the digit form too
        fit(png_strip(w, h), Preprocess())


def test_the_aspect_limit_is_64_to_1_or_the_model_s_own():
    images.check_aspect(64, 1)
    images.check_aspect(3, 192)
    with pytest.raises(ConvseeError, match="65x1 pixels, 65:1; the longer side may be at most 64"):
        images.check_aspect(65, 1)
    # a model whose input is itself thinner takes images of its own shape
    prep = Preprocess((1, 1, 128), (0.5,), (0.5,), "stretch")
    show, x, _ = fit(np.full((1, 128), 0.25, np.float32), prep)
    np.testing.assert_allclose(x, np.full((1, 1, 128), (0.25 - 0.5) / 0.5), atol=1 / 255)
    with pytest.raises(ConvseeError, match="image too thin: 129x1"):
        fit(np.zeros((1, 129), np.float32), prep)


def test_a_64_to_1_strip_still_gives_torchvision_s_crop(guarded):
    """The widest strip allowed, fitted as before: scaled so its shorter side is 256
    (224 / 0.875), then the centre 224x224 cut out (by hand with Pillow here)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (4, 256, 3), dtype=np.uint8)  # 256 wide, 4 high: 64:1
    show, x, _ = fit(pixels, imagenet())
    scaled = Image.fromarray(pixels).resize((256 * 256 // 4, 256), Image.Resampling.BILINEAR)
    left = (256 * 256 // 4 - 224) // 2
    ref = np.asarray(scaled.crop((left, 16, left + 224, 240)), np.float32) / 255
    np.testing.assert_array_equal(show, ref)
    mean, std = np.array(transforms.IMAGENET_MEAN), np.array(transforms.IMAGENET_STD)
    np.testing.assert_allclose(x, ((ref - mean) / std).transpose(2, 0, 1), atol=1e-5)
    assert ((256, 4), (16384, 256)) in guarded  # 4.2 million pixels, under the budget


def test_every_resize_is_bounded_before_it_allocates(monkeypatch, guarded):
    """A 20x1000 strip (50:1, allowed) to a 224 crop is first scaled to 256x12800 (shorter
    side int(224 / 0.875) = 256, the other int(256 * 1000 / 20)): 3.3 million pixels."""
    monkeypatch.setattr(transforms, "MAX_WORK_PIXELS", 3_000_000)
    strip = np.zeros((1000, 20), np.uint8)
    with pytest.raises(ConvseeError, match="20x1000 image to 256x12800 pixels would take 3.3 m"):
        fit(strip, imagenet())
    # stretched to 224x224 (50,176 pixels), Pillow first scales the width: 224x1000
    monkeypatch.setattr(transforms, "MAX_WORK_PIXELS", 200_000)
    with pytest.raises(ConvseeError, match="20x1000 image to 224x224 pixels would take 0.2 m"):
        fit(strip, Preprocess((3, 224, 224), (0.5,), (0.5,), "stretch"))
    assert guarded == []
    monkeypatch.setattr(transforms, "MAX_WORK_PIXELS", 3_300_000)
    assert fit(strip, imagenet())[1].shape == (3, 224, 224)
    assert guarded == [((20, 1000), (256, 12800))]


def test_resize_size_and_input_size_budgets():
    with pytest.raises(ConvseeError, match="resize_size 100000 would scale images to over 25 m"):
        Preprocess((3, 224, 224), resize="crop", mean=(0.5,), std=(0.5,), resize_size=(100000,))
    with pytest.raises(ConvseeError, match="3x100000x100000 is 30,000 million values; one input"):
        Preprocess().merged({"input_size": [3, 100000, 100000]})
    assert Preprocess().merged({"input_size": [1, 4096, 4096]}).input_size == (1, 4096, 4096)


def test_thin_image_on_the_cli_is_one_line(tmp_path, capsys, guarded):
    p = tmp_path / "thin.png"
    p.write_bytes(png_strip(1, 100_000))
    assert main(["predict", str(p), *RGBNET, "--input-size", "3,224,224"]) == 2
    err = one_line_error(capsys)
    assert f"{p}: image too thin: 1x100000 pixels" in err
    assert guarded == []


@pytest.fixture(scope="module")
def rgb_client():
    from convsee.models.load import wrap
    from convsee.web.server import create_app

    net = wrap(make("RGBNet"))  # a 3-channel model: ImageNet's 3x224x224, crop
    assert net.prep.resize == "crop" and net.prep.input_size == (3, 224, 224)
    with TestClient(create_app(net), base_url=LOCAL) as c:
        yield c


@pytest.mark.parametrize("size", THIN, ids=lambda s: f"{s[0]}x{s[1]}")
def test_thin_images_on_the_server_are_a_422(rgb_client, guarded, decoded, size):
    body = {**png_body(png_strip(*size)), "encoding": "u8"}
    r = rgb_client.post("/api/activations", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert f"image too thin: {size[0]}x{size[1]} pixels" in error and "\n" not in error
    assert guarded == [] and decoded == []
    ok = Image.new("RGB", (300, 200), (200, 30, 30))
    buf = io.BytesIO()
    ok.save(buf, "PNG")
    body = {**png_body(buf.getvalue()), "encoding": "u8"}
    assert rgb_client.post("/api/activations", json=body).status_code == 200


# ---------- 3. a progressive-JPEG CPU bomb ----------


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _scans(data: bytes) -> int:
    return sum(code == 0xDA for code, _ in jpeg_segments(data))


def test_scans_are_counted_as_a_decoder_walks_the_stream():
    photo = Image.radial_gradient("L").resize((120, 90)).convert("RGB")
    for kw, expected in (({}, 1), ({"progressive": True}, 10)):  # libjpeg's default script
        data = _jpeg(photo, **kw)
        assert _scans(data) == expected
        assert images.jpeg_scans(io.BytesIO(data)) == expected
    # a thumbnail JPEG inside an APP1 segment holds FF DA too: skipped by its length
    thumb = _jpeg(photo.resize((16, 12)), progressive=True)
    app1 = b"\xff\xe1" + (2 + 6 + len(thumb)).to_bytes(2, "big") + b"Exif\x00\x00" + thumb
    data = _jpeg(photo, progressive=True)
    with_thumb = data[:2] + app1 + data[2:]
    assert with_thumb.count(b"\xff\xda") == 20 and _scans(with_thumb) == 10
    assert images.jpeg_scans(io.BytesIO(with_thumb)) == 10
    ref = np.asarray(Image.open(io.BytesIO(with_thumb)))
    np.testing.assert_array_equal(np.asarray(open_image(with_thumb)), ref)
    # an MPO-like file: the pictures after the first EOI are never decoded nor counted
    assert images.jpeg_scans(io.BytesIO(data + jpeg_scan_bomb(16, 500))) == 10
    # counting stops at the cap: a huge file is not walked to its end
    assert images.jpeg_scans(io.BytesIO(jpeg_scan_bomb(16, 5000)), stop=101) == 101


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_scan_counts_match_an_independent_walk_for_any_block_size(monkeypatch, block):
    """Photos of several sizes, qualities and forms (with restart markers, whose FF D0-D7
    sit inside the entropy-coded data), read in blocks small enough to split markers."""
    monkeypatch.setattr(images, "_BLOCK", block)
    rng = np.random.default_rng(2)
    for i in range(6):
        w, h = (int(v) for v in rng.integers(8, 300, 2))
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        kw = {"quality": int(rng.integers(20, 100)), "progressive": bool(i % 2)}
        if i >= 4:
            kw["restart_marker_blocks"] = 2
        data = _jpeg(Image.fromarray(pixels), **kw)
        assert images.jpeg_scans(io.BytesIO(data), stop=10**6) == _scans(data), kw
    data = jpeg_scan_bomb(32, 300)
    assert images.jpeg_scans(io.BytesIO(data), stop=10**6) == _scans(data) == 306


def test_a_jpeg_of_thousands_of_scans_is_refused_before_decoding(decoded):
    bomb = jpeg_scan_bomb(64, 1000)  # 10 KB; each empty scan a pass over all coefficients
    assert _scans(bomb) == 1006 and len(bomb) < 12_000
    with pytest.raises(ConvseeError, match="a JPEG of over 100 scans"):
        open_image(bomb)
    assert decoded == []
    assert open_image(jpeg_scan_bomb(64, 90)).size == (64, 64)  # 96 scans: still read


def test_the_scan_bomb_on_the_cli_and_the_server(tmp_path, capsys):
    p = tmp_path / "bomb.jpg"
    p.write_bytes(jpeg_scan_bomb(64, 1000))
    assert main(["predict", str(p)]) == 2
    assert f"{p}: a JPEG of over 100 scans" in one_line_error(capsys)
    from convsee.web.server import create_app

    with TestClient(create_app(), base_url=LOCAL) as c:
        r = c.post("/api/activations", json=png_body(p.read_bytes()))
    assert r.status_code == 422 and "over 100 scans" in r.json()["error"]


# ---------- 4. input sizes and huge tensors ----------


def test_lenet_5_refuses_a_size_it_cannot_take(capsys):
    assert main(["predict", "sample:3", "--input-size", "1,56,56"]) == 2
    err = one_line_error(capsys)
    # 56 -> conv 5x5: 52 -> pool: 26 -> conv: 22 -> pool: 11; fc1 reads 16x4x4 (from 28)
    assert "LeNet-5 takes 1x28x28 inputs (its fc1 reads 16x4x4 = 256 values)" in err
    assert "not 1x56x56 (that gives 16x11x11 = 1936)" in err
    assert main(["predict", "sample:3", "--input-size", "3,28,28"]) == 2
    assert "(3 channels; conv1 reads 1)" in one_line_error(capsys)
    assert main(["predict", "sample:3", "--input-size", "1,31,31"]) == 0  # 31 -> 27, 13, 9, 4


@pytest.fixture
def no_serving(monkeypatch):
    """cmd_serve up to where it would serve forever: what it got to."""
    import convsee.web.server
    from convsee.web import runner

    calls = []
    monkeypatch.setattr(convsee.web.server, "create_app", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(runner, "run_app", lambda *a, **k: calls.append("run_app"))
    return calls


def test_serve_refuses_a_size_lenet_5_cannot_take_at_start(no_serving, capsys):
    assert main(["serve", "--input-size", "1,56,56", "--port", "0"]) == 2
    assert "LeNet-5 takes 1x28x28 inputs" in one_line_error(capsys)
    assert no_serving == []
    assert main(["serve", "--port", "0"]) == 0 and no_serving[-1] == "run_app"


def test_a_huge_input_size_is_refused_before_allocating(tmp_path, capsys, monkeypatch, guarded):
    monkeypatch.setattr(np, "zeros", _refuse_large(np.zeros))
    p = tmp_path / "prep.json"
    p.write_text(json.dumps({"input_size": [3, 100000, 100000]}))
    for argv in (["predict", "sample:3"], ["predict", "sample:3", *RGBNET]):
        assert main([*argv, "--preprocess", str(p)]) == 2
        assert "input size 3x100000x100000 is 30,000 million values" in one_line_error(capsys)


def _refuse_large(real):
    def zeros(shape, *a, **k):
        if int(np.prod(shape, dtype=np.float64)) > GUARD_PIXELS:
            raise AssertionError(f"np.zeros({shape}) attempted")
        return real(shape, *a, **k)

    return zeros


def _npy_header(path: Path, shape, dtype="<f4", data_bytes: int = 0) -> None:
    """A .npy file with the header of `shape`, followed by data_bytes of zeros (a sparse
    file: no disk used) instead of the data it claims."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)}
        )
        f.truncate(f.tell() + data_bytes)


@pytest.fixture
def no_npy_data(monkeypatch):
    """Reading a .npy's data (not its header) fails the test: the header decides alone."""

    def refuse(*a, **k):
        raise AssertionError("the .npy data was read")

    monkeypatch.setattr(np.lib.format, "read_array", refuse)
    monkeypatch.setattr(np, "load", refuse)


def test_a_npy_too_big_for_the_model_is_refused_from_its_header(tmp_path, no_npy_data):
    big = tmp_path / "big.npy"
    _npy_header(big, (1, 5000, 5000), data_bytes=5000 * 5000 * 4)  # a real 100 MB array
    with pytest.raises(ConvseeError, match=r"holds a 1x5000x5000 tensor, the model takes 1x28x28"):
        load_npy(big, Preprocess())
    claims = tmp_path / "claims.npy"
    _npy_header(claims, (1, 200000, 200000))  # 160 GB claimed, nothing there
    with pytest.raises(ConvseeError, match=r"holds a 1x200000x200000 tensor"):
        load_npy(claims, Preprocess())
    for shape, dtype, message in (
        ((3, 28, 28), "<f4", "holds 3 channels, the model takes 1"),
        ((2, 1, 28, 28), "<f4", r"got shape \(2, 1, 28, 28\)"),
        ((1, 28, 28), "|O", "expected a numeric array, got object"),
        ((1, 28, 28), "<c8", "expected a numeric array, got complex64"),
    ):
        _npy_header(tmp_path / "x.npy", shape, dtype)
        with pytest.raises(ConvseeError, match=message):
            load_npy(tmp_path / "x.npy", Preprocess())


def test_a_fitting_npy_is_read_exactly(tmp_path):
    x = np.random.default_rng(1).normal(size=(1, 1, 28, 28))  # float64, a batch of one
    np.save(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(
        load_npy(tmp_path / "x.npy", Preprocess()), x[0].astype(np.float32)
    )
    short = tmp_path / "short.npy"
    _npy_header(short, (1, 28, 28), data_bytes=100)
    with pytest.raises(ConvseeError, match="not a NumPy .npy array"):
        load_npy(short, Preprocess())


def test_npy_inputs_on_the_cli_are_one_line(tmp_path, capsys, no_npy_data):
    _npy_header(tmp_path / "big.npy", (1, 5000, 5000), data_bytes=5000 * 5000 * 4)
    _npy_header(tmp_path / "claims.npy", (1, 200000, 200000))
    for name in ("big", "claims"):
        assert main(["predict", str(tmp_path / f"{name}.npy")]) == 2
        assert "tensor, the model takes 1x28x28 (--input-size sets it)" in one_line_error(capsys)


def test_deeply_nested_preprocess_json_is_one_line(tmp_path, capsys):
    p = tmp_path / "deep.json"
    for text in ("[" * 100_000 + "]" * 100_000, '{"labels": ' + "[" * 40 + "]" * 40 + "}"):
        p.write_text(text)
        with pytest.raises(ConvseeError, match="JSON nested too deeply .over 32 levels."):
            read_preprocess(p)
        assert main(["layers", "--preprocess", str(p)]) == 2
        assert f"{p}: JSON nested too deeply" in one_line_error(capsys)
    p.write_text('{"input_size": [1, 28, 28], "labels": ["a", "b"]}')
    assert read_preprocess(p) == {"input_size": [1, 28, 28], "labels": ["a", "b"]}
