"""Models from the Hugging Face hub: `hf:PATH_OR_ID` and `wrap(hf_model, processor)`.

A hub image classifier is a folder: config.json (the architecture and `id2label`), the
weights, and preprocessor_config.json (its image processor: the resize rule, the resample
filter, rescale_factor, image_mean, image_std). This module loads the model with transformers'
`AutoModelForImageClassification` and turns the image processor's settings into a convsee
`Preprocess`, each value with where it came from (`provenance.preprocess_from`, shown in
sidecars and `convsee layers`). The translation is checked against the processor itself on a
test image before it is used: convsee's input tensor is the processor's `pixel_values`.

- Resize rules (as transformers computes them, sizes truncated): `size.shortest_edge` S then
  a centre cut of `crop_size`; ConvNextImageProcessor's S < 384: shorter side int(S /
  crop_pct), centre S x S, and S >= 384: stretched to S x S; `size.height/width`: stretched,
  then `crop_size` if `do_center_crop`. Variable sizes (shortest_edge with longest_edge,
  max_height) and channel flips are refused in one line.
- rescale_factor (and EfficientNet's rescale_offset and include_top) are folded into mean and
  std on convsee's [0, 1] pixel scale: (v * r - offset - m) / s == (v / 255 - m') / s'.
- The model's forward returns a ModelOutput (dict-like): its outputs are `logits` (the
  scores) and, when output is `hidden_states.K`, the hidden states.
- Layer names are the model's `named_modules()` (`resnet.encoder.stages.0.layers.0.shortcut`);
  `stages(net)` says which layer each of `output_hidden_states`' tensors is.

transformers is an optional extra (`pip install 'convsee[hf]'`): it is imported only here,
only when an hf: model is asked for.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import numpy as np

from ..datasets.transforms import Preprocess, fit
from ..errors import ConvseeError, first_line
from .network import TorchNetwork
from .provenance import Provenance

__all__ = [
    "PREFIX",
    "INSTALL",
    "is_hf_model",
    "load_hf",
    "wrap_hf",
    "processor_preprocess",
    "check_processor",
    "stages",
]

PREFIX = "hf:"
INSTALL = "pip install 'convsee[hf]'"
PROCESSOR_FILE = "preprocessor_config.json"
RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
CHECK_ATOL = 1e-4  # normalised units: a faithful translation differs by float32 rounding only
# transformers' torchvision backend resizes with torch's antialiased interpolation, not
# Pillow; on the 8 test images (tests/test_hf.py) they differ by at most these pixel levels
TORCH_LEVELS = {"bilinear": 1, "bicubic": 24}  # of 255, the largest (bicubic: sharp edges)
TORCH_MEAN_LEVEL = 0.5  # of 255, the mean over every pixel
TORCH_RESIZE = (
    "transformers' torchvision backend resizes with torch's antialiased interpolation "
    "instead: within 1 of 255 levels of Pillow's for bilinear, up to 24 at sharp edges for "
    "bicubic, under 0.5 on average"
)
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ConvseeError(
            f"hf: models need the transformers package, which is not installed: {INSTALL} "
            "(or pip install transformers)"
        ) from None
    return transformers


def is_hf_model(model) -> bool:
    """A transformers model (a PreTrainedModel with its config)."""
    return type(model).__module__.startswith("transformers.") and hasattr(model, "config")


@contextlib.contextmanager
def _quiet(transformers):
    """No progress bars or warnings from transformers while loading (convsee says what
    matters itself, in one line)."""
    import huggingface_hub.utils as hub

    log = transformers.utils.logging
    bars, level = log.is_progress_bar_enabled(), log.get_verbosity()
    hub_bars, hub_level = hub.are_progress_bars_disabled(), hub.logging.get_verbosity()
    log.disable_progress_bar()
    log.set_verbosity_error()
    hub.disable_progress_bars()
    hub.logging.set_verbosity_error()  # its retries, when the hub cannot be reached
    try:
        yield
    finally:
        log.set_verbosity(level)
        hub.logging.set_verbosity(hub_level)
        if bars:
            log.enable_progress_bar()
        if not hub_bars:
            hub.enable_progress_bars()


# ---------------------------------------------------------------------------------------------
# where the model is
# ---------------------------------------------------------------------------------------------


def _locate(source: str) -> tuple[str, Path | None]:
    """(what to give from_pretrained, the local folder or None for a hub ID)."""
    text = str(source)
    if not text.strip():
        raise ConvseeError(
            "hf: needs the model's folder or hub ID after it, e.g. hf:./my_model or "
            "hf:microsoft/resnet-50",
            "model",
        )
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConvseeError(
                f"hf:{text[:200]} is a file; give the model's folder (with config.json)", "model"
            )
        if not (path / "config.json").is_file():
            raise ConvseeError(
                f"hf:{text[:200]} has no config.json: not a Hugging Face model folder (one "
                "holds config.json, the weights and preprocessor_config.json)",
                "model",
            )
        return str(path), path
    if not _HUB_ID.fullmatch(text) or text.startswith("."):
        raise ConvseeError(f"hf:{text[:200]}: no such folder", "model")
    return text, None


# ---------------------------------------------------------------------------------------------
# the image processor -> Preprocess
# ---------------------------------------------------------------------------------------------


def _size(v) -> dict:
    """A processor's size / crop_size as a plain dict ({'shortest_edge': 224}, ...)."""
    if v is None:
        return {}
    if isinstance(v, int):
        return {"shortest_edge": v}
    try:
        return {k: x for k, x in dict(v).items() if x is not None}
    except (TypeError, ValueError):
        return {k: getattr(v, k) for k in ("height", "width", "shortest_edge") if hasattr(v, k)}


