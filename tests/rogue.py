"""Servers that break the protocol on purpose, to test the client against.

Each serves one connection from a thread with blocking sockets, so the same
server works for an async test on either loop and for a client subprocess.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# An endless line stops here, so that a client that keeps reading it (the
# bug under test) fails its test instead of exhausting the machine.
ENDLESS_CAP = 256 * 1024 * 1024
# What a bounded client may cost the server: its bound (64 KiB by default)
# plus what the kernel keeps in flight on loopback (about 4 MiB measured). A
# client that buffered 16 MiB before giving up, as aioecho's once did, fails.
ENDLESS_BOUNDED = 16 * 1024 * 1024

_CHUNK = 64 * 1024


@dataclass
class RogueServer:
    """Where the server listens, and what its one connection saw."""

    port: int
    sent: int = 0
    """Bytes sent to the client."""
    received: threading.Event = field(default_factory=threading.Event)
    """Set once a line (up to LF) arrived from the client."""
    finished: threading.Event = field(default_factory=threading.Event)
    """Set once the conversation is over (the client closed or reset)."""
    _connection: socket.socket | None = None


Behaviour = Callable[[socket.socket, RogueServer], None]


@contextlib.contextmanager
def rogue_server(behaviour: Behaviour) -> Iterator[RogueServer]:
    """Run ``behaviour`` on the first connection to a new server on a free port."""
    listener = socket.create_server(("127.0.0.1", 0))
    server = RogueServer(listener.getsockname()[1])

    def serve() -> None:
        with contextlib.suppress(OSError):  # the listener was shut down: no client came
            connection, _ = listener.accept()
            server._connection = connection
            with connection, contextlib.suppress(OSError):  # the client went away
                behaviour(connection, server)
        server.finished.set()

    thread = threading.Thread(target=serve, name="rogue-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        # Shutting a socket down wakes a thread blocked in accept() or recv().
        for sock in (listener, server._connection):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        thread.join()
        listener.close()


def endless_line(connection: socket.socket, server: RogueServer) -> None:
    """Send a line that never ends, as fast as the client takes it."""
    chunk = b"x" * _CHUNK
    while server.sent < ENDLESS_CAP:
        server.sent += connection.send(chunk)
    _read_until_closed(connection)


def closes_mid_reply(connection: socket.socket, server: RogueServer) -> None:
    """Answer the first line with ``HELL`` and close."""
    _read_line(connection, server)
    server.sent += connection.send(b"HELL")
    connection.shutdown(socket.SHUT_WR)
    _read_until_closed(connection)


def closes_without_reply(connection: socket.socket, server: RogueServer) -> None:
    """Read the first line and close without a word."""
    _read_line(connection, server)
    connection.shutdown(socket.SHUT_WR)
    _read_until_closed(connection)


def answers_in_plain_text(connection: socket.socket, server: RogueServer) -> None:
    """Answer the first line (a TLS hello, say) with a plain echo line, then listen on."""
    _read_line(connection, server)
    server.sent += connection.send(b"HELLO_SB\n")
    _read_until_closed(connection)


def streams_replies(connection: socket.socket, server: RogueServer) -> None:
    """Read nothing; send ``X_SB`` lines until the client goes (or ENDLESS_BOUNDED)."""
    lines = b"X_SB\n" * (_CHUNK // 5)
    while server.sent < ENDLESS_BOUNDED:
        server.sent += connection.send(lines)
    _read_until_closed(connection)


def silent(connection: socket.socket, server: RogueServer) -> None:
    """Read everything, answer nothing, never close."""
    _read_line(connection, server)
    _read_until_closed(connection)


def _read_line(connection: socket.socket, server: RogueServer) -> None:
    data = b""
    while b"\n" not in data:
        chunk = connection.recv(_CHUNK)
        if not chunk:
            return
        data += chunk
    server.received.set()


def _read_until_closed(connection: socket.socket) -> None:
    while connection.recv(_CHUNK):
        pass
