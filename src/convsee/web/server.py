"""The live page's server: Starlette on uvicorn, loopback by default, for any model.

The model is a `Network` (LeNet-5 in NumPy, or any torch module), loaded once. /api/info
sends its description (every layer: name, type, shape, kind, receptive field, the conv that
made it), its preprocessing and classes, and what the page can offer (drawing for 1-channel
models, the dataset's samples, random test images when the data is there, overlays); the
page builds itself from that. Each POST /api/activations runs one forward pass that captures
only the layers the page shows and answers with those layers' maps: for the page, 8-bit with
each map's own range, only the channels shown (all up to `PAGE_SIZE`, else a page of them),
large maps averaged down to thumbnails, in one binary frame (`encode_frame`).

The event loop only moves bytes: parsing, image decoding and the forward pass run in worker
threads (`WORKERS` requests at once, and one large image on a lane of its own; every use of
a torch model's hooks under `TORCH_LOCK`), so a slow request never freezes the others and
large images never queue ahead of the page's. The per-channel views (exemplars, optimised
input) are computed on request, one at a time in a background thread on a copy of the model
(views.py): they never delay an update. Requests are validated strictly (a body cap, JSON
depth and number limits, shape, finite numbers in [0, 1], an image pixel cap checked before
decoding, a cap on the values one answer may hold) and a bad one gets a 4xx with a short
message that never echoes it back. Host, origin and content-type checks live in `guard.py`;
connection limits and timeouts in `runner.py`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import math
import random
import re
import struct
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from .. import __version__
from ..datasets.images import declared_size, open_image, reduce_to
from ..datasets.inputs import Input, prepare, samples
from ..datasets.transforms import aspect_limit, fit, normalize
from ..errors import ConvseeError
from ..run.filters import blur_maps
from ..spec import Layer
from .assets import PageFiles
from .guard import RequestGuard
from .lanes import Lane, Standing, hold_back, priority, run_low
from .requests import BadRequest, describe, parse_json, read_body

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

# bytes: a 280x280 canvas PNG is ~10-40 KB; the page sends image files downscaled to at most
# 1024 px as JPEG (~100-400 KB in base64)
MAX_BODY = 1024 * 1024
# pixels an uploaded image may declare: the page sends at most 1024x1024; preprocessing takes
# ~15 bytes a pixel (4 MP: ~60 MB, one at a time)
MAX_IMAGE_PIXELS = 4_000_000
# larger images are first averaged down to about this many pixels (8-bit, cheap): the
# picture the model sees moves by at most ~0.03 a pixel, the memory preprocessing needs by 4x
WORK_PIXELS = 1_000_000
WORKERS = 2  # requests computed at once, each in a worker thread
HEAVY_WORKERS = 1  # and besides them, images over WORK_PIXELS decoded at once (own lane)
HEAVY_SCANS = 32  # JPEGs of more scans go to that lane too (the page's have 1 to ~10)
MAX_PENDING = 64  # activations requests whose body has arrived (waiting, computing); then 503
RANGE_CACHE_SIZE = 32  # blur settings whose sample ranges are kept (LeNet-5)
PAGE_SIZE = 16  # maps of a layer in one answer: all up to 16, else a page of 16 channels
THUMB = 56  # px: for the page, larger maps are averaged down by a whole factor to at most this
VECTOR_MAX = 4096  # units of a vector layer sent; longer ones: the top units by value
# values one answer may hold, per encoding (the page's 8-bit frames; float32 in base64;
# JSON lists): a ResNet-18 page at 224x224 sends ~0.6 million
MAX_VALUES = {"u8": 4_000_000, "f32": 2_000_000, "list": 500_000}
ENCODINGS = ("list", "f32", "u8")
ORDERS = ("top", "index")
FRAME_MAGIC = b"CVS1"  # binary answers: magic, header length (uint32 LE), JSON header, data
STATIC = Path(__file__).parent / "static"
CMAPS = ("RdBu_r", "viridis", "magma", "inferno", "gray", "coolwarm")
KERNEL_MAX_IN = 16  # kernels shown on hover: at most this many input channels ...
KERNEL_MAX_SIDE = 7  # ... of at most 7x7
KERNEL_VALUES = 200_000  # and at most this many weights in /api/info altogether
TORCH_LOCK = threading.Lock()  # forward hooks on a torch model: one user at a time
_RANGES_LOCK = threading.Lock()
_INPUT_NAME = re.compile(r"(sample|test|data):([0-9]{1,9})", re.ASCII)
_UPLOAD_NAME = re.compile(r"upload:[0-9a-f]{16}", re.ASCII)
UPLOADS = 16  # uploaded images kept (prepared) so that further updates name them ...
UPLOAD_BYTES = 64 * 1024 * 1024  # ... and at most this much of them
# leaf layers that only rescale, clip or reshape the layer before them: hidden by default
PASS_TYPES = {
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Hardswish",
    "Hardsigmoid",
    "Hardtanh",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "BatchNorm1d",
    "BatchNorm2d",
    "GroupNorm",
    "InstanceNorm2d",
    "LayerNorm",
    "LocalResponseNorm",
    "Dropout",
    "Dropout2d",
    "AlphaDropout",
    "Identity",
    "Flatten",
    "Unflatten",
}
log = logging.getLogger("convsee.web")


# ---------------------------------------------------------------------------------------------
# the model being served
# ---------------------------------------------------------------------------------------------


@dataclass
class Served:
    """A Network with what the page needs around it."""

    net: object  # models.network.Network
    dataset: str = "mnist"
    source: object | None = None  # test images (IDX split or image folder), or None
    source_why: str = ""  # why there is none
    scores: str | None = None  # the layer holding the class scores (drawn as probabilities)
    defaults: list[str] = field(default_factory=list)  # layers shown at first
    cam_layers: list[str] = field(default_factory=list)  # layers offered for Grad-CAM
    cam_default: str | None = None
    ranges: dict = field(default_factory=dict)  # blur -> sample ranges (LeNet-5), bounded
    sample_items: list = field(default_factory=list)  # the dataset's bundled samples
    uploads: OrderedDict = field(default_factory=OrderedDict)  # upload:ID -> Input, bounded
    uploads_lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self, raw: bytes, inp: Input) -> Input:
        """Keep a prepared upload; it comes back named upload:ID (from the file's bytes)."""
        from dataclasses import replace

        inp = replace(inp, name="upload:" + hashlib.sha256(raw).hexdigest()[:16])
        with self.uploads_lock:
            self.uploads.pop(inp.name, None)
            self.uploads[inp.name] = inp
            while len(self.uploads) > UPLOADS or (
                len(self.uploads) > 1
                and sum(i.image.nbytes + i.x.nbytes for i in self.uploads.values()) > UPLOAD_BYTES
            ):
                self.uploads.popitem(last=False)
        return inp

    def kept(self, name: str) -> Input | None:
        with self.uploads_lock:
            inp = self.uploads.get(name)
            if inp is not None:
                self.uploads.move_to_end(name)
            return inp

    @property
    def spec(self):
        return self.net.spec

    @property
    def prep(self):
        return self.net.prep

    def torch_model(self):
        """The torch module (LeNet-5's torch copy built on first use). Call under TORCH_LOCK."""
        return self.net.torch_model()

    def classes(self, k: int) -> list[str]:
        return self.net.class_names(k)

    def dataset_fits(self) -> bool:
        return self.net.takes(self.dataset)


def _is_vector(layer: Layer) -> bool:
    """Vectors, and maps of 1x1 (global pooling): drawn as strips."""
    return layer.kind == "vector" or (layer.kind == "map" and layer.shape[1] * layer.shape[2] == 1)


def drawable(layer: Layer) -> bool:
    return layer.kind in ("map", "vector")


def default_layers(spec, scores: str | None = None) -> list[str]:
    """The layers the page shows at first: every leaf layer that is a map or a vector, except
    the class scores (shown as probabilities) and layers that only rescale, clip or reshape
    the one before them (a ReLU or BatchNorm right after the conv that made the same map, a
    flatten, a dropout). LeNet-5: conv1, pool1, conv2, pool2, fc1, fc2."""
    out, prev = [], None
    for layer in spec.layers:
        if not layer.leaf:
            continue
        passing = layer.type in PASS_TYPES or layer.type.startswith("Dropout")
        same_map = (
            prev is not None
            and layer.shape == prev.shape
            and (
                layer.kind == "vector"
                or (layer.conv is not None and layer.conv == prev.conv)
                or layer.type in ("Flatten", "Identity", "Unflatten")
                or layer.type.startswith("Dropout")
            )
        )
        reshape = layer.type in ("Flatten", "Unflatten", "Identity")
        hidden = (passing and same_map) or reshape or layer.name == scores
        hidden = hidden or layer.channels_last  # shown as maps, but only when asked for
        if drawable(layer) and not hidden:
            out.append(layer.name)
        prev = layer
    return out


def _scores_layer(net) -> str | None:
    return net.spec.scores_layer(getattr(net, "output", None))


def _cam_layers(spec) -> list[str]:
    """Map layers Grad-CAM can be taken at: spatial maps from the first convolution on."""
    out, seen_conv = [], False
    for layer in spec.layers:
        seen_conv = seen_conv or layer.kernel is not None
        if seen_conv and layer.kind == "map" and layer.shape[1] * layer.shape[2] > 1:
            out.append(layer.name)
    return out


class _IdxTest:
    """The dataset's IDX test split, read with NumPy (no torch import at start-up), checked
    against the published md5 as `load_split` checks it, and never downloaded (an
    ImageSource)."""

    def __init__(self, data_dir, dataset: str):
        import hashlib

        from ..datasets.folder import IdxSource
        from ..datasets.idx import SPLITS, _read_bytes, find_data_dir, parse_idx
        from ..datasets.idx import spec as dataset_spec

        sp = dataset_spec(dataset)
        names = SPLITS["test"]
        paths = find_data_dir(data_dir, allow_download=False, dataset=dataset, names=names)
        arrays = []
        for name in names:
            kind, count, want = sp["files"][name]
            raw = _read_bytes(paths[name])
            arrays.append(parse_idx(raw, paths[name], kind, count))
            if hashlib.md5(raw).hexdigest() != want:
                raise ConvseeError(
                    f"{paths[name]}: md5 {hashlib.md5(raw).hexdigest()}, expected {want} "
                    f"(corrupt, or not {sp['name']} as published)"
                )
        images, labels = arrays
        src = IdxSource.__new__(IdxSource)  # IdxSource's own constructor may download
        src.split_name = "test"
        src.images = np.ascontiguousarray(images)
        src._labels = labels.astype(np.int64)
        src.md5 = {}
        src.name = f"{sp['name']} test"
        src.classes = list(sp["classes"])
        self.source = src


def _open_test_source(data_dir, dataset: str):
    """(source, why not): --data DIR (IDX files or a folder of images; an error when given
    but unusable), else the dataset's IDX test split where convsee looks (never downloaded)."""
    from ..datasets.folder import FolderSource, _has_idx, _has_images

    if data_dir is not None:
        d = Path(data_dir)
        if not d.is_dir():
            raise ConvseeError(f"--data {str(d)[:200]}: no such folder")
        if not _has_idx(d) and _has_images(d):
            return FolderSource(d), ""
        try:
            return _IdxTest(d, dataset).source, ""
        except ConvseeError as e:
            if "not found" not in str(e):  # a damaged file: its own message, one line
                raise ConvseeError(" ".join(str(e).split())[:300]) from None
            from ..datasets.folder import IMAGE_SUFFIXES
            from ..datasets.idx import spec as dataset_spec

            raise ConvseeError(
                f"--data {str(d)[:200]}: neither the {dataset_spec(dataset)['name']} test files "
                f"(t10k-*-idx?-ubyte[.gz]) nor images ({', '.join(IMAGE_SUFFIXES)}) are there"
            ) from None
    try:
        return _IdxTest(None, dataset).source, ""
    except ConvseeError as e:
        if "not found" in str(e):
            return None, "no test set found: start convsee serve with --data DIR"
        return None, " ".join(str(e).split())[:200]  # damaged: said on the page


def serve_model(net=None, data_dir=None, dataset: str | None = None) -> Served:
    """Served for a Network (None: LeNet-5 with the shipped weights of the dataset; a path:
    a LeNet-5 checkpoint). dataset: where samples and the default test set come from
    (default: the one the checkpoint was trained on, else MNIST)."""
    from ..datasets.idx import spec as dataset_spec
    from ..datasets.idx import trained_on
    from ..models.load import load_network

    if net is None or isinstance(net, (str, Path)):
        net = load_network(None, net, dataset=dataset or "mnist")
    dataset = dataset or getattr(net, "dataset", None) or trained_on(getattr(net, "meta", None))
    source, why = _open_test_source(data_dir, dataset)
    if data_dir is None and source is not None and not net.takes(dataset):
        # MNIST's digits for a model of colour photos: neither random inputs nor exemplars
        name = dataset_spec(dataset)["name"]
        source = None
        why = "no test images of this model's kind: start convsee serve with --data DIR (a "
        why += f"folder of its images; the {name} test set is not what it takes)"
    scores = _scores_layer(net)
    cams = _cam_layers(net.spec)
    cam_default = None
    convs = [x.name for x in net.spec.layers if x.kernel is not None and x.name in cams]
    if convs:
        cam_default = convs[-1]
    elif cams:
        cam_default = cams[-1]
    return Served(
        net=net,
        dataset=dataset,
        source=source,
        source_why=why,
        scores=scores,
        defaults=default_layers(net.spec, scores),
        cam_layers=cams,
        cam_default=cam_default,
        sample_items=samples(dataset),
    )


# ---------------------------------------------------------------------------------------------
# reading the request
# ---------------------------------------------------------------------------------------------


def _parse_image(value, prep) -> np.ndarray:
    """'image': the picture the model sees, (H, W) numbers or (H, W, 3) pixels in [0, 1]."""
    c, h, w = prep.input_size
    if c not in (1, 3):
        raise BadRequest(
            f"'image' works for 1- and 3-channel models; this one takes {c}: send 'png'"
        )
    what = f"{w} numbers" if c == 1 else f"{w} pixels of 3 numbers"
    if not isinstance(value, list) or len(value) != h:
        raise BadRequest(f"'image' must be {h} rows of {what}, got {describe(value)}")
    for r, row in enumerate(value):
        if not isinstance(row, list) or len(row) != w:
            raise BadRequest(f"'image' row {r} must hold {what}, got {describe(row)}")
        for col, v in enumerate(row):
            if c == 3:
                if not isinstance(v, list) or len(v) != 3:
                    raise BadRequest(f"'image'[{r}][{col}] must be 3 numbers, got {describe(v)}")
                items = v
            else:
                items = (v,)
            for x in items:
                if isinstance(x, bool) or not isinstance(x, (int, float)):
                    raise BadRequest(f"'image'[{r}][{col}] must be a number, got {describe(x)}")
                if (isinstance(x, float) and not math.isfinite(x)) or not 0 <= x <= 1:
                    raise BadRequest(f"'image'[{r}][{col}] is outside [0, 1]")
    return np.asarray(value, np.float32)


def _png_bytes(value: str) -> bytes:
    data = value.partition(",")[2] if value.startswith("data:") else value
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("'png' is not valid base64") from None
    if not raw:
        raise BadRequest("'png' is empty")
    return raw


def _parse_png(value, prep, keep=None) -> Input:
    """'png': any image file (a canvas, a photo), prepared as the model's preprocessing says.
    keep: a Served to keep it in (the Input's name is then its upload:ID)."""
    if not isinstance(value, str):
        raise BadRequest(f"'png' must be a base64 string (or data URL), got {describe(value)}")
    raw = _png_bytes(value)
    inp = _prepare_png(raw, prep)
    return inp if keep is None else keep.keep(raw, inp)


def _prepare_png(raw: bytes, prep) -> Input:
    try:
        image = open_image(raw, max_pixels=MAX_IMAGE_PIXELS, max_aspect=aspect_limit(prep))
        turned = image.info.get("convsee_turned")
        image = reduce_to(image, WORK_PIXELS)
        if turned:  # the note survives the reduction
            image.info["convsee_turned"] = turned
        show, x, notes = fit(image, prep)  # the digit form too, as the CLI prepares files
        return Input("image", show, x=x, notes=tuple(notes))
    except ConvseeError as e:
        raise BadRequest(f"'png': {e}", 422) from None


def _parse_named(value, served: Served) -> Input:
    """'input': sample:D (the bundled sample), test:N (the IDX test split), data:N (item N of
    the --data folder): the exact stored image, prepared for the model; upload:ID: an image
    sent before with "keep": true, as it was prepared then."""
    if not isinstance(value, str) or len(value) > 40:
        raise BadRequest(
            f"'input' must be sample:D, test:N, data:N or upload:ID, got {describe(value)}"
        )
    if _UPLOAD_NAME.fullmatch(value):
        inp = served.kept(value)
        if inp is None:
            raise BadRequest("that upload is no longer kept: send the image again", 404)
        return inp
    m = _INPUT_NAME.fullmatch(value)
    if m is None:
        raise BadRequest("'input' must be sample:D, test:N, data:N or upload:ID")
    kind, n = m.group(1), int(m.group(2))
    if kind == "sample":
        items = served.sample_items
        if n >= len(items):
            raise BadRequest(f"no such sample; use sample:0..{len(items) - 1}", 404)
        return prepare(items[n], served.prep)
    src = served.source
    want = "test" if src is not None and hasattr(src, "split_name") else "data"
    if src is None:
        raise BadRequest(served.source_why or "no test set", 404)
    if kind != want:
        raise BadRequest(f"the server's test images are named {want}:N", 404)
    if n >= len(src):
        raise BadRequest(f"no such image; use {want}:0..{len(src) - 1}", 404)
    try:
        inp = src.item(n, served.prep)
    except ConvseeError as e:
        raise BadRequest(f"{value}: {_without_paths(str(e), src, n)}", 422) from None
    if kind == "data":
        from dataclasses import replace

        inp = replace(inp, name=f"data:{n}", source=inp.name)
    return inp


def _without_paths(text: str, src, n: int) -> str:
    """A message about item n of an image folder, naming the file relative to the folder:
    the server's own paths are not the client's business."""
    files, root = getattr(src, "files", None), getattr(src, "root", None)
    if files is None or root is None:
        return text
    rel = str(Path(files[n]).relative_to(root))
    for full in {str(files[n]), str(Path(files[n]).resolve())}:
        text = text.replace(full, rel)
    for folder in {str(root), str(Path(root).resolve())}:
        text = text.replace(folder, "the data folder")
    return text


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


@dataclass(frozen=True)
class LayerRequest:
    layer: Layer
    order: str  # "top" (by mean activation, ranks paged) | "index" | "list"
    page: int  # which PAGE_SIZE channels of that order
    channels: tuple[int, ...] = ()  # order "list": these


def _int(v, what: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise BadRequest(f"{what} must be a whole number from {lo} to {hi}")
    return v


def _pages(layer: Layer) -> int:
    n = layer.channels if layer.kind == "map" and not _is_vector(layer) else 1
    return max(1, -(-n // PAGE_SIZE))


def _parse_layers(value, served: Served) -> list[LayerRequest]:
    """'layers': "default" (or absent), "all", a list of names, or {name: {"order": "top" |
    "index", "page": P} | {"channels": [i, ...]}}."""
    spec = served.spec
    by_name = {x.name: x for x in spec.layers}
    if value is None or value == "default":
        value = list(served.defaults)
    elif value == "all":
        value = [x.name for x in spec.layers if drawable(x)]
    if isinstance(value, list):
        value = {name: {} for name in value} if all(isinstance(x, str) for x in value) else value
    if not isinstance(value, dict):
        raise BadRequest(
            '\'layers\' must be "default", "all", a list of layer names or an object of '
            f"layer options, got {describe(value)}"
        )
    if len(value) > len(spec.layers):
        raise BadRequest(f"'layers' names more layers than the model has ({len(spec.layers)})")
    out = []
    for i, (name, opts) in enumerate(value.items()):
        layer = by_name.get(name)
        if layer is None:
            raise BadRequest(f"'layers' item {i + 1} is not a layer of the model (see /api/info)")
        if not drawable(layer):
            raise BadRequest(f"'layers' item {i + 1} outputs neither maps nor a vector")
        if not isinstance(opts, dict):
            raise BadRequest(f"'layers' options of item {i + 1} must be an object")
        unknown = set(opts) - {"order", "page", "channels"}
        if unknown:
            raise BadRequest(f"'layers' item {i + 1}: options are order, page and channels")
        vector = _is_vector(layer)
        if "channels" in opts:
            ch = opts["channels"]
            if vector or not isinstance(ch, list) or not 1 <= len(ch) <= PAGE_SIZE:
                raise BadRequest(
                    f"'layers' item {i + 1}: channels must be a list of 1 to {PAGE_SIZE} "
                    "channel numbers of a map layer"
                )
            chans = tuple(
                _int(c, f"'layers' item {i + 1} channels", 0, layer.channels - 1) for c in ch
            )
            out.append(LayerRequest(layer, "list", 0, tuple(sorted(set(chans)))))
            continue
        default_order = "top" if not vector and layer.channels > PAGE_SIZE else "index"
        order = opts.get("order", default_order)
        if order not in ORDERS:
            raise BadRequest(f"'layers' item {i + 1}: order must be 'top' or 'index'")
        page = _int(opts.get("page", 0), f"'layers' item {i + 1} page", 0, _pages(layer) - 1)
        out.append(LayerRequest(layer, order, page))
    return out


def _sent_values(req: LayerRequest, encoding: str) -> int:
    """How many values the answer will hold for this layer."""
    layer = req.layer
    if _is_vector(layer):
        return min(int(np.prod(layer.shape)), VECTOR_MAX)
    n = len(req.channels) if req.order == "list" else min(PAGE_SIZE, layer.channels)
    h, w = layer.shape[1:]
    if encoding == "u8":
        f = _factor(h, w)
        h, w = -(-h // f), -(-w // f)
    return n * h * w


# ---------------------------------------------------------------------------------------------
# computing the answer
# ---------------------------------------------------------------------------------------------


def _factor(h: int, w: int) -> int:
    return max(1, -(-max(h, w) // THUMB))


def thumbnails(maps: np.ndarray) -> tuple[np.ndarray, int]:
    """(C, H, W) maps averaged over f x f blocks (f the smallest whole factor that brings
    the larger side to at most THUMB; edge blocks average what they hold), and f."""
    c, h, w = maps.shape
    f = _factor(h, w)
    if f == 1:
        return maps, 1
    rows, cols = np.arange(0, h, f), np.arange(0, w, f)
    s = np.add.reduceat(np.add.reduceat(maps, rows, axis=1), cols, axis=2)
    nr = np.minimum(rows + f, h) - rows
    nc = np.minimum(cols + f, w) - cols
    return (s / (nr[:, None] * nc[None, :])).astype(np.float32), f


def quantize(a: np.ndarray, lo, hi) -> np.ndarray:
    """a (n, ...) to uint8 with row i spanning [lo[i], hi[i]] (0 where lo == hi)."""
    lo = np.asarray(lo, np.float32).reshape(-1, *[1] * (a.ndim - 1))
    hi = np.asarray(hi, np.float32).reshape(-1, *[1] * (a.ndim - 1))
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.rint((a - lo) / span * 255.0)
    return np.clip(q, 0, 255).astype(np.uint8)


class _Out:
    """Where the arrays of one answer go: inline (lists, base64 float32) or the binary
    frame's data part (8-bit), referenced by offset and length."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        self.blobs: list[bytes] = []
        self.size = 0

    def floats(self, a: np.ndarray):
        if self.encoding == "list":
            return np.round(a.astype(np.float64), 4).tolist()
        if self.encoding == "f32":
            return base64.b64encode(np.ascontiguousarray(a, "<f4").tobytes()).decode()
        return self.bytes(quantize(a.reshape(1, -1), [0.0], [1.0]).reshape(a.shape))

    def bytes(self, q: np.ndarray) -> dict:
        data = np.ascontiguousarray(q, np.uint8).tobytes()
        ref = {"offset": self.size, "length": len(data)}
        self.blobs.append(data)
        self.size += len(data)
        return ref


def global_ranges(served: Served, blur, cache: dict | None = None) -> dict:
    """LeNet-5: per layer, (min, max) over the ten bundled samples with this blur (the page's
    'global' scale where the checkpoint has no reference range, or with a blur). Cached per
    blur in cache, which keeps the RANGE_CACHE_SIZE most recently used settings."""
    cache = served.ranges if cache is None else cache
    key = blur
    with _RANGES_LOCK:
        if key in cache:
            cache[key] = cache.pop(key)  # most recently used last
            return cache[key]
    net = served.net
    items = [prepare(s, net.prep) for s in served.sample_items]
    layers = [x for x in net.spec.layers if drawable(x)]
    acts, _ = net.run(net.batch(items), layers)
    out = {}
    for layer in layers:
        a = acts[layer.name]
        if blur is not None and layer.kind == "map" and not _is_vector(layer):
            a = blur_maps(a, *blur)
        out[layer.name] = [float(a.min()), float(a.max())]
    with _RANGES_LOCK:
        cache[key] = out
        while len(cache) > RANGE_CACHE_SIZE:
            del cache[next(iter(cache))]
    return out


def _reference(served: Served, layer: Layer, blur) -> list[float] | None:
    """The layer's fixed colour range: the checkpoint's reference range (without blur), else
    for LeNet-5 the range over the bundled samples; None for other models."""
    from ..draw.render import reference_range

    ref = reference_range(served.net, layer, blur)
    if ref is not None:
        return [ref[0], ref[1]]
    if served.net.kind == "lenet":
        return global_ranges(served, blur)[layer.name]
    return None


def _pick(a: np.ndarray, req: LayerRequest) -> list[int]:
    """The channels of (C, H, W) maps this answer carries, in channel order."""
    c = a.shape[0]
    if req.order == "list":
        return list(req.channels)
    lo = req.page * PAGE_SIZE
    if req.order == "index":
        return list(range(lo, min(c, lo + PAGE_SIZE)))
    mean = a.reshape(c, -1).mean(1)
    ranked = np.argsort(-mean, kind="stable")[lo : lo + PAGE_SIZE]
    return sorted(int(i) for i in ranked)


def _layer_payload(served: Served, req: LayerRequest, a: np.ndarray, blur, out: _Out) -> dict:
    layer = req.layer
    reference = _reference(served, layer, blur)
    entry = {
        "kind": "vector" if _is_vector(layer) else "map",
        "shape": list(a.shape),
        "nonneg": layer.nonneg,
        "after_relu": layer.nonneg,
        "reference": reference,
    }
    if _is_vector(layer):
        v = a.reshape(-1)
        units = None
        if v.size > VECTOR_MAX:
            units = sorted(int(i) for i in np.argsort(-v, kind="stable")[:VECTOR_MAX])
            v = v[units]
        lo, hi = float(a.min()), float(a.max())
        entry.update(
            min=lo,
            max=hi,
            global_range=reference or [lo, hi],
            channels=units,
            order="top" if units is not None else "index",
            page=0,
            pages=1,
            ranges=[[float(v.min()), float(v.max())]],
        )
        if out.encoding == "u8":
            entry["values"] = out.bytes(quantize(v[None], [v.min()], [v.max()])[0])
        else:
            entry["values"] = out.floats(v)
        return entry
    if blur is not None:
        a = blur_maps(a, *blur)  # every channel: the layer's range covers all of them
    chans = _pick(a, req)
    maps = a[chans]
    lo = maps.reshape(len(chans), -1).min(1)
    hi = maps.reshape(len(chans), -1).max(1)
    entry.update(
        min=float(a.min()),
        max=float(a.max()),
        global_range=reference or [float(a.min()), float(a.max())],
        channels=chans,
        order=req.order,
        page=req.page,
        pages=_pages(layer),
        ranges=[[float(x), float(y)] for x, y in zip(lo, hi, strict=True)],
    )
    if out.encoding == "u8":
        small, f = thumbnails(maps)
        entry["size"] = list(small.shape[1:])
        entry["factor"] = f
        entry["values"] = out.bytes(quantize(small, lo, hi))
    else:
        entry["size"] = list(maps.shape[1:])
        entry["factor"] = 1
        entry["values"] = out.floats(maps)
    return entry


def _attribution(served: Served, inp: Input, kind: str, layer_name: str, target: int, out: _Out):
    from ..run.attribution import attribute

    net = served.net
    layer = net.spec.layer(layer_name)
    outputs = net.spec.outputs
    want = getattr(net, "output", None)
    ospec = next((o for o in outputs if o.name == want), outputs[0] if outputs else None)
    if kind not in ("saliency", "gradcam"):  # the other CAMs: the batch API, one input
        from ..run.attribution import attribute_batch

        with TORCH_LOCK:
            b = attribute_batch(
                served.torch_model(),
                inp.x[None],
                net.spec,
                method=kind,
                layer=layer,
                target=target,
                output=want,
                output_spec=ospec,
                std=net.prep.channel_std(),
                mean=net.prep.channel_mean(),
            )
        m = b.maps[0]
        top = float(m.max())
        return {
            "kind": kind,
            "layer": b.layer,
            "target": int(b.targets[0]),
            "quantity": b.quantity,
            "max": top,
            "shape": list(m.shape),
            "field_known": b.field_known,
            "map": out.floats((m / top if top > 0 else m).astype(np.float32)),
        }
    with TORCH_LOCK:
        r = attribute(
            served.torch_model(),
            inp.x,
            layer,
            target,
            output=want,
            output_spec=ospec,
            std=net.prep.channel_std(),
        )
    m = r.saliency if kind == "saliency" else r.placed
    top = float(m.max())
    norm = (m / top if top > 0 else m).astype(np.float32)
    return {
        "kind": kind,
        "layer": None if kind == "saliency" else r.layer,
        "target": r.target,
        "quantity": r.quantity,
        "max": top,
        "shape": list(m.shape),
        "field_known": r.field_known,
        "map": out.floats(norm),
    }


def _encode_image(image: np.ndarray, out: _Out):
    img = np.clip(np.asarray(image, np.float32), 0, 1)
    if out.encoding == "u8":
        return out.bytes(np.rint(img * 255).astype(np.uint8))
    return out.floats(img)


def activations_payload(served: Served, body) -> tuple[dict, list[bytes]]:
    """(the answer's JSON part, its data blobs (8-bit encoding only)) for one request body.

    Raises BadRequest for anything wrong with it; the cheap checks come before any decoding
    or computing."""
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {describe(body)}")
    given = [k for k in ("image", "png", "input") if k in body]
    if len(given) != 1:
        raise BadRequest(
            "send exactly one of 'image' (the model's picture as numbers in [0, 1]), 'png' "
            "(an image file) or 'input' (sample:D, test:N, data:N, upload:ID)"
        )
    encoding = body.get("encoding", "list")
    if encoding not in ENCODINGS:
        raise BadRequest(f"'encoding' must be 'list', 'f32' or 'u8', got {describe(encoding)}")
    attribution = body.get("attribution")
    overlays = ("saliency", "gradcam", "gradcam++", "xgradcam", "layercam", "eigencam")
    if attribution is not None and attribution not in overlays:
        raise BadRequest(
            f"'attribution' must be one of {', '.join(overlays)}, got {describe(attribution)}"
        )
    cam = body.get("attribution_layer")
    if attribution is not None:
        if not served.cam_layers:
            raise BadRequest("this model has no map layer to attribute at", 422)
        if cam is None:
            cam = served.cam_default
        elif not isinstance(cam, str) or cam not in served.cam_layers:
            raise BadRequest("'attribution_layer' must be one of the map layers /api/info lists")
    blur = _parse_blur(body.get("blur"))
    keep = body.get("keep", False)
    if not isinstance(keep, bool):
        raise BadRequest(f"'keep' must be true or false, got {describe(keep)}")
    requests = _parse_layers(body.get("layers"), served)
    total = sum(_sent_values(r, encoding) for r in requests)
    if total > MAX_VALUES[encoding]:
        fit = [
            e
            for e in ("u8", "f32")
            if e != encoding and sum(_sent_values(r, e) for r in requests) <= MAX_VALUES[e]
        ]
        instead = f", or send 'encoding': {' or '.join(map(repr, fit))}, which fit" if fit else ""
        raise BadRequest(
            f"the layers asked for hold {total:,} values; at most {MAX_VALUES[encoding]:,} per "
            f"answer in encoding {encoding}: ask for fewer layers{instead}"
        )
    # the input last: the cheap checks above fail before any decoding
    if "image" in body:
        img = _parse_image(body["image"], served.prep)
        inp = Input("image", img, x=normalize(img, served.prep))
    elif "png" in body:  # keep: named upload:ID in the answer, for the updates that follow
        inp = _parse_png(body["png"], served.prep, served if keep else None)
    else:
        inp = _parse_named(body["input"], served)
    net = served.net
    layers = [r.layer for r in requests]
    x = inp.x[None].astype(np.float32)
    try:
        if net.kind == "lenet":
            acts, probs = net.run(x, layers)
        else:
            with TORCH_LOCK:  # hooks on the one torch model
                acts, probs = net.run(x, layers)
    except ConvseeError as e:
        raise BadRequest(str(e)[:300], 422) from None
    out = _Out(encoding)
    head: dict = {
        "input_name": inp.name,
        "input_source": inp.source or None,
        "input_label": inp.label,
        "input_notes": list(inp.notes),
        "input_shape": list(inp.image.shape),
        "input": _encode_image(inp.image, out),
    }
    if probs is not None:
        p = probs[0]
        k = int(p.argmax())
        names = served.classes(len(p))
        head.update(
            prediction=k,
            label=names[k],
            probabilities=[round(float(v), 6) for v in p],
        )
    else:
        head.update(prediction=None, label=None, probabilities=None)
    head["layers"] = {
        r.layer.name: _layer_payload(served, r, acts[r.layer.name][0], blur, out) for r in requests
    }
    if attribution is not None and probs is not None:
        head["attribution"] = _attribution(served, inp, attribution, cam, head["prediction"], out)
    return head, out.blobs


def encode_frame(head: dict, blobs: list[bytes]) -> bytes:
    """The binary answer: b"CVS1", the JSON header's length (uint32, little-endian), the
    header (UTF-8 JSON), then the data; offsets in the header count from the data's start."""
    h = json.dumps(head, separators=(",", ":"), allow_nan=False).encode()
    return b"".join([FRAME_MAGIC, struct.pack("<I", len(h)), h, *blobs])


def decode_frame(data: bytes) -> tuple[dict, memoryview]:
    """(header, data) of a binary answer (for tests and clients in Python)."""
    if data[:4] != FRAME_MAGIC:
        raise ValueError("not a convsee frame")
    (n,) = struct.unpack("<I", data[4:8])
    return json.loads(data[8 : 8 + n]), memoryview(data)[8 + n :]


def heavy_request(body) -> bool:
    """Whether body carries an image declaring more than WORK_PIXELS pixels (its decoding
    takes tens of megabytes and milliseconds), or a JPEG of more than HEAVY_SCANS scans (a
    progressive JPEG's decoder passes over every coefficient at each scan: 60,000 of them
    are seconds of a core): done one at a time on a lane of their own."""
    if not isinstance(body, dict) or not isinstance(body.get("png"), str):
        return False
    try:
        raw = _png_bytes(body["png"])
    except BadRequest:
        return False  # activations_payload says what is wrong
    if raw[:2] == b"\xff\xd8" and raw.count(b"\xff\xda") > HEAVY_SCANS:
        return True  # an upper bound of its scans (entropy-coded 0xFF bytes are stuffed)
    size = declared_size(raw)
    return size is not None and size[0] * size[1] > WORK_PIXELS


# ---------------------------------------------------------------------------------------------
# what the page is told about the model
# ---------------------------------------------------------------------------------------------


def _lut_lists():
    from ..draw.core import colormap

    return {name: colormap(name).tolist() for name in CMAPS}


def _kernels(served: Served) -> dict:
    """Small conv kernels ((out, in, k, k), at most KERNEL_MAX_IN input channels of at most
    KERNEL_MAX_SIDE px), for the hover; at most KERNEL_VALUES weights in all."""
    out, used = {}, 0
    for layer in served.spec.layers:
        k = layer.kernel
        if k is None or layer.element or layer.name in out:
            continue
        if k[1] > KERNEL_MAX_IN or max(k[2:]) > KERNEL_MAX_SIDE:
            continue
        n = int(np.prod(k))
        if used + n > KERNEL_VALUES:
            continue
        w = served.net.kernel(layer.name)
        if w is None:
            continue
        out[layer.name] = np.round(np.asarray(w, np.float64), 5).tolist()
        used += n
    return out


def page_info(served: Served) -> dict:
    from ..datasets.idx import spec as dataset_spec

    net, spec, prep = served.net, served.spec, served.prep
    meta = net.meta or {}
    outs = spec.outputs
    k = outs[0].shape[0] if outs and len(outs[0].shape) == 1 else 0
    if served.scores is not None:
        k = next(x.shape[0] for x in spec.layers if x.name == served.scores)
    c = prep.input_size[0]
    src = served.source
    fits = served.dataset_fits()
    if src is not None:
        kind = "test" if hasattr(src, "split_name") else "data"
        random_info = {"available": True, "kind": kind, "count": len(src), "what": src.name}
    else:
        random_info = {"available": False, "why": served.source_why}
    checkpoint = meta.get("checkpoint") or meta.get("path")
    model = str(meta.get("model") or spec.model_type)
    target, sep, name = model.rpartition(":")
    if sep and ("/" in target or "\\" in target):  # FILE.py:Name: the file's name is enough
        model = f"{Path(target).name}:{name}"
    names = list(dataset_spec(served.dataset)["classes"])
    return {
        "convsee_version": __version__,
        "model": model,
        "model_type": spec.model_type,
        "checkpoint": Path(checkpoint).name if checkpoint else None,
        "checkpoint_sha256": meta.get("checkpoint_sha256") or meta.get("sha256"),
        "test_accuracy": meta.get("checkpoint_test_accuracy") or meta.get("test_accuracy"),
        "preprocess": prep.to_dict(),
        "preprocess_text": prep.describe(),
        "preprocess_from": meta.get("preprocess_from"),  # an hf: model: where each value came from
        "spec": spec.to_dict(),
        "classes": served.classes(k) if k else [],
        "scores_layer": served.scores,
        "default_layers": served.defaults,
        "page_size": PAGE_SIZE,
        "thumb": THUMB,
        "vector_max": VECTOR_MAX,
        "inputs": {
            "draw": c == 1,
            "digit_form": prep.resize in ("mnist", "fashion"),
            "samples": [
                {"name": s.name, "label": names[s.label] if s.label < len(names) else s.name}
                for s in (served.sample_items if fits else [])
            ],
            "random": random_info,
            "upload_side": 1024,
            "max_body": MAX_BODY,
        },
        "overlays": {
            "available": bool(served.cam_layers) and k > 0,
            "layers": served.cam_layers,
            "default": served.cam_default,
        },
        "exemplars": {
            "available": src is not None,
            "source": None if src is None else src.name,
            "why": "" if src is not None else served.source_why,
        },
        "kernels": _kernels(served),
        "colormaps": _lut_lists(),
        "has_test_set": src is not None,
        "dataset": served.dataset,
    }


# ---------------------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------------------


class _Gone(Exception):
    """The client closed its connection before its request's turn came."""


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


class _Warm:
    """LeNet-5's torch copy (overlays, views) is built once, in the background, after the
    first answer: the page never waits for torch's import at start."""

    def __init__(self, served: Served):
        self.served = served
        self.started = False

    def start(self) -> None:
        if self.started or self.served.net.kind != "lenet":
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
        return _json(info_body)

    async def api_views(request: Request) -> Response:
        q = request.query_params
        name, unit = q.get("layer"), q.get("unit")
        if name is None or unit is None:
            return _error("give ?layer=NAME&unit=N (the channel or vector unit)", 400)
        layer = spec_layers.get(name)
        if layer is None or not drawable(layer):
            return _error("no such map or vector layer (see /api/info)", 404)
        n = layer.channels if layer.kind == "map" else int(np.prod(layer.shape))
        if not (re.fullmatch("[0-9]{1,6}", unit, re.ASCII) and int(unit) < n):
            return _error(f"no such unit; the layer has 0..{n - 1}", 404)
        return _json(views.status(layer, int(unit)))  # never waits: queued in the background

    async def api_sample(request: Request) -> Response:
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
        head, blobs = activations_payload(served, body)
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
        explain_route(  # POST /api/explain
            served, TORCH_LOCK, MAX_BODY, workers.get, (_parse_image, _parse_png, _parse_named)
        ),
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
