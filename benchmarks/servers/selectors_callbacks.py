"""Baseline: the tutorial's ``selectors`` design, a callback registered per socket.

``DefaultSelector`` is epoll on Linux, so this is the tutorial's answer to
select's limits. Adapted minimally: the tutorial answered each ``recv``
chunk with ``data.upper() + b'_SB'``; here each connection buffers until LF
and answers every complete line (CRLF kept), because TCP splits and joins
lines however it likes. Also, as in every baseline: ``sendall`` instead of
``send`` (a send may write part of the reply), a 64 KiB read instead of
1 KiB, and the shared listen queue.
"""

from __future__ import annotations

import selectors
import socket
from collections.abc import Callable

from ._common import echo_once, forget, serve_forever

sel = selectors.DefaultSelector()
pending: dict[socket.socket, bytes] = {}  # the unterminated line of each connection
Callback = Callable[[socket.socket, int], None]


def accept(server: socket.socket, mask: int) -> None:
    conn, _ = server.accept()
    pending[conn] = b""
    sel.register(conn, selectors.EVENT_READ, read)


def read(conn: socket.socket, mask: int) -> None:
    if not echo_once(conn, pending):
        sel.unregister(conn)
        forget(conn, pending)


def serve(server: socket.socket) -> None:
    """Dispatch readiness to the callbacks forever; returns only by exception."""
    sel.register(server, selectors.EVENT_READ, accept)
    while True:
        for key, mask in sel.select():
            callback: Callback = key.data
            callback(key.fileobj, mask)  # type: ignore[arg-type]


if __name__ == "__main__":
    serve_forever(serve, __doc__)
