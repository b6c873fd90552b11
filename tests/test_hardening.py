"""Hostile inputs, in process: image bombs and formats, JSON limits, the Host / origin /
content-type guard, work off the event loop, the connection limits on real sockets, and the
CLI's one-line errors. The attacks on a real `convsee serve` are in test_attacks.py."""

from __future__ import annotations

import io
import re
import socket
import threading
import time

import numpy as np
import pytest
from hostile import EPS, gif_bomb, png_bomb
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from convsee.cli import main
from convsee.errors import ConvseeError

LOCAL = "http://127.0.0.1:8000"
JSON = {"content-type": "application/json"}


# ---------- hostile image files ----------


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_declared_size_is_checked_before_decoding():
    from convsee.datasets.images import open_image

    bomb = png_bomb(13000)  # 169 MP, ~20 KB: under Pillow's own error limit
    assert len(bomb) < 60_000
    t = time.perf_counter()
    with pytest.raises(ConvseeError, match=r"too large: 13000x13000 pixels \(169 megapixels\)"):
        open_image(bomb)
    assert time.perf_counter() - t < 1  # refused, not decoded (decoding takes seconds)
    with pytest.raises(ConvseeError, match="the limit is 4 megapixels"):
        open_image(png_bomb(2100, rows=1), max_pixels=4_000_000)
    for data in (png_bomb(20000, rows=1), gif_bomb()):  # Pillow's DecompressionBombError
        with pytest.raises(ConvseeError, match="too large"):
            open_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP"])
def test_the_common_formats_open(fmt):
    from convsee.datasets.images import open_image

    img = open_image(encoded(Image.new("RGB", (30, 20), "white"), fmt))
    assert img.size == (30, 20)


@pytest.mark.parametrize("fmt", ["TIFF", "PPM", "ICO", "TGA", "PCX"])
def test_other_formats_are_refused(fmt):
    from convsee.datasets.images import open_image

    with pytest.raises(ConvseeError, match="not an image convsee reads"):
        open_image(encoded(Image.new("RGB", (30, 20), "white"), fmt))


def test_postscript_never_reaches_a_decoder(monkeypatch):
    from PIL import EpsImagePlugin

    from convsee.datasets.images import open_image

    def boom(*a, **k):
        raise AssertionError("EPS opened")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", boom)
    with pytest.raises(ConvseeError, match="not an image convsee reads") as e:
        open_image(EPS)
    assert "0x" not in str(e.value) and "BytesIO" not in str(e.value)


def test_only_the_first_gif_frame_is_decoded():
    from convsee.datasets.images import open_image

    frames = [Image.new("L", (40, 40), v) for v in (0, 90, 180)]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    img = open_image(data)
    assert img.getpixel((5, 5)) == img.getpalette()[0] == 0  # frame 0
    assert getattr(img, "fp", None) is None  # detached: no file kept open


def test_damaged_image_is_a_clear_error():
    from convsee.datasets.images import open_image

    good = encoded(Image.new("RGB", (300, 200), "white"), "PNG")
    with pytest.raises(ConvseeError, match="damaged or incomplete"):
        open_image(good[:-40])


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "RGB", "P", "1", "I;16"])
def test_large_images_reduce_to_the_same_digit(mode):
    from convsee.datasets.digits import preprocess
    from convsee.datasets.images import reduce_to

    img = Image.new("L", (2000, 1800), 0)
    d = ImageDraw.Draw(img)
    d.line([(600, 300), (1200, 400), (900, 1500)], fill=255, width=80)
    d.ellipse([1000, 900, 1400, 1350], outline=255, width=60)
    if mode in ("RGBA", "LA"):  # a canvas: ink in the alpha channel
        img = Image.merge(mode, [Image.new("L", img.size, 0)] * (len(mode) - 1) + [img])
    elif mode == "P":
        img = img.convert("RGB").quantize(4)
    elif mode == "I;16":
        img = Image.fromarray(np.asarray(img).astype(np.uint16) * 200)
    else:
        img = img.convert(mode)
    small = reduce_to(img, 1_000_000)
    assert small.size == (1000, 900) and small.size[0] * small.size[1] <= 1_000_000
    assert np.abs(preprocess(small) - preprocess(img)).max() < 0.04
    assert reduce_to(small, 1_000_000) is small  # small enough: untouched


