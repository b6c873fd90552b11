"""POST /api/explain (web/explain_api.py) with the Starlette TestClient: every value equals
the one /api/activations sends for the same input and unit (≤ 1e-5, relative), on LeNet-5 and
on foreign models (stride, padding, dilation, groups, BatchNorm, average pooling, a residual
block); bad requests get a 4xx with one sentence naming the JSON key; the layer sentences of
/api/info and the playground's control ranges."""

from __future__ import annotations

import json

import foreign_models as fm
import numpy as np
import pytest
import test_explain as te
import test_playground as tp
import torch
from starlette.testclient import TestClient

import convsee
from convsee.web.explain_api import PLAYGROUND
from convsee.web.server import create_app

LOCAL = "http://127.0.0.1:8000"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def lenet_client():
    with TestClient(create_app(), base_url=LOCAL) as c:
        yield c


def activation(client, body: dict, layer: str, unit) -> float:
    """The unit's value as /api/activations sends it (float32, the channel asked for)."""
    req = {k: v for k, v in body.items() if k in ("input", "png", "image")}
    req["encoding"] = "f32"
    info = client.get("/api/info").json()
    L = next(x for x in info["spec"]["layers"] if x["name"] == layer)
    if L["kind"] == "map":
        ps = info["page_size"]
        page = unit[0] // ps
        req["layers"] = {layer: {"order": "index", "page": page}}
        r = client.post("/api/activations", content=json.dumps(req), headers=JSON)
        assert r.status_code == 200, r.text
        d = r.json()["layers"][layer]
        k = d["channels"].index(unit[0])
        return float(floats(d["values"]).reshape(-1, *d["size"])[k, unit[1], unit[2]])
    req["layers"] = {layer: {}}
    r = client.post("/api/activations", content=json.dumps(req), headers=JSON)
    assert r.status_code == 200, r.text
    d = r.json()["layers"][layer]
    v = floats(d["values"])
    units = d["channels"] or list(range(len(v)))
    return float(v[units.index(unit[0])])


def floats(b64: str) -> np.ndarray:
    import base64

    return np.frombuffer(base64.b64decode(b64), "<f4")


def explain(client, body: dict) -> dict:
    r = client.post("/api/explain", content=json.dumps(body), headers=JSON)
    assert r.status_code == 200, r.text
    return r.json()


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-5 * max(abs(b), 1.0)


def test_lenet_every_layer_equals_activations(lenet_client):
    c = lenet_client
    units = {
        "conv1": [(0, 0, 0), (3, 10, 12), (5, 23, 23)],
        "relu1": [(2, 11, 7)],
        "pool1": [(4, 5, 6), (0, 11, 0)],
        "conv2": [(0, 3, 4), (15, 7, 7)],
        "relu2": [(9, 2, 2)],
        "pool2": [(7, 1, 2)],
        "flatten": [(100,)],
        "fc1": [(0,), (119,)],
        "fc2": [(40,)],
        "fc3": [(3,)],
    }
    for layer, us in units.items():
        for u in us:
            body = {"input": "sample:3", "layer": layer}
            if len(u) == 3:
                body.update(channel=u[0], row=u[1], col=u[2])
            else:
                body["index"] = u[0]
            e = explain(c, body)
            want = activation(c, body, layer, u)
            assert close(e["value"], want), (layer, u, e["value"], want)
            assert e["exact"] and e["layer"] == layer and e["unit"] == list(u)
    # conv2: six partial sums that add up, with the bias, to the value
    e = explain(c, {"input": "sample:3", "layer": "conv2", "channel": 1, "row": 2, "col": 5})
    assert e["op"] == "conv2d" and len(e["partial_sums"]) == 6
    assert close(sum(e["partial_sums"]) + e["bias"], e["value"])
    prods = np.asarray(e["products"])
    assert np.allclose(prods.sum((1, 2)), e["partial_sums"], atol=1e-9)
    assert np.allclose(np.asarray(e["inputs"]) * np.asarray(e["weights"]), prods, atol=1e-12)


