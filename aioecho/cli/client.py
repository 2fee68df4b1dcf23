"""``python -m aioecho client``: the tutorial's prompt on a terminal, a filter in a pipe.

Both talk through :class:`~aioecho.client.EchoClient`, so both inherit its
bounds: a reply longer than ``max_reply`` or later than the timeout ends the
conversation with an exception instead of a hang or unbounded memory.

Every way the conversation can fail ends the same way: one line on stderr
and exit code 1. A bad flag is one line and exit code 2; Ctrl-C is quiet,
with exit code 130.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import signal
import ssl
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..bounds import MAX_WHOLE, SECONDS, Bounds, check_fields
from ..client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    ConnectionClosedError,
    EchoClient,
    Endpoint,
    ReplyError,
    ReplyTooLongError,
    closed_during,
    reply_bound,
)
from ..config import ConfigError, ServerConfig
from ..durations import Duration
from ..loops import LoopName, ResolvedLoop, resolve_loop, run_on
from ..options import option
from ..sizes import parse_size
from ..tls import client_context, ssl_reason
from .parsing import Sections, add_flags, add_sections, from_flags

INTERRUPTED = 128 + signal.SIGINT  # what a shell reports for a Ctrl-C
PROMPT = ">>: "
READ_SIZE = 64 * 1024
READ_AHEAD = 4  # chunks of input read but not yet sent

_SERVER = ServerConfig()

# What OpenSSL reports when the bytes that came back are no TLS record at all.
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")

Connector = Callable[[], Coroutine[Any, Any, EchoClient]]

SECTIONS: Sections = (
    ("connection", ("host", "port", "unix", "timeout", "connect_timeout", "loop")),
    ("TLS", ("tls", "tls_ca", "tls_insecure")),
    ("replies", ("max_line", "suffix", "max_reply")),
)
EXAMPLES = """\
examples:
  aioecho client                                  a prompt (>>: ) on a terminal
  printf 'hello\\nworld\\n' | aioecho client --port 9000
  aioecho client --host localhost --tls-ca ca.pem --timeout 2s
  aioecho client --unix /run/echo.sock < lines.txt > replies.txt
"""


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Where the ``client`` command connects, and the bounds it keeps."""

    host: str = option(_SERVER.hosts[0], "server address", "HOST")
    port: int = option(_SERVER.port, "server port", "PORT", check=Bounds(int, 1, 65535))
    unix: str | None = option(None, "connect to this Unix socket instead", "PATH")
    tls: bool = option(False, "speak TLS to the server")
    tls_ca: str | None = option(None, "CA certificate(s) to verify it with", "FILE")
    tls_insecure: bool = option(False, "do not verify its certificate (self-signed)")
    timeout: float = option(
        DEFAULT_TIMEOUT,
        "give up on a reply that takes longer; 0 = never",
        "DURATION",
        check=SECONDS,
        parse=Duration,
    )
    connect_timeout: float = option(
        DEFAULT_CONNECT_TIMEOUT,
        "give up on connecting (TLS handshake included) after this long; 0 = never",
        "DURATION",
        check=SECONDS,
        parse=Duration,
    )
    max_line: int = option(
        _SERVER.max_line,
        "the server's --max-line; with --suffix it bounds a reply",
        "BYTES",
        check=Bounds(int, 1, MAX_WHOLE, " bytes"),
        parse=parse_size,
    )
    suffix: str = option(_SERVER.suffix, "the server's --suffix", "TEXT")
    max_reply: int | None = option(
        None,
        "longest reply accepted, terminator included; default: from --max-line",
        "BYTES",
        check=Bounds(int, 2, MAX_WHOLE, " bytes"),
        parse=parse_size,
    )
    loop: LoopName = option("auto", "event loop; auto takes uvloop when installed")

    def __post_init__(self) -> None:
        check_fields(self, ConfigError)
        if self.unix is not None and self.uses_tls and not self.tls_insecure:
            # A socket path names no host the certificate could be checked against.
            raise ConfigError("TLS over --unix needs --tls-insecure")

    @property
    def uses_tls(self) -> bool:
        """``--tls-ca`` and ``--tls-insecure`` imply ``--tls``."""
        return self.tls or self.tls_ca is not None or self.tls_insecure

    @property
    def reply_limit(self) -> int:
        """The longest reply accepted, terminator included."""
        return self.max_reply or reply_bound(self.max_line, self.suffix)


