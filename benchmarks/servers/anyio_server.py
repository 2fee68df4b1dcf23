"""Baseline: anyio, the simplest idiomatic line echo: ``create_tcp_listener``,
one task per connection, ``receive_until`` a newline, on anyio's asyncio or
trio backend (``--backend``).
"""

from __future__ import annotations

import argparse
import signal
import sys

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from ._common import announce, parser, raise_fd_limit, reply

# A line longer than this ends the connection (the protocol's max_line).
MAX_LINE = 65536 + 2


async def handle(client: SocketStream) -> None:
    lines = BufferedByteReceiveStream(client)
    async with client:
        try:
            while True:
                line = await lines.receive_until(b"\n", MAX_LINE)
                await client.send(reply(line + b"\n"))
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound):
            pass
        except (anyio.BrokenResourceError, ConnectionError):
            pass


async def main(args: argparse.Namespace) -> None:
    listener = await anyio.create_tcp_listener(
        local_host=args.host, local_port=args.port, backlog=args.backlog
    )
    address = listener.extra(SocketAttribute.local_address)
    assert isinstance(address, tuple)  # TCP, not a Unix socket's path
    host, port = address[:2]
    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, handle)
        announce(host, port, args.ready_fd)
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                group.cancel_scope.cancel()


def parse() -> argparse.Namespace:
    cli = parser(__doc__)
    cli.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    return cli.parse_args()


if __name__ == "__main__":
    args = parse()
    raise_fd_limit()
    anyio.run(main, args, backend=args.backend)
    sys.exit(0)
