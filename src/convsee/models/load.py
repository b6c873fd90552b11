"""Loading any model, safely: `--model SPEC`, `--checkpoint FILE`, preprocessing and labels.

- SPEC is `path/to/file.py:Name` or `package.module:Name`; Name is an nn.Module subclass or a
  function returning one, called with no arguments; `path/to/file.py` alone names the one
  nn.Module subclass the file defines. (Importing it runs that file's code: it
  is the user's own model definition, named on the command line.)
- A checkpoint is a state dict: `.safetensors`, or `.pth`/`.pt` read with
  `torch.load(weights_only=True)` (no pickled code runs); `module.` and `_orig_mod.` prefixes
  (DataParallel, torch.compile) are stripped; keys and shapes must match exactly, and a
  mismatch lists what is missing, unexpected or of another shape.
- TorchScript and torch.export files can run code when loaded: refused unless trust=True.
- `hf:PATH_OR_ID`: a Hugging Face image classifier (models/hf.py), its preprocessing read
  from its own image processor.
- Without a model: LeNet-5 with the shipped weights of the dataset (or a LeNet checkpoint),
  in NumPy.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

from ..datasets.transforms import Preprocess
from ..errors import ConvseeError, first_line, no_file
from .checkpoint import file_sha256
from .network import LeNetNetwork, Network, TorchNetwork
from .preprocess import default_preprocess, default_preprocess_trusted
from .provenance import Provenance

__all__ = [
    "load",
    "import_model",
    "sniff",
    "read_state_dict",
    "fit_state_dict",
    "read_labels",
    "load_network",
    "wrap",
]

PREFIXES = ("module.", "_orig_mod.")  # nn.DataParallel / DistributedDataParallel, torch.compile


def _a(word: str) -> str:
    """'an int', 'a list'."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _exited(where: str, e: SystemExit) -> str:
    code = "" if e.code is None else f" with status {e.code}" if isinstance(e.code, int) else ""
    return f"{where} exited{code} while being imported (it calls sys.exit or exit at import time)"


def _defines(module, base) -> str:
    """'; it defines: ...', for a message about a missing name: the nn.Module classes and
    the functions the module itself defines (imported names left out), then its other names."""
    own = getattr(module, "__name__", "")
    groups: dict[str, list[str]] = {"nn.Module classes": [], "functions": [], "other names": []}
    for k, v in sorted(vars(module).items()):
        if k.startswith("_") or isinstance(v, type(module)):
            continue
        if getattr(v, "__module__", own) != own:
            continue
        if isinstance(v, type) and issubclass(v, base):
            groups["nn.Module classes"].append(k)
        elif callable(v) and not isinstance(v, type):
            groups["functions"].append(f"{k}()")
        else:
            groups["other names"].append(k)
    parts = [f"{what} {', '.join(names[:12])}" for what, names in groups.items() if names]
    return f"; it defines: {'; '.join(parts)}" if parts else "; it defines nothing public"


def _only_module_class(module, where: str, base) -> str:
    """The name of the one nn.Module subclass a file defines (imported ones left out), for
    FILE.py without :Name; none or several: an error that lists them."""
    own = getattr(module, "__name__", "")
    names = [
        k
        for k, v in vars(module).items()  # in the order the file defines them
        if not k.startswith("_")
        and isinstance(v, type)
        and issubclass(v, base)
        and getattr(v, "__module__", own) == own
    ]
    if len(names) == 1:
        return names[0]
    if not names:
        raise ConvseeError(
            f"{where} defines no nn.Module class: name the function that builds the model, "
            f"as {{param}} {where}:Name{_defines(module, base)}",
            "model",
        )
    raise ConvseeError(
        f"{where} defines {', '.join(names[:12])}: say which is the model, as {{param}} "
        f"{where}:{names[-1]}",
        "model",
    )