def add_parser(commands: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Register the ``client`` subcommand."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "client",
        help="talk to a server: a prompt, or a pipe filter",
        description="Talk to an echo server: a prompt on a terminal, a filter in a pipe.",
        epilog=EXAMPLES,
    )
    add_flags(parser, ClientConfig, add_sections(parser, SECTIONS))
    parser.set_defaults(run=main, parser=parser)
    return parser


def main(options: argparse.Namespace) -> int:
    """Run the parsed ``client`` command; the exit code."""
    parser: argparse.ArgumentParser = options.parser
    try:
        config = from_flags(ClientConfig, options)
        loop = resolve_loop(config.loop)
        tls = client_context(config.tls_ca, config.tls_insecure) if config.uses_tls else None
    except ConfigError as exc:
        parser.error(str(exc))
    except OSError as exc:  # ssl.SSLError included: a CA file that is not PEM
        parser.error(f"--tls-ca {options.tls_ca}: {describe(exc)}")
    endpoint = Endpoint(config.host, config.port, config.unix, tls)
    connect = functools.partial(
        endpoint.connect,
        timeout=config.timeout or None,  # the library's None waits forever
        max_reply=config.reply_limit,
        connect_timeout=config.connect_timeout or None,
        suffix=config.suffix,
    )
    try:
        if sys.stdin.isatty():
            return interactive(connect, loop)
        return run_on(loop, pipe(connect, sys.stdin.fileno(), sys.stdout.buffer))
    except KeyboardInterrupt:
        return INTERRUPTED
    except OutputClosedError as exc:
        # Nothing more can be written there, not even at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"aioecho client: {exc}", file=sys.stderr)
        return 1
    except (ReplyError, OSError) as exc:
        print(f"aioecho client: {endpoint}: {describe(exc)}", file=sys.stderr)
        return 1


def describe(exc: Exception) -> str:
    """One line that says what went wrong, for a person."""
    if isinstance(exc, ReplyTooLongError):
        return f"{exc} (see --max-line and --max-reply)"
    if isinstance(exc, ssl.SSLError):
        hint = " (is it a TLS server?)" if exc.reason in _NOT_TLS else ""
        return f"TLS failed: {ssl_reason(exc)}{hint}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


class OutputClosedError(Exception):
    """Whoever read the replies went away (``client | head -1``)."""


def interactive(connect: Connector, loop: ResolvedLoop) -> int:
    """The tutorial's client: read a line at a prompt, print its reply.

    The prompt is read outside the event loop, where ``input()`` keeps its
    line editing; each request runs on the loop, within the client's bounds.
    Ctrl-D leaves with 0; errors and Ctrl-C propagate.
    """
    with asyncio.Runner(loop_factory=loop.factory) as runner:
        client = runner.run(connect())
        try:
            while True:
                try:
                    message = input(PROMPT)
                except EOFError:
                    print()
                    break
                except KeyboardInterrupt:
                    print()  # the shell's prompt starts on a line of its own
                    raise
                if message:
                    reply = runner.run(client.request(message))
                    print(reply.decode(errors="replace"))
        except BaseException:
            client.abort()  # whatever went wrong, nothing more is owed
            raise
        runner.run(client.finish())
    return 0


async def pipe(connect: Connector, source: int, sink: BinaryIO) -> int:
    """Send every input line, print every reply, return 0 once all are answered.

    ``source`` is a file descriptor (stdin's). Input is streamed while
    replies are read, so input of any size works. A last line without a
    newline is sent with one, and its reply printed without one, so every
    reply can be checked for its end. ``ERR`` replies
    are printed, counted, and make the exit code 1 (the server closes after
    one). Anything else that goes wrong raises: a reply that is late
    (:class:`~aioecho.client.ReplyTimeoutError`), too long, cut short by
    a close (:class:`~aioecho.client.ConnectionClosedError`), or one more
    than the lines sent (:class:`~aioecho.client.ExtraReplyError`).
    """
    client = await connect()
    progress = _Progress(client)
    sending = asyncio.create_task(progress.send_all(source))
    try:
        await progress.receive_all(sink)
    except BaseException:
        client.abort()  # whatever went wrong, nothing more is owed
        raise
    finally:
        # After an error the server may have closed before all input was
        # sent: stop sending rather than write to a closed socket.
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        _write(sink.flush)
    if progress.errors:
        await client.close()
    else:
        await client.finish()  # every line answered: nothing more may come
    return progress.verdict()


