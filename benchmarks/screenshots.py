"""Regenerate the README's screenshots of `convsee serve` (desktop and phone widths).

python benchmarks/screenshots.py   # writes docs/serve_desktop.png, docs/serve_phone.png
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from common import CHROMIUM, CHROMIUM_FLAGS, SHARED_MNIST, free_port
from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parents[1] / "docs"


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(
        description="Regenerate docs/serve_desktop.png and docs/serve_phone.png."
    )
    ap.add_argument("--out", default=str(DOCS), help="folder for the two screenshots")
    a = ap.parse_args()
    docs = Path(a.out)
    port = free_port()
    cmd = ["convsee", "serve", "--port", str(port), "--data", str(SHARED_MNIST)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()
        time.sleep(0.5)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function(
                "window.convsee.updates > 0 && window.convsee.views", timeout=30000
            )
            page.click("#clear")
            box = page.locator("#pad").bounding_box()
            pts = [
                (70, 90),
                (100, 55),
                (160, 50),
                (200, 85),
                (190, 135),
                (110, 200),
                (70, 235),
                (140, 230),
                (215, 232),
            ]  # a hand-drawn 2
            page.mouse.move(box["x"] + pts[0][0], box["y"] + pts[0][1])
            page.mouse.down()
            for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
                for t in range(1, 9):
                    page.mouse.move(
                        box["x"] + x0 + (x1 - x0) * t / 8, box["y"] + y0 + (y1 - y0) * t / 8
                    )
                    time.sleep(0.01)
            page.mouse.up()
            page.wait_for_function("!window.convsee.inflight && !window.convsee.dirty")
            time.sleep(0.3)
            cv = page.locator(".layer >> nth=2").locator(".map canvas >> nth=3")
            cb = cv.bounding_box()
            page.mouse.move(cb["x"] + cb["width"] * 0.6, cb["y"] + cb["height"] * 0.4)
            time.sleep(0.2)
            page.screenshot(path=str(docs / "serve_desktop.png"))
            phone = b.new_page(viewport={"width": 390, "height": 844})
            phone.goto(f"http://127.0.0.1:{port}/")
            phone.wait_for_function("window.convsee.updates > 0", timeout=15000)
            time.sleep(0.3)
            phone.screenshot(path=str(docs / "serve_phone.png"))
            b.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
