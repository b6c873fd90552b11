"""What a request may say: the JSON keys of POST /api/activations (and the inputs
/api/explain shares with it), their checks and limits. Each check raises `BadRequest` with one
sentence naming the key at fault; the cheap checks come before any decoding."""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets.images import declared_size, open_image, reduce_to
from ..datasets.inputs import Input, prepare
from ..datasets.transforms import aspect_limit, fit
from ..errors import ConvseeError
from ..spec import Layer
from .encoding import thumb_factor
from .keys import INPUT_KEYS, said
from .requests import BadRequest, describe
from .served import Served, drawable, is_vector

__all__ = [
    "LayerRequest",
    "parse_image",
    "parse_png",
    "parse_named",
    "parse_blur",
    "parse_layers",
    "png_bytes",
    "sent_values",
    "page_count",
    "heavy_request",
    "MAX_BODY",
    "MAX_IMAGE_PIXELS",
    "WORK_PIXELS",
    "HEAVY_SCANS",
    "PAGE_SIZE",
    "VECTOR_MAX",
    "MAX_VALUES",
    "ENCODINGS",
    "ORDERS",
    "ACTIVATIONS_KEYS",
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
HEAVY_SCANS = 32  # JPEGs of more scans go to that lane too (the page's have 1 to ~10)
PAGE_SIZE = 16  # maps of a layer in one answer: all up to 16, else a page of 16 channels
VECTOR_MAX = 4096  # units of a vector layer sent; longer ones: the top units by value
# values one answer may hold, per encoding (the page's 8-bit frames; float32 in base64;
# JSON lists): a ResNet-18 page at 224x224 sends ~0.6 million
MAX_VALUES = {"u8": 4_000_000, "f32": 2_000_000, "list": 500_000}
ENCODINGS = ("list", "f32", "u8")
ORDERS = ("top", "index")
# the keys of POST /api/activations' body
ACTIVATIONS_KEYS = (
    *INPUT_KEYS,
    "encoding",
    "attribution",
    "attribution_layer",
    "blur",
    "keep",
    "layers",
)
_INPUT_NAME = re.compile(r"(sample|test|data):([0-9]{1,9})", re.ASCII)
_UPLOAD_NAME = re.compile(r"upload:[0-9a-f]{16}", re.ASCII)


def parse_image(value, prep) -> np.ndarray:
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


def png_bytes(value: str) -> bytes:
    data = value.partition(",")[2] if value.startswith("data:") else value
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("'png' is not valid base64") from None
    if not raw:
        raise BadRequest("'png' is empty")
    return raw


def parse_png(value, prep, keep=None) -> Input:
    """'png': any image file (a canvas, a photo), prepared as the model's preprocessing says.
    keep: a Served to keep it in (the Input's name is then its upload:ID)."""
    if not isinstance(value, str):
        raise BadRequest(f"'png' must be a base64 string (or data URL), got {describe(value)}")
    raw = png_bytes(value)
    inp = prepare_png(raw, prep)
    return inp if keep is None else keep.keep(raw, inp)


def prepare_png(raw: bytes, prep) -> Input:
    try:
        image = open_image(raw, max_pixels=MAX_IMAGE_PIXELS, max_aspect=aspect_limit(prep))
        turned = image.info.get("convsee_turned")
        image = reduce_to(image, WORK_PIXELS)
        if turned:  # the note survives the reduction
            image.info["convsee_turned"] = turned
        show, x, notes = fit(image, prep)  # the digit form too, as the CLI prepares files
        return Input("image", show, x=x, notes=tuple(notes))
    except ConvseeError as e:
        text = said(e, ("png",), ("png",))
        raise BadRequest(text if text.startswith("'png'") else f"'png': {text}", 422) from None


def parse_named(value, served: Served) -> Input:
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
        raise BadRequest(
            f"{value}: {_without_paths(said(e, ('input',), ('input',)), src, n)}", 422
        ) from None
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


def parse_blur(blur) -> tuple[int, float] | None:
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


def page_count(layer: Layer) -> int:
    n = layer.channels if layer.kind == "map" and not is_vector(layer) else 1
    return max(1, -(-n // PAGE_SIZE))


def parse_layers(value, served: Served) -> list[LayerRequest]:
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
        vector = is_vector(layer)
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
        page = _int(opts.get("page", 0), f"'layers' item {i + 1} page", 0, page_count(layer) - 1)
        out.append(LayerRequest(layer, order, page))
    return out


def sent_values(req: LayerRequest, encoding: str) -> int:
    """How many values the answer will hold for this layer."""
    layer = req.layer
    if is_vector(layer):
        return min(int(np.prod(layer.shape)), VECTOR_MAX)
    n = len(req.channels) if req.order == "list" else min(PAGE_SIZE, layer.channels)
    h, w = layer.shape[1:]
    if encoding == "u8":
        f = thumb_factor(h, w)
        h, w = -(-h // f), -(-w // f)
    return n * h * w


def heavy_request(body) -> bool:
    """Whether body carries an image declaring more than WORK_PIXELS pixels (its decoding
    takes tens of megabytes and milliseconds), or a JPEG of more than HEAVY_SCANS scans (a
    progressive JPEG's decoder passes over every coefficient at each scan: 60,000 of them
    are seconds of a core): done one at a time on a lane of their own."""
    if not isinstance(body, dict) or not isinstance(body.get("png"), str):
        return False
    try:
        raw = png_bytes(body["png"])
    except BadRequest:
        return False  # activations_payload says what is wrong
    if raw[:2] == b"\xff\xd8" and raw.count(b"\xff\xda") > HEAVY_SCANS:
        return True  # an upper bound of its scans (entropy-coded 0xFF bytes are stuffed)
    size = declared_size(raw)
    return size is not None and size[0] * size[1] > WORK_PIXELS
