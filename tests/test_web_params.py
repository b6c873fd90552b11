"""What the server answers to a bad query string and to a library error (web/requests.py
`query`, web/keys.py): a malformed query value is a 400 with one sentence (never a 404, never
a computed view); a ConvseeError that reaches an endpoint is a 4xx naming the JSON key the
client sent ('png', 'channel', 'attribution_layer'), never a CLI flag such as --layer."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from convsee.errors import ConvseeError
from convsee.web.keys import KEYS, key, said
from convsee.web.server import create_app

LOCAL = "http://127.0.0.1:8000"
MESSAGE = "{param} 99 is out of range: the layer has 0..15"


@pytest.fixture(scope="module")
def app():
    return create_app()


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=LOCAL) as c:
        yield c


def error(r, status: int) -> str:
    """The answer's one sentence, checked: the status, one line, no flag, no traceback."""
    assert r.status_code == status, r.text
    text = r.json()["error"]
    assert "\n" not in text and "--" not in text and "Traceback" not in text, text
    return text


def png(w: int = 28, h: int = 28) -> str:
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).line([(w // 2, 4), (w // 2, h - 4)], fill=255, width=3)  # a 1
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def raising(param: str, message: str = MESSAGE):
    def fail(*a, **k):
        raise ConvseeError(message, param=param)

    return fail


# ---------- query strings ----------


@pytest.mark.parametrize(
    "query, words",
    [
        ("layer=conv2&unit=x", "'unit' must be a whole number"),
        ("layer=conv2&unit=-1", "'unit' must be a whole number"),
        ("layer=conv2&unit=1.5", "'unit' must be a whole number"),
        ("layer=conv2&unit=", "'unit' must be a whole number"),
        ("layer=conv2&unit=%EF%BC%91", "'unit' must be a whole number"),  # a full-width 1
        ("layer=conv2&unit=1234567890", "'unit' must be a whole number"),
        ("layer=conv2&unit=1&unit=2", "'unit' is given more than once"),
        ("layer=conv2&layer=conv1&unit=1", "'layer' is given more than once"),
        ("layer=conv2&unit=1&units=2", "unknown query parameter: this address takes 'layer'"),
        ("layer=conv2", "give ?layer=NAME&unit=N"),
        ("unit=1", "give ?layer=NAME&unit=N"),
    ],
)
def test_malformed_views_queries_are_400(app, client, query, words):
    assert words in error(client.get("/api/views?" + query), 400)
    assert app.state.views._thread is None  # nothing was queued


def test_views_of_no_such_unit_or_layer_are_404(client):
    assert "0..15" in error(client.get("/api/views?layer=conv2&unit=16"), 404)
    assert "no such map or vector layer" in error(client.get("/api/views?layer=x&unit=1"), 404)


EXPLAIN = {"layer": "conv1", "channel": 0, "row": 3, "col": 4, "input": "sample:0"}


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/api/info", None),
        ("GET", "/api/sample/3", None),
        ("GET", "/api/sample/random", None),
        ("POST", "/api/activations", {"input": "sample:0", "layers": ["conv1"]}),
        ("POST", "/api/explain", EXPLAIN),
    ],
)
def test_endpoints_that_take_no_query_refuse_one(client, method, path, body):
    for query in ("?x=1", "?layer=conv1", "?x"):
        r = client.request(method, path + query, json=body)
        assert "takes no query parameters" in error(r, 400)
    if path != "/api/sample/random":  # no test set here: its 404 says so
        assert client.request(method, path, json=body).status_code == 200


# ---------- the table ----------


def test_the_key_named_is_the_one_sent():
    sent = {"png": "...", "layer": "conv1"}
    assert key("input_size", ("input", "png", "image"), sent) == "'png'"
    assert key("input_size", ("input", "png", "image"), {"image": []}) == "'image'"
    assert key("input_size", ("input", "png", "image")) == "'input'"  # none sent: the first
    assert key("channel", ("layer", "channel", "index"), {"index": 3}) == "'channel'"
    assert key("unit", ("layer", "channel", "index"), {"index": 3}) == "'index'"
    assert key("layer", ("png", "attribution_layer")) == "'attribution_layer'"
    assert key("layer", ("png", "layers"), {"attribution_layer": "conv1"}) == "'layers'"
    assert key("resize", ("png",)) == "resize"  # the server's setting: its Python name
    e = ConvseeError(MESSAGE, param="channel")
    assert said(e, ("channel",)) == "'channel' 99 is out of range: the layer has 0..15"
    assert said(ConvseeError("bad\n  value", param="layers"), ("layers",)) == "'layers': bad value"
    assert all(not k.startswith("-") for keys in KEYS.values() for k in keys)


# ---------- library errors through each endpoint ----------


@pytest.mark.parametrize(
    "field, value",
    [("input", "sample:0"), ("png", png()), ("image", np.zeros((28, 28)).tolist())],
)
def test_activations_names_the_input_key_sent(app, client, monkeypatch, field, value):
    net = app.state.served.net
    monkeypatch.setattr(net, "run", raising("input_size", "{param} does not fit the model"))
    r = client.post("/api/activations", json={field: value, "layers": ["conv1"]})
    assert error(r, 422) == f"'{field}' does not fit the model"


def test_activations_names_layers_and_the_attribution_layer(app, client, monkeypatch):
    import convsee.run.attribution as attribution

    net = app.state.served.net
    with monkeypatch.context() as m:
        m.setattr(net, "run", raising("channel"))
        body = {"input": "sample:0", "layers": {"conv2": {"channels": [1]}}}
        r = client.post("/api/activations", json=body)
        assert error(r, 422) == "'layers' 99 is out of range: the layer has 0..15"
    m = "no map layer of the model has a gradient for this target: choose one with {param}"
    monkeypatch.setattr(attribution, "attribute", raising("layer", m))
    for extra in ({}, {"attribution_layer": "conv2"}):
        body = {"input": "sample:0", "layers": [], "attribution": "saliency", **extra}
        r = client.post("/api/activations", json=body)
        assert error(r, 422).endswith("choose one with 'attribution_layer'")


@pytest.mark.parametrize(
    "param, body, named",
    [
        ("channel", EXPLAIN, "'channel'"),
        ("unit", {"layer": "fc1", "index": 3, "input": "sample:0"}, "'index'"),
        ("layer", EXPLAIN, "'layer'"),
        ("input_size", {**EXPLAIN, "input": None, "png": png()}, "'png'"),
    ],
)
def test_explain_names_the_key_sent(client, monkeypatch, param, body, named):
    import convsee.web.explain_api as explain_api

    body = {k: v for k, v in body.items() if v is not None}
    monkeypatch.setattr(explain_api, "explain_prepared", raising(param))
    r = client.post("/api/explain", json=body)
    assert error(r, 422) == f"{named} 99 is out of range: the layer has 0..15"


def test_a_failed_view_names_the_query_key(monkeypatch):
    from convsee.web import views

    monkeypatch.setattr(views.Views, "_optimized", lambda self, m, layer, u: raising("channel")())
    with TestClient(create_app(), base_url=LOCAL) as c:
        deadline = time.monotonic() + 120  # the first view builds LeNet-5's torch copy
        while True:
            got = c.get("/api/views?layer=conv2&unit=1").json()["optimized"]
            if got["status"] != "computing" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert got == {"status": "failed", "why": "'unit' 99 is out of range: the layer has 0..15"}


def test_a_real_library_error_names_no_flag():
    """An image of the wrong size for a model served with resize 'none': the library's own
    sentence (fit's, as the CLI would print it but for the flag), after the key."""
    from foreign_models import make

    from convsee.datasets.transforms import fit
    from convsee.models.load import wrap

    net = wrap(make("RGBNet"), resize="none")
    image = Image.new("RGB", (50, 40), (10, 200, 30))
    with pytest.raises(ConvseeError) as caught:
        fit(image, net.prep)
    assert caught.value.param == "resize"
    want = "'png': " + caught.value.render("resize")
    buf = io.BytesIO()
    image.save(buf, "PNG")
    sent = base64.b64encode(buf.getvalue()).decode()
    with TestClient(create_app(net), base_url=LOCAL) as c:
        r = c.post("/api/activations", json={"png": sent, "layers": []})
        assert error(r, 422) == want
        r = c.post(
            "/api/explain", json={"layer": "conv1", "channel": 0, "row": 0, "col": 0, "png": sent}
        )
        assert error(r, 422) == want