def import_model(spec: str, seed: int | None = None):
    """An nn.Module from 'file.py:Name' or 'package.module:Name' (Name called with no args).

    seed: torch's generator is seeded with it right before Name() builds the model (and before
    the import, for a model the file builds itself), so the initialisation is the seed's
    whatever importing the file drew."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)

    if str(spec).startswith("hf:"):
        raise ConvseeError(
            f"model {str(spec)[:200]}: an hf: model is loaded with its weights and preprocessing "
            "(load_network), not built from a class: it cannot be trained or rebuilt here "
            "(training takes FILE.py:Name or package.module:Name)",
            "model",
        )
    target, sep, name = str(spec).rpartition(":")
    if not sep and str(spec).endswith(".py"):  # FILE.py alone: its one nn.Module class
        target, name = str(spec), None
    elif not sep or not target or not name:
        raise ConvseeError(
            f"model {spec!r}: expected FILE.py:Name or package.module:Name "
            "(Name: an nn.Module class or a function returning one)",
            "model",
        )
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser()
        if not path.is_file():
            raise ConvseeError(f"model file {target}{no_file(path)}", "model")
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
        modname = f"convsee_user_{path.stem}_{digest}"
        where = str(path)
        try:
            module_spec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.path.insert(0, str(path.parent.resolve()))  # its sibling modules import
            try:
                sys.modules[modname] = module
                module_spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(path.parent.resolve()))
        except SystemExit as e:  # sys.exit() or exit() at the top of the file
            sys.modules.pop(modname, None)
            raise ConvseeError(_exited(where, e), "model") from None
        except SyntaxError as e:
            sys.modules.pop(modname, None)
            raise ConvseeError(f"{where} line {e.lineno}: syntax error: {e.msg}", "model") from None
        except Exception as e:  # noqa: BLE001 - the user's file may raise anything
            sys.modules.pop(modname, None)
            raise ConvseeError(
                f"importing {where} failed: {type(e).__name__}: {first_line(e)}", "model"
            ) from None
    else:
        where = target
        try:
            module = importlib.import_module(target)
        except SystemExit as e:
            raise ConvseeError(_exited(target, e), "model") from None
        except SyntaxError as e:
            raise ConvseeError(
                f"{target} line {e.lineno}: syntax error: {e.msg}", "model"
            ) from None
        except ModuleNotFoundError as e:
            if e.name == target.split(".")[0] and Path(target).is_dir():
                raise ConvseeError(
                    f"model {target}:{name}: {target} is a folder, not a Python file "
                    "(expected FILE.py:Name or package.module:Name)",
                    "model",
                ) from None
            raise ConvseeError(
                f"importing {target} failed: {type(e).__name__}: {first_line(e)}", "model"
            ) from None
        except Exception as e:  # noqa: BLE001
            raise ConvseeError(
                f"importing {target} failed: {type(e).__name__}: {first_line(e)}", "model"
            ) from None
    if name is None:
        name = _only_module_class(module, where, torch.nn.Module)
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ConvseeError(
                f"{where} has no {name!r}{_defines(module, torch.nn.Module)}", "model"
            )
        obj = getattr(obj, part)
    if isinstance(obj, torch.nn.Module):
        return obj
    if not callable(obj):
        raise ConvseeError(
            f"{where}:{name} is {_a(type(obj).__name__)}, not an nn.Module class or a function",
            "model",
        )
    if isinstance(obj, type) and not issubclass(obj, torch.nn.Module):
        raise ConvseeError(f"{where}:{name} is a class but not a torch.nn.Module", "model")
    if seed is not None:
        torch.manual_seed(seed)
    try:
        model = obj()
    except Exception as e:  # noqa: BLE001
        raise ConvseeError(
            f"{where}:{name}() raised {type(e).__name__}: {first_line(e)} "
            "(Name is called with no arguments: wrap it in a function that builds the model)",
            "model",
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise ConvseeError(
            f"{where}:{name}() returned {_a(type(model).__name__)}, not an nn.Module", "model"
        )
    return model


def sniff(path: Path) -> str:
    """'safetensors', 'torchscript', 'export', 'torch' (a torch.save zip) or 'pickle'."""
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors":
        return "safetensors"
    if zipfile.is_zipfile(path):
        try:
            names = zipfile.ZipFile(path).namelist()
        except (zipfile.BadZipFile, OSError):
            return "torch"
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("archive_format") or "/models/" in n for n in names):
            return "export"
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{":  # safetensors: 8-byte length, then a JSON header
        return "safetensors"
    return "pickle"


def read_state_dict(path) -> dict:
    """Tensors of a state dict file, with DataParallel / torch.compile prefixes stripped."""
    from .checkpoint import load_state_dict_file

    path = Path(path)
    if not path.is_file():
        raise ConvseeError(f"{{param}} {path}{no_file(path, ' does not exist')}", "checkpoint")
    kind = sniff(path)
    if kind in ("torchscript", "export"):
        what = "TorchScript" if kind == "torchscript" else "torch.export"
        raise ConvseeError(
            f"{path} is a {what} program, not a state dict: loading it can run code it carries, "
            "so convsee refuses it unless you pass {param} (only for files you made or trust)",
            "trust",
        )
    if kind == "safetensors" and path.suffix != ".safetensors":
        path2 = path  # load_state_dict_file picks the loader by suffix
        from safetensors.torch import load

        try:
            sd = load(path2.read_bytes())
        except Exception as e:  # noqa: BLE001
            raise ConvseeError(f"{path}: not a valid safetensors file ({e})") from None
    else:
        sd = load_state_dict_file(path)
    out = {}
    for k, v in sd.items():
        key = k
        changed = True
        while changed:
            changed = False
            for p in PREFIXES:
                if key.startswith(p):
                    key, changed = key[len(p) :], True
        out[key] = v
    return out


def fit_state_dict(model, sd: dict, path) -> None:
    """Load sd into model strictly; a mismatch is one line listing what does not fit."""
    import torch

    want = model.state_dict()
    missing = [k for k in want if k not in sd]
    extra = [k for k in sd if k not in want]
    clash = [
        f"{k} {list(sd[k].shape)} vs {list(want[k].shape)}"
        for k in want
        if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)
    ]

    def few(items):
        return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")

    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({few(missing)})")
    if extra:
        problems.append(f"{len(extra)} unexpected ({few(extra)})")
    if clash:
        problems.append(f"{len(clash)} of another shape (file vs model: {few(clash)})")
    if problems:
        raise ConvseeError(
            f"{path} does not fit {type(model).__name__}: " + "; ".join(problems), "checkpoint"
        )
    for k, v in sd.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ConvseeError(
                f"{path}: {k} holds NaN or infinite values; refusing the weights", "checkpoint"
            )
    with torch.no_grad():
        model.load_state_dict({k: v.to(want[k].dtype) for k, v in sd.items()}, strict=True)


MAX_LABELS_BYTES = 1 << 20  # a labels file above this is not a list of class names


def read_labels(path) -> list[str]:
    """Class names, one a line (blank lines at the end ignored)."""
    p = Path(path)
    if not p.is_file():
        raise ConvseeError(f"{{param}} file {p}{no_file(p)}", "labels")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ConvseeError(
            f"{{param}} file {p}: cannot read it ({e.strerror or e})", "labels"
        ) from None
    if size > MAX_LABELS_BYTES:
        raise ConvseeError(
            f"{{param}} file {p} is {size:,} bytes; class names take at most "
            f"{MAX_LABELS_BYTES:,} (one name a line)",
            "labels",
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConvseeError(
            f"{{param}} file {p}: not readable text ({type(e).__name__})", "labels"
        ) from None
    labels = [line.strip() for line in text.splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        raise ConvseeError(f"{{param}} file {p} is empty", "labels")
    return labels


def _sidecar_meta(path: Path) -> dict:
    """A convsee checkpoint's metadata (inside the file, checked against the .json copy)."""
    from .checkpoint import read_meta

    return read_meta(path)


