"""Preprocessing that travels with the weights: from any image to the tensor a model takes.

A `Preprocess` says what the model expects (channels and size, mean and std on the [0, 1]
pixel scale, how an image of another size is fitted). It is stored in convsee's checkpoints
and can be given as flags or a JSON file with the same fields, so loading a model needs no
guessing. `fit(image, prep)` brings any image there and says what it did (for sidecars):

- channels: grayscale into a 3-channel model is replicated; colour into a 1-channel model is
  converted to luminance (ITU-R 601-2, as Pillow's "L"); transparency is composited on white.
- size: `crop` (default, as torchvision's classification transforms: scale so the image
  covers the target, with `crop_pct` < 1 meaning scale to size / crop_pct first, then cut the
  centre; `resize_size` S scales the shorter side to S first, (H, W) scales to H x W first, as
  torchvision's Resize(S) / Resize((H, W)) and transformers' image processors do; sizes are
  truncated as they compute them, 451x300 to shorter side 256 is 384x256), `stretch`, `pad`
  (fit inside, pad with the mean colour, which normalises to 0), `none` (refuse other sizes),
  and for 1-channel models `mnist` (digits: invert dark ink on light, crop to the ink, 20x20
  in 28x28 centred by centre of mass, as MNIST was made) or `fashion` (the item fills the
  frame, as Fashion-MNIST was made).

Memory is bounded before it is allocated: a model input holds at most `MAX_INPUT_VALUES`
numbers, every image a resize step makes (and Pillow's intermediate of its two passes) at most
`MAX_WORK_PIXELS` pixels, an image is at most `images.MAX_ASPECT`:1 (or as thin as the model's
input), and a `.npy` input's header is checked against the model before its data is read.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConvseeError, no_file

__all__ = [
    "MAX_INPUT_VALUES",
    "MAX_JSON_DEPTH",
    "MAX_WORK_PIXELS",
    "Preprocess",
    "aspect_limit",
    "RESIZE_MODES",
    "fit",
    "crop_resize_size",
    "normalize",
    "denormalize",
    "read_preprocess",
    "load_json",
]

# numbers in one model input (C*H*W): 2**24, a 64 MB float32 tensor; 3x2048x2048 and
# 1x4096x4096 fit, and the model's own activations are many times this
MAX_INPUT_VALUES = 1 << 24
# pixels of any image a resize step makes on the way to the model's size, and of Pillow's
# intermediate (its first pass scales one axis only): 25 million, ~100 MB in RGB. A 224x224
# crop of a 64:1 strip needs 256x16384 (4.2 million).
MAX_WORK_PIXELS = 25_000_000
MAX_JSON_DEPTH = 32  # nested lists/objects in a preprocessing file; its fields need 2
MAX_JSON_BYTES = 16 * 1024 * 1024  # a preprocessing file (21,843 class names are ~0.5 MB)
RESIZE_MODES = ("crop", "stretch", "pad", "none", "mnist", "fashion")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet weights, [0, 1] scale
IMAGENET_STD = (0.229, 0.224, 0.225)
_INTERP = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,  # transformers' resample 4 and 5
    "hamming": Image.Resampling.HAMMING,
}


@dataclass(frozen=True)
class Preprocess:
    input_size: tuple[int, int, int] = (1, 28, 28)  # (C, H, W), as torchinfo writes it
    mean: tuple[float, ...] = (0.1307,)  # per channel, on the [0, 1] pixel scale (MNIST's)
    std: tuple[float, ...] = (0.3081,)
    resize: str = "mnist"  # how an image of another size is fitted (see RESIZE_MODES)
    crop_pct: float = (
        1.0  # crop: the target is size / crop_pct before the centre cut (0.875: ImageNet)
    )
    interpolation: str = "bilinear"  # nearest | bilinear | bicubic | lanczos | box | hamming
    # crop: () the size before the centre cut follows from crop_pct; (S,) the shorter side is
    # scaled to S pixels; (H, W) the image is scaled to H x W (torchvision's Resize argument)
    resize_size: tuple[int, ...] = ()

    def __post_init__(self):
        c, h, w = self.input_size
        if c < 1 or h < 1 or w < 1:
            raise ConvseeError(
                f"{{param}} must be positive C,H,W, got {self.input_size}", "input_size"
            )
        if c * h * w > MAX_INPUT_VALUES:
            raise ConvseeError(
                f"input size {c}x{h}x{w} is {_millions(c * h * w)} million values; one input "
                f"may hold at most {_millions(MAX_INPUT_VALUES)} million (64 MB as float32)",
                "input_size",
            )
        for what, v in (("mean", self.mean), ("std", self.std)):
            if len(v) not in (1, c):
                raise ConvseeError(
                    f"{what} has {len(v)} values; the model takes {c} "
                    f"channel{'' if c == 1 else 's'}",
                    what,
                )
            if not all(math.isfinite(x) for x in v):
                raise ConvseeError(f"{what} must be finite numbers, got {list(v)}", what)
            if any(abs(x) > 1.5 for x in v):
                raise ConvseeError(
                    f"{what} {list(v)} looks like 0-255 units; give it on the [0, 1] pixel scale "
                    f"(e.g. {[round(x / 255, 4) for x in v]})",
                    what,
                )
        if any(x <= 0 for x in self.std):
            raise ConvseeError(f"{{param}} must be > 0, got {list(self.std)}", "std")
        if self.resize not in RESIZE_MODES:
            raise ConvseeError(
                f"unknown {{param}} {self.resize!r}; valid: {', '.join(RESIZE_MODES)}", "resize"
            )
        if self.resize in ("mnist", "fashion") and c != 1 and c != 3:
            raise ConvseeError(f"{{param}} {self.resize!r} needs a 1- or 3-channel model", "resize")
        if not 0.1 <= self.crop_pct <= 1.0:
            raise ConvseeError(f"{{param}} must be in [0.1, 1], got {self.crop_pct}", "crop_pct")
        if self.interpolation not in _INTERP:
            raise ConvseeError(
                f"unknown {{param}} {self.interpolation!r}; valid: {', '.join(_INTERP)}",
                "interpolation",
            )
        r = self.resize_size
        if len(r) not in (0, 1, 2) or any(int(v) != v or v < 1 for v in r):
            raise ConvseeError(
                f"{{param}} must be S or H,W in pixels, got {list(r)}", "resize_size"
            )
        if r and (r[0] ** 2 if len(r) == 1 else r[0] * r[1]) > MAX_WORK_PIXELS:
            raise ConvseeError(
                f"resize_size {'x'.join(map(str, r))} would scale images to over "
                f"{_millions(MAX_WORK_PIXELS)} million pixels",
                "resize_size",
            )
        if r and (r[0] < max(h, w) if len(r) == 1 else (r[0] < h or r[1] < w)):
            raise ConvseeError(
                f"resize_size {'x'.join(map(str, r))} is smaller than the input size {h}x{w}: "
                "the centre cut would leave the image",
                "resize_size",
            )

    @property
    def channels(self) -> int:
        return self.input_size[0]

    def channel_mean(self) -> np.ndarray:
        return np.resize(np.asarray(self.mean, np.float32), self.channels)

    def channel_std(self) -> np.ndarray:
        return np.resize(np.asarray(self.std, np.float32), self.channels)

    def to_dict(self) -> dict:
        d = asdict(self)
        if not self.resize_size:  # the default: sidecars and checkpoints stay as they were
            del d["resize_size"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def merged(self, d: dict, where: str = "preprocessing") -> Preprocess:
        """This config with the fields of d (a JSON object, or flags) replacing its own."""
        if not isinstance(d, dict):
            raise ConvseeError(f"{where}: expected a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(self)}
        unknown = sorted(set(d) - known - {"labels", "classes"})
        if unknown:
            raise ConvseeError(
                f"{where}: unknown field {unknown[0]!r}; fields: {', '.join(sorted(known))}"
            )
        kw = {}
        try:
            if d.get("input_size") is not None:
                kw["input_size"] = _ints(d["input_size"], 3, "input_size")
            for k in ("mean", "std"):
                if d.get(k) is not None:
                    v = d[k]
                    v = [v] if isinstance(v, (int, float)) else v
                    if isinstance(v, str):
                        v = [x for x in v.split(",") if x.strip()]
                    kw[k] = tuple(float(x) for x in v)
            for k in ("resize", "interpolation"):
                if d.get(k) is not None:
                    if not isinstance(d[k], str):
                        raise ValueError(f"{k} must be a string")
                    kw[k] = d[k]
            if d.get("crop_pct") is not None:
                kw["crop_pct"] = float(d["crop_pct"])
            if d.get("resize_size") is not None:
                v = d["resize_size"]
                v = [v] if isinstance(v, int) else v
                if isinstance(v, str):
                    v = [x for x in v.replace("x", ",").split(",") if x.strip()]
                if isinstance(v, (int, float)) or len(v) not in (0, 1, 2):
                    raise ValueError("resize_size must be S or H,W")
                kw["resize_size"] = tuple(int(x) for x in v)
        except (TypeError, ValueError) as e:
            raise ConvseeError(f"{where}: {e}") from None
        c = kw.get("input_size", self.input_size)[0]
        for k in ("mean", "std"):  # a new channel count without new statistics: adapt them
            v = kw.get(k, getattr(self, k))
            if k not in kw and len(v) not in (1, c):
                kw[k] = (float(np.mean(v)),)
        return replace(self, **kw)

    def describe(self) -> str:
        c, h, w = self.input_size
        mean = ", ".join(f"{x:g}" for x in self.mean)
        std = ", ".join(f"{x:g}" for x in self.std)
        crop = (
            f", crop_pct {self.crop_pct:g}" if self.resize == "crop" and self.crop_pct != 1 else ""
        )
        if self.resize == "crop" and self.resize_size:
            r = self.resize_size
            crop = f", shorter side {r[0]} first" if len(r) == 1 else f", {r[0]}x{r[1]} first"
        return f"{c}x{h}x{w}, mean ({mean}), std ({std}), resize {self.resize}{crop}"


def _millions(n: int) -> str:
    v = n / 1e6
    return f"{v:,.1f}".removesuffix(".0") if v < 1000 else f"{v:,.0f}"


def _ints(v, n, what):
    if isinstance(v, str):
        v = [x for x in v.replace("x", ",").split(",") if x.strip()]
    v = [int(x) for x in v]
    if len(v) != n:
        raise ValueError(f"{what} needs {n} numbers, got {len(v)}")
    return tuple(v)


def imagenet(size: int = 224) -> Preprocess:
    """What torchvision's ImageNet classifiers expect (their weights.transforms())."""
    return Preprocess((3, size, size), IMAGENET_MEAN, IMAGENET_STD, "crop", 0.875)


