"""API tests, in process: the page's server for LeNet-5 and for models that are not LeNet-5.
Numbers are checked against independent computations; every kind of bad request gets a 4xx
and the server keeps serving."""

import base64
import io
import json
import logging
import os
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, hatch_stripes
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from convsee.cli import main
from convsee.datasets.inputs import samples
from convsee.models.load import load_network
from convsee.web.server import (
    MAX_BODY,
    PAGE_SIZE,
    THUMB,
    create_app,
    decode_frame,
    default_layers,
)

LOCAL = "http://127.0.0.1:8000"  # the server answers only Host names of loopback
JSON = {"content-type": "application/json"}
RESNET = f"{REPO}/benchmarks/resnet.py:resnet18"
RGBNET = f"{REPO}/tests/foreign_models.py:seeded_rgbnet"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(), base_url=LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def resnet():
    """A ResNet-18 at 3x64x64: 64 to 512 channels, maps up to 32x32 (conv1)."""
    return load_network(RESNET, preprocess={"input_size": (3, 64, 64)})


@pytest.fixture(scope="module")
def resnet_client(resnet):
    with TestClient(create_app(resnet), base_url=LOCAL) as c:
        yield c


def frame(r):
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "application/octet-stream"
    head, data = decode_frame(r.content)

    def values(ref):
        return np.frombuffer(data[ref["offset"] : ref["offset"] + ref["length"]], np.uint8)

    return head, values


def png_url(img: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    img.save(buf, fmt)
    mime = "png" if fmt == "PNG" else "jpeg"
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode()


def lenet_torch():
    from convsee.models.checkpoint import load_checkpoint

    return load_checkpoint()[0]


def lenet_x(image):
    return (torch.from_numpy(np.asarray(image, np.float32))[None, None] - 0.1307) / 0.3081


# ---------- LeNet-5: the numbers ----------


def test_image_form_matches_the_model(client):
    s = samples()[7]
    r = client.post("/api/activations", json={"image": s.image.tolist(), "layers": ["conv1"]})
    assert r.status_code == 200
    j = r.json()
    assert j["prediction"] == 7 and len(j["probabilities"]) == 10
    assert abs(sum(j["probabilities"]) - 1) < 1e-4
    net = lenet_torch()
    with torch.no_grad():
        c1 = F.conv2d(lenet_x(s.image), net.conv1.weight, net.conv1.bias)[0].numpy()
        p = torch.softmax(net(lenet_x(s.image)), 1)[0].numpy()
    conv1 = j["layers"]["conv1"]
    assert conv1["shape"] == [6, 24, 24] and conv1["after_relu"] is False
    assert conv1["channels"] == list(range(6))
    np.testing.assert_allclose(np.array(conv1["values"]), c1, atol=2e-4)
    np.testing.assert_allclose(
        conv1["ranges"], np.stack([c1.min((1, 2)), c1.max((1, 2))], 1), atol=1e-5
    )
    np.testing.assert_allclose(j["probabilities"], p, atol=1e-5)


def test_default_page_is_todays_lenet_page(client):
    info = client.get("/api/info").json()
    assert info["default_layers"] == ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2"]
    r = client.post("/api/activations", json={"input": "sample:3"})
    assert list(r.json()["layers"]) == info["default_layers"]


def test_named_inputs_are_the_exact_images(client):
    """sample:7 is the bundled sample itself, not a re-preprocessed drawing of it (issue 12:
    the page once showed 91.6% where `predict` says 88.8%)."""
    from convsee.models.load import load_network

    net = load_network()
    want = net.predict(["sample:7"])[0]
    j = client.post("/api/activations", json={"input": "sample:7"}).json()
    assert j["input_name"] == "sample:7" and j["input_source"] == samples()[7].source
    np.testing.assert_allclose(j["input"], np.round(samples()[7].image, 4), atol=1e-4)
    np.testing.assert_allclose(j["probabilities"], want.probabilities, atol=1e-6)
    # the same digit through the canvas path: brought into MNIST form again, another number
    canvas = Image.fromarray(np.round(samples()[7].image * 255).astype(np.uint8)).resize((280, 280))
    redrawn = client.post("/api/activations", json={"png": png_url(canvas)}).json()
    assert abs(redrawn["probabilities"][7] - want.probabilities[7]) > 1e-3


def test_test_images_by_name(mnist_dir):
    from convsee.models.load import load_network

    net = load_network()
    with TestClient(create_app(data_dir=mnist_dir), base_url=LOCAL) as c:
        name = c.get("/api/sample/random").json()["name"]
        assert name.startswith("test:")
        j = c.post("/api/activations", json={"input": name}).json()
        assert j["input_name"] == name and j["input_label"] is not None
        pred = net.predict(net.inputs([name], mnist_dir))[0]
        np.testing.assert_allclose(j["probabilities"], pred.probabilities, atol=1e-6)
        assert c.post("/api/activations", json={"input": "test:10000"}).status_code == 404
        assert c.post("/api/activations", json={"input": "data:3"}).status_code == 404
        assert c.get("/api/info").json()["inputs"]["random"]["available"] is True


def test_the_lenet_page_starts_without_torch(mnist_dir):
    """LeNet-5's page with the test set from --data, built in a process that never imports
    torch; its random inputs are the published test files' images and labels."""
    import gzip
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from convsee.web.server import create_app\n"
        "from convsee.web.served import serve_model\n"
        f"create_app(data_dir={str(mnist_dir)!r})\n"
        f"src = serve_model(None, {str(mnist_dir)!r}).source\n"
        "print('torch' in sys.modules, src.name, len(src), src.labels()[:20].tolist(), "
        "int(src.images[7].sum()))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    images = gzip.decompress((mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes())[16:]
    labels = gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())[8:]
    want = f"False MNIST test 10000 {list(labels[:20])} {sum(images[7 * 784 : 8 * 784])}"
    assert r.stdout.strip() == want


