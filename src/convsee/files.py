"""Writing files, generically, and reading archives guarded.

- `write_outputs(files, out_dir)`: a set of outputs all or nothing, staged in a hidden
  `.convsee-*.tmp` folder with a plan of its moves (a SIGKILLed run's staging is rolled back
  by the next write); `write_file(path, data)` one file so.
- `out_dir_ok` / `out_file_ok`: an output folder or file can be written, checked before any
  work is done. Errors name the parameter (ConvseeError.param).
- `output_lock(path)`: an exclusive `fcntl.flock` for one output (a folder: on the folder
  itself; a file: on a hidden `.NAME.lock` beside it, removed again at the end). A second
  run on the same output is refused at once, in one line, instead of both writing.
- `deferred_signals()`: SIGTERM and SIGINT only set a flag while a block runs (so a set of
  renames is finished or rolled back, never cut in half); the caller checks `.pending`.
- `check_zip_sizes(path, data)`: a zip (torch.save's format) whose directory declares more
  uncompressed bytes than a checkpoint of that size can hold is refused before anything
  inflates it (a zip bomb).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import tempfile
import threading
import zipfile
from pathlib import Path

from .errors import ConvseeError

__all__ = [
    "write_outputs",
    "write_file",
    "out_dir_ok",
    "out_file_ok",
    "output_lock",
    "deferred_signals",
    "check_zip_sizes",
    "ZIP_SLACK",
    "STAGE_PREFIX",
    "STAGE_SUFFIX",
]

# a torch.save archive stores its tensors uncompressed: what its directory declares is about
# the file's size; allow that twice over, plus this much
ZIP_SLACK = 64 * 1024 * 1024


@contextlib.contextmanager
def output_lock(path, what: str | None = None):
    """Hold an exclusive lock on the output `path` (a folder, or a file to be written) while
    the block runs; ConvseeError, one line, when another process holds it."""
    path = Path(path)
    shown = what or str(path)
    busy = ConvseeError(
        f"another convsee run is writing {shown} right now: wait for it to finish, or choose "
        "another output"
    )
    try:
        import fcntl
    except ImportError:  # not Unix: no lock
        yield
        return
    if path.is_dir():
        fd = os.open(path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise busy from None
            yield
        finally:
            os.close(fd)
        return
    lock = path.parent / f".{path.name}.lock"
    made = []  # folders made for the lock file: removed again at the end when empty
    while True:
        folder = path.parent
        while not folder.exists() and folder.parent != folder:
            made.append(folder)
            folder = folder.parent
        try:
            for d in reversed(made):
                d.mkdir(exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            continue  # a folder was removed meanwhile (another run ending): make it again
        except OSError as e:
            raise ConvseeError(f"cannot write into {path.parent}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise busy from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder before us removed that file: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)  # still locked: a run waiting on it re-checks the inode
        os.close(fd)
        for d in dict.fromkeys(made):  # innermost first
            with contextlib.suppress(OSError):
                d.rmdir()


class _Deferred:
    def __init__(self):
        self.pending: int | None = None  # the signal that came, if one did


@contextlib.contextmanager
def deferred_signals(signals=(signal.SIGTERM, signal.SIGINT)):
    """While the block runs, SIGTERM and SIGINT are only noted (`.pending`); the block decides
    where to stop. Outside the main thread, nothing changes."""
    state = _Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def note(signum, frame):
        state.pending = signum

    old = {}
    try:
        for s in signals:
            old[s] = signal.signal(s, note)
        yield state
    except BaseException:
        state.pending = None  # the block stopped for it: it has been acted on
        raise
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if state.pending is not None:  # it came after the block's last check: act on it now
        signal.raise_signal(state.pending)


def check_zip_sizes(path, data: bytes, slack: int = ZIP_SLACK) -> None:
    """Refuse a zip whose directory (zipfile's infolist, read without inflating anything)
    declares more than 2 x the file's size + `slack` uncompressed bytes. Not a zip, or a
    damaged one: nothing to say here (the loader says it)."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return
    total = sum(max(0, i.file_size) for i in infos)
    limit = 2 * len(data) + slack
    if total > limit:
        raise ConvseeError(
            f"{path}: refused: its zip directory declares {total:,} bytes uncompressed for a "
            f"{len(data):,}-byte file (a zip bomb, or damaged); a checkpoint stores its tensors "
            "uncompressed"
        )


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


STAGE_PREFIX, STAGE_SUFFIX = ".convsee-", ".tmp"  # write_outputs' staging folders
_PLAN = "plan.json"  # in a staging folder: what its moves are, for a rollback after SIGKILL


def write_outputs(files: dict, out_dir) -> list[Path]:
    """Write every rendered file under out_dir, all or nothing.

    The set is written into a hidden staging folder inside out_dir (.convsee-*.tmp) with a
    plan of its moves, then each file is moved into place; a file it replaces is set aside
    until all moves succeeded. On any failure (a full disk, Ctrl-C, SIGTERM: both wait for
    the move under way) the new files and folders go and the replaced ones come back, so
    out_dir holds exactly what it held before. A run killed outright (SIGKILL, power loss)
    leaves its staging folder: the next write into out_dir rolls it back and removes it.
    One writer at a time: a second, while one writes, is refused (output_lock).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConvseeError(f"cannot write into {out_dir}: it is a file, not a folder", "out")
    made: list[Path] = []  # folders this call created, to remove on failure
    placed: list[tuple[Path, Path | None]] = []  # (file now in place, its predecessor aside)
    stage = None
    with deferred_signals() as signals, contextlib.ExitStack() as held:

        def check() -> None:
            if signals.pending is not None:
                raise KeyboardInterrupt  # SIGTERM or SIGINT: stop here, and roll back

        try:
            made += _make_dirs(out_dir)
            held.enter_context(output_lock(out_dir))  # held until the rollback is done too
            _recover_stale(out_dir)
            stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=STAGE_PREFIX, suffix=STAGE_SUFFIX))
            for i, data in enumerate(files.values()):
                check()
                (stage / str(i)).write_bytes(data)
            for rel in files:
                made += _make_dirs((out_dir / rel).parent)
            inside = [str(d.relative_to(out_dir)) for d in made if out_dir in d.parents]
            plan = {"files": list(files), "made": inside}
            (stage / _PLAN).write_text(json.dumps(plan))
            for i, rel in enumerate(files):
                check()
                target = out_dir / rel
                aside = None
                if target.is_symlink() or target.exists():
                    if target.is_dir():
                        raise ConvseeError(f"cannot write {target}: a folder is in its place")
                    aside = stage / f"old{i}"
                    os.replace(target, aside)
                placed.append((target, aside))
                os.replace(stage / str(i), target)
            shutil.rmtree(stage, ignore_errors=True)  # the replaced files, now unneeded
        except BaseException as e:
            _undo(placed, stage, made)
            if isinstance(e, OSError):
                raise ConvseeError(
                    f"cannot write into {out_dir}: {e.strerror or e}; nothing of the new set "
                    "was kept and the files there before are untouched"
                ) from None
            raise
    return [out_dir / rel for rel in files]


def _recover_stale(out_dir: Path) -> None:
    """Roll back and remove the staging folders a killed write_outputs left in out_dir (any
    there now is stale: the caller holds out_dir's lock). Each one's plan says which files
    it had moved: a file set aside comes back, a new file with no predecessor goes."""
    for stage in out_dir.glob(f"{STAGE_PREFIX}*{STAGE_SUFFIX}"):
        if not stage.is_dir() or stage.is_symlink():
            continue
        try:
            plan = json.loads((stage / _PLAN).read_text())
            rels, made = list(plan["files"]), [out_dir / d for d in plan["made"]]
        except (OSError, ValueError, KeyError, TypeError):
            rels, made = [], []  # no whole plan: no move had started
        placed = []
        for i, rel in enumerate(rels):
            target = out_dir / rel
            aside = stage / f"old{i}"
            if aside.exists() or aside.is_symlink():
                placed.append((target, aside))
            elif not (stage / str(i)).exists() and target.exists():
                placed.append((target, None))  # moved in, and had no predecessor
        _undo(placed, stage, [d for d in made if out_dir in d.parents])


def _make_dirs(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (outermost first)."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        raise ConvseeError(f"cannot write into {folder}: it is a file, not a folder", "out")
    made = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise ConvseeError(
                    f"cannot write into {d}: it is a file, not a folder", "out"
                ) from None
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
