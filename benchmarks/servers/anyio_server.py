"""Baseline: anyio, the simplest idiomatic line echo: ``create_tcp_listener``,
one task per connection, ``receive_until`` a newline, on anyio's asyncio or
trio backend (``--backend``).
"""

from __future__ import annotations

import argparse
import signal
import sys

import anyio
from _common import BACKLOG, raise_fd_limit, reply
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

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


async def main(host: str, port: int, backlog: int) -> None:
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port, backlog=backlog)
    host, port = listener.extra(SocketAttribute.local_address)[:2]
    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, handle)
        print(f"listening on {host}:{port}", flush=True)
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                group.cancel_scope.cancel()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=BACKLOG)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse()
    raise_fd_limit()
    anyio.run(main, args.host, args.port, args.backlog, backend=args.backend)
    sys.exit(0)