def test_no_test_set_is_said(client):
    info = client.get("/api/info").json()
    assert info["inputs"]["random"] == {
        "available": False,
        "why": "no test set found: start convsee serve with --data DIR",
    }
    r = client.post("/api/activations", json={"input": "test:3"})
    assert r.status_code == 404 and "no test set" in r.json()["error"]


def test_png_form_and_u8_frame(client):
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(140, 30), (140, 250)], fill=(0, 0, 0, 255), width=22)
    body = {"png": png_url(img), "encoding": "u8", "blur": [3, 1.0], "layers": ["conv1", "fc1"]}
    head, values = frame(client.post("/api/activations", json=body))
    assert head["prediction"] == 1
    seen = values(head["input"]).reshape(head["input_shape"]) / 255
    assert head["input_shape"] == [28, 28] and seen.max() > 0.9 and seen[:, :4].max() == 0
    # the maps, 8-bit with each map's own range: within half a step of the float answer
    exact = client.post("/api/activations", json={**body, "encoding": "f32"}).json()
    c1 = np.frombuffer(base64.b64decode(exact["layers"]["conv1"]["values"]), "<f4").reshape(
        6, 24, 24
    )
    conv1 = head["layers"]["conv1"]
    assert conv1["size"] == [24, 24] and conv1["factor"] == 1
    q = values(conv1["values"]).reshape(6, 24, 24).astype(np.float64)
    lo, hi = np.array(conv1["ranges"]).T
    back = lo[:, None, None] + q / 255 * (hi - lo)[:, None, None]
    assert np.abs(back - c1).max() <= (hi - lo).max() / 255 / 2 + 1e-5
    np.testing.assert_allclose(lo, c1.min((1, 2)), atol=1e-5)
    fc1 = head["layers"]["fc1"]
    assert fc1["kind"] == "vector" and len(values(fc1["values"])) == 120


def test_global_range_is_the_checkpoints_reference(client):
    from convsee.models.checkpoint import load_weights

    _, meta = load_weights()
    j = client.post("/api/activations", json={"input": "sample:2"}).json()
    for name in ("conv1", "pool2", "fc1"):
        assert j["layers"][name]["reference"] == meta["reference_ranges"][name]
    # with a blur the reference no longer applies: the bundled samples' range, blurred
    j = client.post("/api/activations", json={"input": "sample:2", "blur": [5, 3]}).json()
    assert j["layers"]["conv1"]["reference"] != meta["reference_ranges"]["conv1"]


def test_samples_and_static(client):
    assert client.get("/api/sample/4").json()["name"] == "sample:4"
    assert client.get("/api/sample/12").status_code == 404
    assert "convsee" in client.get("/").text
    assert client.get("/static/app.js").status_code == 200
    info = client.get("/api/info").json()
    assert len(info["kernels"]["conv2"]) == 16 and info["classes"][3] == "3"
    assert info["inputs"]["draw"] is True and info["scores_layer"] == "fc3"
    from convsee.models.load import load_network

    assert info["spec"] == load_network().spec.to_dict()  # the page builds itself from this


def test_samples_and_test_images_only_for_a_model_that_takes_them(
    resnet, mnist_dir, tmp_path, monkeypatch
):
    """An RGB ResNet is not offered MNIST's digits as samples, random test images or
    exemplars; a --data folder the user names is used; a digit model gets all of them."""
    monkeypatch.setenv("CONVSEE_DATA", str(mnist_dir))  # where convsee finds MNIST by itself
    with TestClient(create_app(resnet), base_url=LOCAL) as c:
        info = c.get("/api/info").json()
        inp = info["inputs"]
        assert inp["samples"] == [] and not inp["random"]["available"]
        assert "the MNIST test set is not what it takes" in inp["random"]["why"]
        assert not info["exemplars"]["available"] and not info["has_test_set"]
        assert "no test images of this model's kind" in info["exemplars"]["why"]
        v = c.get("/api/views", params={"layer": "conv1", "unit": 0}).json()
        assert v["exemplars"]["status"] == "unavailable"
    folder = tmp_path / "mine" / "ball"
    folder.mkdir(parents=True)
    Image.new("RGB", (80, 60), (200, 40, 40)).save(folder / "a.png")
    for named in (folder.parent, mnist_dir):  # the user's choice, even MNIST's files
        with TestClient(create_app(resnet, data_dir=named), base_url=LOCAL) as c:
            info = c.get("/api/info").json()
            assert info["inputs"]["random"]["available"] and info["exemplars"]["available"]
            assert info["inputs"]["samples"] == []
    with TestClient(create_app(), base_url=LOCAL) as c:
        inp = c.get("/api/info").json()["inputs"]
        assert len(inp["samples"]) == 10 and inp["random"]["available"]


def test_a_network_is_served_with_the_dataset_it_was_trained_on():
    from convsee.models.load import load_network

    with TestClient(create_app(load_network(dataset="fashion-mnist")), base_url=LOCAL) as c:
        info = c.get("/api/info").json()
        assert info["dataset"] == "fashion-mnist"
        assert info["inputs"]["samples"][9]["label"] == "Ankle boot"


def test_fashion_class_names_are_whole():
    with TestClient(create_app(dataset="fashion-mnist"), base_url=LOCAL) as c:
        info = c.get("/api/info").json()
        assert "Pullover" in info["classes"] and "Ankle boot" in info["classes"]
        assert [s["label"] for s in info["inputs"]["samples"]] == info["classes"]
        j = c.post("/api/activations", json={"input": "sample:2"}).json()
        assert j["label"] == "Pullover"


