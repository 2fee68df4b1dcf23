"""Reference: the least a Python asyncio server can do per read, on either loop.

One ``asyncio.BufferedProtocol`` whose every read is answered at once with
``upper()`` and the suffix put before each LF: no framing state (a line split
over two reads needs none, as the reply maps byte for byte except at LF), no
counters, no limits, no backpressure, one receive buffer shared by every
connection (each read is answered before the loop reads again). It answers
LF-terminated lines only, as ``benchmarks/c/echo_load`` sends them; a CR
before LF would get the suffix after it. ``python -m benchmarks speed`` uses it as
the floor of Python's cost per round trip, not as a server to use.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from typing import cast

from ._common import RECV_SIZE, SUFFIX, announce, parse_args, raise_fd_limit

LF = b"\n"
REPLY_LF = SUFFIX + LF


class MinimalEcho(asyncio.BufferedProtocol):
    buffer = bytearray(RECV_SIZE)  # shared: each read is answered before the next one

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(self.buffer[:nbytes].upper().replace(LF, REPLY_LF))


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MinimalEcho, args.host, args.port, backlog=args.backlog)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    announce(bound_host, bound_port, args.ready_fd)
    async with server:
        await stop


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


if __name__ == "__main__":
    args = parse_args(__doc__, loops=True)
    raise_fd_limit()
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(serve(args))
