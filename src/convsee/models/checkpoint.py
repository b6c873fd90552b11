"""Checkpoints: FILE.safetensors, one file holding the tensors and their metadata.

The metadata (the model's config, classes, training record) lives in the safetensors header
(key "convsee_meta", JSON), so weights and metadata are written in one atomic rename and
can never disagree. FILE.json beside it is a convenience copy for people and scripts; on
load it is checked against the header and a copy that disagrees is refused. Safetensors
files from other tools (no convsee metadata) take their metadata from FILE.json if there is
one, as before. Plain PyTorch state dicts (.pth/.pt, the original project's format) load
too, through torch.load(weights_only=True), so no arbitrary object is ever unpickled.

Every loader refuses weights holding NaN or infinity, and metadata of the wrong shape.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pickle
import re
import tempfile
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ConvseeError, no_file
from .lenet_layers import smallest_side, state_shapes

__all__ = [
    "default_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_weights",
    "load_state_dict_file",
    "file_sha256",
    "atomic_write",
    "check_writable",
    "clean_stale_temps",
    "read_header_meta",
    "write_metadata",
    "META_KEY",
]

META_KEY = "convsee_meta"  # safetensors header key holding the metadata as JSON


def default_checkpoint(dataset: str = "mnist") -> Path:
    """The checkpoint shipped inside the package."""
    return Path(str(resources.files("convsee") / "assets" / f"lenet5-{dataset}.safetensors"))


def _write_temp(path: Path, data: bytes) -> str:
    """A temporary beside path holding data, on disk, with the usual permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before a name points at it
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to a temporary file beside path, flush it to disk, then rename it into place.

    A failure (full disk, Ctrl-C) removes the temporary and leaves path as it was; a killed
    process leaves the temporary, which clean_stale_temps(path) removes later.
    """
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in folder durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_TEMP = re.compile(r"\.[a-z0-9_]{8}\.tmp")  # mkstemp's 8 random characters


def clean_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries atomic_write(path) left behind when its process was killed.

    Only files named exactly like its temporaries (.NAME.XXXXXXXX.tmp beside path) go.
    """
    path = Path(path)
    removed = []
    prefix = f".{path.name}"
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for e in entries:
        if e.name.startswith(prefix) and _TEMP.fullmatch(e.name[len(prefix) :]):
            try:
                if e.is_file(follow_symlinks=False):
                    os.unlink(e.path)
                    removed.append(Path(e.path))
            except OSError:
                pass
    return removed