def read_preprocess(path) -> dict:
    """The fields of a preprocessing JSON file (input_size, mean, std, resize, ..., labels)."""
    p = Path(path)
    if not p.is_file():
        raise ConvseeError(f"{p}{no_file(p)}")
    if p.stat().st_size > MAX_JSON_BYTES:
        raise ConvseeError(f"{p}: over {MAX_JSON_BYTES >> 20} MB, not a preprocessing file")
    try:
        d = load_json(p.read_text(), str(p))
    except (OSError, UnicodeDecodeError) as e:
        raise ConvseeError(f"{p}: not a JSON file ({type(e).__name__})") from None
    if not isinstance(d, dict):
        raise ConvseeError(f"{p}: expected a JSON object, got {type(d).__name__}")
    Preprocess().merged(d, str(p))  # check the fields now, with the file's name in errors
    return d


def load_json(text, where: str, max_depth: int = MAX_JSON_DEPTH):
    """The JSON value in text (str or bytes), at most max_depth lists/objects deep; a
    ConvseeError naming `where` otherwise (Python's parser recurses: deep nesting would
    raise RecursionError)."""
    deep = ConvseeError(f"{where}: JSON nested too deeply (over {max_depth} levels)")
    try:
        value = json.loads(text)
    except RecursionError:
        raise deep from None
    except ValueError as e:
        raise ConvseeError(f"{where}: not a JSON file ({type(e).__name__})") from None
    stack = [(value, 1)]
    while stack:  # iteratively: the value may be deep below the recursion limit
        v, depth = stack.pop()
        if isinstance(v, (list, dict)):
            if depth > max_depth:
                raise deep
            items = v.values() if isinstance(v, dict) else v
            stack.extend((x, depth + 1) for x in items if isinstance(x, (list, dict)))
    return value