def _resample(v) -> str:
    if v is None:
        return "bilinear"  # transformers' resize default
    value = getattr(v, "value", v)
    if isinstance(value, str):  # torchvision's InterpolationMode
        name = value.lower().replace("-", "")
        if name in RESAMPLE.values():
            return name
    elif int(value) in RESAMPLE:
        return RESAMPLE[int(value)]
    raise ConvseeError(f"the image processor's resample {v!r} is not a filter convsee knows")


def _base(processor) -> str:
    name = type(processor).__name__
    for tail in ("Pil", "Fast"):
        if name.endswith(tail):
            return name[: -len(tail)]
    return name


def _size_rule(processor, name: str, src, where: str):
    """(input (H, W), resize mode, resize_size, {field: where it came from}) of a processor's
    resize and centre-crop settings, as transformers applies them."""

    def has(key, default=None):
        return getattr(processor, key, default)

    frm: dict = {}
    size, crop = _size(has("size")), _size(has("crop_size"))
    cropping = bool(has("do_center_crop")) and "height" in crop and "width" in crop
    if not has("do_resize", True):
        raise ConvseeError(
            f"the image processor {name} does not resize (do_resize is false), so the model takes "
            "images of any size; give the input size and how to fit images (input_size, resize)"
        )
    if "longest_edge" in size or "max_height" in size or "max_width" in size:
        raise ConvseeError(
            f"the image processor {name} resizes to a size that depends on the image ("
            f"{', '.join(f'{k} {v}' for k, v in size.items())}); convsee needs one input size: "
            "give input_size and resize"
        )
    resize_size: tuple[int, ...] = ()
    if "shortest_edge" in size and name.startswith("ConvNext") and has("crop_pct") is not None:
        s, pct = int(size["shortest_edge"]), float(has("crop_pct"))
        edge = src("size.shortest_edge", s)
        if cropping:
            raise ConvseeError(
                f"the image processor {name} resizes with crop_pct and then cuts crop_size too; "
                "convsee cannot do both: give input_size and resize"
            )
        if s < 384:  # ConvNextImageProcessor.resize: shorter side int(s / crop_pct), centre s x s
            hw, resize, resize_size = (s, s), "crop", (int(s / pct),)
            frm["input_size"] = f"{edge}: {name} cuts the centre {s}x{s} (below 384)"
            frm["resize_size"] = (
                f"{edge}, {src('crop_pct', f'{pct:g}').removeprefix(f'{where}: ')}: shorter side "
                f"int({s} / {pct:g}) = {resize_size[0]} first ({name} below 384)"
            )
            frm["resize"] = "crop: the centre of the resized image"
        else:  # 384 and up: stretched to s x s, no crop
            hw, resize = (s, s), "stretch"
            frm["input_size"] = f"{edge}: {name} stretches to {s}x{s} (384 and up)"
            frm["resize"] = f"stretch: {name} does not crop from 384 up"
    elif "shortest_edge" in size:
        s = int(size["shortest_edge"])
        resize, resize_size = "crop", (s,)
        edge = src("size.shortest_edge", s)
        if cropping:
            hw = (int(crop["height"]), int(crop["width"]))
            frm["input_size"] = src("crop_size", f"{hw[0]}x{hw[1]}") + " (do_center_crop)"
        else:
            hw = (s, s)
            frm["input_size"] = (
                f"{edge}; the processor keeps the aspect ratio (no crop): convsee cuts the "
                f"centre {s}x{s}, one input size for every image"
            )
        frm["resize_size"] = f"{edge}: shorter side {s} first"
        frm["resize"] = "crop: the centre of the resized image"
    elif "height" in size and "width" in size:
        H, W = int(size["height"]), int(size["width"])
        if cropping and (int(crop["height"]), int(crop["width"])) != (H, W):
            hw, resize, resize_size = (int(crop["height"]), int(crop["width"])), "crop", (H, W)
            frm["input_size"] = src("crop_size", f"{hw[0]}x{hw[1]}") + " (do_center_crop)"
            frm["resize_size"] = src("size", f"{H}x{W}") + " first"
            frm["resize"] = "crop: the centre of the resized image"
        else:
            hw, resize = (H, W), "stretch"
            frm["input_size"] = src("size", f"{H}x{W}")
            frm["resize"] = src("size", f"{H}x{W}") + ": stretched to it"
    else:
        raise ConvseeError(
            f"the image processor {name} has no size convsee understands ({size or 'none'}); "
            "give input_size and resize"
        )
    return hw, resize, resize_size, frm


