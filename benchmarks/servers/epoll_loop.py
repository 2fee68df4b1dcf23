"""Baseline: ``select.epoll``, level-triggered, as a reader of the tutorial
would write it after the select and poll rungs.

The kernel keeps the watched set between calls and hands back only the
descriptors that are ready, so a call costs what is ready, not what is
watched: idle connections cost (nearly) nothing. Level-triggered, like
select and poll: a descriptor with unread data is reported again on the next
call, so one read per readiness is enough. One thread, the same reply rule
and reads as the select baseline.
"""

from __future__ import annotations

import select
import socket

from _common import announce, echo_once, exit_on_sigterm, forget, listen, parse_args, raise_fd_limit


def serve(server: socket.socket) -> None:
    """Accept and echo forever; returns only by exception."""
    with select.epoll() as poller:
        poller.register(server.fileno(), select.EPOLLIN)
        connections: dict[int, socket.socket] = {}
        pending: dict[socket.socket, bytes] = {}
        while True:
            for fd, _ in poller.poll():
                if fd == server.fileno():
                    conn, _ = server.accept()
                    poller.register(conn.fileno(), select.EPOLLIN)
                    connections[conn.fileno()] = conn
                    pending[conn] = b""
                    continue
                conn = connections[fd]
                if not echo_once(conn, pending):
                    poller.unregister(fd)  # before close: a closed descriptor is no longer known
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