def normalize(image: np.ndarray, prep: Preprocess) -> np.ndarray:
    """(H, W) or (H, W, C) in [0, 1] -> float32 (C, H, W), (x - mean) / std per channel."""
    a = np.asarray(image, np.float32)
    if a.ndim == 2:
        a = a[None]
    else:
        a = a.transpose(2, 0, 1)
    if a.shape[0] != prep.channels:
        a = np.broadcast_to(a[:1], (prep.channels, *a.shape[1:]))
    m, s = prep.channel_mean()[:, None, None], prep.channel_std()[:, None, None]
    return ((a - m) / s).astype(np.float32)


def denormalize(x: np.ndarray, prep: Preprocess) -> np.ndarray:
    """(C, H, W) normalised -> what it shows, in [0, 1]: (H, W) for 1 channel, (H, W, 3) for 3."""
    x = np.asarray(x, np.float32)
    c = x.shape[0]
    m = np.resize(np.asarray(prep.mean, np.float32), c)[:, None, None]
    s = np.resize(np.asarray(prep.std, np.float32), c)[:, None, None]
    a = np.clip(x * s + m, 0, 1)
    if c == 1:
        return a[0]
    if c == 3:
        return a.transpose(1, 2, 0)
    return a.mean(0)  # other channel counts: shown as their mean


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )


