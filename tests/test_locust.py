"""The Locust integration: its wire checks in-process, Locust itself in subprocesses.

Importing Locust imports gevent, which monkey-patches the standard library of
the whole process; everything that imports Locust therefore runs in a child
process, never in pytest's.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aioecho.locust import wire
from aioecho.locust.wire import (
    PAYLOADS,
    ConnectFailed,
    ConnectionLost,
    EchoConnection,
    ReplyMismatch,
    ReplyTimeout,
    Target,
    TargetError,
    Trust,
)

from .extras import missing
from .support import Certificates, ChildServer, serve_in_subprocess

if (reason := missing("locust", "locust")) is not None:
    pytest.skip(reason, allow_module_level=True)

LOCUSTFILE = Path(__file__).resolve().parent.parent / "benchmarks" / "locustfile.py"
USERS = 20
# A master's run ends when the test has seen what it needs in the server's
# counters, logged every STATS_SECONDS: it then stops the master as an operator
# would (SIGTERM), and the master prints its --json summary once its workers'
# final reports are in (the locustfile has it wait for them). Only if that
# never comes does the run end at RUN_TIME.
STATS_SECONDS = 0.1
RUN_TIME = "30s"
# The users pause between lines (--wait-time): the load is not the subject
# here, and on a loaded machine Locust's own messages must not queue behind it.
WAIT_SECONDS = 0.05
# A pause longer than any run: each user sends one line, then waits to be stopped.
ONE_LINE_EACH = 600.0
# On quit a worker lets each user finish what it is doing (--stop-timeout): a
# user that has begun to connect or to send a line reports it, never half of it.
STOP_TIMEOUT = 10
# Once stopped, Locust needs the users' last requests and its workers' final reports.
LOCUST_DEADLINE = STOP_TIMEOUT + 20
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def echo_server() -> Iterator[ChildServer]:
    with serve_in_subprocess() as server:
        yield server


@pytest.fixture(scope="module")
def tls_server(certificates: Certificates) -> Iterator[ChildServer]:
    with serve_in_subprocess(
        f"--tls-cert={certificates.cert}", f"--tls-key={certificates.key}"
    ) as server:
        yield server


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A bare listening socket: the test plays a misbehaving server by hand."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock


def target_of(sock: socket.socket, scheme: str = "tcp") -> Target:
    host, port = sock.getsockname()[:2]
    return Target(scheme, host, port)


# --- targets, bodies, replies -------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("tcp://127.0.0.1:8088", Target("tcp", "127.0.0.1", 8088)),
        ("tcp://[::1]:9000", Target("tcp", "::1", 9000)),
        ("tcp://echo.example:1", Target("tcp", "echo.example", 1)),
        ("tls://echo.example:8443", Target("tls", "echo.example", 8443)),
        ("tls://[::1]:8443", Target("tls", "::1", 8443)),
    ],
)
def test_parse_target(url: str, expected: Target) -> None:
    assert wire.parse_target(url) == expected
    assert str(expected) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, "no target"),
        ("", "no target"),
        ("127.0.0.1:8088", "no scheme"),
        ("http://127.0.0.1:8088", "unsupported scheme 'http'"),
        ("ssl://127.0.0.1:8088", "unsupported scheme 'ssl'"),
        ("tcp://127.0.0.1", "non-zero port"),
        ("tcp://127.0.0.1:0", "non-zero port"),
        ("tcp://:8088", "needs both a host"),
        ("tcp://127.0.0.1:99999", "out of range"),
        ("tcp://::1:8088", "could not be cast"),
        ("tcp://[::1:8088", "Invalid IPv6 URL"),
        ("tcp://127.0.0.1:8088/path", "parts an echo target cannot use"),
        ("tls://user@127.0.0.1:8088", "parts an echo target cannot use"),
    ],
)
def test_parse_target_rejects(url: str | None, reason: str) -> None:
    with pytest.raises(TargetError, match="expected tcp://HOST:PORT or tls://HOST:PORT") as caught:
        wire.parse_target(url)
    assert reason in str(caught.value)


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("size", [0, 1, 45, 1000])
def test_make_body_is_one_line_of_the_size(payload: str, size: int) -> None:
    body = wire.make_body(size, payload, random.Random(size))  # type: ignore[arg-type]
    assert len(body) == size
    wire.check_body(body)


def test_random_bodies_cover_every_byte_but_cr_and_lf() -> None:
    body = wire.make_body(100_000, "random", random.Random(1))
    assert set(body) == set(range(256)) - {ord("\n"), ord("\r")}
    assert body != wire.make_body(100_000, "random", random.Random(2))


def test_text_bodies_vary_and_have_lowercase_for_the_server_to_change() -> None:
    rng = random.Random(3)
    bodies = {wire.make_body(64, "text", rng) for _ in range(10)}
    assert len(bodies) > 1
    assert all(body.isascii() and body.upper() != body for body in bodies)


@pytest.mark.parametrize("body", [b"two\nlines", b"ends in CR\r"])
def test_check_body_refuses_what_is_not_one_line(body: bytes) -> None:
    with pytest.raises(ValueError, match="must not"):
        wire.check_body(body)


# --- one connection against the real server ------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("terminator", [b"\n", b"\r\n"])
def test_replies_of_the_real_server_pass(
    echo_server: ChildServer, payload: str, terminator: bytes
) -> None:
    target = Target("tcp", echo_server.host, echo_server.port)
    connection = EchoConnection.open(target, TIMEOUT)
    rng = random.Random(7)
    try:
        for size in (0, 1, 64, 35_000):
            body = wire.make_body(size, payload, rng)  # type: ignore[arg-type]
            expected = wire.expected_reply(body, b"_SB", terminator)
            assert connection.request(body + terminator, expected, TIMEOUT) == expected
    finally:
        connection.close()


def test_a_wrong_suffix_is_a_mismatch_from_the_first_differing_byte(
    echo_server: ChildServer,
) -> None:
    target = Target("tcp", echo_server.host, echo_server.port)
    connection = EchoConnection.open(target, TIMEOUT)
    try:
        with pytest.raises(ReplyMismatch) as caught:
            connection.request(b"hello\n", wire.expected_reply(b"hello", b"_XX", b"\n"), TIMEOUT)
    finally:
        connection.close()
    assert str(caught.value) == (
        "reply differs at byte 6 (expected 9 bytes, got 9): expected b'XX\\n', got b'SB\\n'"
    )
    assert repr(caught.value) == f"ReplyMismatch: {caught.value}"


# --- TLS -------------------------------------------------------------------------


@pytest.mark.parametrize("insecure", [False, True], ids=["ca", "insecure"])
def test_tls_replies_pass_with_the_ca_or_without_checks(
    tls_server: ChildServer, certificates: Certificates, insecure: bool
) -> None:
    # Insecure gives no CA file: the pass shows the system's CAs were not consulted.
    trust = Trust(insecure=True) if insecure else Trust(str(certificates.ca))
    target = Target("tls", tls_server.host, tls_server.port)
    connection = EchoConnection.open(target, TIMEOUT, trust)
    with contextlib.closing(connection):
        for size in (0, 35_000):
            body = wire.make_body(size, "random", random.Random(size))
            expected = wire.expected_reply(body, b"_SB", b"\n")
            assert connection.request(body + b"\n", expected, TIMEOUT) == expected


def test_a_certificate_from_another_ca_fails_verification(
    tls_server: ChildServer, certificates: Certificates
) -> None:
    target = Target("tls", tls_server.host, tls_server.port)
    with pytest.raises(ConnectFailed) as caught:
        EchoConnection.open(target, TIMEOUT, Trust(str(certificates.other_ca)))
    assert str(caught.value) == (
        f"TLS handshake with {target} failed: certificate verification failed:"
        " unable to get local issuer certificate"
    )


def test_a_missing_ca_file_fails_before_connecting(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConnectFailed) as caught:
        # Port 1: the CA file is loaded first, so nothing is ever connected to.
        EchoConnection.open(Target("tls", "127.0.0.1", 1), TIMEOUT, Trust(str(missing)))
    assert str(caught.value) == (
        f"connect to tls://127.0.0.1:1 failed: cannot load the CA file {str(missing)!r}:"
        " [Errno 2] No such file or directory"
    )


def test_a_server_without_tls_fails_the_handshake(listener: socket.socket) -> None:
    def answer_in_plain_text() -> None:
        peer, _ = listener.accept()
        # The client may reset the connection when it gives up.
        with peer, contextlib.suppress(ConnectionResetError):
            peer.sendall(b"ERR not TLS\n")
            while peer.recv(4096):  # the client hello, then the client giving up
                pass

    server = threading.Thread(target=answer_in_plain_text)
    server.start()
    target = target_of(listener, "tls")
    try:
        with pytest.raises(ConnectFailed) as caught:
            EchoConnection.open(target, TIMEOUT, Trust(insecure=True))
    finally:
        server.join(TIMEOUT)
    # OpenSSL's words, without the line of C source that would split Locust's rows.
    assert str(caught.value).startswith(f"TLS handshake with {target} failed: [SSL: ")
    assert "_ssl.c" not in str(caught.value)


def test_a_handshake_without_answer_times_out(listener: socket.socket) -> None:
    # The kernel completes the TCP handshake from the listen queue; TLS gets no answer.
    target = target_of(listener, "tls")
    with pytest.raises(ConnectFailed) as caught:
        EchoConnection.open(target, 0.2, Trust(insecure=True))
    assert str(caught.value) == f"connect to {target} timed out after 0.2 s"


# A TLS record header announcing 16 KiB, then its first bytes: one byte a
# DRIP_SECONDS, never a whole record, for at most about 20 s.
HANDSHAKE_DRIP = b"\x16\x03\x03\x40\x00\x02" + bytes(194)
DRIP_SECONDS = 0.1
# Ten drips: a timeout that restarts with each byte would never expire.
DRIP_TIMEOUT = 1.0


def drip_a_handshake(listener: socket.socket, stop: threading.Event) -> None:
    peer, _ = listener.accept()
    with peer, contextlib.suppress(OSError):
        for byte in HANDSHAKE_DRIP:
            if stop.wait(DRIP_SECONDS):
                return
            peer.sendall(bytes([byte]))


@pytest.mark.parametrize("patched", [True, False], ids=["gevent", "plain"])
def test_a_dripping_handshake_times_out_within_the_connect_timeout(
    listener: socket.socket, patched: bool
) -> None:
    # In a child: gevent's patches, under which each byte used to restart the timeout.
    target = target_of(listener, "tls")
    code = f"""if True:
        if {patched}:
            from gevent import monkey
            monkey.patch_all()
        from aioecho.locust.wire import ConnectFailed, EchoConnection, Target, Trust
        try:
            EchoConnection.open(Target("tls", "{target.host}", {target.port}), {DRIP_TIMEOUT},
                                Trust(insecure=True))
        except ConnectFailed as exc:
            print(exc)
    """
    stop = threading.Event()
    server = threading.Thread(target=drip_a_handshake, args=(listener, stop))
    server.start()
    try:
        printed = run_python(code)
    finally:
        stop.set()
        server.join()
    assert printed == f"connect to {target} timed out after {DRIP_TIMEOUT:g} s"


# --- one connection against a server played by hand ----------------------------


def test_an_error_line_is_a_mismatch_that_quotes_it(listener: socket.socket) -> None:
    connection = EchoConnection.open(target_of(listener), TIMEOUT)
    peer, _ = listener.accept()
    with peer, contextlib.closing(connection):
        peer.sendall(b"ERR line too long (max 4 bytes)\n")
        with pytest.raises(ReplyMismatch, match=r"server answered an error: b'ERR line too long"):
            connection.request(b"hello\n", b"HELLO_SB\n", TIMEOUT)


def test_a_reply_without_newline_fails_once_longer_than_expected(
    listener: socket.socket,
) -> None:
    connection = EchoConnection.open(target_of(listener), TIMEOUT)
    peer, _ = listener.accept()
    with peer, contextlib.closing(connection):
        peer.sendall(b"x" * 100)  # and keeps the connection open: no timeout may be needed
        with pytest.raises(ReplyMismatch, match=r"at byte 0 \(expected 9 bytes, got \d+\)"):
            connection.request(b"hello\n", b"HELLO_SB\n", 60)


def test_no_reply_times_out(listener: socket.socket) -> None:
    # The kernel completes the handshake from the listen queue; nobody answers.
    connection = EchoConnection.open(target_of(listener), TIMEOUT)
    with contextlib.closing(connection), pytest.raises(ReplyTimeout) as caught:
        connection.request(b"hello\n", b"HELLO_SB\n", 0.2)
    assert str(caught.value) == "timed out after 0.2 s waiting for the reply"


def test_a_close_before_the_whole_reply_is_a_lost_connection(listener: socket.socket) -> None:
    connection = EchoConnection.open(target_of(listener), TIMEOUT)
    peer, _ = listener.accept()
    with peer, contextlib.closing(connection):
        peer.sendall(b"HEL")
        peer.shutdown(socket.SHUT_WR)  # half-close: no reset, the request still goes out
        with pytest.raises(ConnectionLost, match="closed the connection after 3 of 9 bytes"):
            connection.request(b"hello\n", b"HELLO_SB\n", TIMEOUT)


def test_a_reset_is_a_lost_connection_with_the_os_error(listener: socket.socket) -> None:
    connection = EchoConnection.open(target_of(listener), TIMEOUT)
    peer, _ = listener.accept()
    # A zero linger time makes close() send RST instead of FIN.
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    with contextlib.closing(connection), pytest.raises(ConnectionLost) as caught:
        connection.request(b"hello\n", b"HELLO_SB\n", TIMEOUT)
    assert str(caught.value).startswith("connection lost: [Errno ")


def test_a_refused_connect_fails_with_the_os_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        target = target_of(sock)  # a port just freed: nothing listens on it now
    with pytest.raises(ConnectFailed, match=r"connect to tcp://127.0.0.1:\d+ failed: \[Errno "):
        EchoConnection.open(target, TIMEOUT)


# --- Locust itself, in child processes --------------------------------------------


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def locust_in_a_child() -> list[str]:
    """What one child process prints: the Locust modules loaded after importing aioecho's,
    whether gevent is loaded once ``EchoUser`` is asked for, and the tasks of subclasses.

    Importing Locust costs a second of CPU: the tests below read one child.
    """
    code = """if True:
        import sys
        def loaded():
            return sorted(m for m in sys.modules if m.split(".")[0] in ("gevent", "locust"))
        import aioecho, aioecho.locust, aioecho.locust.wire
        print(loaded())
        from aioecho.locust import EchoUser
        print("gevent" in loaded())

        from locust import task

        class Sized(EchoUser):
            line_size = 1000

        class Custom(Sized):
            @task
            def hello(self) -> None:
                self.echo(b"hello")

        print(Sized.tasks == [EchoUser.send_line], Custom.tasks == [Custom.hello])
    """
    return run_python(code).splitlines()


def test_importing_aioecho_leaves_gevent_and_locust_out(locust_in_a_child: list[str]) -> None:
    # The same probe sees them once EchoUser is asked for: it can see them.
    assert locust_in_a_child[:2] == ["[]", "True"]


def test_tasks_of_a_subclass_replace_the_default_task(locust_in_a_child: list[str]) -> None:
    assert locust_in_a_child[2] == "True True"


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
        return port


def locust_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *options]


@pytest.mark.parametrize("role", [["--master", "--expect-workers=2"], []], ids=["master", "local"])
def test_a_host_that_is_no_tcp_target_stops_locust_at_startup(
    tmp_path: Path, role: list[str]
) -> None:
    # A master that passed the check would wait for its workers until killed.
    # Port 0: a master binds a port the system picks, free for sure.
    command = locust_command(
        "--headless",
        *role,
        "--master-bind-host=127.0.0.1",
        "--master-bind-port=0",
        "--host=http://127.0.0.1:8088",
    )
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "Echo: --host 'http://127.0.0.1:8088': unsupported scheme 'http'" in result.stderr


def test_a_run_without_one_successful_echo_fails(tmp_path: Path, listener: socket.socket) -> None:
    # The listener's queue completes each connect; no reply ever comes, and
    # the run ends before any request could time out: 0 requests, 0 failures.
    host, port = listener.getsockname()[:2]
    command = locust_command(
        "--headless",
        "--users=2",
        "--spawn-rate=2",
        "--run-time=1s",
        "--stop-timeout=0",
        "--request-timeout=600",
        f"--host=tcp://{host}:{port}",
    )
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1, result.stderr
    assert "no echo request succeeded: the run failed" in result.stderr


@dataclass
class LocustRun:
    exit_code: int
    stats: dict[str, dict[str, Any]]  # the master's --json entries by name
    errors: list[tuple[int, str]]  # rows of its error report: occurrences, "METHOD name: error"
    log: str

    def failures(self) -> int:
        return sum(int(entry["num_failures"]) for entry in self.stats.values())


def counting_server(*args: str) -> contextlib.AbstractContextManager[ChildServer]:
    """A server for a Locust run: it logs its counters for :func:`stop_master_when`."""
    return serve_in_subprocess(f"--stats-interval={STATS_SECONDS}", *args)


# (connections accepted, lines answered) by the server: has the run shown enough?
Enough = Callable[[int, int], bool]
COUNTERS = re.compile(rb"stats: .*accepted=(\d+) .*answered=(\d+)")


def stop_master_when(enough: Enough, server: ChildServer, master: subprocess.Popen[bytes]) -> None:
    """SIGTERM the master once the server's logged counters are ``enough``.

    A user the server has accepted is connecting at least: on quit the
    workers let it finish (--stop-timeout), so the master's summary counts it.
    """
    assert server.process.stderr is not None
    for line in server.process.stderr:
        if master.poll() is not None:
            return  # it stopped by itself: the test says what it lacks
        if (counters := COUNTERS.search(line)) and enough(*map(int, counters.groups())):
            master.send_signal(signal.SIGTERM)
            return


def run_locust(
    tmp_path: Path,
    server: ChildServer,
    enough: Enough,
    *options: str,
    scheme: str = "tcp",
    wait: float = WAIT_SECONDS,
) -> LocustRun:
    """Run the benchmark locustfile as a master with two workers, ``options`` on the master,
    until the server's counters are ``enough``; the users pause ``wait`` s between lines.

    The workers get no options of their own: what they send must come from
    the master, as in a run across machines. ``server`` comes from
    :func:`counting_server`.
    """
    master_port = str(free_port())
    master = locust_command(
        *options,
        "--headless",
        "--master",
        "--master-bind-host=127.0.0.1",
        f"--master-bind-port={master_port}",
        "--expect-workers=2",
        f"--users={USERS}",
        f"--spawn-rate={USERS}",
        f"--run-time={RUN_TIME}",
        f"--stop-timeout={STOP_TIMEOUT}",
        f"--wait-time={wait}",
        f"--host={scheme}://{server.host}:{server.port}",
        "--json",
        "--only-summary",
    )
    worker = locust_command("--worker", "--master-host=127.0.0.1", f"--master-port={master_port}")
    # The working directory keeps a locust.conf or pyproject.toml around the
    # test run from changing Locust's options. The master's stdout is its
    # JSON summary alone; every log goes to stderr.
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=errors)
        for command, errors in (
            (master, subprocess.PIPE),
            (worker, subprocess.STDOUT),
            (worker, subprocess.STDOUT),
        )
    ]
    try:
        stop_master_when(enough, server, processes[0])
        outputs = [process.communicate(timeout=LOCUST_DEADLINE) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    (summary, master_log), *workers = outputs
    log = b"\n".join([master_log, *(out for out, _ in workers)]).decode(errors="replace")
    assert summary, log
    return LocustRun(
        processes[0].returncode,
        {entry["name"]: entry for entry in json.loads(summary)},
        error_report(master_log.decode(errors="replace")),
        log,
    )


def error_report(log: str) -> list[tuple[int, str]]:
    """The rows of the error report a master prints at exit, after its workers' last reports.

    Between its title, a header and a separator, and a closing separator, a
    row is the occurrences, then ``METHOD name: error``.
    """
    lines = log.splitlines()
    if "Error report" not in lines:
        return []
    rows = lines[lines.index("Error report") + 3 :]
    rows = rows[: next(i for i, row in enumerate(rows) if row.startswith("-"))]
    return [(int(count), error.strip()) for count, error in (row.split(maxsplit=1) for row in rows)]


def content_size(entry: dict[str, Any]) -> float:
    """Average reply bytes of a --json entry."""
    return int(entry["total_content_length"]) / int(entry["num_requests"])


def every_user_connected_and_echoed(accepted: int, answered: int) -> bool:
    return accepted >= USERS and answered >= USERS


def one_echo_per_user(run: LocustRun, name: str) -> dict[str, Any]:
    """Check a clean distributed run: one echo from each user, each on one connection.

    Returns the stats entry of the echoes called ``name``.
    """
    assert run.exit_code == 0, run.log
    assert run.errors == []
    echoes, connects = run.stats[name], run.stats["connect"]
    # One line from each user, then its pause: the workers took it from the master.
    assert int(echoes["num_requests"]) == USERS
    assert run.failures() == 0
    # Each user connected once and kept its connection: nothing was retried.
    assert int(connects["num_requests"]) == USERS
    return echoes


def test_master_and_workers_count_verified_echoes_over_verified_tls(
    tmp_path: Path, certificates: Certificates
) -> None:
    # The workers get every option from the master: the payload, the line
    # size, and the CA file without which they could not verify the server.
    tls = (f"--tls-cert={certificates.cert}", f"--tls-key={certificates.key}")
    with counting_server(*tls) as server:
        run = run_locust(
            tmp_path,
            server,
            every_user_connected_and_echoed,
            "--payload=random",
            "--line-size=100",
            f"--tls-ca={certificates.ca}",
            scheme="tls",
            wait=ONE_LINE_EACH,
        )
    echoes = one_echo_per_user(run, "100 B")
    # Replies to 100-byte bodies, upper(body) + "_SB\n": the workers took the
    # line size from the master.
    assert content_size(echoes) == 104


def test_wrong_replies_are_failures_with_the_difference(tmp_path: Path) -> None:
    def some_user_reconnected(accepted: int, answered: int) -> bool:
        return accepted > USERS

    with counting_server("--suffix=_XX") as server:
        run = run_locust(tmp_path, server, some_user_reconnected)
    assert run.exit_code == 1, run.log  # Locust's exit code for a run with failures
    echoes, connects = run.stats["64 B"], run.stats["connect"]
    assert int(echoes["num_failures"]) == int(echoes["num_requests"]) > 0
    assert run.failures() == int(echoes["num_failures"])
    # Every wrong reply dropped its connection and the next request reconnected.
    assert int(connects["num_requests"]) > USERS
    assert int(connects["num_failures"]) == 0
    # One row: Locust counts failures by their text, the same for every wrong reply.
    [(occurrences, failure)] = run.errors
    assert occurrences == int(echoes["num_failures"])
    assert failure.startswith("ECHO 64 B: ")
    for part in (
        "ReplyMismatch: reply differs at byte 65 (expected 68 bytes, got 68)",
        "expected b'SB",
        "got b'XX",
    ):
        assert part in failure
