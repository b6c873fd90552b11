"""The live page's server: Starlette on uvicorn, loopback by default.

The model is loaded once. Each POST /api/activations runs one NumPy forward pass and
returns every layer; the torch copy of the model serves attribution overlays and the
per-channel views. The event loop only moves bytes: parsing, image decoding, the forward
pass and the views run in worker threads (`WORKERS` requests at once, and one large image
on a lane of its own; every use of the torch model's hooks under `TORCH_LOCK`), so a slow
request never freezes the others and large images never queue ahead of the page's.
Requests are validated strictly (a body cap, JSON depth and number limits, shape, finite
numbers in [0, 1], an image pixel cap checked before decoding) and a bad one gets a 4xx
with a short message that never echoes it back. Host, origin and content-type checks live
in `guard.py`; connection limits and timeouts in `runner.py`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ctypes
import json
import logging
import math
import random
import re
import sys
import threading
import weakref
from pathlib import Path

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..datasets.digits import preprocess_for
from ..datasets.images import declared_size, open_image, reduce_to
from ..datasets.inputs import samples
from ..errors import ConvseeError
from ..models.lenet_layers import LAYER_INFO
from ..models.lenet_numpy import forward_all as _forward_logits
from ..models.network import softmax
from ..run.filters import blur_maps
from .guard import RequestGuard
from .requests import BadRequest, describe, parse_json, read_body

__all__ = [
    "create_app",
    "MAX_BODY",
    "MAX_IMAGE_PIXELS",
    "PAGE_LAYERS",
    "activations_payload",
    "BadRequest",
]

MAX_BODY = 256 * 1024  # bytes: a 28x28 list is ~6 KB, a 280x280 canvas PNG ~10-40 KB
# pixels an uploaded image may declare: the page sends 280x280; a digit needs far less than a
# photo's 12 MP, and preprocessing takes ~15 bytes a pixel (4 MP: ~60 MB, one at a time)
MAX_IMAGE_PIXELS = 4_000_000
# larger images are first averaged down to about this many pixels (8-bit, cheap): the 28x28
# the model sees moves by at most ~0.03 a pixel, the memory preprocessing needs by 4x
WORK_PIXELS = 1_000_000
WORKERS = 2  # requests computed at once, each in a worker thread
HEAVY_WORKERS = 1  # and besides them, images over WORK_PIXELS decoded at once (own lane)
MAX_PENDING = 64  # activations requests in the server (reading, waiting, computing); then 503
RANGE_CACHE_SIZE = 32  # blur settings whose global ranges are kept
PAGE_LAYERS = ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc1", "fc2", "fc3")
STATIC = Path(__file__).parent / "static"
CMAPS = ("RdBu_r", "viridis", "magma", "inferno", "gray", "coolwarm")
TORCH_LOCK = threading.Lock()  # forward hooks on a torch model: one user at a time
_RANGES_LOCK = threading.Lock()
log = logging.getLogger("convsee.web")


def _parse_image(value) -> np.ndarray:
    if not isinstance(value, list) or len(value) != 28:
        raise BadRequest(f"'image' must be 28 rows of 28 numbers, got {describe(value)}")
    for r, row in enumerate(value):
        if not isinstance(row, list) or len(row) != 28:
            raise BadRequest(f"'image' row {r} must hold 28 numbers, got {describe(row)}")
        for c, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise BadRequest(f"'image'[{r}][{c}] must be a number, got {describe(v)}")
            if (isinstance(v, float) and not math.isfinite(v)) or not 0 <= v <= 1:
                raise BadRequest(f"'image'[{r}][{c}] is outside [0, 1]")
    return np.asarray(value, np.float32)


def _parse_png(value, dataset: str = "mnist") -> np.ndarray:
    if not isinstance(value, str):
        raise BadRequest(f"'png' must be a base64 string (or data URL), got {describe(value)}")
    raw = _png_bytes(value)
    try:
        image = reduce_to(open_image(raw, max_pixels=MAX_IMAGE_PIXELS), WORK_PIXELS)
        return preprocess_for(image, dataset)
    except ConvseeError as e:
        raise BadRequest(f"'png': {e}", 422) from None


def _png_bytes(value: str) -> bytes:
    data = value.partition(",")[2] if value.startswith("data:") else value
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("'png' is not valid base64") from None
    if not raw:
        raise BadRequest("'png' is empty")
    return raw


def heavy_request(body) -> bool:
    """Whether body carries an image declaring more than WORK_PIXELS pixels: one whose
    decoding takes tens of megabytes and milliseconds, done one at a time on its own lane."""
    if not isinstance(body, dict) or not isinstance(body.get("png"), str):
        return False
    try:
        size = declared_size(_png_bytes(body["png"]))
    except BadRequest:
        return False  # activations_payload says what is wrong
    return size is not None and size[0] * size[1] > WORK_PIXELS


def forward_all(weights, images):
    """Every layer of LeNet-5 and the probabilities for [0, 1] 28x28 images (MNIST-normalised)."""
    from ..datasets.idx import MEAN, STD

    x = ((np.asarray(images, np.float32) - MEAN) / STD)[:, None]
    acts, logits = _forward_logits(weights, x)
    return acts, softmax(logits)


def _parse_blur(blur) -> tuple[int, float] | None:
    if blur is None:
        return None
    form = "'blur' must be [kernel, sigma] with kernel 1, 3, 5 or 7 and sigma in (0, 10]"
    if not (isinstance(blur, list) and len(blur) == 2):
        raise BadRequest(f"{form}, got {describe(blur)}")
    if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in blur):
        raise BadRequest(f"{form}, got something other than two numbers")
    if blur[0] not in (1, 3, 5, 7):
        raise BadRequest(f"{form}: the kernel is not 1, 3, 5 or 7")
    if not 0 < blur[1] <= 10:
        raise BadRequest(f"{form}: sigma is outside (0, 10]")
    return int(blur[0]), float(blur[1])


def _encode(a: np.ndarray, encoding: str):
    if encoding == "f32":
        return base64.b64encode(np.ascontiguousarray(a, "<f4").tobytes()).decode()
    return np.round(a, 4).tolist()


def global_ranges(weights, blur, cache: dict, dataset: str = "mnist") -> dict:
    """Per layer, (min, max) over the ten bundled samples: the page's 'global' scale,
    one range for a layer across inputs as in `convsee render`. Cached per blur in cache,
    which keeps the RANGE_CACHE_SIZE most recently used settings."""
    key = blur
    with _RANGES_LOCK:
        if key in cache:
            cache[key] = cache.pop(key)  # most recently used last
            return cache[key]
    acts, _ = forward_all(weights, [s.image for s in samples(dataset)])
    out = {}
    for name in PAGE_LAYERS:
        a = acts[name]
        if blur is not None and LAYER_INFO[name][0] == "map":
            a = blur_maps(a, *blur)
        out[name] = [float(a.min()), float(a.max())]
    with _RANGES_LOCK:
        cache[key] = out
        while len(cache) > RANGE_CACHE_SIZE:
            del cache[next(iter(cache))]
    return out


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
        raise BadRequest(f"the body must be a JSON object, got {describe(body)}")
    if ("image" in body) == ("png" in body):
        raise BadRequest("send exactly one of 'image' (28x28 numbers in [0, 1]) or 'png'")
    encoding = body.get("encoding", "list")
    if encoding not in ("list", "f32"):
        raise BadRequest(f"'encoding' must be 'list' or 'f32', got {describe(encoding)}")
    attribution = body.get("attribution")
    if attribution not in (None, "saliency", "gradcam"):
        raise BadRequest(
            f"'attribution' must be 'saliency' or 'gradcam', got {describe(attribution)}"
        )
    blur = _parse_blur(body.get("blur"))
    # the image last: the cheap checks above fail before any decoding
    image = _parse_image(body["image"]) if "image" in body else _parse_png(body["png"], dataset)
    acts, probs = forward_all(weights, image[None])
    ranges = global_ranges(weights, blur, {} if cache is None else cache, dataset)
    layers = {}
    for name in PAGE_LAYERS:
        a = acts[name][0]
        if blur is not None and LAYER_INFO[name][0] == "map":
            a = blur_maps(a, *blur)
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
            "map": attribution_map(model, image, attribution, int(p.argmax())),  # locks
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
            from ..spec import describe as describe_model

            spec_layer = describe_model(model, (1, 28, 28)).layer(layer)
            ex = top_exemplars(model, imgs, spec_layer, k, batch=500)  # ~100 MB less peak
            views["exemplars"][layer] = np.round(ex.patches.astype(float), 3).tolist()
    for layer, units in (("conv1", 6), ("conv2", 16), ("fc3", model.fc3.out_features)):
        images, _ = maximize(model, layer, units, OptimizeConfig(steps=100))
        views["optimized"][layer] = np.round(images.astype(float), 3).tolist()
    return views


def attribution_map(model, image: np.ndarray, kind: str, target: int) -> list:
    from ..run.attribution import grad_cam, saliency

    with TORCH_LOCK:
        if kind == "saliency":
            m = saliency(model, image, target)
        else:
            m = grad_cam(model, image, target)[1]
    return np.round((m / (m.max() or 1.0)).astype(float), 4).tolist()


def _lut_lists():
    from ..draw.core import colormap

    return {name: colormap(name).tolist() for name in CMAPS}


def _release_memory() -> None:
    """Give freed heap memory back to the system (glibc keeps ~50 MB after the views)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass  # not glibc


