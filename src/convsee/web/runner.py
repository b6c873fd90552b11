"""Running the app on uvicorn with limits uvicorn does not set by itself.

uvicorn (h11) times out only idle keep-alive connections (`timeout_keep_alive`, after a
response). A client that opens a connection and sends nothing, or a few bytes of a request
head now and then, or a body at a trickle, holds its connection forever; a few hundred
such clients exhaust the file descriptors, and then asyncio's accept loop logs an error
with a traceback for every attempt, thousands a second. Here:

- every phase of a request has a deadline (`ServerLimits`): the head, from the moment the
  connection opens or the previous response ends; the body, from the end of the head; the
  response, from the end of the request. A connection past its deadline is dropped.
- open connections are capped (and the cap is kept below the process's file-descriptor
  limit); when full, one is dropped for the new one: the one that has waited longest for a
  request head, else the one longest sending its body, else one whose answer sits unread
  (a client that pipelines and never reads), so idle, slow or non-reading clients cannot
  lock out working ones;
- the accept backlog is small, repeated log messages are rate-limited, and the listening
  socket is bound here with SO_REUSEADDR (a restart right after clients were served finds
  the port free), for IPv4 or IPv6, with one clear error line when it cannot be.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import logging
import os
import socket
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import ConvseeError
from .connections import drop_connection, not_reading, reset, unacked_bytes

__all__ = [
    "ServerLimits",
    "serve",
    "listen",
    "make_server",
    "run_server",
    "run_app",
    "protocol_class",
    "connection_cap",
    "not_reading",
    "drop_connection",
]

log = logging.getLogger("convsee.web")


@dataclass(frozen=True)
class ServerLimits:
    head_timeout: float = 10.0  # s to send a request head (idle keep-alive closes at 5 s)
    body_timeout: float = 30.0  # s to send a body after its head (256 KB at ~70 kbit/s)
    response_timeout: float = 60.0  # s from a complete request to the end of its response
    keep_alive: int = 5  # s an idle keep-alive connection stays open (uvicorn's own)
    max_connections: int = 128  # open at once (also kept below the fd limit)
    backlog: int = 64  # pending connections the kernel queues; also asyncio's accept burst
    shutdown_timeout: int = 5  # s given to running requests on Ctrl-C
    # bytes of answers a client may leave unread before its next pipelined request is read
    unread_bytes: int = 256 * 1024


def connection_cap(limits: ServerLimits) -> int:
    """max_connections, lowered so that connections, the accept burst and the files the
    server itself opens (about 16) stay under the soft RLIMIT_NOFILE."""
    try:
        import resource
    except ImportError:  # not Unix: no such limit to keep under
        return limits.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = 32
    return max(4, min(limits.max_connections, soft - used - limits.backlog - 16))


class _Connections:
    """The open connections of one server, oldest first; drops one when over the cap."""

    def __init__(self, cap: int):
        self.cap = cap
        self.open: OrderedDict = OrderedDict()
        self.dropped = 0
        self._said = 0.0

    @staticmethod
    def _rank(proto) -> int | None:
        """How readily a connection is dropped for a new one (lowest first; None: never):
        waiting for a request head (idle or trickling), then still sending a body, then
        answered but not reading its answer (the write buffer is full: a client that
        pipelines requests and never reads). A request being computed for a client that
        reads is never dropped."""
        phase = proto._phase
        if phase == "head":
            return 0
        if phase == "body":
            return 1
        if phase == "response" and not_reading(proto):  # unread answers, ours or the kernel's
            return 2
        return None

    def admit(self, proto) -> bool:
        if len(self.open) >= self.cap:
            ranked = []  # (rank, since when in its phase, order, connection)
            for i, p in enumerate(self.open):
                rank = self._rank(p)
                if rank is not None:
                    ranked.append((rank, p._since, i, p))
            victim = min(ranked, default=(0, 0, 0, None))[3]
            self.dropped += 1
            now = time.monotonic()
            if now - self._said > 10:
                self._said = now
                log.warning(
                    "%d connections open (the cap): dropping an idle, slow or non-reading one",
                    self.cap,
                )
            if victim is None:
                return False  # every connection is busy with a request: refuse this one
            self.open.pop(victim, None)
            reset(victim.transport)
        self.open[proto] = None
        return True

    def discard(self, proto) -> None:
        self.open.pop(proto, None)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on every phase of a request and a cap on open
    connections. Subclassed per server by `protocol_class`, which sets the class fields."""

    limits = ServerLimits()
    connections_: _Connections = _Connections(ServerLimits.max_connections)

    def connection_made(self, transport) -> None:
        self._phase: str | None = None
        self._key: tuple | None = None
        self._since = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._cycle = 0
        self._retry: float | None = None  # waiting for the client to read (seconds to next look)
        self._retry_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if not self.connections_.admit(self):
            reset(transport)
            return
        self._watch()

    def data_received(self, data: bytes) -> None:
        if self._retry is not None:  # waiting for it to read: buffered, handled then
            self.conn.receive_data(data)
            if len(self.conn.trailing_data[0]) > self.limits.unread_bytes:
                self.flow.pause_reading()  # a pipeliner's further requests stay in the kernel
            self._recheck()
            return
        super().data_received(data)
        self._tag()
        self._watch()

    def on_response_complete(self) -> None:
        self._cycle += 1
        if self._unread() > self.limits.unread_bytes:
            self._defer(0.01)  # the next request waits until this answer is read
            return
        self._next_cycle()

    def _next_cycle(self) -> None:
        self._retry = None
        super().on_response_complete()
        self._tag()
        self._watch()

    def _unread(self) -> int:
        """Bytes of our answers the client has not taken (our buffer and the kernel's)."""
        t = self.transport
        return t.get_write_buffer_size() + unacked_bytes(t)

    def _defer(self, wait: float) -> None:
        """A client that pipelines requests and does not read its answers gets its next one
        read only once it has taken this one: checked at each byte it sends and at growing
        intervals (10 ms to 0.5 s), until the response deadline drops it."""
        self._phase, self._retry = "response", wait
        self._retry_timer = self.loop.call_later(wait, self._recheck)

    def _recheck(self) -> None:
        if self._retry is None or self.transport.is_closing():
            return
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        if self._unread() > self.limits.unread_bytes:
            self._defer(min(0.5, self._retry * 2))
        else:
            self._next_cycle()

    def _tag(self) -> None:
        """Name this connection in the scope of the request it just started (the app may
        then ask whether its client still reads: `not_reading`)."""
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope.setdefault("extensions", {}).setdefault("convsee.connection", self)

    def connection_lost(self, exc) -> None:
        self._cancel()
        self._retry = None
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        self._phase = None
        self.connections_.discard(self)
        super().connection_lost(exc)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _watch(self) -> None:
        """Start the deadline of the phase the connection is in, when it enters it."""
        state = self.conn.their_state
        if state is h11.IDLE:
            phase, timeout = "head", self.limits.head_timeout
        elif state is h11.SEND_BODY:
            phase, timeout = "body", self.limits.body_timeout
        elif state in (h11.DONE, h11.MUST_CLOSE):
            phase, timeout = "response", self.limits.response_timeout
        else:
            phase, timeout = None, None
        key = (self._cycle, phase)
        if key == self._key:
            return  # same phase: its deadline stands, however many bytes trickle in
        self._key, self._phase, self._since = key, phase, time.monotonic()
        self._cancel()
        if timeout is not None and not self.transport.is_closing():
            self._timer = self.loop.call_later(timeout, self._expire, key)

    def _expire(self, key) -> None:
        self._timer = None
        if key == self._key:
            reset(self.transport)


