"""Attacks on a real `convsee serve`: a subprocess on a free loopback port, with a soft
file-descriptor limit of 256, driven over real sockets. Every attack gets a 4xx with a short
message of the server's own, normal requests keep working during and after, the server
logs little, and its peak memory (VmHWM) stays under 400 MB. Bounded in time throughout."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hostile import EPS, gif_bomb, png_bomb
from PIL import Image, ImageDraw

resource = pytest.importorskip("resource")  # Unix: the server runs with a low file limit
RSS_LIMIT_MB = 400
NOFILE = 256  # the server's soft limit on open files


class Server:
    def __init__(self, port: int, proc: subprocess.Popen, log: Path):
        self.port, self.proc, self.log = port, proc, log

    def memory_mb(self) -> dict:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return {
            k: int(re.search(rf"^{k}:\s+(\d+) kB", status, re.M).group(1)) / 1024
            for k in ("VmRSS", "VmHWM")
        }

    def call(self, method, path, body=None, headers=None, timeout=30):
        """(status, parsed JSON or raw bytes) for one request on a new connection."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body, headers or {})
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data

    def post(self, body, headers=None, timeout=30):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = {"Content-Type": "application/json", **(headers or {})}
        return self.call("POST", "/api/activations", raw, h, timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _low_fd_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(NOFILE, hard), hard))


