"""Baseline: Twisted, whose echo protocol is the classic first example: a
``LineReceiver`` on the epoll reactor, one protocol instance per connection.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import epollreactor

epollreactor.install()  # type: ignore[no-untyped-call]

from twisted.internet import reactor as installed_reactor  # noqa: E402
from twisted.internet.protocol import Factory  # noqa: E402
from twisted.protocols.basic import LineReceiver  # noqa: E402

from ._common import announce, parse_args, raise_fd_limit, reply  # noqa: E402

# Twisted types the reactor and transports by zope interfaces, whose methods
# mypy reads right only with the mypy-zope plugin.
reactor: Any = installed_reactor


class Echo(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 65536 + 2  # the protocol's max_line; Twisted's default is 16 KiB

    def lineReceived(self, line: bytes) -> None:
        transport: Any = self.transport
        transport.write(reply(line + b"\n"))


def main() -> None:
    args = parse_args(__doc__)
    raise_fd_limit()
    factory = Factory.forProtocol(Echo)
    port = reactor.listenTCP(args.port, factory, backlog=args.backlog, interface=args.host)
    announce(args.host, port.getHost().port, args.ready_fd)
    reactor.run()  # SIGTERM stops it


if __name__ == "__main__":
    main()
