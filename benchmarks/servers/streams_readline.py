"""Baseline: the simplest idiomatic asyncio echo, ``start_server`` + ``readline()``.

Runs on the standard library's event loop, one task per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from ._common import announce, parse_args, raise_fd_limit, reply


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while (line := await reader.readline()).endswith(b"\n"):
            writer.write(reply(line))
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    server = await asyncio.start_server(handle, args.host, args.port, backlog=args.backlog)
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    host, port = server.sockets[0].getsockname()[:2]
    announce(host, port, args.ready_fd)
    async with server:
        await stop


if __name__ == "__main__":
    args = parse_args(__doc__)
    raise_fd_limit()
    asyncio.run(main(args))