def test_softmax_equals_probabilities(lenet_client):
    c = lenet_client
    r = c.post(
        "/api/activations",
        content=json.dumps({"input": "sample:5", "layers": {}}),
        headers=JSON,
    )
    probs = r.json()["probabilities"]
    for k in (0, int(np.argmax(probs))):
        e = explain(c, {"input": "sample:5", "layer": "softmax", "index": k})
        assert e["op"] == "softmax" and len(e["inputs"]) == 10
        assert abs(e["value"] - probs[k]) <= 1e-5  # the answer rounds to 6 places
        z = np.asarray(e["inputs"])
        assert np.isclose(e["value"], np.exp(z[k] - z.max()) / np.exp(z - z.max()).sum())


def test_image_and_png_inputs(lenet_client):
    c = lenet_client
    rng = np.random.default_rng(0)
    img = np.round(rng.random((28, 28)), 3).tolist()
    body = {"image": img, "layer": "conv1", "channel": 2, "row": 4, "col": 9}
    assert close(explain(c, body)["value"], activation(c, body, "conv1", (2, 4, 9)))
    import base64
    import io

    from PIL import Image, ImageDraw

    pic = Image.new("L", (140, 140))
    ImageDraw.Draw(pic).line([(40, 20), (90, 120)], fill=255, width=14)  # a stroke, as drawn
    buf = io.BytesIO()
    pic.save(buf, "PNG")
    body = {"png": base64.b64encode(buf.getvalue()).decode(), "layer": "pool1", "channel": 1}
    body.update(row=3, col=3)
    assert close(explain(c, body)["value"], activation(c, body, "pool1", (1, 3, 3)))


@pytest.mark.parametrize(
    "body, status, key",
    [
        ({"layer": "conv9", "channel": 0, "row": 0, "col": 0}, 404, "'layer'"),
        ({"layer": "conv1", "channel": 6, "row": 0, "col": 0}, 422, "'channel'"),
        ({"layer": "conv1", "channel": 0, "row": 24, "col": 0}, 422, "'row'"),
        ({"layer": "conv1", "channel": 0, "row": 0, "col": -1}, 422, "'col'"),
        ({"layer": "conv1", "channel": 0, "row": 0}, 400, "'col'"),
        ({"layer": "conv1", "channel": 0.5, "row": 0, "col": 0}, 400, "'channel'"),
        ({"layer": "conv1", "channel": True, "row": 0, "col": 0}, 400, "'channel'"),
        ({"layer": "fc1", "index": 120}, 422, "'index'"),
        ({"layer": "softmax", "index": 10}, 422, "'index'"),
        ({"layer": ["conv1"], "channel": 0, "row": 0, "col": 0}, 400, "'layer'"),
    ],
)
def test_bad_requests_name_the_key(lenet_client, body, status, key):
    r = lenet_client.post(
        "/api/explain", content=json.dumps({"input": "sample:0", **body}), headers=JSON
    )
    assert r.status_code == status, r.text
    msg = r.json()["error"]
    assert key in msg and "\n" not in msg and len(msg) < 200 and "Traceback" not in msg


def test_guards_as_the_other_posts(lenet_client):
    c = lenet_client
    body = json.dumps({"input": "sample:0", "layer": "conv1", "channel": 0, "row": 0, "col": 0})
    assert (
        c.post("/api/explain", content=body, headers={"content-type": "text/plain"}).status_code
        == 415
    )
    evil = {**JSON, "origin": "http://evil.example"}
    assert c.post("/api/explain", content=body, headers=evil).status_code == 403
    r = c.post("/api/explain", content=body, headers={**JSON, "host": "evil.example"})
    assert r.status_code in (400, 403, 421)
    deep = "[" * 100 + "]" * 100
    assert c.post("/api/explain", content=deep, headers=JSON).status_code == 400
    big = b'{"png": "' + b"A" * (2 * 1024 * 1024) + b'"}'
    assert c.post("/api/explain", content=big, headers=JSON).status_code == 413
    body = {"layer": "conv1", "channel": 0, "row": 0, "col": 0}
    r = c.post("/api/explain", content=json.dumps(body), headers=JSON)
    assert r.status_code == 400 and "'input'" in r.json()["error"]


def foreign_client(model, size):
    net = convsee.wrap(model, input_size=size)
    return net, TestClient(create_app(net), base_url=LOCAL)