row = [0.0] * 28


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"{not json", 400, "malformed JSON"),
        (b'{"image": NaN}', 400, "NaN is not allowed"),
        (b'{"image": [[Infinity]]}', 400, "Infinity is not allowed"),
        (json.dumps({"image": [row] * 27}).encode(), 400, "28 rows"),
        (json.dumps({"image": [row] * 27 + [[0.0] * 5]}).encode(), 400, "row 27 must hold 28"),
        (json.dumps({"image": [row] * 27 + [["x"] * 28]}).encode(), 400, "must be a number"),
        (json.dumps({"image": [row] * 27 + [[1.5] * 28]}).encode(), 400, "outside [0, 1]"),
        (json.dumps({"image": [row] * 27 + [[-0.1] * 28]}).encode(), 400, "outside [0, 1]"),
        (json.dumps({"image": "abc"}).encode(), 400, "28 rows"),
        (json.dumps({}).encode(), 400, "exactly one of"),
        (json.dumps({"image": [row] * 28, "input": "sample:1"}).encode(), 400, "exactly one of"),
        (json.dumps([1, 2]).encode(), 400, "JSON object"),
        (json.dumps({"png": "%%%"}).encode(), 400, "not valid base64"),
        (json.dumps({"png": base64.b64encode(b"no").decode()}).encode(), 422, "not an image"),
        (json.dumps({"image": [row] * 28}).encode(), 200, ""),  # blank is fine as an array
        (json.dumps({"image": [row] * 28, "blur": [4, 1]}).encode(), 400, "'blur'"),
        (json.dumps({"image": [row] * 28, "encoding": "hex"}).encode(), 400, "'encoding'"),
        (json.dumps({"input": "sample:12"}).encode(), 404, "no such sample"),
        (json.dumps({"input": "sample:x"}).encode(), 400, "sample:D, test:N, data:N or upload:ID"),
        (json.dumps({"input": "x" * 5000}).encode(), 400, "a string of 5000"),
        (json.dumps({"input": "sample:1", "layers": ["nope"]}).encode(), 400, "item 1 is not"),
        (json.dumps({"input": "sample:1", "layers": 3}).encode(), 400, "'layers' must be"),
        (
            json.dumps({"input": "sample:1", "layers": {"conv1": {"page": 1}}}).encode(),
            400,
            "page must be a whole number from 0 to 0",
        ),
        (
            json.dumps({"input": "sample:1", "layers": {"conv1": {"order": "x"}}}).encode(),
            400,
            "order must be",
        ),
        (
            json.dumps({"input": "sample:1", "layers": {"conv1": {"channels": [7]}}}).encode(),
            400,
            "channels must be a whole number from 0 to 5",
        ),
        (
            json.dumps(
                {"input": "sample:1", "attribution": "gradcam", "attribution_layer": "fc1"}
            ).encode(),
            400,
            "'attribution_layer'",
        ),
    ],
)
def test_bad_requests(client, body, status, message):
    r = client.post("/api/activations", content=body, headers=JSON)
    assert r.status_code == status, r.text
    if status != 200:
        error = r.json()["error"]
        assert message in error and len(error) < 200
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
    from convsee.run.attribution import grad_cam, saliency

    s = samples()[5]
    model = lenet_torch()
    for kind in ("gradcam", "saliency"):
        body = {"image": s.image.tolist(), "attribution": kind}
        if kind == "gradcam":  # grad_cam() is at conv2; the page's default is the CLI's
            body["attribution_layer"] = "conv2"
        a = client.post("/api/activations", json=body).json()["attribution"]
        assert a["kind"] == kind and a["target"] == 5
        m = np.array(a["map"])
        ref = grad_cam(model, s.image, 5)[1] if kind == "gradcam" else saliency(model, s.image, 5)
        np.testing.assert_allclose(m, ref / ref.max(), atol=1e-3)
        assert a["max"] == pytest.approx(float(ref.max()), rel=1e-4)
    r = client.post("/api/activations", json={"image": s.image.tolist(), "attribution": "x"})
    assert r.status_code == 400 and "'attribution'" in r.json()["error"]


def test_occlusion_where_no_patch_lowers_the_score(client):
    """A blank input: blacking out a patch changes nothing, so every drop is 0. The page gets
    the CLI's sentence (its picture's line and sidecar note) instead of an empty overlay."""
    import convsee

    blank = np.zeros((28, 28), np.float32)
    body = {"image": blank.tolist(), "attribution": "occlusion", "encoding": "list"}
    a = client.post("/api/activations", json=body).json()["attribution"]
    net = convsee.load()
    res = net.attribution([blank], method="occlusion", window=8, stride=4)
    assert res.maps[0].max() < 1e-6 and int(res.targets[0]) == a["target"]
    cls = net.class_names(10)[a["target"]]
    want = f"no patch lowers the logit of “{cls}”: every drop is <= 0"
    assert a["none"] == want and a["max"] == 0
    assert res.figures[0].sidecar["notes"][-1] == want
    s = samples()[3]  # a digit: some patch lowers its score, nothing to say
    body = {"image": s.image.tolist(), "attribution": "occlusion", "encoding": "list"}
    assert client.post("/api/activations", json=body).json()["attribution"]["none"] == ""


def test_default_gradcam_layer_is_the_clis(client):
    """The page's Grad-CAM layer when none is chosen is the one `convsee attribution` takes
    (the library's rule, layer None): LeNet-5's pool2, not the last conv."""
    import convsee

    net = convsee.load()
    ref = net.attribution(["sample:3", "sample:7"], figures=False)
    assert ref.layer == "pool2"
    assert client.get("/api/info").json()["overlays"]["default"] == ref.layer
    body = {"input": "sample:3", "attribution": "gradcam", "encoding": "list"}
    a = client.post("/api/activations", json=body).json()["attribution"]
    assert a["layer"] == "pool2"
    m = np.array(a["map"]).reshape(a["shape"]) * a["max"]
    np.testing.assert_allclose(m, ref.maps[0], atol=1e-3 * ref.maps[0].max())