def _to_mode(img: Image.Image, channels: int, notes: list[str]) -> Image.Image:
    """A Pillow image in L (1 channel) or RGB (3), with what was done appended to notes."""
    if img.mode in ("I", "I;16", "I;16B", "F"):
        a = np.asarray(img, dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        img = Image.fromarray(np.round(a * 255).astype(np.uint8), "L")
        notes.append(f"{lo:g}..{hi:g} high-bit-depth values scaled to 0..1")
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba).convert("RGB")
        notes.append("transparency composited on white")
    colour = img.mode not in ("L", "1")
    if channels == 1:
        if colour and img.mode != "L":
            rgb = np.asarray(img.convert("RGB"), np.int16)
            grey = np.ptp(rgb, axis=2).max() <= 2 if rgb.size else True
            if not grey:
                notes.append("colour converted to luminance (0.299 R + 0.587 G + 0.114 B)")
        return img.convert("L")
    img = img.convert("RGB")
    if not colour:
        notes.append(f"grayscale replicated to {channels} channels")
    return img


def fit(image, prep: Preprocess) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(display image in [0, 1] (H, W) or (H, W, 3), model input (C, H, W) normalised, notes).

    image: a path, bytes, a Pillow image, or an array ((H, W) or (H, W, 3|4); uint8 or float
    in [0, 1]).
    """
    from .images import open_image

    c, h, w = prep.input_size
    notes: list[str] = []
    if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(
        image, "read"
    ):
        image = open_image(image, max_aspect=aspect_limit(prep))  # checked before decoding
    _check_aspect(image, prep)
    if prep.resize in ("mnist", "fashion"):
        from .digits import preprocess

        side = min(h, w)
        if prep.resize == "mnist":
            notes.append(f"MNIST form: ink {round(side * 20 / 28)}px, centred by mass in {side}px")
            g = preprocess(image, size=side, box=max(1, round(side * 20 / 28)), notes=notes)
        else:
            notes.append(f"Fashion-MNIST form: the item fills {side}px")
            g = preprocess(image, size=side, box=side, center="box", notes=notes)
        if (h, w) != (side, side):
            canvas = np.zeros((h, w), np.float32)
            top, left = (h - side) // 2, (w - side) // 2
            canvas[top : top + side, left : left + side] = g
            g = canvas
        if c == 3:
            notes.append("grayscale replicated to 3 channels")
            show = np.repeat(g[..., None], 3, axis=2)
        else:
            show = g
        return show, normalize(show, prep), notes
    if isinstance(image, np.ndarray):
        a = np.asarray(image)
        if a.dtype != np.uint8:
            a = np.round(np.clip(a.astype(np.float32), 0, 1) * 255).astype(np.uint8)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
            raise ConvseeError(f"expected an image array (H, W) or (H, W, 3|4), got {a.shape}")
        img = Image.fromarray(a)
    else:
        img = image
        if img.info.get("convsee_turned"):
            notes.append("turned upright as its EXIF orientation says")
    img = _to_mode(img, c if c in (1, 3) else 3, notes)
    if c not in (1, 3):
        raise ConvseeError(
            f"the model takes {c} channels: give it a .npy file holding its input "
            f"tensor ({c},{h},{w})",
            "inputs",
        )
    iw, ih = img.size
    interp = _INTERP[prep.interpolation]
    if (iw, ih) != (w, h):
        if prep.resize == "none":
            raise ConvseeError(
                f"the image is {iw}x{ih} pixels, the model takes {w}x{h} "
                "(choose how to fit it: {param} crop, stretch or pad)",
                "resize",
            )
        if prep.resize == "stretch":
            _check_resize(iw, ih, w, h)
            img = img.resize((w, h), interp)
            notes.append(f"resized from {iw}x{ih} to {w}x{h} (stretched)")
        elif prep.resize == "pad":
            s = min(w / iw, h / ih)
            nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
            _check_resize(iw, ih, nw, nh)
            small = img.resize((nw, nh), interp)
            fill = tuple(int(round(v * 255)) for v in prep.channel_mean())
            img_new = Image.new(img.mode, (w, h), fill[0] if img.mode == "L" else fill[:3])
            img_new.paste(small, ((w - nw) // 2, (h - nh) // 2))
            img = img_new
            notes.append(f"scaled from {iw}x{ih} to fit {w}x{h}, padded with the mean colour")
        else:  # crop
            nw, nh = crop_resize_size(iw, ih, prep)
            _check_resize(iw, ih, nw, nh)
            img = img.resize((nw, nh), interp)
            left, top = (nw - w) // 2, (nh - h) // 2
            img = img.crop((left, top, left + w, top + h))
            notes.append(f"resized from {iw}x{ih} to {nw}x{nh}, centre {w}x{h} cut out")
    a = np.asarray(img, np.float32) / 255.0
    show = a if a.ndim == 2 else a
    if c == 3 and a.ndim == 2:
        show = np.repeat(a[..., None], 3, axis=2)
    return show, normalize(show, prep), notes


def aspect_limit(prep: Preprocess) -> float:
    """How thin an image the model takes: MAX_ASPECT:1, or its own input's shape if that is
    thinner still (a 1x64 sequence model takes 1x64 images)."""
    from .images import MAX_ASPECT

    _, h, w = prep.input_size
    return max(MAX_ASPECT, max(h, w) / min(h, w))


def _check_aspect(image, prep: Preprocess) -> None:
    """Refuse an image (a Pillow image or an array) thinner than aspect_limit(prep)."""
    from .images import check_aspect

    if isinstance(image, Image.Image):
        iw, ih = image.size
    else:
        shape = np.shape(image)
        if len(shape) < 2:
            return  # fit says what is wrong with it
        ih, iw = shape[0], shape[1]
    check_aspect(iw, ih, limit=aspect_limit(prep))


def _check_resize(iw: int, ih: int, nw: int, nh: int) -> None:
    """Refuse to scale an iw x ih image to nw x nh when that allocates over MAX_WORK_PIXELS:
    the result, or Pillow's intermediate (it scales the width first: nw x ih)."""
    most = max(nw * nh, nw * ih)
    if most > MAX_WORK_PIXELS:
        raise ConvseeError(
            f"scaling the {iw}x{ih} image to {nw}x{nh} pixels would take {_millions(most)} "
            f"million pixels; the limit is {_millions(MAX_WORK_PIXELS)} million"
        )


