"""What a long command shows and hears while it runs: a progress bar on stderr, and SIGINT or
SIGTERM turned into a request to stop at the next step (the command then keeps what is done)."""

from __future__ import annotations

import contextlib
import sys

__all__ = ["Bar", "stop_on_signals"]


class Bar:
    """A tqdm bar on stderr per layer (unit-steps of its first round), or nothing when quiet or
    stderr is not a terminal."""

    def __init__(self, quiet: bool):
        self.on = not quiet and sys.stderr.isatty()
        self.bar = None
        self.layer = None

    def update(self, layer, done: int, total: int) -> None:
        if not self.on:
            return
        if self.bar is None or self.layer != layer.name:
            self.close()
            from tqdm import tqdm

            self.layer = layer.name
            self.bar = tqdm(total=total, desc=layer.name, unit="step", file=sys.stderr, leave=False)
        if done > self.bar.total:
            self.bar.total = done
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def stop_on_signals(stop):
    """SIGINT and SIGTERM ask the work to stop at the next step (stop.requested says why; it
    then writes what it has); a second one interrupts at once. Handlers restored on exit."""
    import signal
    import threading

    old = {}

    def handle(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = "interrupted by " + signal.Signals(signum).name

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is not signal.SIG_IGN:
                old[sig] = signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