def test_to_gray_alpha_unchanged():
    from convsee.datasets.images import to_gray

    img = Image.new("RGBA", (50, 40), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(25, 5), (25, 35)], fill=(0, 0, 0, 255), width=6)
    g = to_gray(encoded(img, "PNG"))
    np.testing.assert_array_equal(g, np.asarray(img)[..., 3].astype(np.float32) / 255.0)


# ---------- the CLI: one line, exit 2 ----------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "BOMB"], "too large (400 megapixels); the limit is 50"),  # Pillow refused it
        (["predict", "GIFBOMB"], "too large"),
        (["predict", "EPSFILE"], "not an image convsee reads"),
        (["predict", "test:" + "9" * 5000], "expected test:N"),
        (["predict", "train:-3"], "expected train:N"),
        (["predict", "sample:٣"], "expected sample:D"),  # an Arabic-Indic 3 is not 3
        (["predict", "sample:3\n"], "expected sample:D"),
        (["render", "--blur", "99999,1", "--out", "OUT"], "blur kernel must be odd"),
        (["render", "--blur", "5,nan", "--out", "OUT"], "sigma must be in"),
        (["serve", "--port", "99999"], "port must be a number from 0 to 65535"),
        (["serve", "--host", "no such host.invalid", "--port", "0"], "no such host"),
    ],
)
def test_cli_one_line_errors(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "BOMB").write_bytes(png_bomb(20000, rows=1))
    (tmp_path / "GIFBOMB").write_bytes(gif_bomb())
    (tmp_path / "EPSFILE").write_bytes(EPS)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"convsee {argv[0]}: error:") and message in err, err
    assert err.count("\n") == 1 and len(err) < 200 and "Traceback" not in err
    assert not (tmp_path / "OUT").exists()


def test_cli_image_over_the_limit_is_one_line(tmp_path, capsys):
    p = tmp_path / "wide.png"
    p.write_bytes(png_bomb(7200, rows=1))  # 51.8 MP: over 50, under Pillow's own limit
    assert main(["predict", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "too large: 7200x7200 pixels" in err
    assert "limit is 50 megapixels" in err


def test_a_huge_blur_kernel_is_refused_cheaply():
    from convsee.run.filters import MAX_KERNEL, blur_maps

    maps = np.random.default_rng(0).normal(size=(2, 6, 24, 24)).astype(np.float32)
    with pytest.raises(ConvseeError, match="odd, 1 to 63"):
        blur_maps(maps, 99999, 1.0)
    wide = blur_maps(maps, MAX_KERNEL, 1000.0)  # the widest allowed: nearly a mean
    assert wide.shape == maps.shape and np.isfinite(wide).all()


# ---------- JSON limits ----------


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"[" * 100_000, "nested too deeply"),
        (b"[" * 40 + b"]" * 40, "nested too deeply"),
        (b'{"image": ' + b"9" * 4000 + b"}", "too long"),
        (b'{"image": 1e999}', "out of range"),
        (b'{"image": NaN}', "NaN is not allowed"),
        (b"\xff\xfe{", "malformed JSON"),
        (b"{not json", "malformed JSON"),
    ],
)
def test_parse_json_limits(raw, message):
    from convsee.web.requests import BadRequest, parse_json

    with pytest.raises(BadRequest, match=message) as e:
        parse_json(raw)
    assert e.value.status == 400 and len(str(e.value)) < 120


def test_parse_json_keeps_ordinary_numbers():
    from convsee.web.requests import parse_json

    assert parse_json(b'{"a": [0, 0.5, 1, 1e-7, -3], "b": [[[1]]]}') == {
        "a": [0, 0.5, 1, 1e-7, -3],
        "b": [[[1]]],
    }


