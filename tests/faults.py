"""Deterministic failures for tests: a disk that fills up, a rename that is interrupted.

Both act at the level every writer goes through (io.open, os.replace), so a test states the
failure, not how the code under test happens to write.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path


def _target(file) -> str:
    """The path a file argument of io.open names (file descriptors resolved via /proc)."""
    if isinstance(file, int):
        try:
            return os.readlink(f"/proc/self/fd/{file}")
        except OSError:
            return ""
    return os.path.abspath(os.fsdecode(file))


class _FullFile:
    """A file whose writes fail with ENOSPC; everything else goes to the real file."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


class DiskFull:
    """From the `after`-th file opened for writing under root on, every write fails (ENOSPC).

    on(): arm; off(): disarm. `opened` counts the files opened for writing under root.
    """

    def __init__(self, monkeypatch, root: Path, after: int = 1, armed: bool = True):
        self.root, self.after, self.armed, self.opened = str(Path(root).resolve()), after, armed, 0
        real = io.open

        def fake_open(file, mode="r", *args, **kwargs):
            f = real(file, mode, *args, **kwargs)
            if not self.armed or not any(c in mode for c in "wax+"):
                return f
            if not _target(file).startswith(self.root):
                return f
            self.opened += 1
            return _FullFile(f) if self.opened >= self.after else f

        monkeypatch.setattr(io, "open", fake_open)

    def on(self):
        self.armed = True

    def off(self):
        self.armed = False


def fail_replace(monkeypatch, when, exc):
    """Make os.replace raise exc (an exception, or a callable run instead of raising) for the
    renames where when(src, dst, count) is true; count: 1-based, over all renames."""
    real = os.replace
    count = [0]

    def fake(src, dst, *args, **kwargs):
        count[0] += 1
        if when(str(src), str(dst), count[0]):
            if callable(exc) and not isinstance(exc, BaseException):
                exc()
            else:
                raise exc
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", fake)
    return count
