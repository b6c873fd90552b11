"""Regenerate the README's screenshots of `convsee serve`.

    python benchmarks/screenshots.py [--out docs]

writes serve_desktop.png (LeNet-5: a hand-drawn 2, a conv2 map hovered: its kernels, receptive
field, top test patches and optimised input), serve_phone.png (the same page 390 px wide) and
serve_rgb.png (a ResNet-18 at 3x224x224 with seeded weights, a photo uploaded, Grad-CAM at
layer3.0.conv2, a map hovered; exemplars from Fashion-MNIST's test set, found where Debian's
dataset-fashion-mnist puts it); with --shapes DIR (a folder where examples/shapes.py wrote
shapes/ and shapes.safetensors, as benchmarks/docs_pictures.py does) also serve_shapes.png: the
trained RGB example on a test triangle, Grad-CAM, a map of conv3 hovered.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from common import CHROMIUM, CHROMIUM_FLAGS, SHARED_MNIST, free_port
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"
TWO = [(70, 90), (100, 55), (160, 50), (200, 85), (190, 135), (110, 200), (70, 235), (140, 230)]
TWO += [(215, 232)]  # a hand-drawn 2


def start(args: list[str], cwd=None):
    port = free_port()
    cmd = [sys.executable, "-m", "convsee", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=cwd)
    proc.stdout.readline()  # "serving on ..."
    time.sleep(0.3)
    return proc, f"http://127.0.0.1:{port}/"


def settle(page) -> None:
    page.wait_for_function(
        "!window.convsee.inflight && !window.convsee.dirty && !window.convsee.timer", timeout=60000
    )
    time.sleep(0.3)


def hover_views(page, selector: str, fx: float, fy: float, timeout: float = 90) -> None:
    """Hover a map until its tooltip shows its exemplars and optimised input."""
    box = page.locator(selector).bounding_box()
    page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = page.inner_text("#tip-views")
        if "computing" not in text and page.locator("#tip-views canvas").count():
            break
        page.mouse.move(box["x"] + box["width"] * fx + 0.5, box["y"] + box["height"] * fy)
        time.sleep(0.5)
    time.sleep(0.3)


def photo() -> Path:
    """A real photograph for the RGB model (matplotlib's sample of Grace Hopper)."""
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def shapes_page(b, docs: Path, folder: Path) -> None:
    """serve_shapes.png: the shapes example's page on test triangle 8, named as the page names
    a random test image (data:N), with Grad-CAM and a map of conv3 hovered."""
    test = folder / "shapes" / "test"
    files = sorted(p for p in test.rglob("*.png"))
    n = files.index(test / "triangle" / "0008.png")  # the folder's order, as convsee reads it
    model = f"{HERE.parent / 'examples' / 'shapes.py'}:ShapesNet"
    args = ["--model", model, "--checkpoint", "shapes.safetensors", "--data", "shapes/test"]
    proc, url = start(args, cwd=folder)  # relative names: the page shows them
    try:
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/api/sample/random", lambda r: r.fulfill(json={"name": f"data:{n}"}))
        page.goto(url)
        page.wait_for_function("window.convsee.info", timeout=60000)  # no first input: the
        page.click("#random")  # bundled samples are MNIST's, not offered to this model
        page.wait_for_function(
            f"window.convsee.data && window.convsee.data.input_name === 'data:{n}'", timeout=60000
        )
        page.select_option("#attr", "gradcam")
        page.wait_for_function("window.convsee.data.attribution", timeout=60000)
        settle(page)
        hover_views(page, ".layer[data-layer='conv3'] .map canvas >> nth=12", 0.45, 0.55)
        page.screenshot(path=str(docs / "serve_shapes.png"))
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DOCS), help="folder for the screenshots")
    ap.add_argument("--shapes", type=Path, help="where examples/shapes.py ran: serve_shapes.png")
    ap.add_argument("--only-shapes", action="store_true", help="serve_shapes.png alone")
    a = ap.parse_args()
    docs = Path(a.out)
    docs.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        if a.shapes:
            shapes_page(b, docs, a.shapes.resolve())
        if a.only_shapes:
            b.close()
            return 0
        proc, url = start(["--data", str(SHARED_MNIST)])
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_function("window.convsee.updates > 0", timeout=30000)
            page.click("#clear")
            box = page.locator("#pad").bounding_box()
            page.mouse.move(box["x"] + TWO[0][0], box["y"] + TWO[0][1])
            page.mouse.down()
            for (x0, y0), (x1, y1) in zip(TWO, TWO[1:], strict=False):
                for t in range(1, 9):
                    page.mouse.move(
                        box["x"] + x0 + (x1 - x0) * t / 8, box["y"] + y0 + (y1 - y0) * t / 8
                    )
                    time.sleep(0.01)
            page.mouse.up()
            settle(page)
            hover_views(page, ".layer[data-layer='conv2'] .map canvas >> nth=3", 0.6, 0.4)
            page.screenshot(path=str(docs / "serve_desktop.png"))
            phone = b.new_page(viewport={"width": 390, "height": 844})
            phone.goto(url)
            phone.wait_for_function("window.convsee.updates > 0", timeout=30000)
            settle(phone)
            phone.screenshot(path=str(docs / "serve_phone.png"))
        finally:
            proc.terminate()
            proc.wait(30)
        model = str(HERE / "resnet.py") + ":resnet18"
        proc, url = start(  # Fashion-MNIST's test set for the exemplars: textures, not ink
            ["--model", model, "--input-size", "3,224,224", "--dataset", "fashion-mnist"]
            + ["--data", "/usr/share/datasets/fashion-mnist"]  # named: else not offered to RGB
        )
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_function("window.convsee.info", timeout=60000)  # no first input:
            page.set_input_files("#file", str(photo()))  # the samples are not for this model
            page.wait_for_function(
                "window.convsee.data && window.convsee.data.input_name.startsWith('upload:')",
                timeout=60000,
            )
            page.select_option("#attr", "gradcam")
            page.select_option("#attr-layer", "layer3.0.conv2")
            page.wait_for_function(
                "window.convsee.data.attribution && "
                "window.convsee.data.attribution.layer === 'layer3.0.conv2'",
                timeout=60000,
            )
            settle(page)
            hover_views(page, ".layer[data-layer='maxpool'] .map canvas >> nth=4", 0.45, 0.35)
            page.screenshot(path=str(docs / "serve_rgb.png"))
        finally:
            proc.terminate()
            proc.wait(30)
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