def processor_preprocess(
    processor,
    channels: int = 3,
    given: set | None = None,
    where: str = PROCESSOR_FILE,
    explicit: frozenset | set = frozenset(),
) -> tuple[Preprocess, dict]:
    """(Preprocess, {field: where it came from}) for a transformers image processor.

    given: the keys the processor's file sets (None: unknown, e.g. an object handed to wrap);
    a key it leaves out is the processor class's default, and said so. where: the file's name
    in the provenance texts. explicit: the fields the caller gives itself (they replace the
    processor's afterwards): what the processor lacks for them is no error."""
    name = _base(processor)

    def has(key, default=None):
        return getattr(processor, key, default)

    def src(key, shown=None) -> str:
        """'preprocessor_config.json: size.shortest_edge 64' (or the class default's)."""
        value = has(key.split(".")[0]) if shown is None else shown
        if isinstance(value, (list, tuple)):
            value = "[" + ", ".join(f"{float(v):g}" for v in value) + "]"
        origin = f"{where}:" if given is None or key.split(".")[0] in given else f"{name} default"
        return f"{origin} {key} {value}"

    if has("do_flip_channel_order"):
        raise ConvseeError(
            f"the image processor {name} flips the channels (RGB to BGR); convsee gives models "
            "RGB: give the preprocessing yourself (a wrapper module that flips them)"
        )
    try:
        hw, resize, resize_size, frm = _size_rule(processor, name, src, where)
    except ConvseeError:
        if "input_size" not in explicit:
            raise
        hw, resize, resize_size, frm = (224, 224), "crop", (), {}  # replaced by the caller's
    crop_pct = 1.0
    interpolation = _resample(has("resample"))
    frm["interpolation"] = src("resample", f"{has('resample')!s} ({interpolation})")

    # pixel values v in 0..255; the processor gives ((v * r - offset - m) / s) / s_top
    rescaling = bool(has("do_rescale", True))
    r = float(has("rescale_factor", 1 / 255)) if rescaling else 1.0
    efficientnet = name.startswith("EfficientNet")
    offset = 1.0 if efficientnet and has("rescale_offset") else 0.0
    if has("do_normalize", True):
        m, s = has("image_mean"), has("image_std")
        missing = [
            k
            for k in ("image_mean", "image_std")
            if has(k) is None or (given is not None and k not in given)
        ]
        if missing and not {"mean", "std"} <= set(explicit):
            raise ConvseeError(
                f"{where} gives no {' or '.join(missing)} (do_normalize is true): transformers "
                f"would use {name}'s defaults, which need not be what the model was trained "
                "with; give mean and std"
            )
        if missing:  # given by the caller: placeholders here, replaced afterwards
            m, s = [0.5] * channels, [0.5] * channels
        m = np.resize(np.asarray(m, np.float64), channels)
        s = np.resize(np.asarray(s, np.float64), channels)
        norm = src("image_mean"), src("image_std")
    else:
        m, s = np.zeros(channels), np.ones(channels)
        norm = src("do_normalize") + ": mean 0", src("do_normalize") + ": std 1"
    top = s if efficientnet and has("include_top") else np.ones(channels)
    mean = (offset + m) / (255 * r)
    std = s * top / (255 * r)
    how = []
    if abs(r * 255 - 1) > 1e-9:
        how.append(f"rescale_factor {r:.6g}" if rescaling else "do_rescale false")
    if offset:
        how.append("rescale_offset (-1)")
    if efficientnet and has("include_top"):
        how.append("include_top (divided by std twice)")
    fold = f"; with {', '.join(how)}, on convsee's [0, 1] pixel scale" if how else ""
    frm["mean"], frm["std"] = norm[0] + fold, norm[1] + fold
    frm["rescale"] = (
        src("rescale_factor", f"{r:.6g}") + (" (1/255, convsee's own scale)" if not how else "")
        if rescaling
        else src("do_rescale")
    )
    prep = Preprocess(
        (channels, hw[0], hw[1]),
        tuple(float(x) for x in mean),
        tuple(float(x) for x in std),
        resize,
        crop_pct,
        interpolation,
        resize_size,
    )
    return prep, frm


