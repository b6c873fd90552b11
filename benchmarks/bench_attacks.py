"""A real `convsee serve` under attack: how fast attacks are refused, what they do to a
normal client's latency, and the server's memory.

The server runs with a soft limit of 256 open files. One client sends the page's request
(a 280x280 canvas PNG, answered as the page asks, in 8-bit frames; for the ResNet-18 the
same picture in RGB) in a loop, keep-alive, and its round trips are timed (from a process
of its own: the attackers run in another, as they would on another machine, so that their
threads never take the timed client's interpreter lock): first alone (the baseline, in the
same run), then while other threads send 13000x13000 PNG bombs, 4-megapixel images (the
largest allowed), hold 300 half-sent requests open (slow loris), send thin images
(1x100000 px), hold 64 POSTs with one byte of a 100,000-byte body, pipeline requests and
never read the answers, or send progressive JPEGs of 60,000 scans. Targets (issue 18): no
503 and p99 <= 1 s for the normal client during each attack, and peak RSS <= 600 MB with
the ResNet-18. A watchdog stops a server whose RSS passes 3 GB (said in the result) so that
an attack that works cannot take the machine down.

    python benchmarks/bench_attacks.py [--seconds 5] [--model lenet|resnet|both]
    python benchmarks/bench_attacks.py --quick   # one short round: it runs (figures mean nothing)

Only loopback addresses are used; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import math
import multiprocessing
import resource
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

from common import SHARED_MNIST, add_quick, free_port, memory_mb, save_result
from PIL import Image, ImageDraw

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
P99_TARGET_MS = 1000
RSS_TARGET_MB = 600
WATCHDOG_MB = 3000


def png_bomb(side: int) -> bytes:
    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    head = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def stroke_png(side: int, mode: str = "RGBA") -> str:
    img = Image.new(mode, (side, side), "black" if mode == "RGB" else (0, 0, 0, 0))
    w = max(2, side // 12)
    ink = "white" if mode == "RGB" else "black"
    ImageDraw.Draw(img).line([(side // 2, side // 10), (side // 2, side * 9 // 10)], ink, w)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def thin_png(width: int = 1, height: int = 100_000) -> bytes:
    """A 1-bit width x height PNG of alternating pixels, written directly (~300 bytes)."""

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\x00" + b"\xaa" * ((width + 7) // 8)
    head = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(row * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_scan_bomb(side: int = 1000, scans: int = 60_000) -> bytes:
    """A progressive grey side x side JPEG (Pillow's) with `scans` empty AC scans added, 10
    bytes each: every one makes a decoder pass over all the coefficients (~600 KB)."""
    buf = io.BytesIO()
    Image.radial_gradient("L").resize((side, side)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    sos = b"\xff\xda" + struct.pack(">HBBBBBB", 8, 1, 1, 0x00, 1, 63, 0x00)
    return data[:-2] + sos * scans + b"\xff\xd9"


def body(png: str, encoding: str = "f32") -> bytes:
    return json.dumps({"png": png, "encoding": encoding}).encode()


def page_body(png: str) -> bytes:
    """The page's canvas update: the picture, answered in 8-bit frames (updates.js)."""
    return body(png, "u8")


def percentile(sorted_ms: list, q: float) -> float | None:
    """The nearest-rank q-quantile of sorted values (of 2 values, p99 is the larger)."""
    if not sorted_ms:
        return None
    return sorted_ms[max(0, math.ceil(q * len(sorted_ms)) - 1)]


def post(conn, data) -> tuple[int, float]:
    t = time.perf_counter()
    conn.request("POST", "/api/activations", data, {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status, (time.perf_counter() - t) * 1e3


def timed_client(port, data, seconds, timeout: float = 30) -> dict:
    """The normal client: requests for `seconds` (at least 3), each answered within
    `timeout` or counted failed."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    ms, bad, busy, stop = [], 0, 0, time.time() + seconds
    while time.time() < stop or len(ms) + bad < 3:
        try:
            status, t = post(conn, data)
            ms.append(t)
            bad += status != 200
            busy += status == 503
        except (OSError, http.client.HTTPException):
            bad += 1
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        if len(ms) + bad > 10_000:
            break
    conn.close()
    ms.sort()
    p99 = percentile(ms, 0.99)
    return {
        "requests": len(ms) + bad,
        "failed": bad,
        "busy_503": busy,
        "p50_ms": statistics.median(ms) if ms else None,
        "p99_ms": p99,
        "p99_within_target": p99 is not None and p99 <= P99_TARGET_MS and bad == 0,
    }


def attackers(port, data, n, stop: threading.Event) -> list:
    counts = []

    def run():
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        k = 0
        while not stop.is_set():
            try:
                post(conn, data)
                k += 1
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
        conn.close()
        counts.append(k)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def holders(port, payload: bytes, n: int, stop: threading.Event) -> list:
    """n connections that send `payload` and then never read nor finish; one the server
    drops is opened again (every 0.2 s), until stop."""

    def run():
        held: list = [None] * n
        while not stop.is_set():
            for i in range(n):
                s = held[i]
                if s is not None:
                    try:
                        if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b"":
                            continue  # an answer waits, unread: still held
                    except BlockingIOError:
                        continue  # open, silent: still held
                    except OSError:
                        pass
                    s.close()
                try:
                    s = socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.settimeout(2)
                    s.connect((HOST, port))
                    s.setblocking(False)
                    try:
                        s.send(payload)
                    except BlockingIOError:
                        pass
                    held[i] = s
                except OSError:
                    held[i] = None
            stop.wait(0.2)
        for s in held:
            if s is not None:
                s.close()

    t = threading.Thread(target=run)
    t.start()
    return [t]


def attack(port, data, n, loris, hold, holding, ready, stop) -> None:
    """The attackers, in a process of their own, until stop is set; ready: they are in place."""
    stop_threads = threading.Event()
    threads = attackers(port, data, n, stop_threads) if n else []
    if holding:
        threads += holders(port, hold, holding, stop_threads)
        time.sleep(1.0)  # they are in place
    held = []
    for _ in range(loris):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((HOST, port))
        held.append(s)
    if held:
        time.sleep(0.5)
        for s in held:
            try:
                s.send(b"GET /api/info HTTP/1.1\r\nHost: localhost\r\n")
            except OSError:
                pass
    ready.set()
    try:
        stop.wait(600)
    finally:
        stop_threads.set()
        for t in threads:
            t.join(60)
        for s in held:
            s.close()


def under(port, normal, seconds, data=None, n=0, loris=0, hold=None, holding=0) -> dict:
    if not (n or loris or holding):
        return timed_client(port, normal, seconds)
    mp = multiprocessing.get_context("spawn")
    ready, stop = mp.Event(), mp.Event()
    proc = mp.Process(target=attack, args=(port, data, n, loris, hold, holding, ready, stop))
    proc.start()
    try:
        ready.wait(60)
        return timed_client(port, normal, seconds)
    finally:
        stop.set()
        proc.join(90)
        if proc.is_alive():
            proc.kill()
            proc.join(10)


def refusal_ms(port, data, n=20) -> float:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    ms = []
    for _ in range(n):
        status, t = post(conn, data)
        assert status == 422, status
        ms.append(t)
    conn.close()
    return statistics.median(ms)


def half_body() -> bytes:
    """A POST head declaring 100,000 bytes of body, and one byte of it."""
    return (
        b"POST /api/activations HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
    )


def pipelined(big_answer: bytes, n: int = 20) -> bytes:
    """n GET /api/info and one POST with a large answer, pipelined (never read)."""
    get = b"GET /api/info HTTP/1.1\r\nHost: localhost\r\n\r\n"
    post_ = (
        b"POST /api/activations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(big_answer)}\r\n\r\n".encode()
        + big_answer
    )
    return get * n + post_


def watchdog(proc, stop: threading.Event, peak: dict) -> threading.Thread:
    """Kill the server if its RSS passes WATCHDOG_MB (an attack that works): said in peak."""

    def run():
        while not stop.is_set() and proc.poll() is None:
            try:
                rss = memory_mb(proc.pid).get("VmRSS", 0)
            except OSError:
                break
            peak["max_seen_mb"] = max(peak.get("max_seen_mb", 0), rss)
            if rss > WATCHDOG_MB:
                peak["killed_over_mb"] = WATCHDOG_MB
                proc.kill()
                break
            stop.wait(0.05)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def run_server(model: str, seconds: float, quick: bool) -> dict:
    port = free_port()

    def limit():
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))

    args = ["--data", str(SHARED_MNIST)] if SHARED_MNIST.is_dir() else []  # for the views
    if model == "resnet":
        args += ["--model", f"{HERE / 'resnet.py'}:resnet18", "--input-size", "3,224,224"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "convsee", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=limit,
    )
    stop_watch, peak = threading.Event(), {}
    result: dict = {"model": model}
    try:
        proc.stdout.readline()  # "serving on ..."
        watchdog(proc, stop_watch, peak)
        start = memory_mb(proc.pid)
        normal = page_body(stroke_png(280, "RGB" if model == "resnet" else "RGBA"))
        bomb = body(base64.b64encode(png_bomb(13000)).decode())
        big = body(stroke_png(2000))
        thin = body(base64.b64encode(thin_png()).decode())
        scans = body("data:image/jpeg;base64," + base64.b64encode(jpeg_scan_bomb()).decode())
        listed = json.dumps({"png": stroke_png(280), "encoding": "list"}).encode()
        s = seconds
        result["memory_mb_after_start_up"] = start
        result["normal_alone"] = under(port, normal, s)
        if not quick:
            result["bomb_13000x13000_refused_ms_median"] = refusal_ms(port, bomb)
            result["normal_during_5_bomb_senders"] = under(port, normal, s, bomb, 5)
            result["normal_during_2_senders_of_4_megapixel_images"] = under(port, normal, s, big, 2)
            result["normal_during_300_slow_loris_connections"] = under(port, normal, s, loris=300)
        result["normal_during_2_senders_of_1x100000_images"] = under(port, normal, s, thin, 2)
        result["normal_during_64_half_sent_bodies"] = under(
            port, normal, s, hold=half_body(), holding=64
        )
        result["normal_during_100_pipelining_non_readers"] = under(
            port, normal, s, hold=pipelined(listed), holding=100
        )
        result["normal_during_8_senders_of_60000_scan_jpegs"] = under(port, normal, s, scans, 8)
        result["memory_mb_at_end"] = memory_mb(proc.pid)
    finally:
        stop_watch.set()
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=20)
    result["watchdog"] = peak
    result["server_stderr_bytes"] = len(err)
    timed = [v for k, v in result.items() if k.startswith("normal_during")]
    result["no_503_for_the_normal_client"] = all(v["busy_503"] == 0 for v in timed)
    result["p99_within_1_s_during_every_attack"] = all(v["p99_within_target"] for v in timed)
    peak_mb = result.get("memory_mb_at_end", {}).get("VmHWM")
    result["peak_rss_mb"] = peak_mb
    result["peak_rss_within_600_mb"] = peak_mb is not None and peak_mb <= RSS_TARGET_MB
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--model", choices=("lenet", "resnet", "both"), default="both")
    add_quick(ap)
    a = ap.parse_args()
    if a.quick:  # the new attacks only, 1 s each, on LeNet-5
        a.seconds, a.model = 1.0, "lenet"
    models = ["lenet", "resnet"] if a.model == "both" else [a.model]
    result = {m: run_server(m, a.seconds, a.quick) for m in models}
    return save_result("attacks", result, a.quick)


if __name__ == "__main__":
    sys.exit(main())
