"""End to end in a real headless Chromium (Debian's; never `playwright install`).

LeNet-5: draw, watch the maps and the prediction change, samples are the exact stored images,
Clear and Undo empty every map, overlays have a legend and go into the download. A foreign RGB
model (a ResNet-18 at 3x64x64): upload and drop image files, every layer painted, page through
channels, hover (receptive field outlined), Grad-CAM at a chosen layer, download.
Screenshots go to tmp_path."""

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from conftest import REPO
from PIL import Image, ImageDraw

from convsee.web.server import create_app

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@contextlib.contextmanager
def serving(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def url(mnist_dir):
    with serving(create_app(data_dir=mnist_dir)) as u:
        yield u


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run installs Debian's chromium")
        pytest.skip("no Chromium here")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def open_page(browser, url, errors, width=1400, height=1000, first="window.convsee.updates > 0"):
    page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=True)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function(first, timeout=30000)
    return page


def settled(page):
    page.wait_for_function(
        "!window.convsee.inflight && !window.convsee.dirty && !window.convsee.timer", timeout=20000
    )


def download(page, tmp_path):
    """Click download; (PNG image, sidecar dict)."""
    downloads = []

    def got(d):
        downloads.append(d)

    page.on("download", got)
    page.click("#download")
    deadline = time.time() + 10
    while len(downloads) < 2 and time.time() < deadline:
        page.wait_for_timeout(100)
    page.remove_listener("download", got)
    names = sorted(d.suggested_filename for d in downloads[:2])
    assert names[0].endswith(".json") and names[1].endswith(".png")
    for d in downloads[:2]:
        d.save_as(tmp_path / d.suggested_filename)
    png = Image.open(tmp_path / names[1]).convert("RGB")
    side = json.loads((tmp_path / names[0]).read_text())
    for n in names:
        (tmp_path / n).unlink()
    return png, side


EMPTY = """() => {
  const s = window.convsee;
  const blank = [...document.querySelectorAll('#layers canvas')].every((c) => {
    const a = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < a.length; i += 4) if (a[i] !== 0) return false;
    return true;
  });
  const probs = [...document.querySelectorAll('#probs .v')].every((v) => v.textContent === '–');
  const bars = [...document.querySelectorAll('#probs i')].every((i) => i.style.width === '0px'
    || i.style.width === '0');
  return s.empty && s.data === null && blank && probs && bars
    && document.querySelector('#pred-label').textContent === '–';
}"""

PAINTED = """(name) => {
  const card = document.querySelector(`.layer[data-layer="${CSS.escape(name)}"]`);
  const cs = [...card.querySelectorAll('canvas')].filter((c) => !c.closest('.legend'));
  return cs.length > 0 && cs.every((c) => {
    const a = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < a.length; i += 4) if (a[i] !== 0) return true;
    return false;
  });
}"""

OUTLINED = """() => {
  const c = document.querySelector('#seen-overlay');
  const a = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < a.length; i += 4) {
    if (a[i] > 200 && a[i + 1] < 100 && a[i + 3] > 0) return true;
  }
  return false;
}"""


def draw_stroke(page, x0, y0, x1, y1, steps=30, pause=0.02):
    page.locator("#pad").scroll_into_view_if_needed()  # the side panel scrolls on its own
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + x0, box["y"] + y0)
    page.mouse.down()
    for i in range(1, steps + 1):
        t = i / steps
        page.mouse.move(box["x"] + x0 + (x1 - x0) * t, box["y"] + y0 + (y1 - y0) * t)
        time.sleep(pause)


