"""Baseline: gevent, the simplest idiomatic line echo: a ``StreamServer`` with one
greenlet per connection reading lines from a file over the socket, code
that reads as if it blocked.
"""

from __future__ import annotations

import signal
import socket

import gevent
from gevent.server import StreamServer

from ._common import announce, parse_args, raise_fd_limit, reply


def handle(conn: socket.socket, address: tuple[str, int]) -> None:
    with conn, conn.makefile("rb") as lines:
        try:
            for line in lines:
                if not line.endswith(b"\n"):
                    break  # a partial line at end of input
                conn.sendall(reply(line))
        except ConnectionError:
            pass


def main() -> None:
    args = parse_args(__doc__)
    raise_fd_limit()
    server = StreamServer((args.host, args.port), handle, backlog=args.backlog)
    server.start()
    announce(args.host, server.server_port, args.ready_fd)
    gevent.signal_handler(signal.SIGTERM, server.stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