def check_writable(path: str | os.PathLike, need_bytes: int = 0) -> Path:
    """Fail now, not after the work, if path cannot be written: a folder in its place, a
    parent that cannot be made, a folder without write access, or (need_bytes) no room.

    Creates nothing: probes by writing need_bytes to a temporary in the nearest existing
    folder at or above path's (missing folders are made when path is written).
    """
    path = Path(path)
    if path.is_dir():
        raise ConvseeError(f"{path} is a folder; a file name is needed")
    parent = next((q for q in path.parents if q.exists()), Path("."))
    if not parent.is_dir():
        raise ConvseeError(f"cannot write {path}: {parent} is not a folder")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            for _ in range(0, need_bytes, 1 << 20):
                f.write(bytes(min(1 << 20, need_bytes)))
            f.flush()
    except OSError as e:
        raise ConvseeError(f"cannot write into {parent}: {e.strerror}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a file's bytes, read in 1 MiB blocks (bounded memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _meta_text(meta: dict) -> str:
    return json.dumps(meta, indent=2) + "\n"


def save_checkpoint(model, path: str | os.PathLike, meta: dict) -> None:
    """Write path (.safetensors, metadata in its header) and its .json copy; meta gains
    'config'. The weights and their metadata change in one rename; the old .json is removed
    just before it, so an interruption anywhere leaves either no copy or one that matches."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if hasattr(model, "config"):  # LeNet-5: its architecture; other models: meta["model"]
        meta = {"config": model.config.to_dict(), **meta}
    text = _meta_text(meta)
    _write_unit(path, save(tensors, metadata={"convsee": "1", META_KEY: text}), text)


def write_metadata(path: str | os.PathLike, meta: dict) -> None:
    """Replace a .safetensors checkpoint's metadata (in its header, and the .json copy); the
    tensors stay byte for byte. The way to change a checkpoint's metadata: editing the .json
    alone makes it disagree with the header, and loading refuses that."""
    path = Path(path)
    data = path.read_bytes()
    read_header_meta(data, path)  # a valid safetensors file
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    text = _meta_text(meta)
    header["__metadata__"] = {**(header.get("__metadata__") or {}), "convsee": "1", META_KEY: text}
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the tensor data stays 8-byte aligned
    _write_unit(path, len(head).to_bytes(8, "little") + head + data[8 + n :], text)


def _write_unit(path: Path, weights: bytes, text: str) -> None:
    side = path.with_suffix(".json")
    temps = []
    try:  # both written first: a full disk fails here, before anything changed
        temps.append(_write_temp(path, weights))
        temps.append(_write_temp(side, text.encode()))
        side.unlink(missing_ok=True)  # no moment where the copy disagrees with the weights
        os.replace(temps[0], path)
        os.replace(temps[1], side)
    finally:
        for t in temps:
            if os.path.exists(t):
                _unlink_quietly(t)
    _fsync_dir(path.parent)


def read_header_meta(data: bytes, path: Path | None = None) -> dict | None:
    """The convsee metadata in a safetensors file's header (None: it has none). Torch-free."""
    where = "checkpoint" if path is None else str(path)
    if len(data) < 8:
        raise ConvseeError(f"{where}: not a valid safetensors file (too short)")
    n = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8 : 8 + n])
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise ConvseeError(f"{where}: not a valid safetensors file (bad header)") from None
    md = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(md, dict) or META_KEY not in md:
        return None
    try:
        meta = json.loads(md[META_KEY])
    except (TypeError, ValueError, RecursionError):
        raise ConvseeError(f"{where}: its metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise ConvseeError(
            f"{where}: its metadata must be a JSON object, got {type(meta).__name__}"
        )
    return meta


def peek_meta(path) -> dict:
    """The metadata in a safetensors file's header, reading the header alone ({} for other
    files or a header without it): for a choice made before the checkpoint is loaded."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return {}
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            head += f.read(min(n, 100_000_000))
    except OSError as e:
        raise ConvseeError(f"{path}: cannot read it ({e.strerror or e})") from None
    return read_header_meta(head, path) or {}


def load_state_dict_file(path: Path, as_numpy: bool = False) -> dict:
    """Tensors from a .safetensors file or a plain PyTorch state dict (never unpickling code).

    as_numpy: NumPy arrays; for .safetensors this never imports torch.
    """
    return _read_state_dict(Path(path), as_numpy)[0]


def _read_state_dict(path: Path, as_numpy: bool) -> tuple[dict, bytes]:
    if not path.is_file():
        raise ConvseeError(f"{{param}} {path}{no_file(path, ' does not exist')}", "checkpoint")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConvseeError(f"{path}: cannot read it ({e.strerror})") from None
    return _parse_state_dict(path, data, as_numpy), data


_CODE_OPS = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"}


def _torch_load(path: Path, data: bytes):
    """torch.load(weights_only=True) of a .pth/.pt file's bytes, in convsee's words: a file
    that is no checkpoint at all (empty, random, truncated), or one holding pickled objects,
    refused because loading them would run their code. torch's warnings are silenced and its
    advice to turn weights_only off is never passed on."""
    import torch

    def not_one(why: str) -> ConvseeError:
        return ConvseeError(f"{path}: not a PyTorch checkpoint ({why})")

    is_zip = data[:4] == b"PK\x03\x04"  # torch.save's format since 1.6
    is_pickle = data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    if not data:
        raise not_one("the file is empty")
    if not (is_zip or is_pickle):
        raise not_one("neither a torch.save archive nor a pickle")
    if is_zip:
        from ..files import check_zip_sizes

        check_zip_sizes(path, data)  # a zip bomb: refused before torch inflates it
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4 ...", and the like
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]{1,80})", str(e))
        if found or (is_pickle and _pickles_objects(data)):
            what = f" ({found.group(1)})" if found else ""
            raise ConvseeError(
                f"{path}: refused to load: it is not a plain state dict of tensors; it holds "
                f"pickled objects{what}, and loading them would run their code"
            ) from None
        raise not_one("damaged, or pickled data that is not a state dict") from None
    except EOFError:
        raise not_one("the file ends too early") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a damaged file
        text = str(e).strip().splitlines()[0].split(". ")[0][:120] if str(e).strip() else ""
        raise not_one(f"damaged{': ' + text if len(text) > 12 else ''}") from None


def _pickles_objects(data: bytes) -> bool:
    """Whether a pickle's opcodes import or build objects (read, never run)."""
    import pickletools

    try:
        return any(op.name in _CODE_OPS for op, _, _ in pickletools.genops(data))
    except Exception:  # noqa: BLE001 - not a whole pickle: garbage, not code
        return False