# ---------- the app: Host, origin, content type, messages ----------


@pytest.fixture(scope="module")
def app():
    from convsee.web.server import create_app

    return create_app()


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=LOCAL) as c:
        yield c


def _png_body(data: bytes) -> dict:
    import base64

    return {"png": "data:image/png;base64," + base64.b64encode(data).decode()}


def sample_body():
    from convsee.datasets.inputs import samples

    return {"image": samples()[3].image.tolist()}


@pytest.mark.parametrize(
    "host, ok",
    [
        ("127.0.0.1:8000", True),
        ("localhost:8000", True),
        ("localhost", True),
        ("LOCALHOST.:9", True),
        ("[::1]:8000", True),
        ("127.3.4.5", True),
        ("app.localhost:8000", True),
        ("attacker.example", False),
        ("attacker.example:8000", False),
        ("127.0.0.1.attacker.example", False),
        ("localhost.attacker.example", False),
        ("0.0.0.0:8000", False),
        ("192.168.1.5:8000", False),
        ("[::1]x", False),
        ("::1", False),
        ("localhost:99999", False),
        ("", False),
    ],
)
def test_only_loopback_hosts_are_answered(client, host, ok):
    r = client.get("/api/info", headers={"host": host})
    assert (r.status_code == 200) is ok
    if not ok:
        assert r.status_code == 400 and "addressed to localhost" in r.json()["error"]


def test_any_host_when_served_on_the_network():
    from convsee.web.guard import RequestGuard

    async def hello(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})

    c = TestClient(RequestGuard(hello, any_host=True), base_url="http://192.168.1.5:8000")
    assert c.get("/", headers={"host": "mybox.lan:8000"}).text == "hi"
    r = c.post("/api/x", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415  # the other checks still hold


@pytest.mark.parametrize(
    "headers, status, message",
    [
        ({"content-type": "text/plain"}, 415, "Content-Type: application/json"),
        ({}, 415, "Content-Type: application/json"),
        ({"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        ({"content-type": "multipart/form-data; boundary=x"}, 415, "application/json"),
        ({**JSON, "origin": "http://attacker.example"}, 403, "cross-origin"),
        ({**JSON, "origin": "null"}, 403, "cross-origin"),
        ({**JSON, "origin": "http://127.0.0.1:9999"}, 403, "cross-origin"),
        ({**JSON, "sec-fetch-site": "cross-site"}, 403, "cross-site"),
        ({**JSON, "origin": "http://127.0.0.1:8000"}, 200, ""),
        ({"content-type": "application/json; charset=utf-8"}, 200, ""),
    ],
)
def test_cross_site_posts_are_refused(client, headers, status, message):
    import json

    r = client.post("/api/activations", content=json.dumps(sample_body()), headers=headers)
    assert r.status_code == status, r.text
    if message:
        assert message in r.json()["error"]


def test_security_headers(client):
    r = client.get("/")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-eval';" in r.headers["content-security-policy"]


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"png": "data:"}, 400, "'png' is empty"),
        ({"png": "data:image/png;base64"}, 400, "'png' is empty"),
        ({"png": "data:image/png;base64,"}, 400, "'png' is empty"),
        ({"png": "é"}, 400, "not valid base64"),
        (_png_body(png_bomb(13000)), 422, "too large: 13000x13000 pixels"),
        (_png_body(png_bomb(2100, rows=1)), 422, "the limit is 4 megapixels"),
        (_png_body(png_bomb(20000, rows=1)), 422, "too large"),
        (_png_body(gif_bomb()), 422, "too large"),
        (_png_body(EPS), 422, "not an image convsee reads"),
        (_png_body(b"not an image"), 422, "not an image convsee reads"),
        ({"image": [[0] * 28] * 27 + [[0] * 27 + [int("9" * 90)]]}, 400, "outside [0, 1]"),
        ({"image": [[0] * 28] * 28, "encoding": "x" * 200_000}, 400, "a string of 200000"),
        ({"image": [[0] * 28] * 28, "attribution": ["x"] * 9}, 400, "a list of 9 items"),
        ({"image": [[0] * 28] * 28, "blur": [3, "x" * 1000]}, 400, "two numbers"),
        ({"image": [[0] * 28] * 28, "blur": [9, 1]}, 400, "kernel is not 1, 3, 5 or 7"),
        ({"image": [[0] * 28] * 28, "blur": [3, 11]}, 400, "sigma is outside"),
        ({"image": "x" * 100_000}, 400, "got a string of 100000"),
        ({"image": [[0] * 50_000]}, 400, "got a list of 1 items"),
    ],
)
def test_bad_requests_are_short_4xx(client, body, status, message):
    import json

    r = client.post("/api/activations", content=json.dumps(body), headers=JSON)
    assert r.status_code == status, r.text[:300]
    error = r.json()["error"]
    assert message in error and len(error) < 200
    assert not re.search("0x[0-9a-f]{6}|<|xxxxxxxx", error)  # no repr, no echo
    assert client.post("/api/activations", json=sample_body()).status_code == 200


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"[" * 100_000, "nested too deeply"),
        (b'{"image": [[' + b"9" * 4000 + b"]]}", "too long"),
        (b'{"image": [[1e999]]}', "out of range"),
    ],
)
def test_raw_json_attacks(client, raw, message):
    r = client.post("/api/activations", content=raw, headers=JSON)
    assert r.status_code == 400 and message in r.json()["error"]


