"""The live page's server: the Starlette app and its routes, on uvicorn, loopback by default,
for any model.

The model is a `Network` (LeNet-5 in NumPy, or any torch module), loaded once (served.py).
/api/info sends its description (info.py); the page builds itself from that. Each POST
/api/activations runs one forward pass that captures only the layers the page shows and
answers with those layers' maps (activations.py): for the page, 8-bit with each map's own
range, only the channels shown (all up to `PAGE_SIZE`, else a page of them), large maps
averaged down to thumbnails, in one binary frame (encoding.py).

The event loop only moves bytes: parsing, image decoding and the forward pass run in worker
threads (`WORKERS` requests at once, and one large image on a lane of its own; every use of
a torch model's hooks under `TORCH_LOCK`), so a slow request never freezes the others and
large images never queue ahead of the page's. The per-channel views (exemplars, optimised
input) are computed on request, one at a time in a background thread on a copy of the model
(views.py): they never delay an update. Requests are validated strictly (schema.py: a body
cap, JSON depth and number limits, shape, finite numbers in [0, 1], an image pixel cap
checked before decoding, a cap on the values one answer may hold) and a bad one gets a 4xx
with a short message that never echoes it back. Host, origin and content-type checks live in
`guard.py`; connection limits and timeouts in `runner.py`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import threading
from pathlib import Path

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from ..errors import ConvseeError
from .activations import activations_payload
from .assets import PageFiles
from .encoding import THUMB, decode_frame, encode_frame
from .guard import RequestGuard
from .info import page_info
from .keys import said
from .lanes import Lane, Standing, hold_back, priority, run_low
from .requests import BadRequest, parse_json, query, read_body, whole
from .schema import (
    ACTIVATIONS_KEYS,
    MAX_BODY,
    MAX_IMAGE_PIXELS,
    MAX_VALUES,
    PAGE_SIZE,
    VECTOR_MAX,
    heavy_request,
)
from .served import (
    TORCH_LOCK,
    Served,
    default_layers,
    drawable,
    global_ranges,
    serve_model,
)

# the names below the app re-exported (the constants are read where they are defined:
# schema.py, encoding.py, served.py)
__all__ = [
    "create_app",
    "Served",
    "serve_model",
    "activations_payload",
    "encode_frame",
    "decode_frame",
    "default_layers",
    "global_ranges",
    "heavy_request",
    "BadRequest",
    "MAX_BODY",
    "MAX_IMAGE_PIXELS",
    "PAGE_SIZE",
    "THUMB",
    "VECTOR_MAX",
    "MAX_VALUES",
    "TORCH_LOCK",
]

WORKERS = 2  # requests computed at once, each in a worker thread
HEAVY_WORKERS = 1  # and besides them, images over WORK_PIXELS decoded at once (own lane)
MAX_PENDING = 64  # activations requests whose body has arrived (waiting, computing); then 503
STATIC = Path(__file__).parent / "static"
log = logging.getLogger("convsee.web")


# ---------------------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------------------


class _Gone(Exception):
    """The client closed its connection before its request's turn came."""


def _json(data, status: int = 200) -> Response:
    body = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return Response(body, status, media_type="application/json")


def _error(message: str, status: int, *, close: bool = False, headers=None) -> Response:
    headers = dict(headers or {})
    if close:
        headers["connection"] = "close"
    return JSONResponse({"error": message}, status, headers=headers)


class _Warm:
    """LeNet-5's torch copy (overlays, views) is built once, in the background, after the
    first answer: the page never waits for torch's import at start."""

    def __init__(self, served: Served):
        self.served = served
        self.started = False

    def start(self) -> None:
        if self.started or not self.served.net.torch_free:
            return
        self.started = True

        def run():
            try:
                with TORCH_LOCK:
                    self.served.torch_model()
            except Exception:  # noqa: BLE001 - only a warm-up: the real use says what is wrong
                log.exception("building the torch model failed")

        threading.Thread(target=run, name="warm-torch", daemon=True).start()


