import numpy as np
import pytest
from PIL import Image, ImageDraw

from convsee.datasets.digits import preprocess
from convsee.datasets.inputs import samples
from convsee.errors import ConvseeError


def _drawn(size=(300, 200), ink=0, bg=255, mode="L"):
    img = Image.new(mode, size, bg)
    d = ImageDraw.Draw(img)
    d.line([(60, 40), (140, 160)], fill=ink, width=12)
    d.line([(140, 160), (200, 40)], fill=ink, width=12)
    return img


def test_mnist_form_from_dark_ink_on_light():
    out = preprocess(_drawn())
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1 and out.max() > 0.9
    assert out[0].max() == 0 and out[:, 0].max() == 0  # black border, white ink
    rows = np.flatnonzero(out.max(1) > 0.1)
    cols = np.flatnonzero(out.max(0) > 0.1)
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (19, 20, 21)  # fits 20x20
    cy, cx = (np.indices(out.shape) * out).reshape(2, -1).sum(1) / out.sum()
    assert abs(cy - 14) <= 0.6 and abs(cx - 14) <= 0.6  # centred by centre of mass


def test_polarity_and_mode_do_not_matter():
    dark_on_light = preprocess(_drawn())
    light_on_dark = preprocess(_drawn(ink=255, bg=0))
    rgb = preprocess(_drawn(ink=(0, 0, 0), bg=(255, 255, 255), mode="RGB"))
    assert np.abs(dark_on_light - light_on_dark).max() < 0.05
    assert np.abs(dark_on_light - rgb).max() < 0.05


def test_alpha_is_ink_for_canvas_drawings():
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse([80, 60, 200, 220], outline=(0, 0, 0, 255), width=16)
    out = preprocess(img)
    assert out.max() > 0.9 and out[14, 14] < 0.2  # a ring: ink around, hole in the middle


def test_input_not_modified():
    a = np.zeros((50, 50), np.float32)
    a[10:40, 20:30] = 1
    before = a.copy()
    preprocess(a)
    assert np.array_equal(a, before)


def test_mnist_digits_survive_nearly_unchanged():
    for s in samples():
        assert np.abs(preprocess(s.image) - s.image).mean() < 0.08


def test_blank_and_not_an_image(tmp_path):
    with pytest.raises(ConvseeError, match="blank image"):
        preprocess(Image.new("L", (40, 40), 200))
    p = tmp_path / "notes.png"
    p.write_text("this is not a picture")
    with pytest.raises(ConvseeError, match="not an image"):
        preprocess(str(p))
    with pytest.raises(ConvseeError, match="no such file"):
        preprocess(str(tmp_path / "missing.png"))