def _parse_state_dict(path: Path, data: bytes, as_numpy: bool) -> dict:
    if path.suffix == ".safetensors":
        if as_numpy:
            from safetensors.numpy import load
        else:
            from safetensors.torch import load
        try:
            return load(data)
        except Exception as e:  # safetensors raises its own error types for garbage
            raise ConvseeError(f"{path}: not a valid safetensors file ({e})") from None
    import torch

    obj = _torch_load(path, data)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConvseeError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    # checkpoints saved from nn.DataParallel prefix every key with "module."
    sd = {k.removeprefix("module."): v for k, v in obj.items()}
    if as_numpy:
        return {k: v.detach().float().numpy() for k, v in sd.items()}
    return sd


def _check_state_dict(path: Path, want: dict, sd: dict) -> None:
    got = {k: tuple(v.shape) for k, v in sd.items()}
    problems = []
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    if missing:
        problems.append("missing: " + ", ".join(missing))
    if extra:
        problems.append("unexpected: " + ", ".join(extra))
    for k in sorted(set(want) & set(got)):
        if tuple(want[k]) != got[k]:
            problems.append(f"{k} has shape {list(got[k])}, expected {list(want[k])}")
    if problems:
        raise ConvseeError(f"{path} does not fit LeNet-5:\n  " + "\n  ".join(problems))


def _check_finite(path: Path, sd: dict) -> None:
    """Refuse weights holding NaN or infinity: such a model answers NaN for every input."""
    bad = []
    for k, v in sd.items():
        if isinstance(v, np.ndarray):
            n = int(v.size - np.count_nonzero(np.isfinite(v))) if v.dtype.kind in "fc" else 0
        else:  # a torch tensor
            import torch

            n = int((~torch.isfinite(v)).sum()) if v.is_floating_point() else 0
        if n:
            bad.append(f"{k} ({n})")
    if bad:
        raise ConvseeError(
            f"{path}: weights hold NaN or infinite values, in {', '.join(bad)}; "
            "such a model predicts nothing (did its training diverge?)"
        )


_CONFIG_KEYS = {"in_channels", "image_size", "num_classes"}


def _check_meta(where, meta) -> dict:
    """The metadata's shape: a JSON object whose config, classes and accuracy make sense."""
    if not isinstance(meta, dict):
        raise ConvseeError(f"{where}: metadata must be a JSON object, got {type(meta).__name__}")
    config = meta.get("config", {})
    if not isinstance(config, dict):
        raise ConvseeError(f"{where}: 'config' must be an object, got {type(config).__name__}")
    unknown = sorted(set(config) - _CONFIG_KEYS - {"name"})
    if unknown:
        raise ConvseeError(f"{where}: unknown 'config' keys: {', '.join(unknown[:5])}")
    for k in _CONFIG_KEYS & set(config):
        v = config[k]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096:
            raise ConvseeError(f"{where}: config '{k}' must be a positive whole number")
    smallest = smallest_side(1)  # 16: one pixel out of the last pool
    if config.get("image_size", 28) < smallest:
        raise ConvseeError(f"{where}: config 'image_size' must be at least {smallest} for LeNet-5")
    if "name" in config and config["name"] != "lenet5":
        raise ConvseeError(f"{where}: config 'name' must be 'lenet5'")
    n = config.get("num_classes", 10)
    classes = meta.get("classes", [str(i) for i in range(n)])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ConvseeError(f"{where}: 'classes' must be a list of names")
    lenet = not meta.get("model")  # another model's outputs are its own, not config's
    if len(classes) != n and (lenet or "num_classes" in config):
        raise ConvseeError(f"{where}: {len(classes)} 'classes' for a model with {n} outputs")
    acc = meta.get("test_accuracy")
    if acc is not None and (
        isinstance(acc, bool)
        or not isinstance(acc, (int, float))
        or not (math.isfinite(acc) and 0 <= acc <= 1)
    ):
        raise ConvseeError(f"{where}: 'test_accuracy' must be a number in [0, 1]")
    return {**meta, "classes": classes}


