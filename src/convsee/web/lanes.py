"""Who computes next: the worker lanes' queue, ordered by how each client has behaved.

A lane lets `tokens` requests compute at once (anyio's CapacityLimiter, per event loop, so
that other routes may share its tokens); the requests waiting for a token go in turn by
priority, then by arrival, not first come first served:

- 0: a client whose recent requests on its connection were answered and light;
- 1: a client whose recent requests were refused (4xx) or heavy (large images, JPEGs of
  many scans): `Standing.record` keeps a decaying score per connection;
- 2: a client that has not read its earlier answers (they sit in our buffers or the
  kernel's: `connections.not_reading`), pipelining requests it never reads.

So attackers that send requests to be refused, or never read, wait behind the page's own
updates however many they queue, and a client that behaves again is back in class 0 after
a few answers. A request of class 1 or 2 besides waits 0.1 s before it is read at all
(`hold_back`), which bounds how much of the CPU one connection's refusals can take. Work of
class 1 and 2, and of the heavy lane, runs in threads of a lower OS priority (nice 10 on
Linux; PIL's decoders and torch release the interpreter lock), so that the CPU they take
goes first to the page's requests. Connections are what is told apart:
every client here comes from loopback, and a browser keeps its connection open.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import math
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import anyio

from .connections import not_reading

__all__ = ["Lane", "Standing", "priority", "hold_back", "run_low", "LOW_NICE", "SUSPECT_WAIT"]

LOW_NICE = 10  # the niceness of the threads that run suspect and heavy work
DECAY = 0.5  # a connection's score is halved at each request, plus 1 for a bad or heavy one
SUSPECT_WAIT = 0.1  # s a request of class 1 or 2 waits before its body is even read
POLL = 0.05  # s between looks for a free token by the request next in turn
SUSPECT = 0.2  # from this score on, class 1 (a 4xx: class 1 for the next 2 light requests)


class Standing:
    """A connection's recent conduct: an exponentially decaying count of refused or heavy
    requests, kept on the connection object (the runner's protocol)."""

    ATTR = "_convsee_score"

    @classmethod
    def record(cls, conn, bad: bool) -> None:
        if conn is None:
            return
        score = getattr(conn, cls.ATTR, 0.0) * DECAY + (1.0 if bad else 0.0)
        with contextlib.suppress(AttributeError):
            setattr(conn, cls.ATTR, score)

    @classmethod
    def score(cls, conn) -> float:
        return getattr(conn, cls.ATTR, 0.0) if conn is not None else 0.0


def priority(conn) -> int:
    """The class (0 first) of a request that came on connection conn (None: not served by
    the runner's protocol, say a test client: 0)."""
    if conn is None:
        return 0
    if not_reading(conn):
        return 2
    return 1 if Standing.score(conn) >= SUSPECT else 0


async def hold_back(conn) -> None:
    """Wait SUSPECT_WAIT first when conn's class is 1 or 2: an attacker that sends its next
    request when the last is answered (refused thin images or bombs, one after another) then
    sends at most 10 a second per connection, and its refusals stop taking the cores the
    page's updates need; a client whose one upload was refused waits 0.1 s on the next two."""
    if priority(conn):
        await anyio.sleep(SUSPECT_WAIT)


class _Queue:
    def __init__(self, tokens: int):
        self.limiter = anyio.CapacityLimiter(tokens)
        self.waiting: list = []  # heap of [priority, order, event]
        self.order = itertools.count()

    def wake_head(self) -> None:
        if self.waiting:
            self.waiting[0][2].set()


class Lane:
    """`tokens` requests at once; the waiting ones in turn by priority (see above)."""

    def __init__(self, tokens: int):
        self.tokens = tokens
        self._queues: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _queue(self) -> _Queue:
        loop = asyncio.get_running_loop()
        if loop not in self._queues:
            self._queues[loop] = _Queue(self.tokens)
        return self._queues[loop]

    def get(self) -> anyio.CapacityLimiter:
        """The limiter itself, for routes that queue first come first served."""
        return self._queue().limiter

    def waiting(self) -> int:
        return len(self._queue().waiting)

    @contextlib.asynccontextmanager
    async def turn(self, prio: int = 0):
        """Hold one of the lane's tokens, once every request of a lower class, or of the same
        class queued earlier, has had its turn."""
        q = self._queue()
        entry = [prio, next(q.order), anyio.Event()]
        heapq.heappush(q.waiting, entry)
        try:
            while True:
                head = q.waiting[0] is entry
                if head:
                    try:
                        q.limiter.acquire_nowait()
                        break
                    except anyio.WouldBlock:
                        pass
                # woken when it becomes the head or a token is released here; the head looks
                # again every 50 ms besides (other routes release tokens of the same limiter)
                with anyio.move_on_after(POLL if head else math.inf):
                    await entry[2].wait()
                entry[2] = anyio.Event()
        finally:
            q.waiting.remove(entry)
            heapq.heapify(q.waiting)
            q.wake_head()  # the next one in turn
        try:
            yield
        finally:
            q.limiter.release()
            q.wake_head()


_low: ThreadPoolExecutor | None = None
_low_lock = threading.Lock()


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOW_NICE)


async def run_low(fn, *args):
    """fn(*args) in a thread of lower OS priority (a pool of its own; the caller holds a
    lane's token, which bounds how many run at once)."""
    global _low
    with _low_lock:
        if _low is None:
            _low = ThreadPoolExecutor(4, "convsee-low", initializer=_lower_priority)
    ctx = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_low, ctx.run, fn, *args)