def crop_resize_size(iw: int, ih: int, prep: Preprocess) -> tuple[int, int]:
    """(width, height) an iw x ih image is scaled to before the centre cut of resize 'crop'.

    As torchvision's Resize and transformers' image processors compute it: the side that binds
    gets its target (resize_size S, else the input side / crop_pct, truncated as timm and
    transformers do), the other side int(target * other / binding), truncating, not rounding
    (451x300 to shorter side 256 is 384x256, not 385x256)."""
    c, h, w = prep.input_size
    r = prep.resize_size
    if len(r) == 2:
        return r[1], r[0]
    if len(r) == 1:
        short, side = r[0], (iw <= ih)  # side: the width is the shorter side
    else:
        side = w / iw >= h / ih  # the width binds: scaling it to w covers the height too
        short = int((w if side else h) / prep.crop_pct)
    if side:
        nw, nh = short, int(short * ih / iw)
    else:
        nw, nh = int(short * iw / ih), short
    return max(w, nw), max(h, nh)


def load_npy(path, prep: Preprocess) -> np.ndarray:
    """A model input tensor (C, H, W) from FILE.npy, passed to the model unchanged.

    The header is read first (numpy.lib.format) and its dtype and shape checked against the
    model's input size: a header may claim any shape, and nothing is allocated before."""
    p = Path(path)
    if not p.is_file():
        raise ConvseeError(f"{p}{no_file(p)}")
    if os.path.getsize(p) > 512 * 1024 * 1024:
        raise ConvseeError(f"{p}: over 512 MB, not one input tensor")
    fmt = np.lib.format
    with open(p, "rb") as f:
        try:
            version = fmt.read_magic(f)
            read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
            if version not in read:
                raise ValueError(f"version {version}")
            shape, fortran, dtype = read[version](f)
        except (OSError, ValueError, EOFError, SyntaxError) as e:
            raise ConvseeError(f"{p}: not a NumPy .npy array ({type(e).__name__})") from None
        if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None:
            raise ConvseeError(f"{p}: expected a numeric array, got {dtype}")
        got = shape[1:] if len(shape) == 4 and shape[0] == 1 else shape
        if len(got) != 3:
            raise ConvseeError(
                f"{p}: expected the model's input tensor (C,H,W), got shape {tuple(shape)}"
            )
        size = ",".join(map(str, prep.input_size))
        if got[0] != prep.channels:
            raise ConvseeError(
                f"{p}: holds {got[0]} channel{'' if got[0] == 1 else 's'}, the model "
                f"takes {prep.channels} "
                f"(input size {size})"
            )
        if tuple(got) != tuple(prep.input_size):
            raise ConvseeError(
                f"{p}: holds a {'x'.join(map(str, got))} tensor, the model takes "
                f"{'x'.join(map(str, prep.input_size))} ({{param}} sets it)",
                param="input_size",
            )
        try:
            f.seek(0)  # the header was checked: read_array reads it again, then the data
            x = fmt.read_array(f, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise ConvseeError(f"{p}: not a NumPy .npy array ({type(e).__name__})") from None
    if x.ndim == 4:
        x = x[0]
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ConvseeError(f"{p}: holds NaN or infinite values")
    return x