def _load_trusted(path: Path, kind: str, device: str):
    import torch

    try:
        if kind == "torchscript":
            return torch.jit.load(str(path), map_location=device)
        ep = torch.export.load(str(path))
        return torch.export.unflatten(ep)
    except Exception as e:  # noqa: BLE001
        raise ConvseeError(
            f"{path}: could not load it ({type(e).__name__}: {first_line(e)})", "checkpoint"
        ) from None


def load_network(
    model: str | None = None,
    checkpoint=None,
    *,
    dataset: str = "mnist",
    trust: bool = False,
    output: str | None = None,
    preprocess: dict | None = None,
    labels=None,
    device: str = "cpu",
) -> Network:
    """The Network for a --model SPEC (or LeNet-5) with a --checkpoint (or the shipped one).

    preprocess: fields overriding the checkpoint's (input_size, mean, std, resize, crop_pct,
    interpolation, labels), e.g. from --preprocess FILE.json and the flags.
    labels: class names (a list, or a path to a file with one a line).
    """
    from ..datasets.registry import lookup

    lookup(dataset)  # an unknown name: refused now, with the valid ones
    preprocess = dict(preprocess or {})
    if isinstance(labels, (str, Path)):
        labels = read_labels(labels)
    if labels is None and preprocess.get("labels") is not None:
        labels = preprocess["labels"]
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ConvseeError("preprocessing 'labels' must be a list of strings")
    given = labels  # the caller's class names: their count must be the model's
    path = Path(checkpoint) if checkpoint is not None else None
    kind = sniff(path) if path is not None and path.is_file() else None
    if model is None and kind in ("torchscript", "export"):
        if not trust:
            read_state_dict(path)  # raises the refusal
        import torch  # noqa: F401

        module = _load_trusted(path, kind, device)
        base, note = default_preprocess_trusted(module)
        prov = Provenance(
            model=f"{kind} program {path.name}",
            checkpoint=str(path),
            checkpoint_sha256=file_sha256(path),
        )
        net = _torch_network(
            module, prov, {"trusted": True}, base, note, preprocess, labels, output, device
        )
        return _labels_fit(net, given)
    if model is None:
        return _lenet_network(path, dataset, preprocess, labels, output)
    if str(model).startswith("hf:"):
        from .hf import load_hf

        if path is not None:
            raise ConvseeError(
                f"model {str(model)[:200]}: an hf: model's folder holds its weights; a separate "
                "checkpoint is not used with it",
                "checkpoint",
            )
        net = load_hf(model, output=output, preprocess=preprocess, labels=labels, device=device)
        return _labels_fit(net, given)
    module = import_model(model)
    meta: dict = {}
    file_meta: dict = {}
    prov = Provenance(model=model)
    if path is not None:
        sd = read_state_dict(path)
        fit_state_dict(module, sd, path)
        file_meta = _sidecar_meta(path)
        prov = Provenance.of_checkpoint(path, file_sha256(path), file_meta, model=model)
        for key in ("reference_ranges", "reference_ranges_from"):
            if key in file_meta:
                meta[key] = file_meta[key]
    module = module.to(device).eval()
    if isinstance(file_meta.get("preprocess"), dict):
        base, note = Preprocess().merged(file_meta["preprocess"], f"{path} preprocessing"), ""
    else:
        base, note = default_preprocess(module)
    if labels is None and isinstance(file_meta.get("classes"), list):
        labels = [str(x) for x in file_meta["classes"]]
    net = _torch_network(module, prov, meta, base, note, preprocess, labels, output, device)
    return _labels_fit(net, given)


