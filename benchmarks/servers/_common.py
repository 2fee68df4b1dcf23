"""What every baseline server shares: the protocol's reply, flags, readiness, limits.

The baselines differ only in how they multiplex connections; the reply rule,
the command line and the start-up contract live here once, so that a
difference in the numbers is a difference in the design.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable
from typing import NoReturn, Protocol

SUFFIX = b"_SB"
# One read takes up to this much: a 16 KiB line in one read, not sixteen.
RECV_SIZE = 65536
# The listen queue when --backlog is not given. The benchmark suite passes
# one --backlog to every server, aioecho included, so that all of them queue
# a burst of connects alike. The tutorial's listen(5) would make the kernel
# drop connection attempts of a burst, and a load of 1000 connections would
# measure SYN retries instead of the server.
BACKLOG = 4096


def reply(line: bytes) -> bytes:
    """The answer to one complete line: ``upper(body) + _SB + terminator`` (CRLF kept)."""
    cut = 2 if line.endswith(b"\r\n") else 1
    return line[:-cut].upper() + SUFFIX + line[-cut:]


def answer_lines(buffer: bytes) -> tuple[bytes, bytes]:
    """The replies to every complete line in ``buffer``, and the partial line left over."""
    end = buffer.rfind(b"\n") + 1
    if not end:
        return b"", buffer
    lines = buffer[:end].splitlines(keepends=True)
    return b"".join(map(reply, lines)), buffer[end:]


def echo_once(conn: socket.socket, pending: dict[socket.socket, bytes]) -> bool:
    """Read what ``conn`` has and answer its complete lines (``pending`` keeps each
    connection's unterminated line); False when the peer is gone, so that the
    caller stops watching it and then calls :func:`forget`."""
    try:
        data = conn.recv(RECV_SIZE)
        if data:
            replies, pending[conn] = answer_lines(pending[conn] + data)
            conn.sendall(replies)
            return True
    except ConnectionError:
        pass
    return False


def forget(conn: socket.socket, pending: dict[socket.socket, bytes]) -> None:
    """Close a connection :func:`echo_once` found ended."""
    conn.close()
    del pending[conn]


def parser(description: str | None) -> argparse.ArgumentParser:
    """``--host``, ``--port`` (0 = any free port), ``--backlog`` and ``--ready-fd``,
    the flags every baseline takes."""
    cli = argparse.ArgumentParser(description=description)
    cli.add_argument("--host", default="127.0.0.1")
    cli.add_argument("--port", type=int, default=0)
    cli.add_argument("--backlog", type=int, default=BACKLOG, help="listen queue length")
    cli.add_argument(
        "--ready-fd",
        type=int,
        metavar="N",
        help="once listening, write the readiness line to descriptor N, as aioecho does",
    )
    return cli


def parse_args(description: str | None, loops: bool = False) -> argparse.Namespace:
    """The flags of :func:`parser`; with ``loops``, ``--loop asyncio|uvloop`` too."""
    cli = parser(description)
    if loops:
        cli.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    return cli.parse_args()


def raise_fd_limit() -> None:
    """Soft open-file limit to the hard one.

    With the default soft limit of 1024 every server would fail with EMFILE
    near 1000 connections; raised, the select server fails where select
    itself stops (FD_SETSIZE), which is the limit the benchmark reports.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A bound, listening TCP socket with address reuse."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def announce(host: str, port: int, ready_fd: int | None) -> None:
    """Where the server listens: a line for people on stdout and, with ``--ready-fd``,
    aioecho's readiness line (:mod:`aioecho.process.readiness`), which the
    benchmarks' launcher waits for. Written here rather than imported, so that
    a baseline runs none of aioecho's code."""
    print(f"listening on {host}:{port}", flush=True)
    if ready_fd is not None:
        ready = {
            "pid": os.getpid(),
            "addresses": [[host, port]],
            "unix": None,
            "metrics": [],
            "workers": 1,
            "loop": "baseline",
            "framing": "line",
            "tls": False,
        }
        with open(ready_fd, "w", closefd=True) as pipe:
            pipe.write(json.dumps(ready) + "\n")


def exit_on_sigterm() -> None:
    """SIGTERM ends the server like Ctrl-C would, through ``finally`` blocks, with status 0."""

    def stop(signum: int, frame: object) -> NoReturn:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)


class Poller(Protocol):
    """What ``select.poll()`` and ``select.epoll()`` share."""

    def register(self, fd: int, eventmask: int = ..., /) -> None: ...
    def unregister(self, fd: int, /) -> None: ...
    def poll(self, timeout: float | None = ..., /) -> list[tuple[int, int]]: ...


def serve_polled(server: socket.socket, poller: Poller, readable: int) -> None:
    """Accept and echo forever with ``poll``-style ``poller`` (select.poll or
    select.epoll, level-triggered), waiting for ``readable`` events."""
    poller.register(server.fileno(), readable)
    connections: dict[int, socket.socket] = {}
    pending: dict[socket.socket, bytes] = {}
    while True:
        for fd, _ in poller.poll():
            if fd == server.fileno():
                conn, _ = server.accept()
                poller.register(conn.fileno(), readable)
                connections[conn.fileno()] = conn
                pending[conn] = b""
                continue
            conn = connections[fd]
            if not echo_once(conn, pending):
                poller.unregister(fd)  # before close: a closed descriptor is no longer known
                del connections[fd]
                forget(conn, pending)


def serve_forever(serve: Callable[[socket.socket], None], description: str | None) -> None:
    """The start every one-thread baseline shares: its flags, the open-file
    limit, SIGTERM, a non-blocking listening socket announced; then ``serve``."""
    args = parse_args(description)
    raise_fd_limit()
    exit_on_sigterm()
    with listen(args.host, args.port, args.backlog) as server:
        server.setblocking(False)
        host, port = server.getsockname()[:2]
        announce(host, port, args.ready_fd)
        serve(server)