def protocol_class(limits: ServerLimits, cap: int | None = None) -> type[GuardedH11Protocol]:
    """A GuardedH11Protocol subclass for one server: its limits and its connection set."""
    fields = {"limits": limits, "connections_": _Connections(cap or limits.max_connections)}
    return type("ConvseeH11Protocol", (GuardedH11Protocol,), fields)


class _RateLimit(logging.Filter):
    """Lets each distinct message through at most once per `period` seconds."""

    def __init__(self, period: float = 10.0):
        super().__init__()
        self.period = period
        self.last: dict = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = time.monotonic()
        if now - self.last.get(key, -1e9) < self.period:
            return False
        if len(self.last) > 256:
            self.last.clear()
        self.last[key] = now
        return True


def _loop_exceptions(period: float = 10.0):
    """An asyncio exception handler: out-of-descriptor accept errors as one short line
    every `period` seconds (asyncio logs a traceback per attempt), the rest as usual."""
    last = [-1e9]

    def handler(loop, context) -> None:
        if "out of system resource" in str(context.get("message", "")):
            now = time.monotonic()
            if now - last[0] >= period:
                last[0] = now
                log.warning(
                    "out of file descriptors: new connections wait (%s)",
                    context.get("exception", ""),
                )
            return
        loop.default_exception_handler(context)

    return handler


