"""TLS, Unix sockets, IPv6, several addresses and Unicode, on both loops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import ssl
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import aioecho
from aioecho import EchoServer
from aioecho.core import (
    RECEIVE_BUFFER_SIZE,
    REPLY_SLICE,
    TLS_LAYER_HELD,
    TLS_READ_HIGH_WATER,
    WRITE_HIGH_WATER,
)
from aioecho.sockets.binding import BindError
from aioecho.tls import client_context

from .support import (
    Certificates,
    aioecho_command,
    exchange,
    log_line,
    read_to_end,
    refusal_in_process,
    serve_in_subprocess,
    stop,
)


def tls_options(certificates: Certificates, **options: object) -> dict[str, object]:
    return {"tls_cert": str(certificates.cert), "tls_key": str(certificates.key), **options}


# -- TLS ---------------------------------------------------------------------


async def test_tls_round_trip(certificates: Certificates) -> None:
    async with await aioecho.start_server(port=0, **tls_options(certificates)) as server:
        tls = client_context(str(certificates.ca))
        async with await aioecho.connect(*server.addresses[0], ssl=tls) as client:
            assert await client.request("secret") == b"SECRET_SB"
            await client.send(b"a\r\nb\n" * 1000)
            for _ in range(1000):
                assert await client.read_reply() == b"A_SB\r\n"
                assert await client.read_reply() == b"B_SB\n"


async def test_an_unfinished_handshake_is_dropped_and_frees_its_slot(
    certificates: Certificates,
) -> None:
    options = tls_options(certificates, tls_handshake_timeout=0.2, max_connections=1)
    async with await aioecho.start_server(port=0, **options) as server:
        reader, writer = await asyncio.open_connection(*server.addresses[0])
        assert await reader.read() == b""  # the server gave up on the silent client
        writer.close()
        while server.stats.connections_active:  # noqa: ASYNC110 - a counter, no event
            await asyncio.sleep(0.001)
        tls = client_context(str(certificates.ca))
        async with await aioecho.connect(*server.addresses[0], ssl=tls) as client:
            assert await client.request("after") == b"AFTER_SB"


async def test_plain_text_to_a_tls_server_is_refused_without_harm(
    certificates: Certificates,
) -> None:
    async with await aioecho.start_server(port=0, **tls_options(certificates)) as server:
        reader, writer = await asyncio.open_connection(*server.addresses[0])
        writer.write(b"hello in the clear\n")
        assert await read_to_end(reader) == b""  # closed or reset, never answered
        writer.close()
        tls = client_context(str(certificates.ca))
        async with await aioecho.connect(*server.addresses[0], ssl=tls) as client:
            assert await client.request("fine") == b"FINE_SB"


async def test_an_unknown_ca_is_rejected_by_the_client(certificates: Certificates) -> None:
    async with await aioecho.start_server(port=0, **tls_options(certificates)) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await aioecho.connect(*server.addresses[0], ssl=client_context())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_tls_from_the_command_line(certificates: Certificates, loop: str) -> None:
    tls = ("--tls-cert", str(certificates.cert), "--tls-key", str(certificates.key))
    flags = ("--loop", loop, *tls)
    with serve_in_subprocess(*flags) as server:
        assert server.ready.tls
        port = str(server.port)
        for trust in (["--tls-ca", str(certificates.ca)], ["--tls", "--tls-insecure"]):
            result = subprocess.run(
                aioecho_command("client", "--port", port, *trust),
                input=b"over tls\n",
                capture_output=True,
                timeout=30,
            )
            assert (result.returncode, result.stdout) == (0, b"OVER TLS_SB\n"), result.stderr
        unverified = subprocess.run(
            aioecho_command("client", "--port", port, "--tls"),
            input=b"x\n",
            capture_output=True,
            timeout=30,
        )
        server.process.terminate()
        assert server.process.wait(timeout=20) == 0
    assert unverified.returncode == 1
    assert b"CERTIFICATE_VERIFY_FAILED" in unverified.stderr
    assert len(unverified.stderr.splitlines()) == 1


def test_unreadable_tls_files_exit_2(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    result = subprocess.run(
        aioecho_command("--tls-cert", missing, "--tls-key", missing),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        b"aioecho serve: error: --tls-cert/--tls-key: No such file or directory (see --help)"
    ]


# The most one read of the SSL layer takes (256 KiB on both loops): it may
# come on top of the encrypted input held when the layer pauses its reading.
SSL_READ_SIZE = 256 * 1024


async def test_a_tls_client_that_never_reads_is_counted_with_its_ssl_buffers(
    certificates: Certificates,
) -> None:
    async with await aioecho.start_server(port=0, **tls_options(certificates)) as server:
        tls = client_context(str(certificates.ca))
        reader, writer = await asyncio.open_connection(
            *server.addresses[0], ssl=tls, server_hostname="localhost"
        )
        writer.write(b"hi\n")
        assert await reader.readline() == b"HI_SB\n"
        server.check_timeouts()
        assert server.stats.bytes_buffered == 0  # idle: fixed costs, not counted
        # Past its reader's limit the client reads nothing; it writes until
        # the server has stopped reading it and the kernel's buffers are full.
        while writer.transport.get_write_buffer_size() < SSL_READ_SIZE:
            writer.write(b"x\n" * 8192)
            # The server runs on this loop: give it a turn. From Python 3.12 on,
            # wait_for() awaits drain() in place, and a drain() with nothing to
            # wait for returns without ever yielding to the loop.
            await asyncio.sleep(0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(writer.drain(), 0.01)
        server.check_timeouts()
        held = server.stats.bytes_buffered
        assert held >= TLS_LAYER_HELD + WRITE_HIGH_WATER
        # Replies over the high-water mark by a slice at most, a read of
        # input, and the SSL layer's encrypted input, bounded.
        most = WRITE_HIGH_WATER + REPLY_SLICE + RECEIVE_BUFFER_SIZE
        assert held <= TLS_LAYER_HELD + most + TLS_READ_HIGH_WATER + SSL_READ_SIZE
        writer.transport.abort()


# -- Unix sockets ------------------------------------------------------------


async def test_unix_socket_serves_and_is_removed_on_shutdown(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    async with await aioecho.start_server(unix=path) as server:
        assert server.unix_path == path
        async with await aioecho.connect(unix=path) as client:
            assert await client.request("local") == b"LOCAL_SB"
    assert not os.path.exists(path)


async def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    crashed = socket.socket(socket.AF_UNIX)
    crashed.bind(path)  # what a crashed server leaves: a socket file nobody listens on
    crashed.close()
    async with await aioecho.start_server(unix=path), await aioecho.connect(unix=path) as client:
        assert await client.request("fresh") == b"FRESH_SB"


async def test_a_live_servers_socket_is_not_taken(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    async with await aioecho.start_server(unix=path):
        with pytest.raises(BindError, match="in use by a running server"):
            await aioecho.start_server(unix=path)
        async with await aioecho.connect(unix=path) as client:
            assert await client.request("still mine") == b"STILL MINE_SB"


async def test_a_regular_file_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("precious")
    with pytest.raises(BindError, match="exists and is not a socket"):
        await aioecho.start_server(unix=str(path))
    assert path.read_text() == "precious"


async def test_stopping_leaves_a_socket_file_bound_since_by_another_server(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "echo.sock")
    first = await aioecho.start_server(unix=path)
    os.unlink(path)  # its file is gone (by hand, by a cleanup job) while it serves
    async with await aioecho.start_server(unix=path):
        await first.shutdown()
        async with await aioecho.connect(unix=path) as client:
            assert await client.request("second") == b"SECOND_SB"
    assert not Path(path).exists()  # the second server removes its own file


def full_listener(path: str) -> tuple[socket.socket, list[socket.socket]]:
    """A listener at ``path`` that never accepts, and the connections that fill its queue."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(0)
    queued: list[socket.socket] = []
    while True:
        client = socket.socket(socket.AF_UNIX)
        client.setblocking(False)
        try:
            client.connect(path)
        except BlockingIOError:  # the queue is full: the next connect would block
            client.close()
            return listener, queued
        queued.append(client)