def create_app(
    net=None,
    data_dir=None,
    dataset: str | None = None,
    *,
    any_host: bool = False,
) -> Starlette:
    """The app for a Network (None: LeNet-5 with the shipped weights of `dataset`; a path: a
    LeNet-5 checkpoint). data_dir: the test images (IDX files or a folder of images) for
    random inputs and the exemplars; without it the dataset's IDX test split is used where
    convsee finds it (never downloaded).

    any_host: answer requests whatever their Host header (served on the network); by
    default only Host names of loopback are answered (see guard.py).
    """
    from .explain_api import explain_route, teach_info
    from .views import Views

    served = serve_model(net, data_dir, dataset)
    info = page_info(served) | teach_info(served, TORCH_LOCK)  # teach_info: explain_api.py
    info_body = json.dumps(info, separators=(",", ":")).encode()  # built once
    rng = random.Random()
    views = Views(served, TORCH_LOCK)
    warm = _Warm(served)
    # queued by how each client behaves, suspect and heavy work at a lower OS priority: lanes.py
    workers, heavy = Lane(WORKERS), Lane(HEAVY_WORKERS)
    # activations requests in the server now, each with its connection (runner.py's
    # protocol, when served by it); the event loop's thread only
    pending: dict = {}

    def make_room() -> None:
        """When full: requests whose clients have closed, or hold answers they never read
        (they pipeline and do not read), give up their place, oldest first; those not
        closed yet are dropped (their work is never computed: in_turn)."""
        from .connections import drop_connection, not_reading

        for key, conn in list(pending.items()):
            if len(pending) < MAX_PENDING:
                break
            if conn is not None and not_reading(conn):
                pending.pop(key)
                drop_connection(conn)

    stats = {"computed": 0, "dropped": 0}  # requests computed; dropped: their client had gone
    spec_layers = {x.name: x for x in served.spec.layers}

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def api_info(request: Request) -> Response:
        try:
            query(request.query_params)
        except BadRequest as e:
            return _error(str(e), e.status)
        return _json(info_body)

    async def api_views(request: Request) -> Response:
        try:
            q = query(request.query_params, ("layer", "unit"))
            name, unit = q.get("layer"), q.get("unit")
            if name is None or unit is None:
                raise BadRequest("give ?layer=NAME&unit=N (the channel or vector unit)")
            n = whole(unit, "unit", "a whole number (the channel or vector unit)")
        except BadRequest as e:
            return _error(str(e), e.status)
        layer = spec_layers.get(name)
        if layer is None or not drawable(layer):
            return _error("no such map or vector layer (see /api/info)", 404)
        units = layer.channels if layer.kind == "map" else int(np.prod(layer.shape))
        if n >= units:
            return _error(f"no such unit; the layer has 0..{units - 1}", 404)
        return _json(views.status(layer, n))  # never waits: queued in the background

    async def api_sample(request: Request) -> Response:
        try:
            query(request.query_params)
        except BadRequest as e:
            return _error(str(e), e.status)
        kind = request.path_params["kind"]
        items = served.sample_items
        if kind == "random":
            src = served.source
            if src is None:
                return _error(served.source_why, 404)
            n = rng.randrange(len(src))
            if hasattr(src, "split_name"):
                img = src.images[n].astype(np.float32) / 255
                return _json({"name": f"test:{n}", "image": np.round(img, 4).tolist()})
            return _json({"name": f"data:{n}", "path": str(src.files[n].relative_to(src.root))})
        if re.fullmatch("[0-9]{1,4}", kind, re.ASCII) and int(kind) < len(items):
            img = items[int(kind)].image
            return _json({"name": f"sample:{int(kind)}", "image": np.round(img, 4).tolist()})
        return _error(f"no such sample; use 0..{len(items) - 1} or random", 404)

    def compute(body) -> Response:  # in a worker thread
        try:
            head, blobs = activations_payload(served, body)
        except ConvseeError as e:  # a library error on the way: named as the request names it
            sent = body if isinstance(body, dict) else ()
            raise BadRequest(said(e, ACTIVATIONS_KEYS, sent), 422) from None
        if body.get("encoding") == "u8":
            return Response(encode_frame(head, blobs), media_type="application/octet-stream")
        return _json(json.dumps(head, separators=(",", ":"), allow_nan=False).encode())

    def parse_and_compute(raw: bytes):  # in a worker thread
        body = parse_json(raw)
        if heavy_request(body):
            return body  # the loop sends it to the heavy lane
        return compute(body)

    async def in_turn(request: Request, lane: Lane, fn, arg, prio: int):
        """fn(arg) in a worker thread when the lane has room, unless the client has gone
        meanwhile: work queued for a closed connection is dropped, never computed."""
        async with lane.turn(prio):
            if await request.is_disconnected():
                stats["dropped"] += 1
                raise _Gone
            stats["computed"] += 1
            if prio or lane is heavy:
                return await run_low(fn, arg)
            return await anyio.to_thread.run_sync(fn, arg)

    async def api_activations(request: Request) -> Response:
        await hold_back(request.scope.get("extensions", {}).get("convsee.connection"))
        try:
            # only a request whose body has arrived counts toward "busy": clients that send
            # half a body hold a connection (runner.py's deadlines and cap), never a place
            raw = await read_body(request, MAX_BODY)
            query(request.query_params)  # after the body: the connection stays usable
        except BadRequest as e:
            return _error(str(e), e.status, close=e.close)
        if len(pending) >= MAX_PENDING:
            make_room()
        if len(pending) >= MAX_PENDING:
            return _error("busy: too many requests at once; try again", 503, close=True)
        key, bad = object(), True
        pending[key] = conn = request.scope.get("extensions", {}).get("convsee.connection")
        prio = priority(conn)
        try:
            out = await in_turn(request, workers, parse_and_compute, raw, prio)
            if not isinstance(out, Response):  # a large image: decoded one at a time, so that
                # it neither holds the memory of several nor delays the page's small ones
                out = await in_turn(request, heavy, compute, out, max(prio, 1))
            else:
                bad = out.status_code >= 400
            warm.start()
            return out
        except BadRequest as e:
            return _error(str(e), e.status, close=e.close)
        except _Gone:
            return Response(status_code=499)  # nobody reads it
        finally:
            pending.pop(key, None)
            Standing.record(conn, bad)  # refused or heavy: its next requests wait behind

    routes = [
        Route("/", index),
        Route("/api/info", api_info),
        Route("/api/views", api_views),
        Route("/api/sample/{kind}", api_sample),
        Route("/api/activations", api_activations, methods=["POST"]),
        explain_route(served, TORCH_LOCK, MAX_BODY, workers.get),  # POST /api/explain
        Mount("/static", PageFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await anyio.to_thread.run_sync(views.stop)  # let a running view finish first

    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestGuard, any_host=any_host)],
        lifespan=lifespan,
    )
    app.state.served = served
    app.state.views = views
    app.state.stats = stats
    return app
