"""Writing files, generically: a set of outputs all or nothing (write_outputs), one file
(write_file), and the checks that an output folder or file can be written (out_dir_ok,
out_file_ok) before any work is done. Errors name the parameter (ConvseeError.param)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .errors import ConvseeError

__all__ = ["write_outputs", "write_file", "out_dir_ok", "out_file_ok"]


def out_dir_ok(path, param: str = "out") -> Path:
    """path must name a folder (it may not exist yet), not an existing file, below a folder
    this user can write into. Creates nothing."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConvseeError(f"{{param}} {p} is a file; give a folder", param)
    _writable_parent(p, param, p)
    return p


def out_file_ok(path, param: str = "out", suffix: str | None = None) -> Path:
    """path names a file to write (suffix: the ending it must have): not a folder, below a
    folder this user can write into. Creates nothing; write it with write_file."""
    p = Path(path)
    if p.is_dir():
        raise ConvseeError(f"{{param}} {p} is a folder; give a file name", param)
    if suffix is not None and p.suffix.lower() != suffix:
        raise ConvseeError(f"{{param}} must end in {suffix}, got {str(path)[:80]}", param)
    _writable_parent(p.parent, param, p)
    return p


def _writable_parent(p: Path, param: str, shown: Path) -> None:
    """The nearest existing folder at or above p must be a folder this user can write into."""
    parent = p if p.exists() else next((q for q in p.parents if q.exists()), Path("."))
    if not parent.is_dir():
        raise ConvseeError(f"{{param}} {shown}: {parent} is a file, not a folder", param)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConvseeError(f"{{param}} {shown}: {parent} is not writable", param)


def write_file(path, data: bytes) -> None:
    """Write one output file all or nothing: the folders it needs are made only for it, and
    removed again if writing fails."""
    p = Path(path)
    write_outputs({p.name: data}, p.parent)


def write_outputs(files: dict, out_dir) -> list[Path]:
    """Write every rendered file under out_dir, all or nothing.

    The set is written into a temporary folder inside out_dir, then each file is moved into
    place; a file it replaces is set aside until all moves succeeded. On any failure (a full
    disk, Ctrl-C) the new files and folders go and the replaced ones come back, so out_dir
    holds exactly what it held before.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConvseeError(f"cannot write into {out_dir}: it is a file, not a folder")
    made: list[Path] = []  # folders this call created, to remove on failure
    placed: list[tuple[Path, Path | None]] = []  # (file now in place, its predecessor aside)
    stage = None
    try:
        made += _make_dirs(out_dir)
        stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=".convsee-", suffix=".tmp"))
        for i, data in enumerate(files.values()):
            (stage / str(i)).write_bytes(data)
        for i, rel in enumerate(files):
            target = out_dir / rel
            made += _make_dirs(target.parent)
            aside = None
            if target.is_symlink() or target.exists():
                if target.is_dir():
                    raise ConvseeError(f"cannot write {target}: a folder is in its place")
                aside = stage / f"old{i}"
                os.replace(target, aside)
            placed.append((target, aside))
            os.replace(stage / str(i), target)
    except BaseException as e:
        _undo(placed, stage, made)
        if isinstance(e, OSError):
            raise ConvseeError(
                f"cannot write into {out_dir}: {e.strerror or e}; nothing of the new set was "
                "kept and the files there before are untouched"
            ) from None
        raise
    shutil.rmtree(stage, ignore_errors=True)  # the replaced files, now unneeded
    return [out_dir / rel for rel in files]


def _make_dirs(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (outermost first)."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        raise ConvseeError(f"cannot write into {folder}: it is a file, not a folder")
    made = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise ConvseeError(f"cannot write into {d}: it is a file, not a folder") from None
            continue
        made.append(d)
    return made


def _undo(placed, stage, made) -> None:
    """Put back what write_outputs replaced, remove what it added (files, then folders)."""
    for target, aside in reversed(placed):
        try:
            if aside is not None:
                os.replace(aside, target)  # over the new file, if it got there
            else:
                target.unlink(missing_ok=True)
        except OSError:
            pass
    if stage is not None:
        shutil.rmtree(stage, ignore_errors=True)
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            pass