@pytest.fixture(scope="module")
def server(mnist_dir, tmp_path_factory):
    if not Path("/proc/self/status").exists():
        pytest.skip("reads the server's memory from /proc")
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    code = "import sys; from convsee.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "serve", "--port", str(port), "--data", str(mnist_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=err, env=env, preexec_fn=_low_fd_limit
        )
    s = Server(port, proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start in 60 s"
            try:
                if s.call("GET", "/api/info", timeout=5)[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        yield s
        if os.environ.get("CONVSEE_ATTACK_TRACE"):
            print(s.memory_mb())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _png(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _stroke(side: int) -> Image.Image:
    img = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(img).line(
        [(side // 2, side // 10), (side // 2, side * 9 // 10)],
        fill=(0, 0, 0, 255),
        width=side // 12,
    )
    return img


NORMAL = {"png": _png(_stroke(280)), "encoding": "f32"}  # what the page sends: a 1


def _all_at_once(calls):
    """Run the zero-argument callables in threads at once; their results, in order."""
    results = [None] * len(calls)

    def run(i):
        try:
            results[i] = calls[i]()
        except Exception as e:  # a failed call is a result to assert on
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def _short(error: str) -> bool:
    return len(error) < 200 and not re.search("0x[0-9a-f]{6}|<|xxxxxxxx", error)


def test_views_on_request_do_not_block(server):
    """Views are computed on request in the background: asking answers at once."""
    results = _all_at_once([lambda: server.call("GET", "/api/views?layer=conv2&unit=1")] * 3)
    for status, views in results:
        assert status == 200 and views["optimized"]["status"] in ("computing", "ready")
    assert server.post(NORMAL)[0] == 200
    deadline = time.monotonic() + 60
    while True:
        status, views = server.call("GET", "/api/views?layer=conv2&unit=1")
        if views["optimized"]["status"] == "ready" and views["exemplars"]["status"] == "ready":
            break
        assert time.monotonic() < deadline, views
        time.sleep(0.2)
    assert len(views["exemplars"]["tiles"]) == 6


def test_image_bombs(server):
    bombs = [{"png": _png_body(png_bomb(13000))}] * 5 + [
        {"png": _png_body(png_bomb(20000, rows=1))},
        {"png": _png_body(gif_bomb())},
        {"png": _png_body(EPS)},
    ]
    results = _all_at_once(
        [lambda b=b: server.post(b) for b in bombs] + [lambda: server.post(NORMAL)]
    )
    for status, reply in results[:-1]:
        assert status == 422 and _short(reply["error"]), reply
    assert all("too large" in r[1]["error"] for r in results[:7])
    assert "not an image convsee reads" in results[7][1]["error"]
    status, reply = results[-1]
    assert status == 200 and reply["prediction"] == 1


def _png_body(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_files_of_many_blocks(server):
    """Small files that take seconds to walk (PNG chunks, JPEG segments, GIF sub-blocks by
    the hundred thousand) are refused, with the page answered meanwhile."""
    from test_decode_budget import chunk, gif, jpeg, png

    n = 150_000
    bombs = [png(8, 8, chunk(b"zzZz", b"") * (n // 3)), jpeg(n), gif(n)]
    results = _all_at_once(
        [lambda b=b: server.post({"png": _png_body(b)}) for b in bombs]
        + [lambda: server.post(NORMAL)]
    )
    for status, reply in results[:-1]:
        assert status == 422 and "before its picture" in reply["error"], reply
        assert _short(reply["error"])
    status, reply = results[-1]
    assert status == 200 and reply["prediction"] == 1


def test_large_allowed_images_one_at_a_time(server):
    big = {"png": _png(_stroke(2000))}  # 4 MP, at the limit
    assert len(json.dumps(big)) < 256 * 1024
    results = _all_at_once([lambda: server.post(big, timeout=60)] * 4)
    for status, reply in results:
        assert status == 200 and reply["prediction"] == 1


def test_cross_site_requests(server):
    body = json.dumps(NORMAL).encode()
    cases = [
        ({"Content-Type": "text/plain"}, 415),  # a simple cross-site POST: no preflight
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "application/json", "Origin": "http://attacker.example"}, 403),
        ({"Content-Type": "application/json", "Host": "attacker.example"}, 400),
        ({"Content-Type": "application/json", "Host": f"attacker.example:{server.port}"}, 400),
    ]
    for headers, expected in cases:
        status, reply = server.call("POST", "/api/activations", body, headers)
        assert status == expected and _short(reply["error"]), (headers, reply)
    status, _ = server.call("GET", "/", headers={"Host": "rebound.attacker.example"})
    assert status == 400  # DNS rebinding: the page itself is not served either
    assert server.call("GET", "/", headers={"Host": f"localhost:{server.port}"})[0] == 200


def test_malformed_requests_are_short_4xx(server):
    row = [0] * 28
    cases = [
        (b"[" * 100_000, 400, "nested too deeply"),
        (b'{"png": "data:"}', 400, "'png' is empty"),
        (b'{"image": [[' + b"9" * 4000 + b"]]}", 400, "too long"),
        (json.dumps({"image": [row] * 28, "encoding": "x" * 200_000}).encode(), 400, "'encoding'"),
        (json.dumps({"png": _png_body(b"not an image at all")}).encode(), 422, "not an image"),
        (json.dumps({"image": [row] * 28, "blur": [3, 1e308]}).encode(), 400, "sigma"),
    ]
    for raw, expected, message in cases:
        status, reply = server.post(raw)
        assert status == expected and message in reply["error"] and _short(reply["error"])
    for kind in ("%C2%B2", "%D9%A3", "9" * 4400, "-1", "1.0"):  # ², ٣ (Arabic-Indic 3)
        status, reply = server.call("GET", f"/api/sample/{kind}")
        assert status == 404 and reply["error"] == "no such sample; use 0..9 or random"
    assert server.post(NORMAL)[0] == 200


def _raw(server, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(data)
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except OSError:
            pass
        return reply


def test_malformed_http(server):
    head = (
        b"POST /api/activations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    )
    for data in (
        head + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n{}",
        head + b"Content-Length: 99999999\r\n\r\n{}",
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: "
        + b"a" * 70_000
        + b"\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 200,  # a TLS hello
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    ):
        reply = _raw(server, data)
        assert not reply.startswith(b"HTTP/1.1 5"), reply[:200]  # a 4xx, or dropped
    assert server.post(NORMAL)[0] == 200


def test_many_blur_settings(server):
    row = [0] * 28
    for i in range(300):
        body = {"image": [row] * 28, "blur": [3, 0.01 + i * 0.03], "encoding": "f32"}
        assert server.post(body)[0] == 200


def test_slow_loris_does_not_lock_out_clients(server):
    partial = b"GET /api/info HTTP/1.1\r\nHost: localhost\r\n"  # never finished
    attackers = []
    try:
        for _ in range(300):  # more than the server has file descriptors
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", server.port))
            attackers.append(s)
        time.sleep(0.5)
        for s in attackers:
            try:
                s.send(partial)
            except OSError:
                pass
        for _ in range(5):
            assert server.post(NORMAL, timeout=15)[0] == 200
            assert server.call("GET", "/api/sample/random", timeout=15)[0] == 200
    finally:
        for s in attackers:
            s.close()
    assert server.call("GET", "/api/info")[0] == 200


def _bench_attacks():
    """benchmarks/bench_attacks.py as a module: the test sends the same attacks."""
    import importlib

    bench = str(Path(__file__).parents[1] / "benchmarks")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module("bench_attacks")


def test_the_page_is_answered_during_each_attack(server):
    """Thin images, 64 half-sent bodies, 100 clients that pipeline and never read, and eight
    senders of 60,000-scan JPEGs, each in turn: the normal client (the page's canvas update)
    is answered every time, never with a 503."""
    ba = _bench_attacks()
    normal = ba.body(ba.stroke_png(280))
    thin = ba.body(base64.b64encode(ba.thin_png()).decode())
    scans = ba.body("data:image/jpeg;base64," + base64.b64encode(ba.jpeg_scan_bomb()).decode())
    listed = json.dumps({"png": ba.stroke_png(280), "encoding": "list"}).encode()
    attacks = {
        "thin": {"data": thin, "n": 2},
        "half bodies": {"hold": ba.half_body(), "holding": 64},
        "non-readers": {"hold": ba.pipelined(listed), "holding": 100},
        "scan bombs": {"data": scans, "n": 8},
    }
    for name, how in attacks.items():
        got = ba.under(server.port, normal, 2.0, **how)  # at least 3 requests, 30 s each
        assert got["failed"] == 0 and got["busy_503"] == 0, (name, got)
        assert got["requests"] >= 3, (name, got)
    assert server.post(NORMAL)[0] == 200


def test_memory_and_log_stay_small(server):
    assert server.post(NORMAL)[0] == 200
    mem = server.memory_mb()
    assert mem["VmHWM"] < RSS_LIMIT_MB, mem
    assert server.log.stat().st_size < 20_000, server.log.read_text()[-2000:]
