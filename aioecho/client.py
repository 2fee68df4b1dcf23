"""An async client for the line protocol, for tests and applications."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass
from types import TracebackType

# Replies are at most a max-length line plus suffix and terminator; leave room
# for servers configured with a larger max_line than the default.
DEFAULT_REPLY_LIMIT = 16 * 1024 * 1024

ERROR_PREFIX = b"ERR "


class ServerError(Exception):
    """The server answered with an ``ERR`` line instead of an echo."""


class EchoClient:
    """One connection to an echo server; use :func:`connect` to make one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, line: str | bytes) -> bytes:
        """Send one line, return its reply without the terminator.

        Raises :class:`ServerError` on an ``ERR`` reply and
        :class:`ConnectionError` if the server closes before replying.
        """
        body = line.encode() if isinstance(line, str) else line
        if b"\n" in body:
            raise ValueError("a request is a single line: it must not contain LF")
        await self.send(body + b"\n")
        reply = await self.read_reply()
        if reply.startswith(ERROR_PREFIX):
            raise ServerError(reply.decode(errors="replace").rstrip("\r\n"))
        if not reply.endswith(b"\n"):
            raise ConnectionError("server closed the connection before replying")
        return reply[:-2] if reply.endswith(b"\r\n") else reply[:-1]

    async def send(self, data: bytes) -> None:
        """Send raw bytes (any framing) and wait until the transport takes them."""
        self.writer.write(data)
        await self.writer.drain()

    async def read_reply(self) -> bytes:
        """The next reply line with its terminator; a partial line or b"" at end."""
        return await self.reader.readline()

    def half_close(self) -> None:
        """Signal end of input; the server answers what it has, then closes."""
        self.writer.write_eof()

    async def close(self) -> None:
        """Close the connection."""
        self.writer.close()
        # The server may already have reset it: nothing is left to do then.
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def __aenter__(self) -> EchoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


@dataclass(frozen=True)
class Endpoint:
    """Where a server listens, and whether to speak TLS to it."""

    host: str = "127.0.0.1"
    port: int = 8088
    unix: str | None = None
    """A Unix socket path; host and port are ignored when it is set."""
    tls: ssl.SSLContext | None = None

    def __str__(self) -> str:
        return f"unix:{self.unix}" if self.unix else f"{self.host}:{self.port}"

    async def open(
        self, limit: int = DEFAULT_REPLY_LIMIT
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Asyncio streams to the server."""
        if self.unix is not None:
            return await asyncio.open_unix_connection(self.unix, limit=limit, ssl=self.tls)
        return await asyncio.open_connection(self.host, self.port, limit=limit, ssl=self.tls)

    def open_blocking(self) -> socket.socket:
        """A blocking socket to the server, for synchronous clients."""
        if self.unix is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.unix)
        else:
            sock = socket.create_connection((self.host, self.port))
        if self.tls is None:
            return sock
        return self.tls.wrap_socket(sock, server_hostname=None if self.unix else self.host)


async def connect(
    host: str = "127.0.0.1",
    port: int = 8088,
    *,
    unix: str | None = None,
    ssl: ssl.SSLContext | None = None,
    reply_limit: int = DEFAULT_REPLY_LIMIT,
) -> EchoClient:
    """Open a connection to an echo server at ``host:port``.

    ``unix`` connects to a Unix socket path instead; ``ssl`` speaks TLS.
    """
    reader, writer = await Endpoint(host, port, unix, ssl).open(reply_limit)
    return EchoClient(reader, writer)
