"""An async client for the line protocol, for tests and applications.

A client never waits forever and never buffers without bound: every request
has a timeout, and a reply longer than ``max_reply`` bytes is an error, not
a reason to keep reading.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig

T = TypeVar("T")

ERROR_PREFIX = b"ERR "

# After the last reply, how long the client waits for the server to close
# (it does at once once the client half-closes) to see that nothing more
# comes. A server still open by then is left without the check.
FINISH_TIMEOUT = 1.0

# Seconds a request may take by default.
DEFAULT_TIMEOUT = 10.0
# Seconds to connect, TLS handshake included (as bench's --connect-timeout).
DEFAULT_CONNECT_TIMEOUT = 5.0


def reply_bound(max_line: int, suffix: str) -> int:
    """The longest reply of a server with this ``max_line`` and ``suffix``.

    A body of ``max_line`` bytes, the suffix and a CRLF terminator. (A
    ``--unicode`` server can lengthen a body up to three times.)
    """
    return max_line + len(suffix.encode()) + len(b"\r\n")


_SERVER_DEFAULTS = ServerConfig()
DEFAULT_MAX_REPLY = reply_bound(_SERVER_DEFAULTS.max_line, _SERVER_DEFAULTS.suffix)
DEFAULT_SUFFIX = _SERVER_DEFAULTS.suffix


def is_error_reply(reply: bytes, suffix: bytes) -> bool:
    """Whether ``reply`` (a line, terminator or not) is the server's ``ERR`` line.

    Error lines start with ``ERR `` and never end with the suffix, so an
    echo of ``err ...`` (``ERR ..._SB``) is a reply. With an empty suffix
    the two cannot be told apart: every ``ERR `` line counts as an error.
    """
    if not reply.startswith(ERROR_PREFIX):
        return False
    return not suffix or not reply.rstrip(b"\r\n").endswith(suffix)


class ReplyError(Exception):
    """A request got no proper reply: the base of the client's own errors."""


class ServerError(ReplyError):
    """The server answered with an ``ERR`` line instead of an echo.

    The message is the line without its terminator; ``reply`` is the line as
    it came. Servers close the connection after an ``ERR`` line.
    """

    def __init__(self, reply: bytes) -> None:
        super().__init__(reply.decode(errors="replace").rstrip("\r\n"))
        self.reply = reply


class ReplyTooLongError(ReplyError):
    """A reply grew past ``max_reply`` bytes without ending; the client closed."""


class ReplyTimeoutError(ReplyError, TimeoutError):
    """No complete reply within the timeout; the client closed."""


class ConnectionClosedError(ReplyError, ConnectionError):
    """The server closed the connection before the reply was complete."""


class ExtraReplyError(ReplyError):
    """The server sent more replies than lines were sent to it."""


