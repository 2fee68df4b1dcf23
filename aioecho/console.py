"""The ``client`` command: the tutorial's prompt on a terminal, a filter in a pipe."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
from collections.abc import AsyncIterator
from typing import BinaryIO

from .client import ERROR_PREFIX, connect

PROMPT = ">>: "
READ_SIZE = 64 * 1024


def interactive(host: str, port: int) -> int:
    """The tutorial's client: read a line at a prompt, print its reply."""
    with socket.create_connection((host, port)) as sock, sock.makefile("rb") as replies:
        while True:
            try:
                message = input(PROMPT)
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if not message:
                continue
            sock.sendall(message.encode() + b"\n")
            reply = replies.readline()
            if not reply:
                print("aioecho client: the server closed the connection", file=sys.stderr)
                return 1
            print(reply.decode(errors="replace").rstrip("\r\n"))


async def pipe(host: str, port: int, source: BinaryIO, sink: BinaryIO) -> int:
    """Send every input line, print every reply, return 0 once all are answered.

    Input is streamed while replies are read, so input of any size works; at
    the end of input the connection is half-closed and the server answers the
    rest (a last unterminated line included) before closing.
    """
    client = await connect(host, port)
    sent = _Sent()
    sending = asyncio.create_task(_send_all(client.writer, source, sent))
    replies = errors = 0
    while reply := await client.read_reply():
        sink.write(reply)
        replies += 1
        errors += reply.startswith(ERROR_PREFIX)
    sink.flush()
    # The server has closed: after an error it may have done so before all
    # input was sent, so stop sending rather than write to a closed socket.
    sending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sending
    await client.close()
    if errors or replies != sent.lines:
        print(
            f"aioecho client: {sent.lines} line(s) sent, {replies - errors} answered, "
            f"{errors} error(s)",
            file=sys.stderr,
        )
        return 1
    return 0


class _Sent:
    """How many lines have gone to the server so far."""

    lines = 0


async def _send_all(writer: asyncio.StreamWriter, source: BinaryIO, sent: _Sent) -> None:
    """Copy ``source`` to the server, counting lines, then half-close."""
    last = b"\n"
    try:
        async for chunk in _read_chunks(source):
            writer.write(chunk)
            sent.lines += chunk.count(b"\n")
            last = chunk[-1:]
            await writer.drain()
        sent.lines += last != b"\n"  # an unterminated last line is answered too
        writer.write_eof()
    except ConnectionError:
        pass  # the server closed first; the reply count tells what was lost


async def _read_chunks(source: BinaryIO) -> AsyncIterator[bytes]:
    """Chunks of ``source`` read by a daemon thread.

    A daemon thread, not the loop's executor: a read blocked on a terminal or
    a slow pipe must not keep the process alive once the replies are in.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)

    def produce() -> None:
        read = getattr(source, "read1", source.read)
        while True:
            chunk = read(READ_SIZE)
            try:
                asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
            except RuntimeError:
                return  # the loop is gone: nobody wants the rest
            if not chunk:
                return

    threading.Thread(target=produce, daemon=True, name="aioecho-stdin").start()
    while chunk := await queue.get():
        yield chunk