@pytest.mark.parametrize(
    "kind", ["²", "٣", "3 ", "03x", "9" * 4400, "-1", "10", "%C2%B2", "1e1", "nan"]
)
def test_no_such_sample(client, kind):
    r = client.get(f"/api/sample/{kind}")
    assert r.status_code == 404
    assert r.json()["error"] == "no such sample; use 0..9 or random"


def test_sample_digits_still_work(client):
    assert client.get("/api/sample/3").json()["name"] == "sample:3"
    r = client.get("/api/sample/random")  # no test set here: said, never a sample instead
    assert r.status_code == 404 and "no test set" in r.json()["error"]


def test_bad_content_length_is_400(client):
    r = client.post(
        "/api/activations", content=b"{}", headers={**JSON, "content-length": "9" * 5000}
    )
    assert r.status_code in (400, 413)


def test_too_many_requests_at_once_get_503(client, monkeypatch):
    import convsee.web.server as server

    monkeypatch.setattr(server, "MAX_PENDING", 0)
    r = client.post("/api/activations", json=sample_body())
    assert r.status_code == 503 and "busy" in r.json()["error"]


def test_range_cache_is_bounded():
    from convsee.web.served import RANGE_CACHE_SIZE, global_ranges, serve_model

    served = serve_model()
    cache: dict = {}
    first = global_ranges(served, (3, 0.5), cache)
    for i in range(100):
        global_ranges(served, (3, 1 + i / 100), cache)
    assert len(cache) == RANGE_CACHE_SIZE
    assert global_ranges(served, (3, 0.5), cache) == first  # recomputed the same


def _busy_check(client, monkeypatch, target, request):
    """Block `target` (a name in convsee.web.schema) while `request` runs in a thread; the
    event loop must answer /api/info meanwhile."""
    import convsee.web.schema as server

    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    real = getattr(server, target)

    def blocking(*a, **k):
        started.set()
        release.wait(5)
        finished.set()
        return real(*a, **k)

    monkeypatch.setattr(server, target, blocking)
    results = []
    t = threading.Thread(target=lambda: results.append(request()))
    t.start()
    try:
        assert started.wait(20)
        r = client.get("/api/info")
        answered_while_busy = not finished.is_set()
    finally:
        release.set()
        t.join(30)
    assert r.status_code == 200 and answered_while_busy
    return results[0]