class _Views:
    """The channel views, computed once in a background thread (about 2 s of torch work,
    under TORCH_LOCK) and kept as JSON bytes."""

    def __init__(self, model, test_images):
        self.model, self.test_images = model, test_images
        self.done = threading.Event()
        self.body: bytes | None = None
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def start(self) -> None:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="views", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            with TORCH_LOCK:
                views = compute_views(self.model, self.test_images)
            self.body = json.dumps(views, separators=(",", ":")).encode()
        except Exception:
            log.exception("computing the channel views failed")
        finally:
            self.done.set()
            _release_memory()

    async def get(self) -> bytes | None:
        self.start()
        while not self.done.is_set():  # polled: no thread waits, the loop stays free
            await anyio.sleep(0.05)
        return self.body


class _PerLoop:
    """One anyio CapacityLimiter per event loop (a test client may run several loops)."""

    def __init__(self, tokens: int):
        self.tokens = tokens
        self._limiters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self) -> anyio.CapacityLimiter:
        loop = asyncio.get_running_loop()
        if loop not in self._limiters:
            self._limiters[loop] = anyio.CapacityLimiter(self.tokens)
        return self._limiters[loop]


def _json(data, status: int = 200) -> Response:
    body = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return Response(body, status, media_type="application/json")


def _error(message: str, status: int, *, close: bool = False, headers=None) -> Response:
    headers = dict(headers or {})
    if close:
        headers["connection"] = "close"
    return JSONResponse({"error": message}, status, headers=headers)


