"""The ``client`` command: the tutorial's prompt on a terminal, a filter in a pipe."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncIterator
from typing import BinaryIO

from .client import ERROR_PREFIX, EchoClient, Endpoint

PROMPT = ">>: "
READ_SIZE = 64 * 1024
READ_AHEAD = 4  # chunks of input read but not yet sent


def interactive(endpoint: Endpoint) -> int:
    """The tutorial's client: read a line at a prompt, print its reply."""
    with endpoint.open_blocking() as sock, sock.makefile("rb") as replies:
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


async def pipe(endpoint: Endpoint, source: BinaryIO, sink: BinaryIO) -> int:
    """Send every input line, print every reply, return 0 once all are answered.

    Input is streamed while replies are read, so input of any size works. At
    the end of input the connection is half-closed and the server answers the
    rest (a last unterminated line included) before closing. TLS has no
    half-close: there a last unterminated line is sent with a newline, and
    the client stops once every line has its reply.
    """
    client = EchoClient(*await endpoint.open())
    progress = _Progress(client)
    sending = asyncio.create_task(progress.send_all(source))
    while reply := await client.read_reply():
        sink.write(reply)
        if progress.answered(reply):
            break
    sink.flush()
    # After an error the server may have closed before all input was sent:
    # stop sending rather than write to a closed socket.
    sending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sending
    await client.close()
    return progress.verdict()


class _Progress:
    """Lines sent and replies received on one piped connection."""

    def __init__(self, client: EchoClient) -> None:
        self._client = client
        self._half_close = client.writer.can_write_eof()
        self.lines = 0
        self.replies = 0
        self.errors = 0
        self.input_done = False

    async def send_all(self, source: BinaryIO) -> None:
        """Copy ``source`` to the server, counting lines, then end the input."""
        writer = self._client.writer
        last = b"\n"
        try:
            async for chunk in _read_chunks(source):
                writer.write(chunk)
                self.lines += chunk.count(b"\n")
                last = chunk[-1:]
                await writer.drain()
            if last != b"\n":  # an unterminated last line is answered too
                self.lines += 1
                if not self._half_close:
                    writer.write(b"\n")
            self._end_input()
        except ConnectionError:
            pass  # the server closed first; the reply count tells what was lost

    def _end_input(self) -> None:
        self.input_done = True
        if self._half_close:
            self._client.half_close()  # the server closes once it has answered
        elif self.replies == self.lines:
            self._client.reader.feed_eof()  # every reply is already in

    def answered(self, reply: bytes) -> bool:
        """Count a reply; True once no more are due."""
        self.replies += 1
        self.errors += reply.startswith(ERROR_PREFIX)
        return not self._half_close and self.input_done and self.replies == self.lines

    def verdict(self) -> int:
        """The exit code, with a one-line complaint if any line went unanswered."""
        if not self.errors and self.replies == self.lines:
            return 0
        print(
            f"aioecho client: {self.lines} line(s) sent, {self.replies - self.errors} answered, "
            f"{self.errors} error(s)",
            file=sys.stderr,
        )
        return 1


async def _read_chunks(source: BinaryIO) -> AsyncIterator[bytes]:
    """Chunks of ``source`` read by a daemon thread.

    A daemon thread, not the loop's executor: a read blocked on a terminal or
    a slow pipe must not keep the process alive once the replies are in.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    # At most this many chunks wait for the loop. The thread hands them over
    # with call_soon_threadsafe, never a coroutine: one created just as the
    # loop closes would be left un-awaited and warn on stderr at exit.
    free_slots = threading.Semaphore(READ_AHEAD)

    def produce() -> None:
        read = getattr(source, "read1", source.read)
        while True:
            free_slots.acquire()
            chunk = read(READ_SIZE)
            try:
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except RuntimeError:
                return  # the loop is gone: nobody wants the rest
            if not chunk:
                return

    threading.Thread(target=produce, daemon=True, name="aioecho-stdin").start()
    while chunk := await queue.get():
        free_slots.release()
        yield chunk
