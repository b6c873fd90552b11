"""A real `convsee serve` under attack: how fast attacks are refused, what they do to a
normal client's latency, and the server's memory.

The server runs with a soft limit of 256 open files. One client sends the page's request
(a 280x280 canvas PNG) in a loop, keep-alive, and its round trips are timed: first alone
(the baseline, in the same run), then while other threads send 13000x13000 PNG bombs,
4-megapixel images (the largest allowed), or hold 300 half-sent requests open (slow loris).

    python benchmarks/bench_attacks.py [--seconds 5]

Only loopback addresses are used; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import resource
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib

from common import SHARED_MNIST, free_port, memory_mb, save_result
from PIL import Image, ImageDraw

HOST = "127.0.0.1"


def png_bomb(side: int) -> bytes:
    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    head = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def stroke_png(side: int) -> str:
    img = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    w = max(2, side // 12)
    ImageDraw.Draw(img).line([(side // 2, side // 10), (side // 2, side * 9 // 10)], "black", w)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def body(png: str) -> bytes:
    return json.dumps({"png": png, "encoding": "f32"}).encode()


def post(conn, data) -> tuple[int, float]:
    t = time.perf_counter()
    conn.request("POST", "/api/activations", data, {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status, (time.perf_counter() - t) * 1e3


def timed_client(port, data, seconds) -> dict:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    ms, bad, stop = [], 0, time.time() + seconds
    while time.time() < stop:
        try:
            status, t = post(conn, data)
            ms.append(t)
            bad += status != 200
        except (OSError, http.client.HTTPException):
            bad += 1
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.close()
    ms.sort()
    return {
        "requests": len(ms),
        "failed": bad,
        "p50_ms": statistics.median(ms) if ms else None,
        "p99_ms": ms[int(0.99 * (len(ms) - 1))] if ms else None,
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


def under(port, normal, seconds, data=None, n=0, loris=0) -> dict:
    stop = threading.Event()
    threads = attackers(port, data, n, stop) if n else []
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
    try:
        return timed_client(port, normal, seconds)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        for s in held:
            s.close()


def refusal_ms(port, data, n=20) -> float:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    ms = []
    for _ in range(n):
        status, t = post(conn, data)
        assert status == 422, status
        ms.append(t)
    conn.close()
    return statistics.median(ms)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    port = free_port()

    def limit():
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))

    data = ["--data", str(SHARED_MNIST)] if SHARED_MNIST.is_dir() else []  # for the views
    proc = subprocess.Popen(
        ["convsee", "serve", "--port", str(port), *data],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=limit,
    )
    try:
        proc.stdout.readline()  # "serving on ..."
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        conn.request("GET", "/api/views")  # computed in the background at start-up
        conn.getresponse().read()
        conn.close()
        start = memory_mb(proc.pid)
        normal = body(stroke_png(280))
        bomb = body(base64.b64encode(png_bomb(13000)).decode())
        big = body(stroke_png(2000))
        s = a.seconds
        result = {
            "memory_mb_after_start_up": start,
            "bomb_13000x13000_refused_ms_median": refusal_ms(port, bomb),
            "normal_alone": under(port, normal, s),
            "normal_during_5_bomb_senders": under(port, normal, s, bomb, 5),
            "normal_during_2_senders_of_4_megapixel_images": under(port, normal, s, big, 2),
            "normal_during_300_slow_loris_connections": under(port, normal, s, loris=300),
            "memory_mb_at_end": memory_mb(proc.pid),
        }
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    result["server_stderr_bytes"] = len(err)
    return save_result("attacks", result)


if __name__ == "__main__":
    sys.exit(main())