def listen(host: str, port: int, backlog: int = ServerLimits.backlog) -> socket.socket:
    """A listening TCP socket on host:port (IPv4 or IPv6, as host names), SO_REUSEADDR set.
    ConvseeError, in one line, when the port is out of range or the address unusable."""
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConvseeError("the port must be a number from 0 to 65535 (0: any free port)")
    shown = host if len(host) <= 64 else host[:61] + "..."
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError, ValueError):
        raise ConvseeError(f"cannot listen on {shown!r}: no such host name or address") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name == "posix":  # on Windows it would let another program take the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as asyncio does
        sock.bind(address)
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise ConvseeError(f"cannot listen on {shown}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(False)
    return sock


def is_loopback(sock: socket.socket) -> bool:
    addr = ipaddress.ip_address(sock.getsockname()[0].split("%", 1)[0])
    return addr.is_loopback


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def make_server(app, limits: ServerLimits | None = None):
    """A uvicorn.Server for app with the limits above (not started)."""
    import uvicorn

    limits = limits or ServerLimits()
    config = uvicorn.Config(
        app,
        http=protocol_class(limits, connection_cap(limits)),
        log_level="warning",
        timeout_keep_alive=limits.keep_alive,
        timeout_graceful_shutdown=limits.shutdown_timeout,
        backlog=limits.backlog,
        server_header=False,
    )
    for name in ("uvicorn.error", "asyncio", "convsee.web"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RateLimit) for f in logger.filters):
            logger.addFilter(_RateLimit())
    return uvicorn.Server(config)


def run_server(server, sock: socket.socket) -> None:
    """Run a make_server() server on a listening socket until it stops (Ctrl-C, SIGTERM, or
    server.should_exit from another thread)."""

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(_loop_exceptions())
        await server.serve(sockets=[sock])

    asyncio.run(main())


def run_app(app, sock: socket.socket, limits: ServerLimits | None = None) -> None:
    """Serve app on the listening socket until Ctrl-C (or SIGTERM)."""
    run_server(make_server(app, limits), sock)


def _return_freed_memory() -> None:
    """glibc: serve blocks of 1 MB and up from mmap, so freeing them returns them to the
    system. By default the threshold grows to the largest block freed (up to 32 MB), after
    which the arrays of every large image stay in the heap for good (RSS only grows)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: 1 MB blocks and up from mmap
            libc.mallopt(-1, 16 << 20)  # M_TRIM_THRESHOLD: else the heap top is trimmed at
            # 128 KB, and grown again, at every request (0.4 ms of page faults each)
        except (OSError, AttributeError):
            pass  # not glibc


def _torch_threads(workers: int) -> None:
    """torch's threads per request: the cores shared among the requests computed at once (a
    2-core machine: one each; two threads each made a ResNet-18 update 3-4x slower under
    load). This replaces run/threads.py's policy for the server, whose requests run side by
    side; an OMP_NUM_THREADS or CONVSEE_THREADS set by the user wins, as there."""
    from ..run import threads

    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("CONVSEE_THREADS"):
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, threads._cores() // max(1, workers)))
    threads.start()  # sees OMP_NUM_THREADS: the policy is off, and so is its import hook
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


SWITCH_INTERVAL = 0.0005  # s: how long a thread may hold the interpreter lock when another asks


def _short_switches() -> None:
    """A torch forward pass gives the interpreter lock back at every operator, and takes it
    again to run the next: with threads busy answering attackers (refusing thin images,
    scan bombs), each take waits up to the switch interval, 5 ms by default, and a ResNet-18
    update's 200-odd takes added over a second. 0.5 ms makes that wait 10x shorter."""
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))


def serve(
    network=None,
    data_dir=None,
    dataset: str = "mnist",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: ServerLimits | None = None,
) -> int:
    """`convsee serve`: listen first (a busy port fails at once), load the model, serve.

    network: a Network, a function returning one (called after the port is bound), a LeNet-5
    checkpoint path, or None (LeNet-5 with the shipped weights of `dataset`).
    On a loopback address only requests naming loopback in their Host header are answered;
    on any other address the page is open to the network, which is said on stderr.
    """
    from PIL import PngImagePlugin

    from .server import WORKERS, create_app

    sock = listen(host, port)
    try:
        _return_freed_memory()
        _torch_threads(WORKERS)
        _short_switches()
        local = is_loopback(sock)
        # this process only ever reads images for the page: no PNG text chunks worth 64 MB
        PngImagePlugin.MAX_TEXT_MEMORY = PngImagePlugin.MAX_TEXT_CHUNK
        net = network() if callable(network) else network
        app = create_app(net, data_dir, dataset, any_host=not local)
        print(f"convsee: serving on {url_of(sock)}  (Ctrl-C to stop)", flush=True)
        if not local:
            print(
                f"convsee: warning: listening on {url_of(sock)}, not on loopback: the page and "
                "its API are open to anyone who can reach this machine on the network, with "
                "no authentication, and answer any Host name",
                file=sys.stderr,
                flush=True,
            )
        run_app(app, sock, limits)
    finally:
        sock.close()
    return 0