def _refuse_labels(labels: list, k: int) -> None:
    """Refuse class names whose count is not the model's k classes."""
    if labels and len(labels) != k:
        raise ConvseeError(
            f"{{param}} gives {len(labels)} class names (one a line) for a model with {k} classes",
            "labels",
        )


def _labels_fit(net: Network, labels) -> Network:
    """net, once the caller's class names are checked against its class scores: (K,) per
    image, or (K, H, W) for dense ones (a model whose output is not scores is not checked)."""
    if labels:
        shape = tuple(net.scores_output().shape)
        if len(shape) in (1, 3):
            _refuse_labels(labels, shape[0])
    return net


def _torch_network(module, prov, meta, base, note, preprocess, labels, output, device):
    """The TorchNetwork for module, its provenance prov completed with the preprocessing."""
    explicit = {k: v for k, v in preprocess.items() if k != "labels" and v is not None}
    prep = base.merged(explicit, "preprocessing") if explicit else base
    prov = replace(prov, preprocess=prep.to_dict())
    net = TorchNetwork(module, prep, meta, labels, output, device, provenance=prov)
    if note and not explicit:
        net.notes.append(note)
    return net


def _lenet_network(path, dataset, preprocess, labels, output) -> Network:
    from ..datasets.registry import lookup, trained_on
    from .checkpoint import default_checkpoint, load_weights

    if output not in (None, ""):
        raise ConvseeError("LeNet-5 has one output; {param} is for models with several", "output")
    path = path if path is not None else default_checkpoint(dataset)
    weights, meta = load_weights(path)
    ds = lookup(trained_on(meta, dataset))
    if isinstance(meta.get("preprocess"), dict):
        base = Preprocess().merged(meta["preprocess"], f"{path} preprocessing")
    else:
        base = Preprocess(mean=ds.mean, std=ds.std, resize=ds.resize)
    explicit = {k: v for k, v in preprocess.items() if k != "labels" and v is not None}
    prep = base.merged(explicit, "preprocessing") if explicit else base
    classes = labels or meta.get("classes")
    _refuse_labels(labels, len(weights["fc3.bias"]))
    prov = Provenance.of_checkpoint(
        meta["path"], meta["sha256"], meta, model="LeNet-5 (convsee)", preprocess=prep.to_dict()
    )
    return LeNetNetwork(weights, meta, prep, classes, provenance=prov)


