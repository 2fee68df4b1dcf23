"""Baseline: ``socketserver.ThreadingTCPServer``, one thread per connection.

The standard library's blocking design, which the tutorial names as the
``selectors`` + ``threading`` alternative: each connection's handler reads
lines from a buffered file and writes each reply.
"""

from __future__ import annotations

import socketserver

from ._common import announce, exit_on_sigterm, parse_args, raise_fd_limit, reply


class EchoHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        try:
            for line in self.rfile:
                if line.endswith(b"\n"):  # a partial line at end of input goes unanswered
                    self.wfile.write(reply(line))
        except ConnectionError:
            pass  # a client that resets is gone; nothing to report


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True  # stopping must not wait for connected clients


def main() -> None:
    args = parse_args(__doc__)
    raise_fd_limit()
    exit_on_sigterm()
    Server.request_queue_size = args.backlog  # read by server_activate's listen()
    with Server((args.host, args.port), EchoHandler) as server:
        host, port = server.server_address[:2]
        announce(str(host), int(port), args.ready_fd)
        server.serve_forever()


if __name__ == "__main__":
    main()
