"""The live page's server: Starlette on uvicorn, loopback by default.

The model is loaded once. Each POST /api/activations runs one NumPy forward pass and
returns every layer; the torch copy of the model serves attribution overlays and the
per-channel views. Everything runs on the event loop's one thread, so hooks on the torch
model never see two forward passes at once. Requests are validated strictly (JSON shape,
finite numbers in [0, 1], a body cap) and a bad one gets a 4xx with a clear message.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..datasets.digits import preprocess_for
from ..datasets.inputs import samples
from ..errors import ConvseeError
from ..models.lenet_layers import LAYER_INFO
from ..models.lenet_numpy import forward_all as _forward_logits
from ..models.network import softmax
from ..run.filters import blur_maps

__all__ = ["create_app", "MAX_BODY", "PAGE_LAYERS", "activations_payload"]

MAX_BODY = 256 * 1024  # bytes: a 28x28 list is ~6 KB, a 280x280 canvas PNG ~10-40 KB
PAGE_LAYERS = ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc1", "fc2", "fc3")
STATIC = Path(__file__).parent / "static"
CMAPS = ("RdBu_r", "viridis", "magma", "inferno", "gray", "coolwarm")


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _reject_constant(name):
    raise BadRequest(f"{name} is not allowed: values must be finite numbers in [0, 1]")


def _parse_image(value) -> np.ndarray:
    if not isinstance(value, list) or len(value) != 28:
        got = f"a list of {len(value)} rows" if isinstance(value, list) else type(value).__name__
        raise BadRequest(f"'image' must be 28 rows of 28 numbers, got {got}")
    for r, row in enumerate(value):
        if not isinstance(row, list) or len(row) != 28:
            what = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise BadRequest(f"'image' row {r} must hold 28 numbers, got {what}")
        for c, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise BadRequest(f"'image'[{r}][{c}] must be a number, got {type(v).__name__}")
            if not math.isfinite(v) or not 0 <= v <= 1:
                raise BadRequest(f"'image'[{r}][{c}] = {v!r} is outside [0, 1]")
    return np.asarray(value, np.float32)


def _parse_png(value, dataset: str = "mnist") -> np.ndarray:
    if not isinstance(value, str):
        raise BadRequest(f"'png' must be a base64 string (or data URL), got {type(value).__name__}")
    data = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("'png' is not valid base64") from None
    try:
        return preprocess_for(raw, dataset)
    except ConvseeError as e:
        raise BadRequest(f"'png': {e}", 422) from None


def forward_all(weights, images):
    """Every layer of LeNet-5 and the probabilities for [0, 1] 28x28 images (MNIST-normalised)."""
    from ..datasets.idx import MEAN, STD

    x = ((np.asarray(images, np.float32) - MEAN) / STD)[:, None]
    acts, logits = _forward_logits(weights, x)
    return acts, softmax(logits)


def _encode(a: np.ndarray, encoding: str):
    if encoding == "f32":
        return base64.b64encode(np.ascontiguousarray(a, "<f4").tobytes()).decode()
    return np.round(a, 4).tolist()


def global_ranges(weights, blur, cache: dict, dataset: str = "mnist") -> dict:
    """Per layer, (min, max) over the ten bundled samples: the page's 'global' scale,
    one range for a layer across inputs as in `convsee render`. Cached per blur in cache."""
    key = blur
    if key not in cache:
        acts, _ = forward_all(weights, [s.image for s in samples(dataset)])
        out = {}
        for name in PAGE_LAYERS:
            a = acts[name]
            if blur is not None and LAYER_INFO[name][0] == "map":
                a = blur_maps(a, *blur)
            out[name] = [float(a.min()), float(a.max())]
        cache[key] = out
    return cache[key]


def activations_payload(
    weights,
    body: dict,
    meta: dict,
    cache: dict | None = None,
    dataset: str = "mnist",
    model=None,
) -> dict:
    """The response for one validated request body; model (torch) for attribution."""
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    if ("image" in body) == ("png" in body):
        raise BadRequest("send exactly one of 'image' (28x28 numbers in [0, 1]) or 'png'")
    image = _parse_image(body["image"]) if "image" in body else _parse_png(body["png"], dataset)
    encoding = body.get("encoding", "list")
    if encoding not in ("list", "f32"):
        raise BadRequest(f"'encoding' must be 'list' or 'f32', got {encoding!r}")
    attribution = body.get("attribution")
    if attribution not in (None, "saliency", "gradcam"):
        raise BadRequest(f"'attribution' must be 'saliency' or 'gradcam', got {attribution!r}")
    blur = body.get("blur")
    if blur is not None:
        ok = (
            isinstance(blur, list)
            and len(blur) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in blur)
        )
        if not ok or blur[0] not in (1, 3, 5, 7) or not 0 < blur[1] <= 10:
            raise BadRequest(f"'blur' must be [kernel 1|3|5|7, sigma in (0, 10]], got {blur!r}")
    acts, probs = forward_all(weights, image[None])
    blur_key = None if blur is None else (int(blur[0]), float(blur[1]))
    ranges = global_ranges(weights, blur_key, {} if cache is None else cache, dataset)
    layers = {}
    for name in PAGE_LAYERS:
        a = acts[name][0]
        if blur is not None and LAYER_INFO[name][0] == "map":
            a = blur_maps(a, int(blur[0]), float(blur[1]))
        layers[name] = {
            "global_range": ranges[name],
            "shape": list(a.shape),
            "min": float(a.min()),
            "max": float(a.max()),
            "after_relu": LAYER_INFO[name][1],
            "values": _encode(a, encoding),
        }
    p = probs[0]
    extra = {}
    if attribution is not None and model is not None:
        extra["attribution"] = {
            "kind": attribution,
            "target": int(p.argmax()),
            "map": attribution_map(model, image, attribution, int(p.argmax())),
        }
    return {
        **extra,
        "prediction": int(p.argmax()),
        "label": meta["classes"][int(p.argmax())],
        "probabilities": [round(float(x), 6) for x in p],
        "input": _encode(image, encoding),
        "layers": layers,
    }


def compute_views(model, test_images, k: int = 6) -> dict:
    """What the page shows beside a channel: its top-k test exemplars (when the test set is
    there) and the input it responds to most (activation maximisation)."""
    import torch

    from ..run.exemplars import top_exemplars
    from ..run.optimize import OptimizeConfig, maximize

    views: dict = {"exemplars": {}, "optimized": {}}
    if len(test_images):
        imgs = torch.from_numpy(np.asarray(test_images))
        for layer in ("conv1", "conv2"):
            from ..spec import describe

            ex = top_exemplars(model, imgs, describe(model, (1, 28, 28)).layer(layer), k)
            views["exemplars"][layer] = np.round(ex.patches.astype(float), 3).tolist()
    for layer, units in (("conv1", 6), ("conv2", 16), ("fc3", model.fc3.out_features)):
        images, _ = maximize(model, layer, units, OptimizeConfig(steps=100))
        views["optimized"][layer] = np.round(images.astype(float), 3).tolist()
    return views


def attribution_map(model, image: np.ndarray, kind: str, target: int) -> list:
    from ..run.attribution import grad_cam, saliency

    if kind == "saliency":
        m = saliency(model, image, target)
    else:
        m = grad_cam(model, image, target)[1]
    return np.round((m / (m.max() or 1.0)).astype(float), 4).tolist()


def _lut_lists():
    from ..draw.core import colormap

    return {name: colormap(name).tolist() for name in CMAPS}


def create_app(checkpoint=None, data_dir=None, dataset: str = "mnist") -> Starlette:
    """The app, with the model loaded once. data_dir: the test set for 'random test digit'."""
    from ..models.checkpoint import default_checkpoint, load_checkpoint, load_weights

    checkpoint = checkpoint if checkpoint is not None else default_checkpoint(dataset)
    weights, meta = load_weights(checkpoint)
    model, _ = load_checkpoint(checkpoint)  # torch, for attribution and the views
    sample_images = [s.image for s in samples(dataset)]
    test_images = []
    try:
        from ..datasets.idx import load_split

        test_images = load_split(
            "test", data_dir, allow_download=False, dataset=dataset
        ).images.numpy()
    except ConvseeError:
        pass  # the page falls back to the bundled samples
    info = {
        "convsee_version": __version__,
        "checkpoint": Path(meta["path"]).name,
        "checkpoint_sha256": meta["sha256"],
        "test_accuracy": meta.get("test_accuracy"),
        "classes": meta["classes"],
        "layers": {
            n: {"kind": LAYER_INFO[n][0], "after_relu": LAYER_INFO[n][1]} for n in PAGE_LAYERS
        },
        "kernels": {k: np.round(weights[f"{k}.weight"], 5).tolist() for k in ("conv1", "conv2")},
        "colormaps": _lut_lists(),
        "has_test_set": len(test_images) > 0,
        "dataset": dataset,
    }
    rng = random.Random()
    range_cache: dict = {}  # blur -> global ranges, for this app's weights

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def api_info(request: Request) -> Response:
        return JSONResponse(info)

    views: dict = {}

    async def api_views(request: Request) -> Response:
        if not views:  # computed on first use (about a second), then kept
            views.update(compute_views(model, test_images))
        return JSONResponse(views)

    async def api_sample(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind == "random":
            if len(test_images):
                n = rng.randrange(len(test_images))
                img, name = test_images[n].astype(np.float32) / 255, f"test:{n}"
            else:
                n = rng.randrange(10)
                img, name = sample_images[n], f"sample:{n}"
        elif kind.isdigit() and int(kind) < len(sample_images):
            img, name = sample_images[int(kind)], f"sample:{kind}"
        else:
            return JSONResponse({"error": f"no sample {kind!r}; use 0..9 or random"}, 404)
        return JSONResponse({"name": name, "image": np.round(img, 4).tolist()})

    async def api_activations(request: Request) -> Response:
        try:
            declared = request.headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
                raise BadRequest(f"body too large (over {MAX_BODY} bytes)", 413)
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise BadRequest(f"body too large (over {MAX_BODY} bytes)", 413)
                chunks.append(chunk)
            try:  # NaN and Infinity raise BadRequest from _reject_constant
                body = json.loads(b"".join(chunks), parse_constant=_reject_constant)
            except (ValueError, UnicodeDecodeError) as e:
                raise BadRequest(f"malformed JSON: {e}") from None
            payload = activations_payload(weights, body, meta, range_cache, dataset, model)
            return JSONResponse(payload)
        except BadRequest as e:
            return JSONResponse({"error": str(e)}, e.status)

    routes = [
        Route("/", index),
        Route("/api/info", api_info),
        Route("/api/views", api_views),
        Route("/api/sample/{kind}", api_sample),
        Route("/api/activations", api_activations, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)
