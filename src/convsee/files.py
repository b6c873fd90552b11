"""Files convsee writes and reads, guarded: one writer per output, signals that wait for a
set of renames to finish, and zip archives whose declared sizes are checked first.

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
import os
import signal
import threading
import zipfile
from pathlib import Path

from .errors import ConvseeError

__all__ = ["output_lock", "deferred_signals", "check_zip_sizes", "ZIP_SLACK"]

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