def test_lenet_page(url, browser, tmp_path):
    from convsee.models.load import load_network

    errors = []
    page = open_page(browser, url, errors)
    assert page.inner_text("#pred-label") == "3"  # the page opens on sample 3
    assert page.is_visible("#hint") and "Hover or tap a map" in page.inner_text("#hint")
    cards = page.eval_on_selector_all(".layer", "els => els.map(e => e.dataset.layer)")
    # LeNet-5's ReLUs shown too (page_layers, issue 16)
    assert cards == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc1", "fc2"]

    # a sample is the exact stored image: the probability `predict` gives (issue 12)
    p7 = load_network().predict(["sample:7"])[0].probabilities[7]
    page.click("button[data-sample='7']")
    page.wait_for_function("window.convsee.data && window.convsee.data.input_name === 'sample:7'")
    settled(page)
    assert page.inner_text("#pred-label") == "7"
    assert page.inner_text("#pred-prob") == f"{p7 * 100:.1f}%"
    png, side = download(page, tmp_path)
    assert side["input"].startswith("sample:7") and side["input_server_name"] == "sample:7"
    assert side["prediction"] == 7 and len(side["input_pixels"]) == 784 and side["overlay"] is None
    assert png.size[0] == 1000 and png.size[1] > 600
    plain = np.asarray(png)[70:238, 20:188]

    # Grad-CAM at a chosen layer: drawn with its legend, and in the download
    page.select_option("#attr", "gradcam")
    page.select_option("#attr-layer", "conv1")
    page.wait_for_function(
        "window.convsee.data.attribution && window.convsee.data.attribution.layer === 'conv1'"
    )
    settled(page)
    assert page.is_visible("#attr-legend")
    assert "Grad-CAM at conv1" in page.inner_text("#attr-legend")
    png, side = download(page, tmp_path)
    assert side["overlay"]["kind"] == "gradcam" and side["overlay"]["layer"] == "conv1"
    assert np.abs(np.asarray(png)[70:238, 20:188].astype(int) - plain).max() > 40
    page.select_option("#attr", "")

    # Clear: every map, the input and the probabilities empty (issue 12)
    page.click("#clear")
    page.wait_for_function(EMPTY)
    # a stroke, drawn slowly: updates arrive while drawing, not only on release
    before = page.evaluate("window.convsee.updates")
    draw_stroke(page, 140, 30, 140, 240)
    during = page.evaluate("window.convsee.updates")
    page.mouse.up()
    page.wait_for_function(f"window.convsee.updates > {during}", timeout=10000)
    assert during > before + 1
    settled(page)
    assert page.inner_text("#pred-label") == "1"
    assert page.evaluate(PAINTED, "conv1")
    page.screenshot(path=str(tmp_path / "drawn.png"))
    # Undo the only stroke: empty again
    page.click("#undo")
    page.wait_for_function(EMPTY)

    # Undo after editing a sample goes back to the exact sample
    page.click("button[data-sample='2']")
    page.wait_for_function("window.convsee.data && window.convsee.data.input_name === 'sample:2'")
    settled(page)
    draw_stroke(page, 20, 20, 60, 60, steps=5, pause=0.01)
    page.mouse.up()
    page.wait_for_function("document.querySelector('#input-name').textContent.includes('edited')")
    page.click("#undo")
    page.wait_for_function("window.convsee.data && window.convsee.data.input_name === 'sample:2'")

    page.click("#random")
    page.wait_for_function("document.querySelector('#input-name').textContent.includes('test:')")
    settled(page)

    # hover a conv2 map: its kernels, the receptive field, top patches, the optimised input
    page.locator(".layer[data-layer='conv2'] .map canvas >> nth=1").hover()
    assert page.is_visible("#tooltip") and "conv2 · channel 1" in page.inner_text("#tip-title")
    assert page.evaluate("document.querySelector('#tip-kernel').width") > 0
    assert page.evaluate(OUTLINED)
    page.wait_for_function(
        "document.querySelectorAll('#tip-views canvas').length === 7", timeout=60000
    )
    assert errors == []


def test_no_test_set_and_fashion_names(browser, tmp_path):
    errors = []
    with serving(create_app()) as u:  # no --data, none where convsee looks (conftest)
        page = open_page(browser, u, errors)
        assert page.is_disabled("#random")
        assert "--data" in page.inner_text("#random-why")
        page.close()
    with serving(create_app(dataset="fashion-mnist")) as u:
        page = open_page(browser, u, errors)
        labels = page.eval_on_selector_all("#samples button", "els => els.map(e => e.textContent)")
        assert "Pullover" in labels and "T-shirt/top" in labels and "Ankle boot" in labels
        page.click("button[data-sample='2']")
        page.wait_for_function(
            "window.convsee.data && window.convsee.data.input_name === 'sample:2'"
        )
        settled(page)
        assert page.inner_text("#pred-label") == "Pullover"
        cut = page.eval_on_selector_all(
            "#probs .cls, #samples button",
            "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)",
        )
        assert cut == []
        names = page.eval_on_selector_all("#probs .cls", "els => els.map(e => e.textContent)")
        assert "Pullover" in names and "Ankle boot" in names
        page.close()
    assert errors == []


MARKUP = '<img src=x onerror="window.pwned=1">'


def test_class_names_are_text_never_markup(browser, tmp_path):
    """Class names come from a checkpoint's metadata or --labels: shown as text, never run."""
    from convsee.models.load import load_network

    names = [f"{MARKUP}{i}" for i in range(10)]
    errors = []
    with serving(create_app(load_network(labels=names))) as u:
        page = open_page(browser, u, errors)
        assert page.evaluate("window.pwned") is None
        assert page.locator("img").count() == 0
        assert page.inner_text("#pred-label") == names[3]
        assert page.inner_text("#probs").count(MARKUP) == 10
        page.close()
    assert errors == []
    app_js = (Path(create_app.__code__.co_filename).parent / "static" / "app.js").read_text()
    assert "innerHTML" not in app_js and "insertAdjacentHTML" not in app_js


def test_phone_width(url, browser, tmp_path):
    errors = []
    page = open_page(browser, url, errors, 390, 844)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows sideways
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    assert errors == []