def read_meta(path) -> dict:
    """A checkpoint's metadata (the header's, checked against its .json copy; {} for a file
    without any), for any model. Torch-free."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return {}
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConvseeError(f"{path}: cannot read it ({e.strerror or e})") from None
    meta, _ = _read_meta(path, data, shapes=False)
    return meta


def _read_meta(path: Path, data: bytes, shapes: bool = True) -> tuple[dict, dict]:
    """(metadata, parameter shapes): the header's metadata checked against the .json copy, or
    (files without it) the .json alone."""
    side = path.with_suffix(".json")
    meta, copy = None, None
    if path.suffix == ".safetensors":
        meta = read_header_meta(data, path)
        if side.is_file():
            try:
                copy = json.loads(side.read_text())
            except (OSError, ValueError, RecursionError) as e:
                if meta is None:
                    raise ConvseeError(f"{side}: unreadable metadata ({e})") from None
                copy = e
    if meta is not None and copy is not None and copy != meta:
        differ = (
            sorted(k for k in set(meta) | set(copy) if meta.get(k) != copy.get(k))
            if isinstance(copy, dict)
            else ["(not valid JSON)"]
        )
        raise ConvseeError(
            f"{side} does not match the metadata inside {path.name} "
            f"(differs in: {', '.join(differ[:6])}); the .json is only a copy, probably "
            "left stale by an interrupted write: delete it to use the checkpoint"
        )
    where = path if meta is not None else side
    meta = _check_meta(where, copy if meta is None and copy is not None else meta or {})
    config = meta.get("config", {})
    if shapes:
        if meta.get("model"):
            raise ConvseeError(
                f"{path} holds weights for {meta['model']}, not LeNet-5: pass {{param}} "
                f"{meta['model']} (convsee never imports a model a file names by itself)",
                "model",
            )
        shapes = state_shapes(**{k: v for k, v in config.items() if k != "name"})
    meta["path"] = str(path)
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    return meta, shapes


def load_weights(path: str | os.PathLike | None = None, dataset: str = "mnist"):
    """(NumPy state dict, metadata), checked against LeNet-5; torch-free for .safetensors.
    path=None: the checkpoint shipped for `dataset`."""
    path = default_checkpoint(dataset) if path is None else Path(path)
    sd, data = _read_state_dict(path, as_numpy=True)
    meta, shapes = _read_meta(path, data)
    _check_state_dict(path, shapes, sd)
    _check_finite(path, sd)
    return {k: np.asarray(v, np.float32) for k, v in sd.items()}, meta


def load_checkpoint(
    path: str | os.PathLike | None = None, device: str = "cpu", dataset: str = "mnist"
):
    """(model in eval mode, metadata dict). path=None: the checkpoint shipped for `dataset`."""
    from .lenet import LeNet5, ModelConfig

    path = default_checkpoint(dataset) if path is None else Path(path)
    sd, data = _read_state_dict(path, as_numpy=False)
    meta, shapes = _read_meta(path, data)
    _check_state_dict(path, shapes, sd)
    _check_finite(path, sd)
    model = LeNet5(ModelConfig(**meta.get("config", {})))
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    return model.to(device).eval(), meta