def test_views_do_not_freeze_the_loop(monkeypatch, mnist_dir):
    """Views are computed in the background on request: while one is being computed the
    loop answers, updates are served, and asking again says "computing" at once."""
    from convsee.web import server, views

    started, release = threading.Event(), threading.Event()
    real = views.Views._optimized

    def slow(self, model, layer, unit):
        started.set()
        release.wait(10)
        return real(self, model, layer, unit)

    monkeypatch.setattr(views.Views, "_optimized", slow)
    monkeypatch.setattr(views.Views, "_exemplars", lambda self, m, layer, u: {"status": "ready"})
    with TestClient(server.create_app(data_dir=mnist_dir), base_url=LOCAL) as c:
        first = c.get("/api/views?layer=conv2&unit=1").json()
        assert first["optimized"]["status"] == "computing"
        assert started.wait(20)
        try:
            assert c.get("/api/info").status_code == 200
            again = c.get("/api/views?layer=conv2&unit=1").json()
            assert again["optimized"]["status"] == "computing"
            assert c.post("/api/activations", json=sample_body()).status_code == 200
        finally:
            release.set()
        deadline = time.monotonic() + 30
        while c.get("/api/views?layer=conv2&unit=1").json()["optimized"]["status"] != "ready":
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_image_decoding_does_not_freeze_the_loop(client, monkeypatch):
    img = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(img).line([(140, 30), (140, 250)], fill=255, width=22)
    body = _png_body(encoded(img, "PNG"))
    r = _busy_check(
        client,
        monkeypatch,
        "fit",
        lambda: client.post("/api/activations", json=body),
    )
    assert r.status_code == 200 and r.json()["prediction"] == 1


def test_large_images_do_not_delay_small_ones(client, monkeypatch):
    import convsee.web.schema as server

    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    real = server.fit

    def slow_when_large(image, prep):
        if getattr(image, "size", (0, 0))[0] > 500:  # 2000 px, averaged down to 1000
            started.set()
            release.wait(10)
            finished.set()
        return real(image, prep)

    monkeypatch.setattr(server, "fit", slow_when_large)
    img = Image.new("L", (2000, 2000), 0)
    ImageDraw.Draw(img).line([(1000, 200), (1000, 1800)], fill=255, width=160)
    big = _png_body(encoded(img, "PNG"))
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(client.post("/api/activations", json=big)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    try:
        assert started.wait(20)
        r = client.post("/api/activations", json=sample_body())
        served_meanwhile = not finished.is_set()
    finally:
        release.set()
        for t in threads:
            t.join(30)
    assert r.status_code == 200 and served_meanwhile
    assert [x.json()["prediction"] for x in results] == [1, 1, 1]


def test_attribution_holds_the_torch_lock(client, monkeypatch):
    import convsee.run.attribution as attribution
    from convsee.web import server

    seen = []
    real = attribution.attribute

    def spy(*a, **k):
        seen.append(server.TORCH_LOCK.locked())
        return real(*a, **k)

    monkeypatch.setattr(attribution, "attribute", spy)
    r = client.post("/api/activations", json={**sample_body(), "attribution": "saliency"})
    assert r.status_code == 200 and seen == [True]


# ---------- serve: addresses, ports, the warning ----------


@pytest.fixture
def no_serving(monkeypatch):
    """cmd_serve up to the point where it would serve forever; what it would serve on."""
    import uvicorn

    import convsee.web.server

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(("uvicorn.run", a, k)))
    monkeypatch.setattr(convsee.web.server, "create_app", lambda *a, **k: calls.append(k))
    from convsee.web import runner

    def fake_run(app, sock, limits=None):
        calls.append(("run_app", sock.family, sock.getsockname()))

    monkeypatch.setattr(runner, "run_app", fake_run)
    return calls


def test_serve_on_ipv6_loopback(no_serving, capsys):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    assert main(["serve", "--host", "::1", "--port", "0"]) == 0
    assert no_serving[0]["any_host"] is False  # loopback: only loopback Host names
    (what, family, address) = no_serving[1]
    assert what == "run_app" and family == socket.AF_INET6 and address[0] == "::1"
    assert f"http://[::1]:{address[1]}/" in capsys.readouterr().out