def test_gradcam_at_a_chosen_layer(client):
    """Grad-CAM at conv1 by hand: alpha = mean gradient per channel, ReLU of the weighted sum;
    conv1's field (5x5, stride 1) puts map pixel (i, j) on input pixel (i + 2, j + 2)."""
    s = samples()[4]
    model = lenet_torch()
    x = lenet_x(s.image)
    a1 = model.conv1(x)
    a1.retain_grad()
    h = model.pool1(F.relu(a1))
    h = model.pool2(F.relu(model.conv2(h))).flatten(1)
    logits = model.fc3(F.relu(model.fc2(F.relu(model.fc1(h)))))
    logits[0, 4].backward()
    alpha = a1.grad[0].mean((1, 2))
    cam = F.relu((alpha[:, None, None] * a1[0]).sum(0)).detach().numpy()
    idx = np.clip(np.arange(28) - 2, 0, 23)
    placed = cam[idx][:, idx]
    body = {"image": s.image.tolist(), "attribution": "gradcam", "attribution_layer": "conv1"}
    a = client.post("/api/activations", json=body).json()["attribution"]
    assert a["layer"] == "conv1" and a["target"] == 4
    np.testing.assert_allclose(np.array(a["map"]), placed / placed.max(), atol=1e-3)
    assert client.get("/api/info").json()["overlays"]["layers"] == [
        "conv1",
        "relu1",
        "pool1",
        "conv2",
        "relu2",
        "pool2",
    ]


# ---------- views: computed on request, in the background ----------