def create_app(
    checkpoint=None,
    data_dir=None,
    dataset: str = "mnist",
    *,
    any_host: bool = False,
    precompute_views: bool = False,
) -> Starlette:
    """The app, with the model loaded once. data_dir: the test set for 'random test digit'.

    any_host: answer requests whatever their Host header (served on the network); by
    default only Host names of loopback are answered (see guard.py). precompute_views:
    start computing the channel views now, in the background, instead of on first use.
    """
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
    info_body = json.dumps(info, separators=(",", ":")).encode()  # built once, sent as is
    rng = random.Random()
    range_cache: dict = {}  # blur -> global ranges, for this app's weights (bounded)
    views = _Views(model, test_images)
    if precompute_views:
        views.start()
    workers, heavy = _PerLoop(WORKERS), _PerLoop(HEAVY_WORKERS)
    pending = [0]  # activations requests in the server now (the event loop's thread only)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def api_info(request: Request) -> Response:
        return _json(info_body)

    async def api_views(request: Request) -> Response:
        body = await views.get()
        if body is None:
            return _error("the channel views could not be computed (see the server log)", 500)
        return _json(body)

    async def api_sample(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind == "random":
            if len(test_images):
                n = rng.randrange(len(test_images))
                img, name = test_images[n].astype(np.float32) / 255, f"test:{n}"
            else:
                n = rng.randrange(len(sample_images))
                img, name = sample_images[n], f"sample:{n}"
        elif re.fullmatch("[0-9]{1,4}", kind, re.ASCII) and int(kind) < len(sample_images):
            img, name = sample_images[int(kind)], f"sample:{int(kind)}"
        else:
            return _error(f"no such sample; use 0..{len(sample_images) - 1} or random", 404)
        return _json({"name": name, "image": np.round(img, 4).tolist()})

    def compute(body) -> bytes:  # in a worker thread
        payload = activations_payload(weights, body, meta, range_cache, dataset, model)
        return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()

    def parse_and_compute(raw: bytes):  # in a worker thread
        body = parse_json(raw)
        if heavy_request(body):
            return body  # the loop sends it to the heavy lane
        return compute(body)

    async def api_activations(request: Request) -> Response:
        if pending[0] >= MAX_PENDING:
            return _error("busy: too many requests at once; try again", 503, close=True)
        pending[0] += 1
        try:
            raw = await read_body(request, MAX_BODY)
            out = await anyio.to_thread.run_sync(parse_and_compute, raw, limiter=workers.get())
            if not isinstance(out, bytes):  # a large image: decoded one at a time, so that
                # it neither holds the memory of several nor delays the page's small ones
                out = await anyio.to_thread.run_sync(compute, out, limiter=heavy.get())
            return _json(out)
        except BadRequest as e:
            return _error(str(e), e.status, close=e.close)
        finally:
            pending[0] -= 1

    routes = [
        Route("/", index),
        Route("/api/info", api_info),
        Route("/api/views", api_views),
        Route("/api/sample/{kind}", api_sample),
        Route("/api/activations", api_activations, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(RequestGuard, any_host=any_host)])
