"""Many plain client sockets: open them, fill them, see what the server did, reset them.

The memory scenarios drive thousands of connections that only write, so a
selector over non-blocking sockets in the runner's own thread is enough: the
server does the work, and the runner's CPU is reported beside the figures.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import struct
import time
from collections import Counter
from collections.abc import Iterable

from .target import HOST

CONNECT_TIMEOUT_S = 5.0
# Source addresses 127.0.0.2, .3, ... each take this many connections, well
# under the ~28,000 ephemeral ports of one address.
PER_SOURCE = 10_000
LINGER_RESET = struct.pack("ii", 1, 0)


def source(index: int) -> str:
    """The loopback source address of connection ``index``: not 127.0.0.1, the neighbours'."""
    return f"127.0.0.{2 + index // PER_SOURCE}"


# What a non-blocking socket raises when it cannot write or read now (TLS included).
WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def connect_many(
    port: int,
    count: int,
    errors: Counter[str],
    tls: ssl.SSLContext | None = None,
    receive_buffer: int | None = None,
) -> list[socket.socket]:
    """``count`` connections to the server, non-blocking once open; failures counted by kind.

    With ``tls``, each finishes its handshake before the next one connects.
    ``receive_buffer`` sets SO_RCVBUF before connecting, which bounds the
    window the client offers the server.
    """
    opened: list[socket.socket] = []
    try:
        for index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.settimeout(CONNECT_TIMEOUT_S)
                if receive_buffer is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
                sock.bind((source(index), 0))
                sock.connect((HOST, port))
                if tls is not None:
                    sock = tls.wrap_socket(sock, server_hostname="localhost")
            except OSError as error:
                sock.close()
                errors[type(error).__name__] += 1
                continue
            sock.setblocking(False)
            opened.append(sock)
    except BaseException:
        reset_all(opened)
        raise
    return opened


def fill(
    socks: Iterable[socket.socket],
    payload: bytes,
    total: int | None,
    until: float,
    stall_s: float,
) -> int:
    """Write ``payload`` into every socket: ``total`` bytes each, or endlessly when ``None``.

    Stops when every socket got its share, at the monotonic time ``until``, or
    when nothing could be written for ``stall_s`` (the server stopped
    reading). A socket the server closed is left alone. Returns bytes written.
    """
    owed = {sock: total for sock in socks}
    written = 0
    with selectors.DefaultSelector() as selector:
        for sock in owed:
            selector.register(sock, selectors.EVENT_WRITE)
        progress = time.monotonic()
        while owed and (now := time.monotonic()) < until and now - progress < stall_s:
            for key, _ in selector.select(timeout=0.1):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                sock = ready
                left = owed[sock]
                chunk = payload if left is None else payload[len(payload) - left :]
                try:
                    sent = sock.send(chunk)
                except WOULD_BLOCK:
                    continue
                except OSError:
                    sent, left = 0, 0
                written += sent
                progress = time.monotonic()
                if left is not None:
                    owed[sock] = left = left - sent
                if left == 0:
                    selector.unregister(sock)
                    del owed[sock]
    return written


def fates(socks: Iterable[socket.socket]) -> Counter[str]:
    """What the server did to each socket so far: ``open`` (perhaps with replies to read),
    an ``ERR ...`` line, closed, reset."""
    seen: Counter[str] = Counter()
    for sock in socks:
        seen[_fate(sock)] += 1
    return seen


def _fate(sock: socket.socket) -> str:
    try:
        data = sock.recv(4096)
    except WOULD_BLOCK:
        return "open"
    except OSError as error:
        return f"reset ({type(error).__name__})"
    if not data:
        return "closed"
    if not data.startswith(b"ERR "):
        return "open"  # replies waiting to be read
    return data.split(b"\n", 1)[0].decode(errors="replace")


def reset_all(socks: Iterable[socket.socket]) -> None:
    """Close every socket with a reset (SO_LINGER 0): the server sees RST, not FIN."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        sock.close()
