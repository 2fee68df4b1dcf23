"""Helpers shared by the tests: a server in a subprocess, certificates, raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from aioecho import EchoServer, cli
from aioecho.core import WRITE_HIGH_WATER
from aioecho.process.child import ChildServer
from aioecho.process.launch import LaunchError
from aioecho.process.launch import aioecho_command as aioecho_command

Address = tuple[str, int]


@contextlib.contextmanager
def serve_in_subprocess(
    *args: str, env: dict[str, str] | None = None, open_files: int | None = None
) -> Iterator[ChildServer]:
    """Start the CLI server (on a free port unless ``--unix``); yield once it is ready.

    ``open_files`` caps the child's descriptors (soft and hard limit alike).
    The child's stderr stays a pipe: tests read its log.
    """

    def limit_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    port = () if "--unix" in args else ("--port", "0")
    try:
        server = ChildServer.start(
            aioecho_command(*args, *port),
            follow_log=False,
            env={**os.environ, **(env or {})},
            preexec_fn=limit_files,
        )
    except LaunchError as exc:
        raise AssertionError(str(exc)) from None
    try:
        yield server
    finally:
        server.kill()
        assert server.process.stderr is not None
        server.process.stderr.close()


def refusal_from_a_real_start(
    *args: str, program: Sequence[str] = tuple(aioecho_command())
) -> list[str]:
    """The lines a program writes when it refuses ``args`` with exit code 2.

    ``program`` is the command line that starts it, ``python -m aioecho``
    unless another program's (a benchmark script's) is given.
    """
    result = subprocess.run([*program, *args], input=b"", capture_output=True, timeout=30)
    assert result.returncode == 2, result.stderr
    return result.stderr.decode().splitlines()


def refusal_in_process(
    capsys: pytest.CaptureFixture[str],
    *args: str,
    main: Callable[[list[str]], object] = cli.main,
) -> list[str]:
    """The lines the command line writes when it refuses ``args`` with exit code 2.

    It runs in this process: the command line's own code, without an
    interpreter start per refused flag. Tests of each kind of refusal run it
    in a child process as well, which adds what a real start adds. ``main``
    is another program's entry point, given its arguments (a benchmark script's).
    """
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    assert exited.value.code == 2
    return capsys.readouterr().err.splitlines()


def stop(server: ChildServer, sig: signal.Signals = signal.SIGTERM) -> tuple[int, bytes]:
    """Signal the server; its exit code and the rest of its log."""
    server.process.send_signal(sig)
    assert server.process.stderr is not None
    rest = server.process.stderr.read()
    return server.process.wait(timeout=20), rest


@dataclass(frozen=True)
class Certificates:
    """PEM files: a server certificate for 127.0.0.1, ::1 and localhost, its CA, another CA."""

    cert: Path
    key: Path
    ca: Path
    other_ca: Path  # a CA that did not issue the certificate


def issue_certificates(folder: Path) -> Certificates:
    """A test CA, a server certificate it issued, and an unrelated CA, written to ``folder``."""
    paths = Certificates(
        *(folder / name for name in ("cert.pem", "key.pem", "ca.pem", "other-ca.pem"))
    )
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "::1", "localhost")
    issued.cert_chain_pems[0].write_to_path(str(paths.cert))
    issued.private_key_pem.write_to_path(str(paths.key))
    ca.cert_pem.write_to_path(str(paths.ca))
    trustme.CA().cert_pem.write_to_path(str(paths.other_ca))
    return paths


async def exchange(address: Address, *sends: bytes) -> bytes:
    """Send each piece separately, half-close, return all until the server closes."""
    reader, writer = await asyncio.open_connection(*address)
    for piece in sends:
        writer.write(piece)
        await writer.drain()
    writer.write_eof()
    reply = await reader.read()
    writer.close()
    return reply


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    """What the server sends before closing; a reset ends it as well."""
    with contextlib.suppress(ConnectionResetError):
        return await reader.read()
    return b""


def never_reading_peer(address: Address) -> socket.socket:
    """A peer the server owes replies to and that reads none of them.

    A tiny receive window, sends until the kernel refuses more, and one reply
    seen (peeked, not read) ensure the replies are owed when the test goes on.
    Blocking: from a test whose server runs on its own loop, call it in a
    thread (``asyncio.to_thread``).
    """
    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.connect(address)
    hog.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            hog.send(b"x" * 65535 + b"\n")
    hog.setblocking(True)
    assert hog.recv(1, socket.MSG_PEEK) == b"X"
    return hog


async def until(condition: object) -> None:
    """Yield to the loop until ``condition()`` holds (the test timeout bounds it)."""
    assert callable(condition)
    # The server's counters are plain numbers with no event to wait on.
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.001)


def log_line(process: subprocess.Popen[bytes], text: bytes) -> bytes:
    """Read a server's log up to the first line holding ``text``; that line."""
    return log_until(process, text).splitlines(keepends=True)[-1]


def log_until(process: subprocess.Popen[bytes], text: bytes) -> bytes:
    """Read a server's log up to the first line holding ``text``; all of it."""
    assert process.stderr is not None
    seen = b""
    for line in process.stderr:
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"no {text!r} in the log: {seen!r}")


# The line rules (DESIGN.md): requests as sent, and their replies. The batch
# transform and the servers over sockets are held to the same table.
LINE_RULES = [
    (b"hello\n", b"HELLO_SB\n"),
    (b"hi\r\n", b"HI_SB\r\n"),
    (b"\n", b"_SB\n"),
    (b"\r\n", b"_SB\r\n"),
    (b"a\nb\r\nc\n", b"A_SB\nB_SB\r\nC_SB\n"),
    (b"mid\rcr\n", b"MID\rCR_SB\n"),
    (b"\r_sb\n", b"\r_SB_SB\n"),
    (b"Mixed Case 123\n", b"MIXED CASE 123_SB\n"),
    ("straße ß\n".encode(), "STRAßE ß_SB\n".encode()),
    ("grüße\n".encode(), "GRüßE_SB\n".encode()),
    (b"nul\x00byte\n", b"NUL\x00BYTE_SB\n"),
]

FLOOD_LINE = b"x" * 63 + b"\n"


async def flood_until_held(server: EchoServer, address: Address) -> socket.socket:
    """A peer that sends lines and never reads, until the server has stopped reading it.

    The signal is the server's state, not a wait: the replies it holds for
    clients grew by its write high-water mark, past which it reads nothing
    more from a peer. A peer the server cuts off meanwhile ends it too.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel absorbs less
    sock.connect(address)
    sock.setblocking(False)
    start = server.stats.bytes_buffered
    chunk = FLOOD_LINE * 1024

    def held() -> bool:
        server.check_timeouts()  # refresh the count of unsent replies
        return server.stats.bytes_buffered >= start + WRITE_HIGH_WATER

    while not held():
        try:
            sock.send(chunk)
        except BlockingIOError:
            await asyncio.sleep(0.001)  # the server's turn: it reads, answers, blocks
        except OSError:  # cut off by the server
            break
    return sock
