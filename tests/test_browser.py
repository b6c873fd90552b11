"""End to end in a real headless Chromium: draw a stroke, watch the maps and the prediction
change, load a sample digit and check its prediction. Screenshots go to tmp_path."""

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from PIL import Image

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


@pytest.fixture(scope="module")
def url(mnist_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(data_dir=mnist_dir), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(5)


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


def test_draw_and_samples(url, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.convsee.updates > 0", timeout=15000)
    assert page.inner_text("#pred-digit") == "3"  # the page opens on sample 3

    page.click("#clear")
    page.wait_for_function("window.convsee.data === null")
    box = page.locator("#pad").bounding_box()
    before = page.evaluate("window.convsee.updates")
    # a vertical stroke, drawn slowly: updates arrive while drawing, not only on release
    page.mouse.move(box["x"] + 140, box["y"] + 30)
    page.mouse.down()
    for i in range(30):
        page.mouse.move(box["x"] + 140, box["y"] + 30 + i * 7)
        time.sleep(0.02)
    during = page.evaluate("window.convsee.updates")
    page.mouse.up()
    page.wait_for_function(f"window.convsee.updates > {during}", timeout=10000)
    assert during > before + 1  # several updates before the pen was lifted
    page.wait_for_function("!window.convsee.inflight && !window.convsee.dirty")
    assert page.inner_text("#pred-digit") == "1"
    conv1 = page.evaluate(
        "Array.from(window.convsee.data.layers.conv1.values.slice(0, 576)).some(v => v !== 0)"
    )
    assert conv1
    page.screenshot(path=str(tmp_path / "drawn.png"))

    page.click("button[data-sample='7']")
    page.wait_for_function("document.querySelector('#input-name').textContent.includes('sample:7')")
    page.wait_for_function("!window.convsee.inflight && !window.convsee.dirty")
    assert page.inner_text("#pred-digit") == "7"

    # download the view: a PNG, then its JSON sidecar
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    page.click("#download")
    deadline = time.time() + 10
    while len(downloads) < 2 and time.time() < deadline:
        page.wait_for_timeout(100)
    names = sorted(d.suggested_filename for d in downloads)
    assert names[0].endswith(".json") and names[1].endswith(".png")
    for d in downloads:
        d.save_as(tmp_path / d.suggested_filename)
    png = Image.open(tmp_path / names[1])
    assert png.size[0] == 1000 and png.size[1] > 600
    side = json.loads((tmp_path / names[0]).read_text())
    assert side["prediction"] == 7 and len(side["input_28x28"]) == 784

    # Grad-CAM overlay on the model's view (sample 7: its map is not all zero)
    page.select_option("#attr", "gradcam")
    page.wait_for_function("window.convsee.data && window.convsee.data.attribution")
    assert page.evaluate("window.convsee.data.attribution.map.flat().some(v => v > 0)")
    drawn = page.evaluate(
        "Array.from(document.querySelector('#seen-attr').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data).some((v, i) => i % 4 === 3 && v > 0)"
    )
    assert drawn
    page.select_option("#attr", "")

    page.click("#random")
    page.wait_for_function("document.querySelector('#input-name').textContent.includes('test:')")

    # hover a conv2 map: its kernels, top test patches and optimised input appear
    page.wait_for_function("window.convsee.views !== null", timeout=20000)
    page.locator(".layer >> nth=2").locator(".map canvas >> nth=1").hover()
    assert page.is_visible("#tooltip") and "conv2 · channel 1" in page.inner_text("#tip-title")
    assert page.locator("#tip-views canvas").count() == 7  # 6 exemplars + 1 optimised input
    assert errors == []


def test_phone_width(url, browser, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(url)
    page.wait_for_function("window.convsee.updates > 0", timeout=15000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows sideways
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