class EchoClient:
    """One connection to an echo server; use :func:`connect` to make one.

    ``timeout`` is the default of :meth:`request` and :meth:`read_reply`
    (``None``: wait forever). After a timeout or an overlong reply the
    client closes the connection: the next reply on it could belong to an
    earlier request, so later requests raise :class:`ConnectionClosedError`.
    ``suffix`` is the server's: it tells an ``ERR`` line from an echo of one.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_reply: int = DEFAULT_MAX_REPLY,
        suffix: str = DEFAULT_SUFFIX,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.max_reply = max_reply
        self.suffix = suffix.encode()
        self._abandoned: str | None = None

    async def request(self, line: str | bytes, timeout: float | None = None) -> bytes:
        """Send one line, return its reply without the terminator.

        ``timeout`` bounds sending and the whole reply, in seconds (``None``:
        the client's ``timeout``). Raises :class:`ServerError` on an ``ERR``
        reply, :class:`ReplyTimeoutError` when the reply is late,
        :class:`ReplyTooLongError` when it passes ``max_reply`` bytes, and
        :class:`ConnectionClosedError` when the server closes before the
        reply is complete.
        """
        body = line.encode() if isinstance(line, str) else line
        if b"\n" in body:
            raise ValueError("a request is a single line: it must not contain LF")
        reply = await self._within(timeout, functools.partial(self._exchange, body + b"\n"))
        if self.is_error(reply):
            raise ServerError(reply)
        if not reply.endswith(b"\n"):
            raise ConnectionClosedError(closed_during(reply))
        return reply[:-2] if reply.endswith(b"\r\n") else reply[:-1]

    async def send(self, data: bytes) -> None:
        """Send raw bytes (any framing) and wait until the transport takes them."""
        self.writer.write(data)
        await self.writer.drain()

    async def read_reply(self, timeout: float | None = None) -> bytes:
        """The next reply line with its terminator; a partial line or b"" at end.

        Bounded like :meth:`request`: raises :class:`ReplyTimeoutError` and
        :class:`ReplyTooLongError`.
        """
        return await self._within(timeout, self._read_line)

    def is_error(self, reply: bytes) -> bool:
        """Whether ``reply`` is the server's ``ERR`` line (see :func:`is_error_reply`)."""
        return is_error_reply(reply, self.suffix)

    def half_close(self) -> None:
        """Signal end of input; the server answers what it has, then closes."""
        self.writer.write_eof()

    async def finish(self) -> None:
        """End a conversation whose every line was answered, then close.

        Half-closes and waits up to FINISH_TIMEOUT for the server to close:
        anything it sends meanwhile answers no line, and raises
        :class:`ExtraReplyError` (the connection is then aborted). Over TLS,
        which has no half-close, it only closes.
        """
        if self._abandoned is None and self.writer.can_write_eof():
            try:
                self.half_close()
                async with asyncio.timeout(FINISH_TIMEOUT):
                    extra = await self.reader.read(1)
            except (TimeoutError, OSError):
                extra = b""  # still open, or reset: nothing more came to be read
            if extra:
                self.abort()
                raise ExtraReplyError("the server sent more replies than lines were sent")
        await self.close()

    async def close(self) -> None:
        """Close the connection once what was sent is flushed.

        A server that takes none of it for the client's ``timeout`` is
        dropped with :meth:`abort`.
        """
        self.writer.close()
        try:
            async with asyncio.timeout(self.timeout):
                await self.writer.wait_closed()
        except TimeoutError:
            self.abort()
        except (ConnectionError, ssl.SSLError):
            pass  # the server reset it first: nothing is left to do

    def abort(self) -> None:
        """Close the connection at once, dropping whatever was not sent yet."""
        self.writer.transport.abort()

    async def _exchange(self, data: bytes) -> bytes:
        await self.send(data)
        return await self._read_line()

    async def _read_line(self) -> bytes:
        try:
            return await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial  # the end of the stream: a partial line, or b""
        except asyncio.LimitOverrunError:
            # The reader stops at its limit (max_reply), so memory stays bounded.
            self._abandon("overlong reply")
            raise ReplyTooLongError(f"reply longer than {self.max_reply} bytes") from None

    async def _within(self, timeout: float | None, operation: Callable[[], Awaitable[T]]) -> T:
        if self._abandoned is not None:
            raise ConnectionClosedError(f"connection closed after an earlier {self._abandoned}")
        seconds = self.timeout if timeout is None else timeout
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                return await operation()
        except TimeoutError:
            if not deadline.expired():
                raise  # the socket's own timeout, not ours
            self._abandon("timeout")
            raise ReplyTimeoutError(f"no reply within {seconds:g} s") from None

    def _abandon(self, reason: str) -> None:
        """Drop a connection whose next reply could belong to an earlier request."""
        self._abandoned = reason
        self.abort()

    async def __aenter__(self) -> EchoClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def closed_during(partial: bytes) -> str:
    """Why a reply ended early: the server closed before it, or in its middle."""
    if not partial:
        return "the server closed the connection before replying"
    return f"the server closed the connection after {len(partial)} bytes of a reply"


@dataclass(frozen=True)
class Endpoint:
    """Where a server listens, and whether to speak TLS to it."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    unix: str | None = None
    """A Unix socket path; host and port are ignored when it is set."""
    tls: ssl.SSLContext | None = None

    def __str__(self) -> str:
        return f"unix:{self.unix}" if self.unix else f"{self.host}:{self.port}"

    async def connect(
        self,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_reply: int = DEFAULT_MAX_REPLY,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        suffix: str = DEFAULT_SUFFIX,
    ) -> EchoClient:
        """A client connected to this endpoint (see :func:`connect`)."""
        if max_reply < 2:
            raise ValueError(f"max_reply must be at least 2 bytes, not {max_reply}")
        deadline = asyncio.timeout(connect_timeout)
        stage = "connection"
        try:
            async with deadline:
                # A line of `limit` bytes before its LF is the longest the reader returns.
                reader, writer = await self._open(limit=max_reply - 1)
                if self.tls is not None:
                    stage = "TLS handshake"
                    await self._start_tls(writer, self.tls)
        except TimeoutError:
            if not deadline.expired():
                raise
            # A plain echo server answers the TLS hello with an echo of it that
            # starts like a TLS record, so the handshake waits for the rest.
            hint = " (is it a TLS server?)" if stage == "TLS handshake" else ""
            raise TimeoutError(f"no {stage} within {connect_timeout:g} s{hint}") from None
        return EchoClient(reader, writer, timeout=timeout, max_reply=max_reply, suffix=suffix)

    async def _start_tls(self, writer: asyncio.StreamWriter, context: ssl.SSLContext) -> None:
        try:
            await writer.start_tls(context, server_hostname=None if self.unix else self.host)
        except BaseException:
            writer.transport.abort()  # a connection without its handshake is of no use
            raise

    async def _open(self, limit: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.unix is not None:
            return await asyncio.open_unix_connection(self.unix, limit=limit)
        return await asyncio.open_connection(self.host, self.port, limit=limit)


async def connect(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    unix: str | None = None,
    ssl: ssl.SSLContext | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    max_reply: int = DEFAULT_MAX_REPLY,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    suffix: str = DEFAULT_SUFFIX,
) -> EchoClient:
    """Open a connection to an echo server at ``host:port``.

    ``unix`` connects to a Unix socket path instead; ``ssl`` speaks TLS.
    ``timeout`` is the client's default request timeout in seconds, and
    ``connect_timeout`` bounds connecting, the TLS handshake included,
    raising :class:`TimeoutError`; ``None`` waits forever.
    ``max_reply`` is the longest reply accepted, terminator included: the
    default fits a server with the default ``max_line`` and suffix; for
    others use :func:`reply_bound`. ``suffix`` is the server's (an ``ERR``
    line never ends with it, an echo does).
    """
    endpoint = Endpoint(host, port, unix, ssl)
    return await endpoint.connect(timeout, max_reply, connect_timeout, suffix)
