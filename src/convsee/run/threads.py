"""How many threads torch may use: as many cores as the rest of the machine leaves idle.

torch's default is one OpenMP thread per core, and each of the thousands of small parallel
regions in a LeNet-5 training step ends in a barrier. Alone on the machine that is fastest.
When other work wants the same cores, a thread that is descheduled holds up its partner at
every barrier (and libgomp's waiting threads spin, stealing the CPU the others need), so the
run collapses instead of slowing down fairly: two `convsee train` at once took 3.5-14x the
time of one alone, one thread each 1.0x (benchmarks/bench_train.py).

The policy: measure how busy the *other* processes keep the cores (from /proc/stat minus
this process's own CPU time) and use the cores they leave, at least one:

- start(): at start-up of every command; costs nothing until torch is imported (commands
  that run NumPy only never pay). When torch is imported, the CPU time the others used
  since start-up (the import alone takes ~1.5 s) decides the first count;
- adapt(): long loops call it often; every 0.5 s it measures again and calls
  torch.set_num_threads when the answer changed, so a run drops to one thread when a second
  one starts and goes back to all cores when it ends.

Training is the exception: its weights depend on the count (some kernels split their sums
between the threads), so it computes `with pinned(n):`, a fixed count (TrainConfig.threads,
1 by default) whatever the load and the environment.

An OMP_NUM_THREADS or CONVSEE_THREADS set by the user wins and turns the policy off.
Where /proc/stat does not exist (not Linux), torch's default stays. CONVSEE_THREADS_DEBUG=1
prints the measurements and counts at exit.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field

__all__ = ["ThreadPolicy", "start", "adapt", "policy", "threads_for", "pinned"]

MARGIN = 0.15  # cores of hysteresis: with 2 cores, drop to 1 at 0.65 busy, back at 0.35
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # /proc/stat unit, per s


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (steal counts: not ours to use)."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    v = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(v) - v[3] - v[4]) / _TICK


def _sample() -> tuple[float, float, float] | None:
    busy = _busy_seconds()
    if busy is None:
        return None
    return time.perf_counter(), busy, time.process_time()


def threads_for(others: float, cores: int, current: int) -> int:
    """Threads to use when other processes keep `others` cores busy: the free cores, rounded,
    at least one. The count moves only when the free cores are past the midpoint by MARGIN,
    so a measurement near a boundary does not make it flap."""
    free = cores - others
    want = max(1, min(cores, round(free)))
    if want > current and free < current + 0.5 + MARGIN:
        return current
    if want < current and free > current - 0.5 - MARGIN:
        return current
    return want


@dataclass
class ThreadPolicy:
    cores: int = field(default_factory=_cores)
    interval: float = 0.5  # seconds between measurements during adapt()
    threads: int = 0  # count in force; 0: not decided yet
    history: list = field(default_factory=list)  # (seconds since start, others, threads)
    _last: tuple | None = None
    _t0: float = field(default_factory=time.perf_counter)

    def measure(self) -> float | None:
        """Cores kept busy by other processes since the last measurement (None: unknown)."""
        now = _sample()
        if now is None or self._last is None:
            self._last = now
            return None
        (t0, b0, p0), (t1, b1, p1) = self._last, now
        self._last = now
        dt = t1 - t0
        if dt <= 0:
            return None
        return max(0.0, ((b1 - b0) - (p1 - p0)) / dt)

    def decide(self, others: float | None) -> int:
        if others is None:
            return self.threads or self.cores
        n = threads_for(others, self.cores, self.threads or self.cores)
        self.history.append((round(time.perf_counter() - self._t0, 2), round(others, 2), n))
        return n


_policy: ThreadPolicy | None = None


def policy() -> ThreadPolicy | None:
    """The policy in force (None: off, torch decides)."""
    return _policy


def start() -> ThreadPolicy | None:
    """Turn the policy on for this process (the CLI calls it first thing).

    torch not imported yet: a baseline measurement now, and the first count is set right
    after torch's import finishes, from the load seen in between. torch already imported
    (tests, notebooks): the count stays until adapt() has measured. Returns the policy, or
    None when it stays off (the user set OMP_NUM_THREADS or CONVSEE_THREADS, no /proc/stat).
    """
    global _policy
    _uninstall()
    _policy = None
    user = os.environ.get("CONVSEE_THREADS")
    if os.environ.get("OMP_NUM_THREADS") or user:
        if user and user.isdigit() and int(user) > 0:
            os.environ["OMP_NUM_THREADS"] = user  # read by OpenMP when torch loads
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(int(user))
        return None
    p = ThreadPolicy()
    p.measure()
    if p._last is None:
        return None  # no /proc/stat: torch's default stays
    _policy = p
    if "torch" in sys.modules:
        p.threads = sys.modules["torch"].get_num_threads()
    else:
        _install(_AfterImport("torch", _first_count))
    return p


def _first_count(torch) -> None:
    p = _policy
    if p is None or p.threads:
        return
    p.threads = p.decide(p.measure())
    torch.set_num_threads(p.threads)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls callback(module) once the top-level module `name` has been imported."""

    def __init__(self, name: str, callback):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        _uninstall()  # once; and the lookup below must not come back here
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run, callback = spec.loader.exec_module, self.callback

        def exec_module(module):
            run(module)
            callback(module)

        spec.loader.exec_module = exec_module
        return spec


def _install(finder) -> None:
    sys.meta_path.insert(0, finder)


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterImport)]


_pins = 0  # pinned() regions open: adapt() changes nothing inside them


def adapt() -> int | None:
    """Measure again if the interval has passed and apply a changed count (cheap to call often)."""
    p = _policy
    if _pins or p is None or p._last is None or time.perf_counter() - p._last[0] < p.interval:
        return None
    if not p.threads:  # torch was imported some other way than through the hook
        import torch

        p.threads = torch.get_num_threads()
    n = p.decide(p.measure())
    if n != p.threads:
        import torch

        torch.set_num_threads(n)
        p.threads = n
    return n


class pinned:
    """`with pinned(n):` torch computes with exactly n threads whatever the load or the
    environment (adapt() is off meanwhile); the count before is restored afterwards.

    For work whose numbers must not depend on the count: several of torch's kernels (the
    weight gradients of convolutions and of some matrix products) split their sums between
    the threads, so 1 and 2 threads give weights that differ in the last bits, and training
    amplifies that."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        global _pins
        import torch

        self.before = torch.get_num_threads()
        _pins += 1
        torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        global _pins
        import torch

        _pins -= 1
        torch.set_num_threads(self.before)


if os.environ.get("CONVSEE_THREADS_DEBUG"):
    import atexit

    atexit.register(lambda: _policy and print("threads", _policy.history, file=sys.stderr))
