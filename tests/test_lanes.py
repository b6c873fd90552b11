"""The worker lanes' queue (web/lanes.py): requests in turn by class, then arrival; a
connection's class from its conduct; suspect work in threads of lower OS priority; and the
kernel's count of answers a client has not taken (web/connections.py)."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

import anyio
import pytest

from convsee.web import lanes
from convsee.web.connections import not_reading, unacked_bytes


def test_waiting_requests_go_by_class_then_arrival():
    classes = [2, 1, 0, 1, 0, 2, 0]
    ran: list[int] = []

    async def main():
        lane = lanes.Lane(1)
        release = anyio.Event()

        async def first():
            async with lane.turn(2):
                await release.wait()

        async def job(i):
            async with lane.turn(classes[i]):
                ran.append(i)
                await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await anyio.sleep(0.01)
            for i in range(len(classes)):
                tg.start_soon(job, i)
                await anyio.sleep(0.01)  # queued in this order
            assert lane.waiting() == len(classes)
            release.set()

    anyio.run(main)
    assert ran == sorted(range(len(classes)), key=lambda i: (classes[i], i))


def test_a_cancelled_waiter_leaves_the_queue():
    ran: list[str] = []

    async def main():
        lane = lanes.Lane(1)
        release = anyio.Event()

        async def holder():
            async with lane.turn(0):
                await release.wait()

        async def job(name, prio):
            async with lane.turn(prio):
                ran.append(name)

        async with anyio.create_task_group() as tg:
            tg.start_soon(holder)
            await anyio.sleep(0.01)
            with anyio.CancelScope() as scope:
                tg.start_soon(job, "low", 1)
                await anyio.sleep(0.01)
            async with anyio.create_task_group() as inner:
                inner.start_soon(job, "gone", 0)
                await anyio.sleep(0.01)
                inner.cancel_scope.cancel()  # the best-placed waiter goes away
            assert scope is not None and lane.waiting() == 1
            release.set()

    anyio.run(main)
    assert ran == ["low"]


class _Transport:
    def __init__(self, buffered=0, closing=False):
        self.buffered, self.closing = buffered, closing

    def is_closing(self):
        return self.closing

    def get_write_buffer_size(self):
        return self.buffered

    def get_extra_info(self, name):
        return None


class _Conn:
    def __init__(self, **kw):
        self.transport = _Transport(**kw)
        self.flow = None


def test_a_connections_class_follows_its_conduct():
    assert lanes.priority(None) == 0
    conn = _Conn()
    assert lanes.priority(conn) == 0
    lanes.Standing.record(conn, bad=True)  # score 1
    assert lanes.priority(conn) == 1
    lanes.Standing.record(conn, bad=False)  # 0.5
    lanes.Standing.record(conn, bad=False)  # 0.25
    assert lanes.priority(conn) == 1
    lanes.Standing.record(conn, bad=False)  # 0.125 < SUSPECT (0.2)
    assert lanes.Standing.score(conn) == pytest.approx(0.125)
    assert lanes.priority(conn) == 0
    assert lanes.priority(_Conn(buffered=10)) == 2  # answers unread in our buffer
    assert lanes.priority(_Conn(closing=True)) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread niceness: Linux")
def test_suspect_work_runs_at_a_lower_os_priority():
    def niceness():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = niceness()
    got = anyio.run(lanes.run_low, niceness)
    assert got == min(19, mine + lanes.LOW_NICE) or got == lanes.LOW_NICE


class _SockTransport(_Transport):
    def __init__(self, sock):
        super().__init__()
        self.sock = sock

    def get_extra_info(self, name):
        return self.sock if name == "socket" else None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIOCOUTQ: Linux")
def test_answers_a_client_has_not_taken_are_seen_in_the_kernel():
    with socket.create_server(("127.0.0.1", 0)) as srv:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(srv.getsockname())
        conn, _ = srv.accept()
        with client, conn:
            conn.setblocking(False)
            sent = 0
            try:
                while sent < 8 << 20:
                    sent += conn.send(b"x" * 65536)
            except BlockingIOError:
                pass  # the kernel's buffers are full: the client reads nothing
            transport = _SockTransport(conn)
            proto = type("P", (), {"transport": transport, "flow": None})()
            waiting = unacked_bytes(transport)
            assert 0 < waiting <= sent
            assert not_reading(proto)
            got, deadline = 0, time.monotonic() + 30
            client.settimeout(5)
            while got < sent and time.monotonic() < deadline:
                got += len(client.recv(1 << 20))
            assert got == sent
            while unacked_bytes(transport) and time.monotonic() < deadline:
                time.sleep(0.01)  # the last acknowledgement is on its way
            assert unacked_bytes(transport) == 0
            assert not not_reading(proto)


def test_suspect_connections_are_held_back(monkeypatch):
    waits: list[float] = []

    async def sleep(t):
        waits.append(t)

    monkeypatch.setattr(lanes.anyio, "sleep", sleep)
    good, bad, deaf = _Conn(), _Conn(), _Conn(buffered=1)
    lanes.Standing.record(bad, bad=True)

    async def main():
        for conn in (None, good, bad, deaf):
            await lanes.hold_back(conn)

    anyio.run(main)
    assert waits == [lanes.SUSPECT_WAIT, lanes.SUSPECT_WAIT]  # bad and deaf only


def test_a_pipelining_non_reader_gets_its_next_request_read_once_it_reads():
    """Three pipelined GETs of 1 MB answers from a client that reads nothing: the server
    answers the first and reads the second only once the client has taken the first."""
    from convsee.web.runner import ServerLimits, listen, make_server, run_server

    handled: list[str] = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].removeprefix("lifespan.")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        await receive()
        handled.append(scope["path"])
        reply = b"x" * 1_000_000
        headers = [(b"content-length", str(len(reply)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": reply})

    limits = ServerLimits(response_timeout=30.0)
    sock = listen("127.0.0.1", 0)
    server = make_server(app, limits)
    thread = threading.Thread(target=run_server, args=(server, sock), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(sock.getsockname()[:2])
        with client:
            get = "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n"
            client.sendall("".join(get.format(i) for i in range(3)).encode())
            deadline = time.monotonic() + 10
            while not handled and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(1.0)  # time enough to read the next two, were they read
            assert handled == ["/0"]
            client.settimeout(10)
            got, want = 0, 3 * 1_000_000
            while got < want:  # reading now: the other two are answered in turn
                data = client.recv(1 << 20)
                assert data, (got, handled)
                got += data.count(b"x")
            assert handled == ["/0", "/1", "/2"]
    finally:
        server.should_exit = True
        thread.join(10)
