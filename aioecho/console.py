"""The ``client`` command: the tutorial's prompt on a terminal, a filter in a pipe."""

from __future__ import annotations

import asyncio
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
    sending = asyncio.create_task(_send_all(client.writer, source))
    replies = errors = 0
    while reply := await client.read_reply():
        sink.write(reply)
        replies += 1
        errors += reply.startswith(ERROR_PREFIX)
    sink.flush()
    await client.close()
    lines = await sending
    if errors or replies != lines:
        print(
            f"aioecho client: {lines} line(s) sent, {replies - errors} answered, {errors} error(s)",
            file=sys.stderr,
        )
        return 1
    return 0


async def _send_all(writer: asyncio.StreamWriter, source: BinaryIO) -> int:
    """Copy ``source`` to the server; return how many lines it held."""
    lines = 0
    last = b"\n"
    try:
        async for chunk in _read_chunks(source):
            writer.write(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
            await writer.drain()
        lines += last != b"\n"  # an unterminated last line is answered too
        writer.write_eof()
    except ConnectionError:
        pass  # the server closed first; the reply count tells what was lost
    return lines


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
