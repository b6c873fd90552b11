"""Background jobs for the server, apart from what they compute: one thread runs them one at
a time, the most recently asked for first, and keeps their answers. Asking never waits: a job
not done yet answers {"status": "computing"} and is queued (again at the front when asked
again). The queue and the answers kept are bounded (`QUEUE`, `RESULTS`); a new job beyond the
queue's bound drops the one asked for longest ago. The thread starts on the first job.

views.py's `Views` is the one user: its jobs are the per-channel views of the live page.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["Jobs", "QUEUE", "RESULTS"]

QUEUE = 16  # jobs waiting; a new one beyond this drops the one asked for longest ago
RESULTS = 256  # answers kept (each a few KB)
log = logging.getLogger("convsee.web")


def _release_memory() -> None:
    """Give freed heap memory back to the system (glibc keeps it after a large job)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass  # not glibc


class Jobs:
    """run(key) -> answer (a dict), computed in one background thread, on request.

    run should turn the failures it expects into answers itself; anything else it raises is
    logged and answered {"status": "failed", "why": ...}."""

    def __init__(self, run: Callable[[Hashable], dict], name: str = "jobs"):
        self.run = run
        self.name = name
        self._cond = threading.Condition()
        self._jobs: OrderedDict = OrderedDict()  # key -> None, the last asked for last
        self._running = None
        self._done: OrderedDict = OrderedDict()  # key -> answer
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.computed = 0  # jobs run (for tests)

    def ask(self, keys) -> dict:
        """{key: its answer, or {"status": "computing"}} for each key; the keys not done are
        queued, the last of them to run first. Never waits."""
        out = {}
        with self._cond:
            for key in keys:
                if key in self._done:
                    self._done.move_to_end(key)
                    out[key] = self._done[key]
                    continue
                out[key] = {"status": "computing"}
                if key == self._running:
                    continue
                self._jobs.pop(key, None)
                self._jobs[key] = None  # most recent last
                while len(self._jobs) > QUEUE:
                    self._jobs.popitem(last=False)
            if self._jobs and not self._stopping:
                self._cond.notify()
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                    self._thread.start()
        return out

    def stop(self, timeout: float = 10.0) -> None:
        """Drop the queue and wait (up to timeout) for the running job: a process that exits
        while torch computes in another thread can abort."""
        with self._cond:
            self._stopping = True
            self._jobs.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                key, _ = self._jobs.popitem(last=True)
                self._running = key
            try:
                answer = self.run(key)
            except Exception:  # noqa: BLE001 - any model can fail; the page says so
                log.exception("the %s job %s failed", self.name, key)
                answer = {"status": "failed", "why": "it could not be computed (see the log)"}
            with self._cond:
                self._done[key] = answer
                while len(self._done) > RESULTS:
                    self._done.popitem(last=False)
                self._running = None
                self.computed += 1
            _release_memory()