class _Progress:
    """Lines sent and replies received on one piped connection."""

    def __init__(self, client: EchoClient) -> None:
        self._client = client
        self._changed = asyncio.Event()  # lines were sent, input ended, or sending failed
        self._newline_added = False
        self.lines = 0
        self.replies = 0
        self.errors = 0
        self.input_done = False
        self.send_error: OSError | None = None

    async def send_all(self, source: int) -> None:
        """Copy ``source`` to the server, counting lines."""
        writer = self._client.writer
        last = b"\n"
        try:
            async for chunk in _read_chunks(source):
                writer.write(chunk)
                self._count_lines(chunk.count(b"\n"))
                last = chunk[-1:]
                await writer.drain()
            if last != b"\n":  # an unterminated last line is answered too
                self._newline_added = True
                writer.write(b"\n")
                self._count_lines(1)
            self.input_done = True
        except OSError as exc:  # the server closed, or the input failed
            self.send_error = exc
        finally:
            self._changed.set()

    def _count_lines(self, sent: int) -> None:
        if sent:
            self.lines += sent
            self._changed.set()

    async def receive_all(self, sink: BinaryIO) -> None:
        """Print replies as they are due, until every line has one.

        Nothing is read while no reply is due, so the client's timeout
        applies to replies only, never to waiting for input.
        """
        while True:
            if self.replies < self.lines:
                if not await self._receive(sink):
                    return
            elif self.input_done or self.errors:
                return  # every line answered, or the server ended with an ERR line
            elif self.send_error is not None:
                raise self.send_error
            else:
                _write(sink.flush)  # the input is quiet: show what has been answered
                self._changed.clear()
                await self._changed.wait()

    async def _receive(self, sink: BinaryIO) -> bool:
        """Read and print one reply; False once the server has closed after an ERR line."""
        try:
            reply = await self._client.read_reply()
        except ConnectionResetError:
            if self.errors:
                return False  # it closed after its ERR line with our input unread
            raise
        if not reply:
            if self.errors:
                return False
            raise ConnectionClosedError(
                f"the server closed the connection after {self.replies} of {self.lines} replies"
            )
        if not reply.endswith(b"\n"):
            raise ConnectionClosedError(closed_during(reply))
        self.replies += 1
        self.errors += self._client.is_error(reply)
        last = self._newline_added and self.replies == self.lines
        _write(sink.write, reply[:-1] if last else reply)
        return True

    def verdict(self) -> int:
        """The exit code, with a one-line complaint after ``ERR`` replies."""
        if not self.errors:
            return 0
        print(
            f"aioecho client: {self.lines} line(s) sent, {self.replies - self.errors} answered, "
            f"{self.errors} error(s)",
            file=sys.stderr,
        )
        return 1


def _write(operation: Callable[..., object], *data: bytes) -> None:
    """Write to the output, telling its closing from the server's."""
    try:
        operation(*data)
    except BrokenPipeError:
        raise OutputClosedError("the output was closed before every reply was written") from None


async def _read_chunks(source: int) -> AsyncIterator[bytes]:
    """Chunks of the file descriptor ``source`` read by a daemon thread.

    A daemon thread, not the loop's executor: a read blocked on a terminal or
    a slow pipe must not keep the process alive once the replies are in. It
    reads the descriptor, not ``sys.stdin.buffer``: a read blocked there holds
    the buffer's lock, and the interpreter, closing stdin at exit, dies on it.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    # At most this many chunks wait for the loop. The thread hands them over
    # with call_soon_threadsafe, never a coroutine: one created just as the
    # loop closes would be left un-awaited and warn on stderr at exit.
    free_slots = threading.Semaphore(READ_AHEAD)

    def produce() -> None:
        while True:
            free_slots.acquire()
            chunk = os.read(source, READ_SIZE)
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