def load(
    model: str | None = None,
    checkpoint=None,
    *,
    dataset: str | None = None,
    input_size=None,
    mean=None,
    std=None,
    resize: str | None = None,
    labels=None,
    output=None,
    trust: bool = False,
    device: str = "cpu",
) -> Network:
    """The Python API's way in: `load()` is LeNet-5 with the shipped weights; `load("net.py:Net",
    "weights.pth", input_size=(3, 224, 224), mean=..., std=...)` any model, as `--model`.

    dataset: picks LeNet-5's shipped checkpoint and where sample:D and test:N come from
    (default: the dataset the checkpoint records, else MNIST), as --dataset does."""
    fields = {"input_size": input_size, "mean": mean, "std": std, "resize": resize}
    fields = {k: v for k, v in fields.items() if v is not None}
    net = load_network(
        model,
        checkpoint,
        dataset=dataset or "mnist",
        trust=trust,
        output=output,
        preprocess=fields,
        labels=labels,
        device=device,
    )
    net.dataset = dataset
    _warn(net)
    return net


def _warn(net: Network) -> None:
    """What looks wrong about the network (net.warnings), as Python warnings."""
    import warnings

    for w in net.warnings:
        warnings.warn(w, stacklevel=3)


def wrap(
    model,
    processor=None,
    *,
    preprocess: Preprocess | dict | None = None,
    classes=None,
    output=None,
    device="cpu",
    dataset: str | None = None,
    **fields,
) -> Network:
    """A Network for a torch model you already hold (the Python API).

    preprocess: a Preprocess or its fields (input_size, mean, std, resize, ...); keyword
    fields work too: wrap(net, input_size=(3, 224, 224), mean=..., std=..., classes=[...]).
    dataset: where sample:D and test:N come from (default MNIST), e.g. "fashion-mnist".
    processor: a transformers image processor (AutoImageProcessor.from_pretrained(...)): the
    preprocessing is read from it; a transformers model's class names come from its
    config.id2label (models/hf.py).
    """
    if not callable(model):
        raise ConvseeError(
            f"wrap() takes a torch model (an nn.Module), not {type(model).__name__}; for "
            "LeNet-5 with the shipped weights use convsee.load()",
            "model",
        )
    from .hf import is_hf_model, wrap_hf

    if processor is not None or is_hf_model(model):
        d = preprocess if isinstance(preprocess, Preprocess) else dict(preprocess or {})
        if isinstance(d, dict):
            d.update({k: v for k, v in fields.items() if v is not None})
        net = wrap_hf(model, processor, preprocess=d, classes=classes, output=output, device=device)
        net.dataset = dataset
        _warn(net)
        return net
    if isinstance(preprocess, Preprocess):
        prep = preprocess
    else:
        d = dict(preprocess or {})
        d.update({k: v for k, v in fields.items() if v is not None})
        base, note = default_preprocess(model)
        prep = base.merged(d, "preprocess") if d else base
    net = TorchNetwork(
        model.to(device).eval() if hasattr(model, "to") else model,
        prep,
        {},
        classes,
        output,
        device,
        provenance=Provenance(model=type(model).__name__, preprocess=prep.to_dict()),
    )
    net.dataset = dataset
    _warn(net)
    return net
