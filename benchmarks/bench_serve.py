"""Drive real `convsee serve` processes over loopback: latency, response size, concurrent load,
memory, the page in Chromium. LeNet-5 and a ResNet-18 at 3x224x224, in the same run.

LeNet-5 (the shipped checkpoint):
1. Latency: one client, keep-alive, N updates of each form: the canvas PNG with the page's
   8-bit frame and default layers (what the page sends now); the same PNG answered as float32
   (what the page sent before); the 28x28 JSON list answered as JSON lists. p50 / p99.
2. Load: C concurrent clients for T seconds (default 50 for 30 s), the page's request:
   requests, errors, throughput, the server's RSS before, during and after.
3. The page: headless Chromium draws continuously for a few seconds; updates per second;
   and the time from opening the page to its first update.

ResNet-18 (benchmarks/resnet.py, seeded weights, 3x224x224, ImageNet preprocessing):
4. Latency per update with the page's default layers and channel choice (the top 16 of each
   wide layer, maps over 56 px averaged down, 8-bit): a 1024x768 JPEG upload as the page sends
   it (its first update), the same upload named upload:ID as the page's further updates name
   it, and a named sample (sample:3); p50 / p99 and the response size.
5. Memory: RSS after start-up, after the updates, and the peak after computing the views of
   two channels (conv1's and layer4.1.conv2's: exemplars over the MNIST test set, bounded in
   time, and the optimised input).
6. Chromium: time to the first update.

    python benchmarks/bench_serve.py [--clients 50 --seconds 30 --requests 500]
        [--baseline-src ../main/src]   # also time the LeNet-5 server of another checkout
    python benchmarks/bench_serve.py --quick   # one short round: it runs (figures mean nothing)

Only loopback addresses are used; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from common import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    SHARED_MNIST,
    add_quick,
    free_port,
    memory_mb,
    save_result,
)
from PIL import Image, ImageDraw

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent


def rss_mb(pid: int) -> float:
    return memory_mb(pid).get("VmRSS", float("nan"))


def start(args: list[str], src: str | None = None) -> tuple[subprocess.Popen, int]:
    """A `convsee serve` subprocess (from src, another checkout's src/, if given)."""
    port = free_port()
    cmd = [sys.executable, "-m", "convsee", "serve", "--port", str(port), *args]
    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
    proc.stdout.readline()  # "serving on ..."
    for _ in range(300):
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, port


def stop(proc) -> None:
    proc.terminate()
    proc.wait(30)


def canvas_png() -> str:
    img = Image.new("RGB", (280, 280), "black")
    ImageDraw.Draw(img).line([(90, 60), (190, 60), (120, 240)], fill="white", width=22)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def photo_jpeg(w: int = 1024, h: int = 768) -> str:
    """A photo-like picture (smooth gradients, shapes, noise) as the page uploads it: JPEG 0.9."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    a = np.stack([0.5 + 0.4 * np.sin(6 * x + 2 * y), 0.4 + 0.3 * y, 0.6 - 0.4 * x], -1)
    a += rng.normal(0, 0.04, a.shape)
    img = Image.fromarray(np.uint8(np.clip(a, 0, 1) * 255))
    d = ImageDraw.Draw(img)
    d.ellipse([w * 0.3, h * 0.2, w * 0.7, h * 0.8], fill=(230, 190, 40))
    d.rectangle([w * 0.05, h * 0.6, w * 0.25, h * 0.95], fill=(40, 60, 160))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def lenet_bodies() -> dict:
    from convsee.datasets.inputs import samples

    png = canvas_png()
    return {
        "png_u8": json.dumps({"png": png, "encoding": "u8"}).encode(),
        "png_f32": json.dumps({"png": png, "encoding": "f32"}).encode(),
        "list": json.dumps({"image": np.round(samples()[3].image, 4).tolist()}).encode(),
    }


def post(conn, body) -> tuple[int, float, int]:
    t = time.perf_counter()
    conn.request("POST", "/api/activations", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    return r.status, (time.perf_counter() - t) * 1e3, len(data)


def pct(xs, q):
    return float(np.percentile(xs, q))


def latency(port, body, n, warm: int = 20) -> dict:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    for _ in range(warm):
        status, _, _ = post(conn, body)
        assert status == 200, status
    runs = [post(conn, body) for _ in range(n)]
    conn.close()
    ms = [r[1] for r in runs]
    assert all(r[0] == 200 for r in runs)
    return {
        "p50_ms": pct(ms, 50),
        "p99_ms": pct(ms, 99),
        "mean_ms": statistics.mean(ms),
        "n": n,
        "response_bytes": runs[-1][2],
        "request_bytes": len(body),
    }


def interleaved(cases: dict, n: int, rounds: int = 5) -> dict:
    """latency() of every (port, body) case, n updates each, taken in `rounds` alternating
    slices so that the machine's load falls on all of them alike. Each slice opens its own
    keep-alive connection (an idle one is closed by the server after 5 s) and sends one
    untimed request first."""
    ms: dict = {k: [] for k in cases}
    size: dict = {}
    for _ in range(rounds):
        for k, (port, body) in cases.items():
            conn = http.client.HTTPConnection(HOST, port, timeout=60)
            for _ in range(2):
                assert post(conn, body)[0] == 200, k  # warm up
            for _ in range(max(1, n // rounds)):
                status, t, size[k] = post(conn, body)
                assert status == 200, (k, status)
                ms[k].append(t)
            conn.close()
    return {
        k: {
            "p50_ms": pct(v, 50),
            "p99_ms": pct(v, 99),
            "mean_ms": statistics.mean(v),
            "n": len(v),
            "response_bytes": size[k],
            "request_bytes": len(cases[k][1]),
        }
        for k, v in ms.items()
    }


def kept_name(port, body) -> str:
    """The upload:ID the server kept an image under (the page names it in further updates)."""
    from convsee.web.server import decode_frame

    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    conn.request("POST", "/api/activations", body, {"Content-Type": "application/json"})
    head, _ = decode_frame(conn.getresponse().read())
    conn.close()
    return head["input_name"]


def load(port, pid, body, clients, seconds) -> dict:
    stop_at = time.time() + seconds
    counts, errors, lat = [0] * clients, [0] * clients, [[] for _ in range(clients)]
    rss = [rss_mb(pid)]

    def worker(i):
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        while time.time() < stop_at:
            try:
                status, ms, _ = post(conn, body)
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
        time.sleep(min(2.0, max(0.1, stop_at - time.time())))
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


def views_ready(port, layer: str, unit: int, timeout: float = 120) -> dict:
    """Ask for a channel's views and wait until they are computed; seconds it took."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        c = http.client.HTTPConnection(HOST, port, timeout=10)
        c.request("GET", f"/api/views?layer={layer}&unit={unit}")
        v = json.loads(c.getresponse().read())
        c.close()
        if all(v[k]["status"] != "computing" for k in ("exemplars", "optimized")):
            ex, opt = v["exemplars"], v["optimized"]
            return {
                "seconds": time.perf_counter() - t0,
                "exemplars_seen": ex.get("seen"),
                "optimize_steps": opt.get("steps"),
                "status": [ex["status"], opt["status"]],
            }
        time.sleep(0.2)
    return {"seconds": None}


def chromium(port, draw_seconds: float | None = 4.0, upload: bytes | None = None) -> dict | None:
    """The page in headless Chromium: time to its first update (LeNet-5: the sample it opens
    on; with `upload`, a model offered no samples: time to the page being ready, then from
    choosing that file to its update) and, with draw_seconds, updates a second while drawing."""
    if not Path(CHROMIUM).exists():
        return None
    import tempfile

    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        t0 = time.perf_counter()
        page.goto(f"http://{HOST}:{port}/")
        if upload is not None:
            page.wait_for_function("window.convsee.info", timeout=60000)
            out["page_ready_s"] = time.perf_counter() - t0
            path = Path(tmp) / "photo.jpg"
            path.write_bytes(upload)
            t0 = time.perf_counter()
            page.set_input_files("#file", str(path))
        page.wait_for_function("window.convsee.updates > 0", timeout=60000)
        out["first_update_s" if upload is None else "upload_to_update_s"] = time.perf_counter() - t0
        if draw_seconds:
            box = page.locator("#pad").bounding_box()
            page.mouse.move(box["x"] + 40, box["y"] + 140)
            page.mouse.down()
            n0, t0, i = page.evaluate("window.convsee.updates"), time.time(), 0
            while time.time() - t0 < draw_seconds:  # a circle, over and over, ~120 moves a second
                a = i * 0.2
                page.mouse.move(box["x"] + 140 + 90 * np.cos(a), box["y"] + 140 + 90 * np.sin(a))
                i += 1
                time.sleep(0.008)
            n1, t1 = page.evaluate("window.convsee.updates"), time.time()
            page.mouse.up()
            out["updates_per_s_while_drawing"] = (n1 - n0) / (t1 - t0)
            out["pointer_moves"] = i
        b.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--requests", type=int, default=500, help="LeNet updates per form")
    ap.add_argument("--resnet-requests", type=int, default=200, help="ResNet updates per form")
    ap.add_argument(
        "--baseline-src",
        metavar="DIR",
        help="another checkout's src/ (e.g. main before this change): its LeNet-5 server is "
        "timed in the same run, interleaved, with the forms it takes",
    )
    add_quick(ap)
    a = ap.parse_args()
    if a.quick:  # a few requests of each kind, 1 s of load, no views, no baseline
        a.clients, a.seconds, a.requests, a.resnet_requests = 4, 1.0, 5, 5
        a.baseline_src = None
    result: dict = {"machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}}

    b = lenet_bodies()
    proc, port = start(["--data", str(SHARED_MNIST)])
    base = start(["--data", str(SHARED_MNIST)], a.baseline_src) if a.baseline_src else None
    try:
        lenet: dict = {"rss_mb_after_start": rss_mb(proc.pid)}
        cases = {
            "latency_png_u8": (port, b["png_u8"]),
            "latency_png_f32": (port, b["png_f32"]),
            "latency_list": (port, b["list"]),
        }
        if base is not None:
            c = http.client.HTTPConnection(HOST, base[1], timeout=120)
            c.request("GET", "/api/views")  # the old server computes views at start: wait
            c.getresponse().read()
            c.close()
            cases["baseline_latency_png_f32"] = (base[1], b["png_f32"])
            cases["baseline_latency_list"] = (base[1], b["list"])
        lenet.update(interleaved(cases, a.requests))
        if base is not None:
            lenet["baseline_src"] = a.baseline_src
            lenet["baseline_memory"] = memory_mb(base[0].pid)
            stop(base[0])
            base = None
        lenet["load_png_u8"] = load(port, proc.pid, b["png_u8"], a.clients, a.seconds)
        lenet["page"] = chromium(port, draw_seconds=0.5 if a.quick else 4.0)
        lenet["memory_end"] = memory_mb(proc.pid)
        result["lenet"] = lenet
    finally:
        stop(proc)
        if base is not None:
            stop(base[0])

    model = str(HERE / "resnet.py") + ":resnet18"
    proc, port = start(["--model", model, "--input-size", "3,224,224", "--data", str(SHARED_MNIST)])
    try:
        r: dict = {"rss_mb_after_start": rss_mb(proc.pid)}
        upload = json.dumps({"png": photo_jpeg(), "encoding": "u8", "keep": True}).encode()
        kept = json.dumps({"input": kept_name(port, upload), "encoding": "u8"}).encode()
        named = json.dumps({"input": "sample:3", "encoding": "u8"}).encode()
        r.update(
            interleaved(
                {
                    "latency_upload_u8": (port, upload),
                    "latency_kept_upload_u8": (port, kept),
                    "latency_named_u8": (port, named),
                },
                a.resnet_requests,
            )
        )
        r["memory_after_updates"] = memory_mb(proc.pid)
        if not a.quick:
            r["views_conv1_0"] = views_ready(port, "conv1", 0)
            r["views_layer4_1_conv2_7"] = views_ready(port, "layer4.1.conv2", 7)
            r["latency_named_u8_after_views"] = latency(port, named, 50, warm=2)
            r["memory_after_views"] = memory_mb(proc.pid)
            jpeg = base64.b64decode(photo_jpeg().split(",", 1)[1])
            r["page"] = chromium(port, draw_seconds=None, upload=jpeg)
        result["resnet18_224"] = r
    finally:
        stop(proc)
    result["machine"]["loadavg_end"] = os.getloadavg()
    return save_result("serve", result, a.quick)


if __name__ == "__main__":
    sys.exit(main())