def _views(c, layer, unit, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        v = c.get(f"/api/views?layer={layer}&unit={unit}").json()
        if all(v[k]["status"] != "computing" for k in ("exemplars", "optimized")):
            return v
        assert time.monotonic() < deadline, v
        time.sleep(0.1)


def test_views_on_request(mnist_dir, monkeypatch):
    import convsee.web.views
    from convsee.datasets.idx import load_split
    from convsee.models.lenet_numpy import forward_all
    from convsee.models.load import load_network

    # the scan stops after SCAN_SECONDS: on a busy machine that is fewer than 10,000 images
    monkeypatch.setattr(convsee.web.views, "SCAN_SECONDS", 1e6)
    monkeypatch.setattr(convsee.web.views, "OPTIMIZE_SECONDS", 1e6)  # and 100 steps, as LeNet takes
    app = create_app(data_dir=mnist_dir)
    assert app.state.views._thread is None  # nothing computed at start
    with TestClient(app, base_url=LOCAL) as c:
        first = c.get("/api/views?layer=conv2&unit=3").json()
        assert first["exemplars"]["status"] == "computing"
        v = _views(c, "conv2", 3)
        ex, opt = v["exemplars"], v["optimized"]
        assert ex["status"] == "ready" and ex["seen"] == 10_000 and ex["size"] == [14, 14]
        assert len(ex["tiles"]) == 6 and ex["shape"] == [14, 14]
        # brute force: conv2 channel 3's peak in every test image, the six largest
        net = load_network()
        imgs = load_split("test", mnist_dir, allow_download=False).images.numpy() / 255
        x = ((imgs - 0.1307) / 0.3081)[:, None].astype(np.float32)
        peaks = np.concatenate(
            [
                forward_all(net.weights, x[i : i + 2000])[0]["conv2"][:, 3].max((1, 2))
                for i in range(0, 10000, 2000)
            ]
        )
        np.testing.assert_allclose(ex["values"], np.sort(peaks)[::-1][:6], rtol=1e-4, atol=1e-4)
        assert opt["status"] == "ready" and opt["steps"] == 100 and opt["size"] == [14, 14]
        # a vector unit: whole images
        v = _views(c, "fc3", 7)
        assert v["exemplars"]["whole"] is True and v["optimized"]["whole"] is True
        assert c.get("/api/views?layer=conv2&unit=16").status_code == 404
        assert c.get("/api/views?layer=nope&unit=1").status_code == 404
        assert c.get("/api/views?layer=conv2&unit=-1").status_code == 400  # malformed
        assert c.get("/api/views").status_code == 400


def test_views_without_a_dataset(client):
    v = _views(client, "conv1", 0)
    assert v["exemplars"]["status"] == "unavailable" and "--data" in v["exemplars"]["why"]
    assert v["optimized"]["status"] == "ready"


def test_the_optimized_tile_hatches_what_lies_outside_the_image(monkeypatch):
    """A 5x16 input (tests/foreign_models.py Strip): conv2's centre neuron sees rows -1..5, so
    the page's tile hatches its first and last row as the CLI's picture does, shows the
    optimised input (the same optimisation run here) elsewhere, and sends the one-line note;
    conv1's field (rows 1..3) is inside: no hatch, no note."""
    import foreign_models

    import convsee.web.views
    from convsee.draw.channel_views import OUTSIDE
    from convsee.models.load import wrap
    from convsee.run.optimize import OptimizeConfig, optimize_units
    from convsee.run.units import outside

    monkeypatch.setattr(convsee.web.views, "OPTIMIZE_SECONDS", 1e6)  # MAX_STEPS steps
    net = wrap(foreign_models.make("Strip"), input_size=(1, 5, 16), resize="stretch")
    with TestClient(create_app(net), base_url=LOCAL) as c:
        outer, inner = (_views(c, name, 1)["optimized"] for name in ("conv2", "conv1"))
    assert outer["box"] == [-1, 5, 5, 11] and outer["shape"] == [7, 7] and outer["padded"]
    assert outer["padded_note"] == OUTSIDE
    assert inner["box"] == [1, 3, 7, 9] and inner["padded"] is False
    assert inner["padded_note"] == ""
    off = outside(outer["box"], (5, 16))
    for got, (r0, r1, c0, c1) in ((outer, (0, 5, 5, 12)), (inner, (1, 4, 7, 10))):
        [layer] = net.select("conv2" if got is outer else "conv1")
        cfg = OptimizeConfig(steps=got["steps"], rounds=1)
        res = optimize_units(net.model, net.prep, layer, [1], cfg, spec_layers=net.spec.layers)
        assert got["value"] == round(float(res.values[0]), 5)
        want = res.images[0, r0:r1, c0:c1]
        if got is outer:
            want, inside = hatch_stripes(7, 7), want
            want[~off] = inside.ravel()
        pixels = np.frombuffer(base64.b64decode(got["tile"]), np.uint8).reshape(got["shape"])
        np.testing.assert_array_equal(pixels, np.rint(np.float32(want) * 255))


# ---------- models that are not LeNet-5 ----------


def test_default_layers_of_other_models(resnet):
    rgb = load_network(RGBNET, preprocess={"input_size": (3, 32, 32)})
    assert default_layers(rgb.spec, "fc") == ["conv1", "conv2", "conv3", "pool", "gap"]
    names = default_layers(resnet.spec, "fc")
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    want = ["conv1", "maxpool"]
    for b in blocks:
        if b.endswith(".0") and b != "layer1.0":
            want.append(f"{b}.downsample.0")
        want += [f"{b}.conv1", f"{b}.conv2", f"{b}.relu#2"]
    assert names == want + ["avgpool"]


def test_resnet_pages_of_channels(resnet_client, resnet):
    x = resnet.inputs(["sample:3"])[0].x
    acts, probs = resnet.run(x[None], resnet.select("conv1,layer2.0.conv1,fc"))
    a = acts["conv1"][0]  # (64, 32, 32)
    base = {"input": "sample:3", "encoding": "u8"}
    # default: the top 16 by mean activation, in channel order, thumbnails of 16x16
    head, values = frame(resnet_client.post("/api/activations", json={**base, "layers": ["conv1"]}))
    c1 = head["layers"]["conv1"]
    ranked = np.argsort(-a.reshape(64, -1).mean(1), kind="stable")
    assert c1["channels"] == sorted(ranked[:PAGE_SIZE].tolist()) and c1["order"] == "top"
    assert c1["pages"] == 4 and c1["min"] == pytest.approx(float(a.min()), abs=1e-5)
    f = -(-32 // THUMB)
    assert c1["factor"] == f and c1["size"] == [32 // f, 32 // f]
    # the next page by rank, and a page by channel number
    body = {**base, "layers": {"conv1": {"order": "top", "page": 1}}}
    head, _ = frame(resnet_client.post("/api/activations", json=body))
    assert head["layers"]["conv1"]["channels"] == sorted(ranked[16:32].tolist())
    body = {**base, "layers": {"conv1": {"order": "index", "page": 2}}}
    head, _ = frame(resnet_client.post("/api/activations", json=body))
    assert head["layers"]["conv1"]["channels"] == list(range(32, 48))
    body = {**base, "layers": {"conv1": {"channels": [60, 2, 2]}}}
    head, _ = frame(resnet_client.post("/api/activations", json=body))
    assert head["layers"]["conv1"]["channels"] == [2, 60]
    np.testing.assert_allclose(head["probabilities"], probs[0], atol=1e-6)


def test_large_maps_become_block_means():
    """At 3x224x224 conv1 is 64x112x112: sent as 56x56 means of 2x2 blocks, 8-bit."""
    net = load_network(RESNET, preprocess={"input_size": (3, 224, 224)})
    img = Image.new("RGB", (300, 240), (30, 90, 160))
    ImageDraw.Draw(img).ellipse([60, 40, 220, 200], fill=(240, 200, 40))
    with TestClient(create_app(net), base_url=LOCAL) as c:
        body = {
            "png": png_url(img, "JPEG"),
            "encoding": "u8",
            "layers": {"conv1": {"order": "index"}},
        }
        head, values = frame(c.post("/api/activations", json=body))
        exact = c.post("/api/activations", json={**body, "encoding": "f32"}).json()
    c1 = head["layers"]["conv1"]
    assert c1["size"] == [56, 56] and c1["factor"] == 2 and c1["channels"] == list(range(16))
    full = np.frombuffer(base64.b64decode(exact["layers"]["conv1"]["values"]), "<f4")
    means = full.reshape(16, 56, 2, 56, 2).mean((2, 4))
    lo, hi = np.array(c1["ranges"]).T
    back = (
        lo[:, None, None]
        + values(c1["values"]).reshape(16, 56, 56) / 255 * (hi - lo)[:, None, None]
    )
    assert np.abs(back - means).max() <= (hi - lo).max() / 255 / 2 + 1e-4
    assert head["input_shape"] == [224, 224, 3]
    assert "centre 224x224 cut out" in " ".join(head["input_notes"])


def test_long_vectors_send_their_top_units(resnet_client, resnet, monkeypatch):
    import convsee.web.activations as activations

    monkeypatch.setattr(activations, "VECTOR_MAX", 100)
    x = resnet.inputs(["sample:5"])[0].x
    acts, _ = resnet.run(x[None], resnet.select("fc"))
    fc = acts["fc"][0]
    head, values = frame(
        resnet_client.post(
            "/api/activations", json={"input": "sample:5", "encoding": "u8", "layers": ["fc"]}
        )
    )
    sent = head["layers"]["fc"]
    assert sent["channels"] == sorted(np.argsort(-fc, kind="stable")[:100].tolist())
    assert len(values(sent["values"])) == 100 and sent["max"] == pytest.approx(
        float(fc.max()), abs=1e-5
    )


def test_uploads_kept_by_name(resnet_client, monkeypatch):
    """An image sent with "keep" is named upload:ID; further updates name it instead of
    sending it again, and get the same input."""
    import convsee.web.served as served

    img = Image.new("RGB", (500, 400), (200, 40, 90))
    ImageDraw.Draw(img).rectangle([100, 100, 300, 300], fill=(10, 220, 30))
    body = {"png": png_url(img, "JPEG"), "keep": True, "layers": ["conv1"]}
    first = resnet_client.post("/api/activations", json=body).json()
    name = first["input_name"]
    assert name.startswith("upload:") and len(name) == 23
    again = resnet_client.post("/api/activations", json={"input": name, "layers": ["conv1"]})
    assert again.json()["probabilities"] == first["probabilities"]
    assert again.json()["input"] == first["input"] and again.json()["input_name"] == name
    r = resnet_client.post("/api/activations", json={"input": "upload:0123456789abcdef"})
    assert r.status_code == 404 and "send the image again" in r.json()["error"]
    # bounded: the oldest is dropped
    monkeypatch.setattr(served, "UPLOADS", 2)
    for colour in ((1, 2, 3), (4, 5, 6)):
        other = {"png": png_url(Image.new("RGB", (50, 50), colour)), "keep": True, "layers": []}
        assert resnet_client.post("/api/activations", json=other).status_code == 200
    assert resnet_client.post("/api/activations", json={"input": name}).status_code == 404
    r = resnet_client.post("/api/activations", json={**body, "keep": "yes"})
    assert r.status_code == 400 and "'keep'" in r.json()["error"]


def test_too_many_values_is_a_400(resnet_client, monkeypatch):
    import convsee.web.server as server

    monkeypatch.setitem(server.MAX_VALUES, "list", 50_000)
    r = resnet_client.post(
        "/api/activations", json={"input": "sample:1", "layers": "all", "encoding": "list"}
    )
    assert r.status_code == 400 and "at most 50,000 per answer" in r.json()["error"]
    head, _ = frame(
        resnet_client.post(
            "/api/activations", json={"input": "sample:1", "layers": "all", "encoding": "u8"}
        )
    )
    assert len(head["layers"]) == 75  # every layer: all are maps or vectors


def test_rgb_model_info_and_inputs(resnet_client, resnet):
    info = resnet_client.get("/api/info").json()
    assert info["inputs"]["draw"] is False and info["spec"] == resnet.spec.to_dict()
    assert list(info["kernels"]) == ["conv1"]  # 3 input channels of 7x7; the rest are wider
    assert info["overlays"]["default"] == "layer4"  # as `convsee attribution` picks it
    img = [[[0.5, 0.2, 0.9]] * 64] * 64
    j = resnet_client.post("/api/activations", json={"image": img, "layers": []}).json()
    assert j["input_shape"] == [64, 64, 3] and len(j["probabilities"]) == 1000
    r = resnet_client.post("/api/activations", json={"image": [[0.5] * 64] * 64})
    assert r.status_code == 400 and "must be 3 numbers" in r.json()["error"]


def test_rgb_attribution_at_a_layer(resnet_client, resnet):
    from convsee.run.attribution import attribute

    x = resnet.inputs(["sample:6"])[0].x
    layer = resnet.spec.layer("layer3.0.conv1")
    want = attribute(resnet.torch_model(), x, layer, None, std=resnet.prep.channel_std())
    body = {"input": "sample:6", "attribution": "gradcam", "attribution_layer": layer.name}
    a = resnet_client.post("/api/activations", json=body).json()["attribution"]
    assert a["layer"] == layer.name and a["shape"] == [64, 64]
    np.testing.assert_allclose(np.array(a["map"]), want.placed / want.placed.max(), atol=1e-3)


def test_labels_name_the_classes():
    import foreign_models

    from convsee.models.load import wrap

    labels = ["cat", "dog", "a very long class name that must never be cut", "d", "e"]
    net = wrap(foreign_models.make("RGBNet"), input_size=(3, 32, 32), classes=labels)
    with TestClient(create_app(net), base_url=LOCAL) as c:
        assert c.get("/api/info").json()["classes"] == labels
        j = c.post("/api/activations", json={"input": "sample:1"}).json()
        assert j["label"] == labels[j["prediction"]]


@pytest.mark.parametrize("name", ["RGBNet", "ResidualNet", "TwoHeads", "Seq1d"])
def test_every_foreign_model_serves_its_page(name):
    import foreign_models

    from convsee.models.load import wrap

    size = {"RGBNet": (3, 32, 32), "Seq1d": (1, 1, 64)}.get(name, (1, 28, 28))
    net = wrap(foreign_models.make(name), input_size=size, resize="stretch")
    with TestClient(create_app(net), base_url=LOCAL) as c:
        info = c.get("/api/info").json()
        assert bool(info["default_layers"]) is (name != "Seq1d")  # its layers are sequences
        j = c.post("/api/activations", json={"input": "sample:4"}).json()
        assert set(j["layers"]) == set(info["default_layers"])
        assert abs(sum(j["probabilities"]) - 1) < 1e-4


# ---------- the command ----------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "nowhere.py:Net"], "model file nowhere.py: no such file"),
        (["--data", str(REPO / "docs" / "nonexistent")], "no such folder"),
        (["--data", str(REPO / "src" / "convsee" / "cli")], "neither the MNIST test files"),
        (["--data", "/no/such/folder"], "--data /no/such/folder: no such folder"),
        (["--input-size", "3,x,2"], "--input-size takes C,H,W"),
        (["--checkpoint", "missing.safetensors"], "does not exist"),
    ],
)
def test_serve_bad_input_is_one_line(argv, message, capsys, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "serve", lambda *a, **k: pytest.fail("served"))
    assert main(["serve", "--port", "0", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err


def test_serve_refuses_a_test_set_that_is_not_the_published_one(tmp_path, capsys, monkeypatch):
    import uvicorn
    from conftest import make_tiny_mnist

    monkeypatch.setattr(uvicorn.Server, "serve", lambda *a, **k: pytest.fail("served"))
    make_tiny_mnist(tmp_path / "mnist", n_train=10)  # the right counts, other pixels
    assert main(["serve", "--port", "0", "--data", str(tmp_path / "mnist")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "md5" in err and "as published" in err


def test_serve_gives_each_request_its_share_of_the_cores(monkeypatch):
    from convsee.run import threads
    from convsee.web.runner import _torch_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("CONVSEE_THREADS", raising=False)
    monkeypatch.setattr(threads, "_cores", lambda: 8)
    _torch_threads(2)
    assert os.environ["OMP_NUM_THREADS"] == "4" and threads.policy() is None
    assert torch.get_num_threads() == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's choice wins
    torch.set_num_threads(1)
    _torch_threads(2)
    assert torch.get_num_threads() == 1


# ---------- on real sockets: the app on uvicorn in a thread (runner.py's limits) ----------


class _Live:
    """create_app() served by runner.make_server on a free loopback port, in a thread."""

    def __init__(self, app, limits=None):
        import threading

        from convsee.web.runner import ServerLimits, listen, make_server, run_server

        self.app = app
        self.sock = listen("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.server = make_server(app, limits or ServerLimits())
        self.thread = threading.Thread(
            target=run_server, args=(self.server, self.sock), daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

    def connections(self) -> int:
        return len(self.server.config.http.connections_.open)

    def open_socket(self, data: bytes = b""):
        import socket

        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        if data:
            s.sendall(data)
        return s

    def request(self, method, path, body=None, timeout=60):
        import http.client

        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            c.request(method, path, body, headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def live():
    servers = []

    def start(app=None, limits=None):
        servers.append(_Live(app or create_app(), limits))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def _sample_json() -> bytes:
    return json.dumps({"image": samples()[3].image.tolist(), "encoding": "f32"}).encode()


def _half_post(length: int = 100_000) -> bytes:
    return (
        b"POST /api/activations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {length}\r\n\r\n{{".encode()
    )


def _until(check, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_half_sent_bodies_do_not_make_the_server_busy(live):
    """64 POSTs with one byte of a 100,000-byte body: the page's requests are still answered
    (a request counts toward MAX_PENDING only once its body is in)."""
    from convsee.web.server import MAX_PENDING

    srv = live()
    held = [srv.open_socket(_half_post()) for _ in range(MAX_PENDING)]
    try:
        _until(lambda: srv.connections() >= MAX_PENDING)
        for _ in range(3):
            status, raw = srv.request("POST", "/api/activations", _sample_json())
            assert status == 200, raw[:200]
            assert json.loads(raw)["prediction"] == samples()[3].label
    finally:
        for s in held:
            s.close()


def _small_limits(cap: int = 8):
    from convsee.web.runner import ServerLimits

    # deadlines far beyond the test: only the cap makes room
    return ServerLimits(
        head_timeout=120, body_timeout=120, response_timeout=120, max_connections=cap
    )


def _closed(s, seconds=10.0) -> bool:
    s.settimeout(seconds)
    try:
        while s.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except OSError:  # reset
        return True


def test_a_full_server_drops_a_connection_stuck_sending_its_body(live):
    """GETs with a declared body never sent fill every place: a new client is still served,
    and the connection longest in its body phase made room."""
    srv = live(limits=_small_limits())
    head = b"GET /api/info HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nx"
    held = []
    try:
        for _ in range(8):
            held.append(srv.open_socket(head))
            _until(lambda: srv.connections() == len(held))
        status, _ = srv.request("GET", "/api/info")
        assert status == 200
        assert _closed(held[0])  # the oldest
    finally:
        for s in held:
            s.close()


def test_a_full_server_drops_a_client_that_pipelines_and_never_reads(live):
    """Clients pipelining GET /api/info and never reading their answers fill every place: a
    new client is still served."""
    srv = live(limits=_small_limits())
    burst = b"GET /api/info HTTP/1.1\r\nHost: localhost\r\n\r\n" * 400
    held = []
    try:
        for _ in range(8):
            s = srv.open_socket()
            s.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
            s.setblocking(False)
            try:
                s.send(burst)
            except BlockingIOError:
                pass
            held.append(s)
            _until(lambda: srv.connections() == len(held))
        time.sleep(0.5)  # their answers fill the buffers
        status, _ = srv.request("GET", "/api/info", timeout=30)
        assert status == 200
    finally:
        for s in held:
            s.close()


def test_work_for_a_closed_connection_is_dropped(live, monkeypatch):
    """Requests queued behind busy workers whose clients close are never computed."""
    import threading

    import convsee.web.server as server

    release, running = threading.Event(), threading.Semaphore(0)
    real = server.activations_payload

    def slow(served, body):
        running.release()
        release.wait(30)
        return real(served, body)

    monkeypatch.setattr(server, "activations_payload", slow)
    srv = live()
    body = _sample_json()
    full = _half_post(len(body))[:-1] + body  # the head, then the whole body
    busy = [srv.open_socket(full) for _ in range(server.WORKERS)]
    try:
        for _ in busy:
            assert running.acquire(timeout=30)  # both workers held
        gone = [srv.open_socket(full) for _ in range(5)]
        _until(lambda: srv.connections() == len(busy) + 5)
        time.sleep(0.3)  # their bodies are in, their work queued
        for s in gone:
            s.close()
        _until(lambda: srv.connections() == len(busy))
        release.set()
        for s in busy:
            s.settimeout(30)
            assert s.recv(12).startswith(b"HTTP/1.1 200")
        _until(lambda: srv.app.state.stats["dropped"] == 5)
        assert srv.app.state.stats["computed"] == len(busy)
    finally:
        release.set()
        for s in busy:
            s.close()


def test_a_client_closing_mid_body_logs_one_line(live, caplog):
    srv = live()
    for f in logging.getLogger("convsee.web").filters:  # the rate limit: other tests said it
        f.last.clear()
    with caplog.at_level("INFO"):
        s = srv.open_socket(_half_post())
        _until(lambda: srv.connections() == 1)
        s.close()
        _until(lambda: srv.connections() == 0)
        assert srv.request("GET", "/api/info")[0] == 200
        time.sleep(0.2)
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in records] == [
        "a client closed its connection while sending a request body"
    ]
    assert all(r.exc_info is None for r in records)


@pytest.mark.parametrize(
    "path",
    ["/api/views?layer=conv2&unit=1", "/api/info", "/api/sample/random", "/api/sample/3"],
)
@pytest.mark.parametrize(
    "headers, message",
    [
        ({"origin": "http://attacker.example"}, "cross-origin"),
        ({"origin": "null"}, "cross-origin"),
        ({"sec-fetch-site": "cross-site"}, "cross-site"),
    ],
)
def test_cross_site_gets_of_the_api_are_refused(client, path, headers, message):
    r = client.get(path, headers=headers)
    assert r.status_code == 403 and message in r.json()["error"]


def test_same_origin_gets_and_the_page_from_anywhere(client):
    ok = {"origin": LOCAL, "sec-fetch-site": "same-origin"}
    assert client.get("/api/info", headers=ok).status_code == 200
    assert client.get("/api/sample/3", headers={"sec-fetch-site": "same-origin"}).json()["name"]
    assert client.get("/", headers={"sec-fetch-site": "cross-site"}).status_code == 200  # a link


def test_a_damaged_data_image_does_not_show_the_servers_path(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    good = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(good).line([(14, 4), (14, 24)], fill=255, width=3)
    good.save(folder / "good.png")
    (folder / "sub").mkdir()
    (folder / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with TestClient(create_app(data_dir=folder), base_url=LOCAL) as c:
        names = [c.get("/api/sample/random").json()["path"] for _ in range(40)]
        assert set(names) == {"good.png", "sub/broken.png"}
        n = 1  # sorted: good.png, sub/broken.png
        r = c.post("/api/activations", json={"input": f"data:{n}"})
        error = r.json()["error"]
        assert r.status_code == 422 and "sub/broken.png" in error, error
        assert str(tmp_path) not in error and "/images" not in error, error
        assert c.post("/api/activations", json={"input": "data:0"}).status_code == 200


def test_too_many_values_names_the_encodings_that_fit(resnet_client, monkeypatch):
    import convsee.web.server as server

    monkeypatch.setitem(server.MAX_VALUES, "list", 50_000)
    r = resnet_client.post("/api/activations", json={"input": "sample:1"})  # default: list
    error = r.json()["error"]
    assert r.status_code == 400 and "send 'encoding': 'u8' or 'f32', which fit" in error, error
    monkeypatch.setitem(server.MAX_VALUES, "f32", 50_000)
    error = resnet_client.post("/api/activations", json={"input": "sample:1"}).json()["error"]
    assert "send 'encoding': 'u8', which fit" in error, error
    body = {"input": "sample:1", "encoding": "u8"}
    assert resnet_client.post("/api/activations", json=body).status_code == 200


def test_a_huge_class_name_is_cut_on_the_page_and_whole_in_its_tooltip(tmp_path):
    """A 100,000-character class name: the page lays out 80 characters and "…" (a tooltip
    holds the whole name), so no layout stalls."""
    pytest.importorskip("playwright")
    from test_browser import CHROMIUM, FLAGS, open_page, serving

    if not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium here")
    from playwright.sync_api import sync_playwright

    names = [f"{i}" + "W" * 100_000 for i in range(10)]
    errors: list = []
    with sync_playwright() as p, serving(create_app(load_network(labels=names))) as u:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = open_page(browser, u, errors)
            shown = page.inner_text("#pred-label")
            assert shown == names[3][:80] + "…", shown[:100]
            assert page.get_attribute("#pred-label", "title") == names[3]
            rows = page.eval_on_selector_all(
                "#probs .cls", "els => els.map(e => [e.textContent, e.title])"
            )
            assert rows == [[n[:80] + "…", n] for n in names]
            page.screenshot(path=str(tmp_path / "long-names.png"))
            page.close()
        finally:
            browser.close()
    assert errors == []


def _jpeg_scans(side: int, extra_scans: int) -> bytes:
    """A progressive grey JPEG with `extra_scans` empty AC scans (10 bytes each) added."""
    import struct

    buf = io.BytesIO()
    Image.radial_gradient("L").resize((side, side)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    sos = b"\xff\xda" + struct.pack(">HBBBBBB", 8, 1, 1, 0x00, 1, 63, 0x00)
    return data[:-2] + sos * extra_scans + b"\xff\xd9"


def test_a_jpeg_of_many_scans_goes_to_the_heavy_lane():
    """A progressive JPEG's decoder passes over all coefficients at every scan: a small one
    of thousands of scans is seconds of a core, so it waits on the one-at-a-time lane."""
    from convsee.web.schema import HEAVY_SCANS, WORK_PIXELS, heavy_request

    def body(data):
        return {"png": "data:image/jpeg;base64," + base64.b64encode(data).decode()}

    assert 1000 * 1000 <= WORK_PIXELS  # by its size alone: the normal lane
    assert not heavy_request(body(_jpeg_scans(1000, 0)))  # Pillow's ~10 scans
    assert not heavy_request(body(_jpeg_scans(1000, HEAVY_SCANS - 12)))
    assert heavy_request(body(_jpeg_scans(1000, 2000)))
    assert heavy_request(body(_jpeg_scans(64, 60_000)))
