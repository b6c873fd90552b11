"""The model being served: a Network with what the page needs around it (the layers shown at
first, those offered for Grad-CAM, the test images, the uploads kept by name), its colour
ranges, and the lock every use of its torch model's hooks takes (`TORCH_LOCK`)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..datasets.inputs import Input, prepare, samples
from ..errors import ConvseeError
from ..run.filters import blur_maps
from ..spec import Layer

__all__ = [
    "Served",
    "serve_model",
    "cam_default_layer",
    "default_layers",
    "drawable",
    "is_vector",
    "global_ranges",
    "reference",
    "TORCH_LOCK",
    "RANGE_CACHE_SIZE",
    "PASS_TYPES",
]

RANGE_CACHE_SIZE = 32  # blur settings whose sample ranges are kept (LeNet-5)
TORCH_LOCK = threading.Lock()  # forward hooks on a torch model: one user at a time
_RANGES_LOCK = threading.Lock()
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


def is_vector(layer: Layer) -> bool:
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


def cam_default_layer(net, cams: list[str], dataset: str | None = None) -> str | None:
    """The Grad-CAM layer the page starts with: the one `convsee attribution` takes when no
    layer is given, asked of the same library function (Network.attribution's
    attribute_network, layer None) for the CLI's default inputs: the last map layer with a
    non-negligible gradient for the predicted class, the shallowest module of those with the
    same output (LeNet-5: pool2; a ResNet: its last stage). Should that fail, or pick a layer
    the page cannot offer, the last map layer a convolution outputs. A network that runs
    without torch (LeNet-5's NumPy path) gets its last map layer without running the rule."""
    from ..run.network_attribution import attribute_network
    from ..views.attribution import DEFAULT_INPUTS

    if not cams:
        return None
    if getattr(net, "torch_free", False):
        # LeNet-5's page starts without importing torch, so the rule is not run here: the
        # last map layer, which is what it picks for LeNet-5 (pool2; tests/test_server.py)
        return cams[-1]
    try:
        x = net.batch(net.inputs(list(DEFAULT_INPUTS), None, dataset))
        with TORCH_LOCK:
            chosen = attribute_network(net, x, method="gradcam").layer
    except Exception:  # noqa: BLE001 - a model the rule cannot run on: the page still opens
        chosen = None
    if chosen in cams:
        return chosen
    convs = [x.name for x in net.spec.layers if x.kernel is not None and x.name in cams]
    return (convs or cams)[-1]


def _open_test_source(data_dir, dataset: str):
    """(source, why not): --data DIR (IDX files or a folder of images; an error when given
    but unusable), else the dataset's IDX test split where convsee looks (never downloaded)."""
    from ..datasets.folder import FolderSource, IdxSource, is_image_folder

    if data_dir is not None:
        d = Path(data_dir)
        if not d.is_dir():
            raise ConvseeError(f"--data {str(d)[:200]}: no such folder")
        if is_image_folder(d):
            return FolderSource(d), ""
        try:
            return IdxSource.read("test", d, dataset, allow_download=False), ""
        except ConvseeError as e:
            if "not found" not in str(e):  # a damaged file: its own message, one line
                raise ConvseeError(" ".join(str(e).split())[:300]) from None
            from ..datasets.folder import IMAGE_SUFFIXES
            from ..datasets.registry import lookup

            raise ConvseeError(
                f"--data {str(d)[:200]}: neither the {lookup(dataset).title} test files "
                f"(t10k-*-idx?-ubyte[.gz]) nor images ({', '.join(IMAGE_SUFFIXES)}) are there"
            ) from None
    try:
        return IdxSource.read("test", None, dataset, allow_download=False), ""
    except ConvseeError as e:
        if "not found" in str(e):
            return None, "no test set found: start convsee serve with --data DIR"
        return None, " ".join(str(e).split())[:200]  # damaged: said on the page


def serve_model(net=None, data_dir=None, dataset: str | None = None) -> Served:
    """Served for a Network (None: LeNet-5 with the shipped weights of the dataset; a path:
    a LeNet-5 checkpoint). dataset: where samples and the default test set come from
    (default: the one the checkpoint was trained on, else MNIST)."""
    from ..datasets.registry import lookup
    from ..models.load import load_network

    if net is None or isinstance(net, (str, Path)):
        net = load_network(None, net, dataset=dataset or "mnist")
    dataset = dataset or net.dataset or net.provenance.trained_on()
    source, why = _open_test_source(data_dir, dataset)
    if data_dir is None and source is not None and not net.takes(dataset):
        # MNIST's digits for a model of colour photos: neither random inputs nor exemplars
        name = lookup(dataset).title
        source = None
        why = "no test images of this model's kind: start convsee serve with --data DIR (a "
        why += f"folder of its images; the {name} test set is not what it takes)"
    scores = _scores_layer(net)
    cams = _cam_layers(net.spec)
    cam_default = cam_default_layer(net, cams, dataset)
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
        if blur is not None and layer.kind == "map" and not is_vector(layer):
            a = blur_maps(a, *blur)
        out[layer.name] = [float(a.min()), float(a.max())]
    with _RANGES_LOCK:
        cache[key] = out
        while len(cache) > RANGE_CACHE_SIZE:
            del cache[next(iter(cache))]
    return out


def reference(served: Served, layer: Layer, blur) -> list[float] | None:
    """The layer's fixed colour range: the checkpoint's reference range (without blur), else
    for LeNet-5 the range over the bundled samples; None for other models."""
    from ..draw.render import reference_range

    ref = reference_range(served.net, layer, blur)
    if ref is not None:
        return [ref[0], ref[1]]
    if served.net.ranges_from_samples:
        return global_ranges(served, blur)[layer.name]
    return None