DROP = """async () => {
  const c = document.createElement('canvas');
  c.width = 120; c.height = 90;
  const x = c.getContext('2d');
  x.fillStyle = '#2050c0'; x.fillRect(0, 0, 120, 90);
  x.fillStyle = '#f0c020'; x.fillRect(30, 20, 60, 50);
  const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
  const dt = new DataTransfer();
  dt.items.add(new File([blob], 'dropped.png', { type: 'image/png' }));
  const ev = new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true });
  document.querySelector('#drop').dispatchEvent(ev);
}"""


def test_foreign_rgb_model(browser, tmp_path):
    from convsee.models.load import load_network

    net = load_network(
        f"{REPO}/benchmarks/resnet.py:resnet18", preprocess={"input_size": (3, 64, 64)}
    )
    img = Image.new("RGB", (400, 300), (40, 120, 200))
    ImageDraw.Draw(img).ellipse([100, 50, 300, 250], fill=(250, 210, 30))
    photo = tmp_path / "photo.png"
    img.save(photo)
    errors = []
    with serving(create_app(net)) as u:
        # no first input: MNIST's samples and test digits are not offered to an RGB ResNet
        page = open_page(browser, u, errors, first="window.convsee.info")
        info = page.evaluate("window.convsee.info")
        assert page.is_hidden("#draw-box")  # no drawing for a 3-channel model
        assert page.is_hidden("#samples") and page.is_disabled("#random")
        assert "no input yet: drop, paste or choose an image" in page.inner_text("body")
        shown = page.eval_on_selector_all(".layer", "els => els.map(e => e.dataset.layer)")
        assert shown == info["default_layers"] and len(shown) == 30

        # upload a file: what the model sees comes back, every layer is painted
        page.set_input_files("#file", str(photo))
        page.wait_for_function(
            "window.convsee.data && window.convsee.data.input_name.startsWith('upload:')"
        )
        settled(page)
        assert "file photo.png" in page.inner_text("#input-name")
        assert page.evaluate("window.convsee.data.input_shape") == [64, 64, 3]
        # "how to read" speaks of this model: a 64x64 colour photo, its batch norms, 10 scores
        how = page.evaluate("document.querySelector('#how .how-body').textContent")
        assert "64×64 pixels in three channels (red, green, blue)" in how
        assert "normalisation layers" in how and "draw a digit" not in how
        assert f"the {len(info['classes'])} scores (logits)" in how
        # further updates name the kept upload instead of sending it again
        assert page.evaluate("window.convsee.input.id").startswith("upload:")
        for name in shown:
            assert page.evaluate(PAINTED, name), name

        # the next page of conv1's 64 channels
        first = page.evaluate("window.convsee.data.layers.conv1.channels")
        page.click(".layer[data-layer='conv1'] .next")
        page.wait_for_function("window.convsee.data.layers.conv1.page === 1")
        settled(page)
        label = page.inner_text(".layer[data-layer='conv1'] .pager-label")
        assert label == "ranks 17-32 of 64 by mean activation"
        second = page.evaluate("window.convsee.data.layers.conv1.channels")
        assert len(second) == 16 and not set(first) & set(second)
        page.select_option(".layer[data-layer='conv1'] .order", "index")
        page.wait_for_function("window.convsee.data.layers.conv1.order === 'index'")
        assert page.evaluate("window.convsee.data.layers.conv1.channels") == list(range(16))

        # hover: value, receptive field outlined on the input, the kernel (3 channels of 7x7)
        page.locator(".layer[data-layer='layer1.0.conv1'] .map canvas >> nth=3").hover()
        assert "layer1.0.conv1 · channel" in page.inner_text("#tip-title")
        assert "sees input rows" in page.inner_text("#tip-text")
        assert page.evaluate(OUTLINED)
        page.locator(".layer[data-layer='conv1'] .map canvas >> nth=0").hover()
        assert page.evaluate("document.querySelector('#tip-kernel').width") > 0
        page.mouse.move(5, 5)

        # Grad-CAM at a chosen layer, with its legend
        page.select_option("#attr", "gradcam")
        page.select_option("#attr-layer", "layer2.0.conv1")
        page.wait_for_function(
            "window.convsee.data.attribution && "
            "window.convsee.data.attribution.layer === 'layer2.0.conv1'"
        )
        settled(page)
        assert "Grad-CAM at layer2.0.conv1" in page.inner_text("#attr-legend")
        page.screenshot(path=str(tmp_path / "rgb.png"))

        # download: the PNG and a sidecar naming the input truthfully
        png, side = download(page, tmp_path)
        assert side["input"] == "file photo.png" and side["input_kind"] == "file"
        assert side["overlay"]["layer"] == "layer2.0.conv1"
        assert [x["name"] for x in side["layers"]] == shown
        assert side["layers"][0]["order"] == "index" and png.size[0] == 1000

        # drop a file on the drop zone
        page.evaluate(DROP)
        page.wait_for_function(
            "document.querySelector('#input-name').textContent.includes('dropped.png')"
        )
        settled(page)
    assert errors == []
