"""API tests, in process: every kind of bad request gets a 4xx and the server keeps serving."""

import base64
import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from convsee.datasets.inputs import samples
from convsee.web.server import MAX_BODY, create_app

LOCAL = "http://127.0.0.1:8000"  # the server answers only Host names of loopback
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(), base_url=LOCAL) as c:
        yield c


def test_image_form_matches_the_model(client):
    from convsee.models.checkpoint import load_checkpoint

    s = samples()[7]
    r = client.post("/api/activations", json={"image": s.image.tolist()})
    assert r.status_code == 200
    j = r.json()
    assert j["prediction"] == 7 and len(j["probabilities"]) == 10
    assert abs(sum(j["probabilities"]) - 1) < 1e-4
    net, _ = load_checkpoint()
    x = (torch.from_numpy(s.image)[None, None] - 0.1307) / 0.3081
    with torch.no_grad():
        c1 = F.conv2d(x, net.conv1.weight, net.conv1.bias)[0].numpy()
    conv1 = j["layers"]["conv1"]
    assert conv1["shape"] == [6, 24, 24] and conv1["after_relu"] is False
    np.testing.assert_allclose(np.array(conv1["values"]), c1, atol=2e-4)
    assert set(j["layers"]) >= {"conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3"}


def test_png_form_and_f32_encoding(client):
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(140, 30), (140, 250)], fill=(0, 0, 0, 255), width=22)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    r = client.post("/api/activations", json={"png": url, "encoding": "f32", "blur": [3, 1.0]})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["prediction"] == 1
    seen = np.frombuffer(base64.b64decode(j["input"]), "<f4").reshape(28, 28)
    assert seen.max() > 0.9 and seen[:, :4].max() == 0
    pool2 = np.frombuffer(base64.b64decode(j["layers"]["pool2"]["values"]), "<f4")
    assert pool2.size == 16 * 4 * 4


def test_samples_and_static(client):
    assert client.get("/api/sample/4").json()["name"] == "sample:4"
    assert client.get("/api/sample/random").status_code == 200
    assert client.get("/api/sample/12").status_code == 404
    assert "convsee" in client.get("/").text
    assert client.get("/static/app.js").status_code == 200
    info = client.get("/api/info").json()
    assert len(info["kernels"]["conv2"]) == 16 and info["classes"][3] == "3"


def row(v=0.0):
    return [v] * 28


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"{not json", 400, "malformed JSON"),
        (b'{"image": NaN}', 400, "NaN is not allowed"),
        (b'{"image": [[Infinity]]}', 400, "Infinity is not allowed"),
        (json.dumps({"image": [row()] * 27}).encode(), 400, "28 rows"),
        (json.dumps({"image": [row()] * 27 + [[0.0] * 5]}).encode(), 400, "row 27 must hold 28"),
        (json.dumps({"image": [row()] * 27 + [["x"] * 28]}).encode(), 400, "must be a number"),
        (json.dumps({"image": [row()] * 27 + [row(1.5)]}).encode(), 400, "outside [0, 1]"),
        (json.dumps({"image": [row()] * 27 + [row(-0.1)]}).encode(), 400, "outside [0, 1]"),
        (json.dumps({"image": "abc"}).encode(), 400, "28 rows"),
        (json.dumps({}).encode(), 400, "exactly one of"),
        (json.dumps([1, 2]).encode(), 400, "JSON object"),
        (json.dumps({"png": "%%%"}).encode(), 400, "not valid base64"),
        (
            json.dumps({"png": base64.b64encode(b"not a png").decode()}).encode(),
            422,
            "not an image",
        ),
        (json.dumps({"image": [row()] * 28}).encode(), 200, ""),  # blank is fine as an array
        (json.dumps({"image": [row()] * 28, "blur": [4, 1]}).encode(), 400, "'blur'"),
        (json.dumps({"image": [row()] * 28, "encoding": "hex"}).encode(), 400, "'encoding'"),
    ],
)
def test_bad_requests(client, body, status, message):
    r = client.post("/api/activations", content=body, headers=JSON)
    assert r.status_code == status, r.text
    if status != 200:
        assert message in r.json()["error"]
    assert client.get("/api/sample/1").status_code == 200  # still serving


def test_blank_png_is_a_clear_422(client):
    buf = io.BytesIO()
    Image.new("L", (280, 280), 0).save(buf, "PNG")
    r = client.post("/api/activations", json={"png": base64.b64encode(buf.getvalue()).decode()})
    assert r.status_code == 422 and "blank image" in r.json()["error"]


def test_body_cap(client):
    big = b'{"image": "' + b"x" * (MAX_BODY + 10) + b'"}'
    r = client.post("/api/activations", content=big, headers=JSON)
    assert r.status_code == 413 and "too large" in r.json()["error"]

    def chunks():  # no Content-Length: the cap holds while streaming
        for _ in range(MAX_BODY // 4096 + 2):
            yield b" " * 4096

    r = client.post("/api/activations", content=chunks(), headers=JSON)
    assert r.status_code == 413


@pytest.mark.parametrize(
    "path",
    [
        "/static/../server.py",
        "/static/..%2fserver.py",
        "/static/%2e%2e/server.py",
        "/../../etc/passwd",
        "/static//etc/passwd",
    ],
)
def test_no_file_outside_static(client, path):
    r = client.get(path)
    assert r.status_code in (400, 404)
    assert "create_app" not in r.text and "root:" not in r.text


def test_attribution_overlay(client):
    from convsee.models.checkpoint import load_checkpoint
    from convsee.run.attribution import grad_cam, saliency

    s = samples()[5]
    model, _ = load_checkpoint()
    for kind in ("gradcam", "saliency"):
        r = client.post("/api/activations", json={"image": s.image.tolist(), "attribution": kind})
        a = r.json()["attribution"]
        assert a["kind"] == kind and a["target"] == 5
        m = np.array(a["map"])
        ref = grad_cam(model, s.image, 5)[1] if kind == "gradcam" else saliency(model, s.image, 5)
        np.testing.assert_allclose(m, ref / ref.max(), atol=1e-3)
    r = client.post("/api/activations", json={"image": s.image.tolist(), "attribution": "x"})
    assert r.status_code == 400 and "'attribution'" in r.json()["error"]


def test_views_for_the_page(mnist_dir):
    with TestClient(create_app(data_dir=mnist_dir), base_url=LOCAL) as c:
        v = c.get("/api/views").json()
    assert np.array(v["optimized"]["conv2"]).shape == (16, 28, 28)
    assert np.array(v["optimized"]["fc3"]).shape == (10, 28, 28)
    assert np.array(v["exemplars"]["conv1"]).shape == (6, 6, 5, 5)
    assert np.array(v["exemplars"]["conv2"]).shape == (16, 6, 14, 14)