def test_serve_warns_when_open_to_the_network(no_serving, capsys):
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 0
    assert no_serving[0]["any_host"] is True
    err = capsys.readouterr().err
    assert "open to anyone who can reach this machine" in err and "no authentication" in err


def test_serve_restarts_on_a_port_in_time_wait(no_serving, capsys):
    # what a server that had clients leaves behind: its side of a connection in TIME_WAIT
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's has
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = listener.accept()
    conn.close()  # the server closes first: TIME_WAIT on its side
    time.sleep(0.05)
    client.close()
    listener.close()
    assert main(["serve", "--port", str(port)]) == 0, capsys.readouterr().err
    assert no_serving[1][2] == ("127.0.0.1", port)


def test_serve_says_when_the_port_is_taken(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err


# ---------- connection limits, on real sockets (a tiny app, small limits) ----------


async def tiny_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    reply = b"x" * 8_000_000 if scope["path"] == "/big" else b"ok" + body
    headers = [(b"content-length", str(len(reply)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": reply})


@pytest.fixture(scope="module")
def small_server():
    from convsee.web.runner import ServerLimits, listen, make_server, run_server

    limits = ServerLimits(
        head_timeout=1.0,
        body_timeout=1.0,
        response_timeout=2.0,
        keep_alive=2,
        max_connections=8,
        backlog=16,
        shutdown_timeout=1,
    )
    sock = listen("127.0.0.1", 0)
    server = make_server(tiny_app, limits)
    thread = threading.Thread(target=run_server, args=(server, sock), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(5)


def closed_within(s: socket.socket, seconds: float, drip: bytes = b"") -> float | None:
    """Seconds until the server closed s (None if it did not within `seconds`), sending
    `drip` one byte every 0.2 s meanwhile."""
    t0 = time.monotonic()
    s.settimeout(0.2)
    i = 0
    while time.monotonic() - t0 < seconds:
        try:
            if i < len(drip):
                s.send(drip[i : i + 1])
                i += 1
            if s.recv(1024) == b"":
                return time.monotonic() - t0
        except TimeoutError:
            continue
        except OSError:  # reset by the server
            return time.monotonic() - t0
    return None


def http_get(port: int, path: str = "/") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        return data


def test_a_silent_connection_is_dropped(small_server):
    with socket.create_connection(("127.0.0.1", small_server)) as s:
        assert closed_within(s, 6) is not None  # head_timeout 1 s


def test_a_trickled_head_is_dropped(small_server):
    head = b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"X-Slow: " + b"a" * 100
    with socket.create_connection(("127.0.0.1", small_server)) as s:
        assert closed_within(s, 6, drip=head) is not None  # bytes keep coming: still dropped


def test_a_trickled_body_is_dropped(small_server):
    with socket.create_connection(("127.0.0.1", small_server)) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n")
        assert closed_within(s, 6, drip=b"x" * 100) is not None


def test_a_client_that_does_not_read_is_dropped(small_server):
    import errno

    with socket.create_connection(("127.0.0.1", small_server)) as s:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")  # 8 MB, never read
        deadline, reset = time.monotonic() + 6, False  # the response phase has 2 s
        while not reset and time.monotonic() < deadline:
            time.sleep(0.2)
            reset = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET
        assert reset


def test_keep_alive_requests_still_work(small_server):
    with socket.create_connection(("127.0.0.1", small_server), timeout=5) as s:
        for _ in range(3):
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            reply = b""
            while not reply.endswith(b"\r\n\r\nok"):
                chunk = s.recv(4096)
                assert chunk, reply
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200")
            time.sleep(0.6)  # 1.8 s in all: longer than one head_timeout, in three phases


def test_a_full_server_drops_the_longest_idle_connection(small_server):
    idle = [socket.create_connection(("127.0.0.1", small_server)) for _ in range(8)]
    try:
        time.sleep(0.3)
        assert http_get(small_server).startswith(b"HTTP/1.1 200")  # a 9th: served
        assert closed_within(idle[0], 0.5) is not None  # the oldest made room
    finally:
        for s in idle:
            s.close()
