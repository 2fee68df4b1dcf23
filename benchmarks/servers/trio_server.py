"""Baseline: trio, the simplest idiomatic line echo: ``serve_listeners``, one task
per connection, ``receive_some`` and ``send_all``.

trio has no readline: a connection buffers until LF, like the other
baselines, and answers every complete line of a read in one write.
"""

from __future__ import annotations

import argparse
import signal

import trio

from ._common import RECV_SIZE, announce, answer_lines, parse_args, raise_fd_limit


async def handle(stream: trio.SocketStream) -> None:
    buffer = b""
    try:
        while data := await stream.receive_some(RECV_SIZE):
            replies, buffer = answer_lines(buffer + data)
            if replies:
                await stream.send_all(replies)
    except trio.BrokenResourceError:
        pass
    finally:
        await stream.aclose()


async def main(args: argparse.Namespace) -> None:
    listeners = await trio.open_tcp_listeners(args.port, host=args.host, backlog=args.backlog)
    host, port = listeners[0].socket.getsockname()[:2]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, handle, listeners)
        announce(host, port, args.ready_fd)
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                nursery.cancel_scope.cancel()


if __name__ == "__main__":
    args = parse_args(__doc__)
    raise_fd_limit()
    trio.run(main, args)
