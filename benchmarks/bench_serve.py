"""Drive a real `convsee serve` over loopback: latency, concurrent load, memory, page rate.

1. Latency: one client, keep-alive, N requests of each form (28x28 JSON list; the canvas
   PNG the page sends, with f32 encoding): round-trip p50 / p99.
2. Load: C concurrent clients for T seconds (default 50 for 30 s): requests, errors,
   throughput, the server's RSS before, during and after.
3. The page: headless Chromium draws continuously for a few seconds; updates per second.

    python benchmarks/bench_serve.py [--clients 50 --seconds 30 --requests 500]

Only loopback addresses are used; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from common import CHROMIUM, CHROMIUM_FLAGS, free_port, save_result
from PIL import Image, ImageDraw

HOST = "127.0.0.1"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bodies():
    from convsee.datasets.inputs import samples

    img = Image.new("RGB", (280, 280), "black")
    ImageDraw.Draw(img).line([(90, 60), (190, 60), (120, 240)], fill="white", width=22)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    png = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {
        "list": json.dumps({"image": np.round(samples()[3].image, 4).tolist()}).encode(),
        "png": json.dumps({"png": png, "encoding": "f32"}).encode(),
    }


def post(conn, body) -> tuple[int, float]:
    t = time.perf_counter()
    conn.request("POST", "/api/activations", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status, (time.perf_counter() - t) * 1e3


def pct(xs, q):
    return float(np.percentile(xs, q))


def latency(port, body, n) -> dict:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    for _ in range(20):
        post(conn, body)  # warm up
    ms = [post(conn, body)[1] for _ in range(n)]
    conn.close()
    return {"p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "mean_ms": statistics.mean(ms), "n": n}


def load(port, pid, body, clients, seconds) -> dict:
    stop = time.time() + seconds
    counts, errors, lat = [0] * clients, [0] * clients, [[] for _ in range(clients)]
    rss = [rss_mb(pid)]

    def worker(i):
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        while time.time() < stop:
            try:
                status, ms = post(conn, body)
                counts[i] += 1
                lat[i].append(ms)
                errors[i] += status != 200
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=10)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(min(2.0, max(0.1, stop - time.time())))
        rss.append(rss_mb(pid))
    for t in threads:
        t.join()
    all_ms = [x for xs in lat for x in xs]
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": sum(counts),
        "errors": sum(errors),
        "throughput_per_s": sum(counts) / seconds,
        "p50_ms": pct(all_ms, 50),
        "p99_ms": pct(all_ms, 99),
        "rss_mb_start": rss[0],
        "rss_mb_max": max(rss),
        "rss_mb_end": rss[-1],
    }


def page_rate(port, seconds=4.0) -> dict | None:
    if not Path(CHROMIUM).exists():
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"http://{HOST}:{port}/")
        page.wait_for_function("window.convsee.updates > 0", timeout=15000)
        box = page.locator("#pad").bounding_box()
        page.mouse.move(box["x"] + 40, box["y"] + 140)
        page.mouse.down()
        n0, t0, i = page.evaluate("window.convsee.updates"), time.time(), 0
        while time.time() - t0 < seconds:  # a circle, over and over, ~120 moves a second
            a = i * 0.2
            page.mouse.move(box["x"] + 140 + 90 * np.cos(a), box["y"] + 140 + 90 * np.sin(a))
            i += 1
            time.sleep(0.008)
        n1, t1 = page.evaluate("window.convsee.updates"), time.time()
        page.mouse.up()
        b.close()
    return {"updates_per_s_while_drawing": (n1 - n0) / (t1 - t0), "pointer_moves": i}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--requests", type=int, default=500)
    a = ap.parse_args()
    port = free_port()
    proc = subprocess.Popen(["convsee", "serve", "--port", str(port)], stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()  # "serving on ..."
        for _ in range(100):
            try:
                socket.create_connection((HOST, port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        b = bodies()
        result = {
            "latency_list": latency(port, b["list"], a.requests),
            "latency_png_f32": latency(port, b["png"], a.requests),
            "load_png_f32": load(port, proc.pid, b["png"], a.clients, a.seconds),
            "page": page_rate(port),
        }
    finally:
        proc.terminate()
        proc.wait(10)
    return save_result("serve", result)


if __name__ == "__main__":
    sys.exit(main())