def _probe(h: int, w: int) -> np.ndarray:
    """A seeded RGB test image (uint8) of another size and shape than h x w: smooth colour
    gradients with texture, so every filter and cut shows in the result."""
    ph, pw = int(h * 1.21) + 7, int(w * 1.63) + 5
    y, x = np.mgrid[0:ph, 0:pw].astype(np.float64)
    rng = np.random.default_rng(19)
    img = np.stack(
        [
            128 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0),
            255 * x / pw,
            255 * y / ph,
        ],
        axis=2,
    )
    img += rng.normal(0, 20, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def check_processor(processor, prep: Preprocess, image=None) -> float:
    """The largest difference between the processor's pixel_values and convsee's input
    tensor for image (default: a seeded test image of another shape), in normalised units;
    inf when the shapes differ."""
    from PIL import Image

    a = _probe(*prep.input_size[1:]) if image is None else np.asarray(image)
    theirs = np.asarray(processor(images=Image.fromarray(a), return_tensors="np")["pixel_values"])
    mine = fit(Image.fromarray(a), prep)[1]
    if theirs.shape[1:] != mine.shape:
        return float("inf")
    return float(np.abs(theirs[0].astype(np.float32) - mine).max())


def _backend(processor) -> str:
    b = getattr(processor, "backend", None)
    if isinstance(b, str):
        return b
    return "torchvision" if type(processor).__name__.endswith("Fast") else "pil"


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


def _classes(config) -> tuple[list[str] | None, str]:
    id2label = getattr(config, "id2label", None) or {}
    try:
        pairs = sorted((int(k), str(v)) for k, v in id2label.items())
    except (TypeError, ValueError):
        return None, "config.json: id2label is not numbered; classes shown as numbers"
    names = [v for _, v in pairs]
    if [k for k, _ in pairs] != list(range(len(pairs))) or not names:
        return None, "config.json: no id2label numbered 0..K-1; classes shown as numbers"
    if all(v == f"LABEL_{i}" for i, v in enumerate(names)):
        return None, "config.json: id2label holds transformers' placeholders LABEL_0..; numbers"
    return names, f"config.json: id2label ({len(names)} names)"


def _not_a_classifier(transformers, config, text: str) -> ConvseeError:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    del transformers
    kind = getattr(config, "model_type", "") or type(config).__name__
    if getattr(config, "num_channels", None) is not None or hasattr(config, "image_size"):
        return ConvseeError(
            f"hf:{text[:200]} is a {kind} vision model but not an image classifier "
            f"({type(config).__name__}); convsee's views need one that returns class scores: of "
            f"this kind, {len(MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES)} model types are "
            "(resnet, convnext, mobilenet_v2, efficientnet, regnet, vit, ...)"
        )
    return ConvseeError(
        f"hf:{text[:200]} is a {kind} model ({type(config).__name__}), not one that takes images: "
        "none of convsee's views apply (they need an image classifier: resnet, convnext, "
        "mobilenet_v2, ...)"
    )


def _key(item) -> str:
    """A loading-info entry: 'name', or (name, shape in the file, shape in the model)."""
    if isinstance(item, (tuple, list)) and len(item) == 3:
        name, theirs, ours = item
        return f"{name} {list(theirs)} in the file, {list(ours)} in the model"
    return str(item)


def load_hf(
    source: str,
    *,
    output: str | None = None,
    preprocess: dict | None = None,
    labels=None,
    device: str = "cpu",
) -> TorchNetwork:
    """The Network for a Hugging Face image classifier: a local folder or a hub ID (which
    transformers downloads and caches as it does for its users).

    source: the folder or ID, with or without 'hf:'. preprocess: fields overriding what the
    image processor says (input_size, mean, std, resize, ...). labels: class names overriding
    id2label."""
    text = str(source)[len(PREFIX) :] if str(source).startswith(PREFIX) else str(source)
    transformers = _transformers()
    where, folder = _locate(text)
    with _quiet(transformers):
        try:
            config = transformers.AutoConfig.from_pretrained(where)
        except Exception as e:  # noqa: BLE001 - a broken or unreachable config can raise anything
            if folder is None:
                raise ConvseeError(
                    f"hf:{text[:200]}: no such folder here, and the hub did not give a model of "
                    f"that ID ({type(e).__name__}: {first_line(e)})"
                ) from None
            raise ConvseeError(
                f"hf:{text[:200]}: config.json is not a transformers config "
                f"({type(e).__name__}: {first_line(e)})"
            ) from None
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
        )

        if getattr(config, "model_type", None) not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
            raise _not_a_classifier(transformers, config, text)
        if str(output or "").startswith("hidden_states"):
            config.output_hidden_states = True
        try:
            model, info = transformers.AutoModelForImageClassification.from_pretrained(
                where, config=config, output_loading_info=True, ignore_mismatched_sizes=True
            )  # weights of another shape are listed below and refused, not re-initialised
        except Exception as e:  # noqa: BLE001
            raise ConvseeError(
                f"hf:{text[:200]}: transformers could not load the model "
                f"({type(e).__name__}: {first_line(e)})"
            ) from None
        bad = {k: sorted(map(_key, v)) for k, v in (info or {}).items() if k != "error_msgs" and v}
        if bad:
            what = "; ".join(
                f"{len(v)} {k.replace('_keys', '').replace('_', ' ')} ({', '.join(v[:3])}"
                f"{f' and {len(v) - 3} more' if len(v) > 3 else ''})"
                for k, v in bad.items()
            )
            raise ConvseeError(
                f"hf:{text[:200]}: the weights do not fit {type(model).__name__}: {what}"
            )
        processor, given, why = None, None, ""
        has_file = folder is None or (folder / PROCESSOR_FILE).is_file()
        if has_file:
            try:
                processor = transformers.AutoImageProcessor.from_pretrained(where)
            except Exception as e:  # noqa: BLE001
                if folder is not None:
                    raise ConvseeError(
                        f"hf:{text[:200]}: {PROCESSOR_FILE} does not load as an image processor "
                        f"({type(e).__name__}: {first_line(e)})"
                    ) from None
                why = "the hub gives no image processor for it"
        else:
            why = f"the folder has no {PROCESSOR_FILE}"
        if processor is not None and folder is not None:
            try:
                given = set(json.loads((folder / PROCESSOR_FILE).read_text()))
            except (OSError, ValueError, TypeError):
                given = None
    meta = {"hf_folder": str(folder.resolve())} if folder is not None else {}
    return wrap_hf(
        model,
        processor,
        preprocess=preprocess,
        classes=labels,
        output=output,
        device=device,
        name=f"{PREFIX}{text}",
        meta=meta,
        given=given,
        no_processor=why,
    )


