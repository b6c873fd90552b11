"""Checkpoints: FILE.safetensors (tensors named by module) plus FILE.json (its own config).

Loading rebuilds the model from the JSON. Plain PyTorch state dicts (.pth/.pt, the original
project's format) load too, through torch.load(weights_only=True), so no arbitrary object is
ever unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ConvseeError
from .lenet_layers import state_shapes

__all__ = [
    "default_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_weights",
    "load_state_dict_file",
    "file_sha256",
    "atomic_write",
]


def default_checkpoint(dataset: str = "mnist") -> Path:
    """The checkpoint shipped inside the package."""
    return Path(str(resources.files("convsee") / "assets" / f"lenet5-{dataset}.safetensors"))


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to a temporary file beside path, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def file_sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_checkpoint(model, path: str | os.PathLike, meta: dict) -> None:
    """Write path (.safetensors) and path with .json, both atomically; meta gains 'config'."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"config": model.config.to_dict(), **meta}
    atomic_write(path, save(tensors, metadata={"convsee": "1"}))
    atomic_write(path.with_suffix(".json"), (json.dumps(meta, indent=2) + "\n").encode())


def load_state_dict_file(path: Path, as_numpy: bool = False) -> dict:
    """Tensors from a .safetensors file or a plain PyTorch state dict (never unpickling code).

    as_numpy: NumPy arrays; for .safetensors this never imports torch.
    """
    if not path.is_file():
        raise ConvseeError(f"checkpoint {str(path)!r} does not exist")
    data = path.read_bytes()
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

    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsupported content"
        raise ConvseeError(
            f"{path}: refused to load: it is not a plain state dict of tensors "
            f"(loading it would run pickled code: {first})"
        ) from None
    except Exception as e:
        raise ConvseeError(f"{path}: not a PyTorch checkpoint ({type(e).__name__}: {e})") from None
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


def _read_meta(path: Path) -> dict:
    side = path.with_suffix(".json")
    meta = {}
    if path.suffix == ".safetensors" and side.is_file():
        try:
            meta = json.loads(side.read_text())
        except (OSError, ValueError) as e:
            raise ConvseeError(f"{side}: unreadable metadata ({e})") from None
    config = meta.get("config", {})
    try:
        shapes = state_shapes(**{k: v for k, v in config.items() if k != "name"})
    except TypeError as e:
        raise ConvseeError(f"{side}: bad 'config' ({e})") from None
    meta.setdefault("classes", [str(i) for i in range(shapes["fc3.bias"][0])])
    meta["path"] = str(path)
    meta["sha256"] = file_sha256(path)
    return meta, shapes


def load_weights(path: str | os.PathLike | None = None):
    """(NumPy state dict, metadata), checked against LeNet-5; torch-free for .safetensors."""
    path = default_checkpoint() if path is None else Path(path)
    sd = load_state_dict_file(path, as_numpy=True)
    meta, shapes = _read_meta(path)
    _check_state_dict(path, shapes, sd)
    return {k: np.asarray(v, np.float32) for k, v in sd.items()}, meta


def load_checkpoint(path: str | os.PathLike | None = None, device: str = "cpu"):
    """(model in eval mode, metadata dict). path=None: the shipped MNIST checkpoint."""
    from .lenet import LeNet5, ModelConfig

    path = default_checkpoint() if path is None else Path(path)
    sd = load_state_dict_file(path)
    meta, shapes = _read_meta(path)
    _check_state_dict(path, shapes, sd)
    model = LeNet5(ModelConfig(**meta.get("config", {})))
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    return model.to(device).eval(), meta