@pytest.mark.parametrize("which", ["features", "residual", "pools"])
def test_foreign_models_equal_activations(which):
    """stride 2 + padding 1, dilation 2 + groups 4, BatchNorm, avg pooling, a residual block."""
    torch.set_num_threads(1)
    if which == "features":
        model, size = te.features(), (3, 23, 23)
    elif which == "pools":
        model, size = te.pools(), (1, 16, 16)
    else:
        model, size = fm.make("ResidualNet"), (1, 28, 28)
    net, client = foreign_client(model, size)
    rng = np.random.default_rng(1)
    c, h, w = size
    img = rng.random((h, w, 3) if c == 3 else (h, w))
    body0 = {"image": np.round(img, 3).tolist()}
    ops, checked = set(), 0
    with client:
        info = client.get("/api/info").json()
        for L in info["spec"]["layers"]:
            if L["kind"] not in ("map", "vector") or L["name"] in ("",):
                continue
            if L["kind"] == "map":
                ch, hh, ww = L["shape"]
                u = (ch - 1, hh // 2, ww - 1)
                body = {**body0, "layer": L["name"], "channel": u[0], "row": u[1], "col": u[2]}
            else:
                u = (L["shape"][0] - 1,)
                body = {**body0, "layer": L["name"], "index": u[0]}
            r = client.post("/api/explain", content=json.dumps(body), headers=JSON)
            if r.status_code == 422:  # a layer explain cannot take (says why in one line)
                assert "\n" not in r.json()["error"]
                continue
            assert r.status_code == 200, (L["name"], r.text)
            e = r.json()
            want = activation(client, body, L["name"], u)
            assert close(e["value"], want), (L["name"], e["value"], want)
            ops.add(e["op"])
            checked += 1
        assert info["layer_words"] and all(info["layer_words"][n] for n in info["layer_words"])
    if which == "features":
        assert {"conv2d", "batch_norm", "avg_pool2d", "linear", "adaptive_avg_pool2d"} <= ops
    if which == "residual":
        assert {"conv2d", "batch_norm"} <= ops
    assert checked >= 5


def test_layer_words_lenet(lenet_client):
    info = lenet_client.get("/api/info").json()
    w = info["layer_words"]
    assert "28 − 5 + 1 = 24" in w["conv1"] and "no padding" in w["conv1"].lower()
    assert "12 − 5 + 1 = 8" in w["conv2"] and "6 input channels" in w["conv2"]
    assert "2×2 block" in w["pool1"] and "24 → 12" in w["pool1"] and "after ReLU" in w["pool1"]
    assert "negatives set to 0" in w["relu1"]
    assert "256" in w["fc1"] and "16×4×4" in w["flatten"]
    assert info["page_layers"][:3] == ["conv1", "relu1", "pool1"]
    assert info["first_conv"] == {
        "layer": "conv1",
        "size": 28,
        "kernel": 5,
        "stride": 1,
        "padding": 0,
        "dilation": 1,
    }


def test_layer_words_sizes_follow_conv2d():
    """The sizes in the sentences are torch's: stride 2 padding 1, dilation 2 padding 2."""
    net = convsee.wrap(te.features(), input_size=(3, 23, 23))
    with TestClient(create_app(net), base_url=LOCAL) as c:
        w = c.get("/api/info").json()["layer_words"]
    assert "⌊(23 + 2 − 3) / 2⌋ + 1 = 12" in w["0"] and "stride 2" in w["0"]
    assert "dilation 2" in w["3"] and "= 12" in w["3"] and "4 groups" in w["3"]
    assert "after ReLU" in w["3"]
    assert "(no bias)" in w["8"] and "plus a bias" in w["0"]  # conv 8 has bias=False


def test_playground_controls_are_the_tested_ranges():
    """The page's controls offer exactly what tests/test_playground.py checks against conv2d."""
    lo, hi = PLAYGROUND["size"]
    assert range(lo, hi + 1) == tp.SIZES
    assert range(PLAYGROUND["kernel"][0], PLAYGROUND["kernel"][1] + 1) == tp.KERNELS
    assert range(PLAYGROUND["stride"][0], PLAYGROUND["stride"][1] + 1) == tp.STRIDES
    assert range(PLAYGROUND["dilation"][0], PLAYGROUND["dilation"][1] + 1) == tp.DILATIONS
    assert tuple(PLAYGROUND["padding"]) == tp.PADDINGS
