"""One connection's state as the server and its runner both need it: whether its client still
reads, and dropping it at once. Below server.py and runner.py, which both use it."""

from __future__ import annotations

import socket
import struct

__all__ = ["not_reading", "drop_connection", "reset", "unacked_bytes"]

try:  # Linux: the bytes of a socket's send queue its peer has not acknowledged
    import fcntl
    import termios

    _OUTQ = termios.TIOCOUTQ  # = SIOCOUTQ
except (ImportError, AttributeError):
    _OUTQ = None


def unacked_bytes(transport) -> int:
    """Bytes written to a connection that its client's kernel has not taken yet (0 where
    the system does not say). A client that reads its answers has taken all of them by the
    time it sends its next request; one that pipelines requests and never reads has not (its
    receive buffer is full, so the bytes wait in ours)."""
    sock = transport.get_extra_info("socket") if _OUTQ is not None else None
    if sock is None:
        return 0
    try:
        got = fcntl.ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return struct.unpack("i", got)[0]


def reset(transport) -> None:
    """Close a connection now, with a reset: what it had not sent is discarded, here and in
    the kernel (a plain close would still deliver megabytes to a client that never reads)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


def not_reading(proto) -> bool:
    """Whether a connection is closed, or holds answers its client has not read (in our
    write buffer, or in the kernel's: `unacked_bytes`)."""
    transport = getattr(proto, "transport", None)
    if transport is None or transport.is_closing():
        return True
    flow = getattr(proto, "flow", None)
    if (flow is not None and flow.write_paused) or transport.get_write_buffer_size() > 0:
        return True
    return unacked_bytes(transport) > 0


def drop_connection(proto) -> None:
    """Close a connection at once, with a reset (see reset)."""
    if getattr(proto, "transport", None) is not None and not proto.transport.is_closing():
        reset(proto.transport)
