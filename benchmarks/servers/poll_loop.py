"""Baseline: ``select.poll``, the tutorial's next rung after ``select``.

poll takes a list of descriptors of any number (no FD_SETSIZE cap), but
like select the kernel walks the whole list on every call: its cost still
grows with the connections watched, idle or not. One thread, the same reply
rule and reads as the select baseline.
"""

from __future__ import annotations

import select
import socket

from _common import announce, echo_once, exit_on_sigterm, forget, listen, parse_args, raise_fd_limit


def serve(server: socket.socket) -> None:
    """Accept and echo forever; returns only by exception."""
    poller = select.poll()
    poller.register(server, select.POLLIN)
    connections: dict[int, socket.socket] = {}
    pending: dict[socket.socket, bytes] = {}
    while True:
        for fd, _ in poller.poll():
            if fd == server.fileno():
                conn, _ = server.accept()
                poller.register(conn, select.POLLIN)
                connections[conn.fileno()] = conn
                pending[conn] = b""
                continue
            conn = connections[fd]
            if not echo_once(conn, pending):
                poller.unregister(fd)
                del connections[fd]
                forget(conn, pending)


def main() -> None:
    args = parse_args(__doc__)
    raise_fd_limit()
    exit_on_sigterm()
    with listen(args.host, args.port, args.backlog) as server:
        server.setblocking(False)
        announce(server)
        serve(server)


if __name__ == "__main__":
    main()
