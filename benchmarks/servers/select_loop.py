"""Baseline: the tutorial's ``select.select`` loop, one thread, every socket in one list.

Adapted minimally from the tutorial: it answered each ``recv`` chunk with
``data.upper()``; here each connection buffers until LF and answers every
complete line with the protocol's reply (``_SB`` suffix, CRLF kept), because
TCP splits and joins lines however it likes. Also changed, for the same
reasons in every baseline: ``sendall`` instead of ``send`` (a send may write
part of the reply), a 64 KiB read instead of 1 KiB (a 16 KiB line would cost
16 select rounds, measuring the read size rather than select), and the
shared listen queue. Like the tutorial it does not catch select's own limit:
with a descriptor above FD_SETSIZE (1024) ``select()`` raises ValueError and
the server dies, which is the failure the benchmark reports.
"""

from __future__ import annotations

import select
import socket

from ._common import echo_once, forget, serve_forever


def serve(server: socket.socket) -> None:
    """Accept and echo forever; returns only by exception."""
    read_l: list[socket.socket] = [server]
    pending: dict[socket.socket, bytes] = {}  # the unterminated line of each connection
    while True:
        r_l, _, _ = select.select(read_l, [], [])
        for ready in r_l:
            if ready is server:
                conn, _ = server.accept()
                read_l.append(conn)
                pending[conn] = b""
                continue
            if not echo_once(ready, pending):
                read_l.remove(ready)
                forget(ready, pending)


if __name__ == "__main__":
    serve_forever(serve, __doc__)