def wrap_hf(
    model,
    processor=None,
    *,
    preprocess: Preprocess | dict | None = None,
    classes=None,
    output: str | None = None,
    device: str = "cpu",
    name: str | None = None,
    meta: dict | None = None,
    given: set | None = None,
    no_processor: str = "",
) -> TorchNetwork:
    """A Network for a transformers model (and its image processor, if any): class names
    from config.id2label, the preprocessing from the processor, checked on a test image.

    preprocess: a Preprocess (used as is) or fields overriding the processor's.
    name: how sidecars name the model (default: its class name); meta: more metadata."""
    from .preprocess import default_preprocess, first_conv_channels

    config = getattr(model, "config", None)
    # a config without a channel count: what the model's first convolution reads, else RGB
    channels = getattr(config, "num_channels", None) or first_conv_channels(model) or 3
    channels = int(channels)
    frm: dict = {}
    notes: list[str] = []
    where = PROCESSOR_FILE if given is not None else "the image processor"
    if isinstance(preprocess, Preprocess):
        prep = preprocess
        frm = dict.fromkeys(("input_size", "mean", "std", "resize"), "given (a Preprocess)")
    else:
        fields = {k: v for k, v in dict(preprocess or {}).items() if v is not None}
        fields.pop("labels", None)
        if processor is not None:
            prep, frm = processor_preprocess(processor, channels, given, where, set(fields))
        else:
            prep, note = default_preprocess(model)
            why = no_processor or "no image processor was given"
            frm = dict.fromkeys(("input_size", "mean", "std", "resize"), f"assumed: {why}")
            if not {"input_size", "mean", "std"} <= set(fields):
                notes.append(f"{why}: {note.removeprefix('no preprocessing given: ')}")
        if fields:
            prep = prep.merged(fields, "preprocessing")
            for k in fields:
                frm[k] = "given explicitly"
    if processor is not None:
        backend = _backend(processor)
        try:
            diff = check_processor(processor, prep)
        except Exception as e:  # noqa: BLE001 - a processor may refuse a plain RGB image
            diff = None
            frm["checked"] = f"not checked: the processor failed on a test image ({first_line(e)})"
        if diff is not None:
            explicit = isinstance(preprocess, Preprocess) or bool(preprocess)
            if backend == "pil" and diff > CHECK_ATOL and not explicit:
                raise ConvseeError(
                    f"convsee cannot reproduce {_base(processor)}'s preprocessing: on a test image "
                    f"its pixel_values differ from convsee's input by up to {diff:.3g}; give the "
                    "preprocessing yourself (input_size, mean, std, resize)"
                )
            frm["checked"] = (
                f"convsee's input equals {type(processor).__name__}'s pixel_values on a "
                f"{'x'.join(map(str, _probe(*prep.input_size[1:]).shape[1::-1]))} test image "
                f"(largest difference {diff:.2g})"
                if diff <= CHECK_ATOL
                else f"convsee's input differs from {type(processor).__name__}'s pixel_values "
                f"on a test image by up to {diff:.3g}"
            )
        frm["resize_filter"] = (
            f"Pillow, as {type(processor).__name__} (transformers' PIL backend) resizes; "
            if backend == "pil"
            else f"Pillow, not as {type(processor).__name__} resizes: "
        ) + TORCH_RESIZE
    if classes is None:
        classes, frm["classes"] = _classes(config) if config is not None else (None, "none")
    else:
        classes = list(classes)
        frm["classes"] = "given explicitly"
    prov = Provenance(
        model=name or type(model).__name__, preprocess=prep.to_dict(), preprocess_from=frm
    )
    net = TorchNetwork(
        model.float().to(device).eval(),
        prep,
        {"hf_model": type(model).__name__, **(meta or {})},
        classes,
        output,
        device,
        provenance=prov,
    )
    net.notes.extend(notes)
    tokens = _token_note(net)
    if tokens:
        net.notes.append(tokens)
    return net


