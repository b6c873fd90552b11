"""Top-k exemplars: for every channel, the dataset inputs that excite it most, for any model.

Each image contributes at most one patch per channel, taken where the channel peaks in it
(ties: the first position in row-major order) and cropped to that output pixel's receptive
field from the model description (spec.Layer.field); where one unit sees the whole image
(vectors, global pooling, fields as large as the input) the patches are whole images. The
Deep Visualization Toolbox's "top 9" idea.

The dataset is read once, in batches: per channel only a running top-k (value, image index,
peak position) is kept, merged batch by batch with ties going to the lower image index, so
memory stays flat in the dataset's size. The patches are cut at the end from the few images
that made a top-k (read again from the source), so nothing image-sized is kept per channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datasets.folder import ImageSource
from ..datasets.inputs import Input, prepare
from ..datasets.transforms import Preprocess
from ..errors import ConvseeError
from ..spec import Layer, select_channels
from .units import (
    check_layers,
    crop,
    device_dtype,
    field_box,
    model_device,
    outside,
    runner,
    torch_model,
    whole_image,
)

__all__ = [
    "Exemplars",
    "TopK",
    "ArraySource",
    "scan",
    "exemplars",
    "top_exemplars",
    "sample_inputs",
]

_AS_IS = ("mnist", "fashion", "none", "crop", "stretch")  # resize modes that keep a fitting image


@dataclass
class Exemplars:
    layer: str
    channels: list[int]  # (C,) the layer's channel numbers these rows are
    patches: np.ndarray  # (C, k, h, w) or (C, k, h, w, 3), in [0, 1]
    values: np.ndarray  # (C, k) the channel's peak in that image, descending
    indices: np.ndarray  # (C, k) item index in the dataset
    positions: np.ndarray  # (C, k, 2) row, col of the peak in the layer's map (0, 0: vectors)
    boxes: np.ndarray  # (C, k, 4) input rows and cols (inclusive) each patch covers
    names: list[list[str]]  # (C, k) the dataset items' names
    whole: bool  # one unit sees the whole image: the patches are whole images
    padded: bool  # some patch reaches outside the image (that part: the mean colour)
    seen: int  # images ranked
    source: str  # the dataset's name
    outside: np.ndarray | None = None  # (C, k, h, w) bool: True where a patch is off the image

    @property
    def size(self) -> tuple[int, int]:
        return self.patches.shape[2], self.patches.shape[3]


class TopK:
    """Per channel, the k largest values seen so far with their image index and position.

    Kept sorted by value, descending; equal values in image order (the lower index first)."""

    def __init__(self, channels: int, k: int):
        self.k = k
        self.values = np.zeros((channels, 0), np.float32)
        self.indices = np.zeros((channels, 0), np.int64)
        self.positions = np.zeros((channels, 0), np.int64)  # flat index into the map
        self.sums = np.zeros(channels, np.float64)  # sum over images of the channel's mean
        self.count = 0

    def add(self, values: np.ndarray, positions: np.ndarray, start: int, means=None) -> None:
        """values, positions: (n, C) for images start .. start + n - 1 (in dataset order)."""
        n = values.shape[0]
        v = np.concatenate([self.values, values.T.astype(np.float32)], 1)  # (C, kept + n)
        idx = np.concatenate(
            [self.indices, np.broadcast_to(np.arange(start, start + n), (v.shape[0], n))], 1
        )
        pos = np.concatenate([self.positions, positions.T.astype(np.int64)], 1)
        # the kept entries come first and have the lower indices; a stable sort keeps that
        order = np.argsort(-v, axis=1, kind="stable")[:, : self.k]
        self.values = np.take_along_axis(v, order, 1)
        self.indices = np.take_along_axis(idx, order, 1)
        self.positions = np.take_along_axis(pos, order, 1)
        if means is not None:
            self.sums += np.asarray(means, np.float64).sum(0)
        self.count += n

    def channel_means(self) -> np.ndarray:
        return self.sums / max(self.count, 1)


class ArraySource(ImageSource):
    """Images already in memory: (N, H, W) uint8 (0..255) or float in [0, 1]."""

    def __init__(self, images, name: str = "images"):
        a = np.asarray(images)
        if a.ndim != 3:
            raise ConvseeError(f"expected images (N, H, W), got shape {a.shape}")
        self.images = a
        super().__init__(name, None)

    def __len__(self):
        return len(self.images)

    def labels(self):
        return None

    def item(self, i, prep):
        return prepare(Input(f"#{i}", _as_float(self.images[i])), prep)


def _as_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 255 if a.dtype == np.uint8 else a.astype(np.float32)


def _fast(source, prep: Preprocess) -> bool:
    """A gray dataset held as an array whose images already have the model's size: the model
    input is the image normalised, as datasets.inputs.prepare makes it (no per-item work)."""
    a = getattr(source, "images", None)
    c, h, w = prep.input_size
    return (
        isinstance(a, np.ndarray)
        and a.ndim == 3
        and a.shape[1:] == (h, w)
        and c == 1
        and prep.resize in _AS_IS
    )


def _batches(source, prep: Preprocess, size: int, limit: int | None):
    """(start, x (n, C, H, W) float32) in dataset order."""
    n = len(source) if limit is None else min(limit, len(source))
    if _fast(source, prep):
        m, s = float(prep.channel_mean()[0]), float(prep.channel_std()[0])
        for start in range(0, n, size):
            imgs = _as_float(source.images[start : min(n, start + size)])
            yield start, ((imgs - m) / s)[:, None].astype(np.float32)
        return
    for start, items in source.batches(prep, size, limit=n):
        yield start, np.stack([i.x for i in items]).astype(np.float32)


def _image(source, prep: Preprocess, i: int) -> tuple[np.ndarray, str]:
    """(what the model sees, (H, W) or (H, W, C) in [0, 1]; the item's name)."""
    if _fast(source, prep):
        return _as_float(source.images[i]), _item_name(source, i)
    inp = source.item(i, prep)
    return inp.image, inp.name


def _item_name(source, i: int) -> str:
    split = getattr(source, "split_name", None)
    return f"{split}:{i}" if split else f"#{i}"


def scan(
    model,
    prep: Preprocess,
    source,
    layers: list[Layer],
    k: int,
    *,
    batch_size: int = 256,
    limit: int | None = None,
    progress=None,
) -> dict[str, TopK]:
    """One pass over the dataset: {layer name: TopK of every channel's per-image peak}.

    progress(n) is called after each batch with the number of images it held."""
    import torch

    dev = model_device(model)
    dtype = device_dtype(model)[1]
    tops = {layer.name: TopK(layer.channels, k) for layer in layers}
    with runner(model, layers) as run:
        for start, x in _batches(source, prep, batch_size, limit):
            out = run(torch.from_numpy(x).to(dev, dtype))
            for layer in layers:
                a = out[layer.name].float()
                if a.dim() == 4:
                    flat = a.flatten(2)
                    v, p = flat.max(2)  # the first maximal position on ties
                    mean = flat.mean(2)
                else:
                    v, p, mean = a, torch.zeros_like(a, dtype=torch.long), a
                tops[layer.name].add(v.cpu().numpy(), p.cpu().numpy(), start, mean.cpu().numpy())
            if progress is not None:
                progress(len(x))
    return tops


def pick_channels(choice, top: TopK, layer: Layer) -> list[int]:
    """Channels to show (spec.select_channels); 'top' ranks them by mean activation over the
    dataset."""
    return select_channels(choice, layer.channels, top.channel_means, layer.name)


def collect(top: TopK, layer: Layer, channels: list[int], prep: Preprocess, source) -> Exemplars:
    """The Exemplars of some channels: their top-k cut out of the images they came from."""
    c, h, w = prep.input_size
    hw = (h, w)
    whole = whole_image(layer, hw)
    values = top.values[channels]
    indices = top.indices[channels]
    flat = top.positions[channels]
    if layer.kind == "map":
        width = layer.shape[2]
        positions = np.stack([flat // width, flat % width], -1)
    else:
        positions = np.zeros((*flat.shape, 2), np.int64)
    fill = prep.channel_mean()
    cache: dict[int, tuple[np.ndarray, str]] = {}
    patches, boxes, names, padded, offs = [], [], [], False, []
    for row in range(len(channels)):
        prow, brow, nrow, orow = [], [], [], []
        for j in range(values.shape[1]):
            i = int(indices[row, j])
            if i not in cache:
                cache[i] = _image(source, prep, i)
            image, name = cache[i]
            box = field_box(layer, *positions[row, j], hw)
            patch, pad = crop(image, box, fill if image.ndim == 3 else fill[:1])
            padded |= pad
            orow.append(outside(box, hw))
            prow.append(patch)
            brow.append(box)
            nrow.append(name)
        patches.append(np.stack(prow) if prow else np.zeros((0, 1, 1), np.float32))
        offs.append(np.stack(orow) if orow else np.zeros((0, 1, 1), bool))
        boxes.append(brow)
        names.append(nrow)
    return Exemplars(
        layer=layer.name,
        channels=list(channels),
        patches=np.clip(np.stack(patches), 0, 1).astype(np.float32),
        values=values,
        indices=indices,
        positions=positions,
        boxes=np.asarray(boxes, np.int64).reshape(len(channels), values.shape[1], 4),
        names=names,
        whole=whole,
        padded=padded,
        seen=top.count,
        source=getattr(source, "name", ""),
        outside=np.stack(offs),
    )


def exemplars(
    net,
    source,
    layers: list[Layer],
    k: int = 9,
    channels=None,
    *,
    batch_size: int = 256,
    limit: int | None = None,
    progress=None,
    device: str | None = None,
) -> list[Exemplars]:
    """The top-k exemplars of each layer's channels over a dataset (an ImageSource).

    channels: None (all), a list of channel numbers, ('top', K), or {layer name: one of those}.
    """
    check_layers(layers, "exemplars")
    if not 1 <= k:
        raise ConvseeError(f"{{param}} must be at least 1, got {k}", "k")
    n = len(source) if limit is None else min(limit, len(source))
    if n == 0:
        raise ConvseeError("the dataset holds no images", "data")
    k = min(k, n)
    model = torch_model(net, device)
    tops = scan(
        model, net.prep, source, layers, k, batch_size=batch_size, limit=limit, progress=progress
    )
    out = []
    for layer in layers:
        choice = channels.get(layer.name) if isinstance(channels, dict) else channels
        chans = pick_channels(choice, tops[layer.name], layer)
        out.append(collect(tops[layer.name], layer, chans, net.prep, source))
    return out


def top_exemplars(model, images, layer: Layer, k: int = 9, batch: int = 2000) -> Exemplars:
    """LeNet-5 on MNIST-form images in memory (N, 28, 28), uint8 or [0, 1] float (a torch
    tensor or an array): the k top patches of every channel of `layer` (what the live page
    uses). Ties go to the lower image index."""
    a = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    prep = Preprocess(input_size=(1, *a.shape[1:]))
    source = ArraySource(a, "images")
    tops = scan(model, prep, source, [layer], min(k, len(a)), batch_size=batch)
    return collect(tops[layer.name], layer, list(range(layer.channels)), prep, source)


def sample_inputs(source, prep: Preprocess, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, x (n, C, H, W)): n items spread evenly over the dataset, as model inputs."""
    total = len(source)
    n = min(n, total)
    if n <= 0:
        c, h, w = prep.input_size
        return np.zeros(0, np.int64), np.zeros((0, c, h, w), np.float32)
    idx = np.unique(np.linspace(0, total - 1, n).round().astype(np.int64))
    if _fast(source, prep):
        m, s = float(prep.channel_mean()[0]), float(prep.channel_std()[0])
        return idx, ((_as_float(source.images[idx]) - m) / s)[:, None].astype(np.float32)
    return idx, np.stack([source.item(int(i), prep).x for i in idx]).astype(np.float32)