async def test_a_socket_whose_listener_is_full_counts_as_in_use(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    listener, queued = full_listener(path)
    try:
        with pytest.raises(BindError) as refused:
            await aioecho.start_server(unix=path)
    finally:
        for sock in (listener, *queued):
            sock.close()
    assert (
        str(refused.value)
        == f"cannot listen on unix:{path}: in use by a running server (its queue is full)"
    )
    assert stat.S_ISSOCK(os.stat(path).st_mode)  # the live listener's file stays


def test_a_full_listener_is_one_line_and_exit_1_from_the_command_line(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    listener, queued = full_listener(path)
    try:
        result = subprocess.run(aioecho_command("--unix", path), capture_output=True, timeout=30)
    finally:
        for sock in (listener, *queued):
            sock.close()
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.endswith(b"in use by a running server (its queue is full)")


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Umask 000 for the test: every bit a file is created with stays."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
@pytest.mark.parametrize(("options", "mode"), [({}, 0o600), ({"unix_mode": 0o660}, 0o660)])
async def test_the_socket_file_mode_is_set_whatever_the_umask(
    tmp_path: Path, options: dict[str, int], mode: int
) -> None:
    path = str(tmp_path / "echo.sock")
    async with await aioecho.start_server(unix=path, **options):
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
        async with await aioecho.connect(unix=path) as client:
            assert await client.request("mine") == b"MINE_SB"


@pytest.mark.usefixtures("open_umask")  # the server inherits it
@pytest.mark.parametrize("workers", ["1", "2"])
def test_unix_mode_from_the_command_line_under_umask_000(tmp_path: Path, workers: str) -> None:
    path = str(tmp_path / "echo.sock")
    with serve_in_subprocess("--unix", path, "--unix-mode", "0640", "--workers", workers) as server:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        code, log = stop(server)
    assert code == 0, log


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("999", "not a file mode: '999' (octal, as chmod takes it: 600, 660)"),
        ("1777", "not a file mode: 0o1777 (0 to 777 in octal)"),
        ("rw", "not a file mode: 'rw' (octal, as chmod takes it: 600, 660)"),
        ("0o", "not a file mode: '0o' (octal, as chmod takes it: 600, 660)"),
    ],
)
def test_a_bad_unix_mode_is_one_line_and_exit_2(
    value: str, complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [line] = refusal_in_process(capsys, "--unix", "x.sock", "--unix-mode", value)
    assert line.endswith(complaint + " (see --help)")
    with pytest.raises(aioecho.ConfigError, match=re.escape(complaint)):
        aioecho.ServerConfig(unix_mode=value)  # type: ignore[arg-type]


def test_unix_socket_from_the_command_line(tmp_path: Path) -> None:
    path = str(tmp_path / "cli.sock")
    command = aioecho_command("--unix", path, "--log-level", "info")
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    assert process.stderr is not None
    assert f"serving on unix:{path}".encode() in process.stderr.readline()
    result = subprocess.run(
        aioecho_command("client", "--unix", path), input=b"via unix\n", capture_output=True
    )
    assert (result.returncode, result.stdout) == (0, b"VIA UNIX_SB\n")
    process.terminate()
    assert process.wait(timeout=20) == 0
    process.stderr.close()
    assert not Path(path).exists()


# -- IPv6 and several addresses ---------------------------------------------


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")


@needs_ipv6
@pytest.mark.echo_server(host="::1")
async def test_ipv6_loopback(echo_server: EchoServer) -> None:
    host, port = echo_server.addresses[0]
    assert host == "::1"
    assert await exchange((host, port), b"six\n") == b"SIX_SB\n"


@needs_ipv6
@pytest.mark.echo_server(host="::")
async def test_ipv6_any_address(echo_server: EchoServer) -> None:
    assert await exchange(("::1", echo_server.addresses[0][1]), b"any\n") == b"ANY_SB\n"


@needs_ipv6
@pytest.mark.echo_server(host=("127.0.0.1", "::1"))
async def test_several_hosts_share_one_port(echo_server: EchoServer) -> None:
    (host4, port4), (host6, port6) = echo_server.addresses
    assert (host4, host6) == ("127.0.0.1", "::1")
    assert port4 == port6
    for address in echo_server.addresses:
        assert await exchange(address, b"both\n") == b"BOTH_SB\n"


@needs_ipv6
def test_several_hosts_from_the_command_line() -> None:
    with serve_in_subprocess("--host", "127.0.0.1", "--host", "::1") as server:
        port = server.port
        assert server.ready.addresses == (("127.0.0.1", port), ("::1", port))
        line = log_line(server.process, b"serving on")
        assert f"serving on 127.0.0.1:{port}, [::1]:{port}".encode() in line
        server.process.terminate()
        assert server.process.wait(timeout=20) == 0


# -- Unicode -----------------------------------------------------------------


@pytest.mark.echo_server(unicode=True)
async def test_unicode_rules_per_character_invalid_bytes_untouched(echo_server: EchoServer) -> None:
    request = "straße\r\n".encode() + b"caf\xe9 latin-1\n" + "ǆemal\n".encode()
    request += b"\xff " + "été\n".encode()  # an invalid byte does not spoil its line
    reply = await exchange(echo_server.addresses[0], request)
    expected = b"STRASSE_SB\r\n" + b"CAF\xe9 LATIN-1_SB\n" + "ǄEMAL_SB\n".encode()
    assert reply == expected + b"\xff " + "ÉTÉ_SB\n".encode()


@pytest.mark.echo_server(unicode=True, framing="chunk")
async def test_unicode_in_chunk_framing(echo_server: EchoServer) -> None:
    reader, writer = await asyncio.open_connection(*echo_server.addresses[0])
    writer.write("grüße".encode())
    expected = "GRÜSSE_SB".encode()
    assert await reader.readexactly(len(expected)) == expected
    writer.close()


async def test_unicode_is_off_by_default(echo_server: EchoServer) -> None:
    assert await exchange(echo_server.addresses[0], "straße\n".encode()) == "STRAßE_SB\n".encode()