def _token_note(net) -> str:
    """For a model whose layers output tokens (a ViT), one line saying which views apply."""
    layers = net.spec.layers
    maps = [x for x in layers if x.kind == "map"]
    tokens = [x for x in layers if x.kind == "other" and len(x.shape) == 2]
    if not tokens or len(tokens) < len(maps):
        return ""
    shape = "x".join(map(str, tokens[-1].shape))
    conv = f"; only {len(maps)} layer{'s' if len(maps) != 1 else ''} " if maps else "; no layer "
    return (
        f"{net.meta.get('hf_model', 'the model')}'s layers output tokens ({shape}), not "
        f"(C, H, W) maps: predict, attribution and layers apply{conv}"
        "outputs maps for render, exemplars and the page's maps"
        + (f" ({', '.join(x.name for x in maps[:3])})" if maps else "")
    )


def stages(net) -> list[tuple[int, str, tuple[int, ...]]]:
    """[(k, layer name, shape)]: the layer whose output is hidden_states[k] of the model's
    output_hidden_states, for each k (the outermost module when several return it)."""
    import torch

    from ..capture import eval_mode

    model = net.torch_model()
    config = getattr(model, "config", None)
    if config is None:
        return []
    names = {m: n for n, m in model.named_modules() if n}
    outputs: list[tuple[object, str]] = []  # kept alive, so no tensor's id is reused
    handles = []

    def hook(m, _inp, out):
        if isinstance(out, torch.Tensor):
            outputs.append((out, names[m]))

    x = torch.zeros(1, *net.prep.input_size, device=net.device)
    try:
        for m in names:
            handles.append(m.register_forward_hook(hook))
        with eval_mode(model), torch.no_grad():
            out = model(x, output_hidden_states=True)
    except Exception:  # noqa: BLE001 - a model without hidden states: no stages
        return []
    finally:
        for h in handles:
            h.remove()
    hidden = getattr(out, "hidden_states", None) or ()
    layer_names = {x.name for x in net.spec.layers}
    found = []
    for k, t in enumerate(hidden):
        same = [n for o, n in outputs if o is t and n in layer_names]
        if same:
            name = min(same, key=lambda n: n.count("."))
            found.append((k, name, tuple(t.shape[1:])))
    return found
