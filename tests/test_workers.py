"""``--workers N``: worker processes on one port under a supervising parent.

Which worker served a connection is read from /proc (the server end of each
connection is a descriptor of exactly one worker), not from the server's
own reports.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import aioecho
from aioecho.core import Counters, Fault
from aioecho.process.backoff import (
    RESTART_DELAY_MAX,
    RESTART_DELAY_MIN,
    STABLE_UPTIME,
    RestartBackoff,
    next_restart_delay,
)
from aioecho.process.status import decode_stats, encode_stats
from aioecho.sockets.binding import Address, format_address
from aioecho.stats import Stats, snapshot

from .support import (
    ChildServer,
    aioecho_command,
    log_line,
    never_reading_peer,
    serve_in_subprocess,
    stop,
)

LOOPS = ["asyncio", "uvloop"]
TCP_ESTABLISHED = "01"
SCRAPE_DEADLINE = 10.0

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads workers and connections from /proc"
)


def children(pid: int) -> list[int]:
    """The worker processes of the server ``pid``."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def serving_workers(connections: list[socket.socket], workers: list[int]) -> Counter[int]:
    """How many of ``connections`` each worker holds the server end of.

    Exact: a server end is found by the client end's address (its row in
    /proc/net/tcp has our port as the remote one), and belongs to the worker
    holding that row's socket inode.
    """
    wanted = {
        _hex_address(sock.getpeername()) + _hex_address(sock.getsockname()) for sock in connections
    }
    inodes = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] + fields[2] in wanted:
            inodes[f"socket:[{fields[9]}]"] = fields[1] + fields[2]
    held: Counter[int] = Counter()
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(FileNotFoundError):  # closed meanwhile
                held[pid] += os.readlink(f"/proc/{pid}/fd/{fd}") in inodes
    assert sum(held.values()) == len(connections), (held, len(connections))
    return held


def _hex_address(address: Address) -> str:
    """An IPv4 address as /proc/net/tcp writes it: ``0100007F:1F90``."""
    host, port = address
    return f"{int.from_bytes(socket.inet_aton(host), 'little'):08X}:{port:04X}"


def answered_connections(port: int, count: int) -> list[socket.socket]:
    """``count`` open connections, each answered once: each one is a worker's."""
    connections = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        connections.append(sock)
        sock.sendall(b"abc\n")
        assert receive(sock, 7) == b"ABC_SB\n"
    return connections


def receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def stopped_cleanly(server: ChildServer, workers: list[int]) -> None:
    code, log = stop(server)
    assert code == 0
    assert b"Traceback" not in log
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


@contextlib.contextmanager
def closing_all(connections: list[socket.socket]) -> Iterator[None]:
    try:
        yield
    finally:
        for sock in connections:
            sock.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_two_workers_share_one_port_and_stop_on_sigterm(loop: str) -> None:
    with serve_in_subprocess("--workers", "2", "--loop", loop) as server:
        assert (server.ready.workers, server.ready.loop) == (2, loop)
        assert server.ready.pid == server.process.pid
        workers = children(server.process.pid)
        assert len(workers) == 2
        connections = answered_connections(server.port, 40)
        with closing_all(connections):
            served = serving_workers(connections, workers)
        assert len(served) == 2, served  # both workers took connections
        stopped_cleanly(server, workers)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_killed_worker_is_restarted_and_serves(loop: str) -> None:
    with serve_in_subprocess("--workers", "2", "--loop", loop) as server:
        victim, survivor = children(server.process.pid)
        os.kill(victim, signal.SIGKILL)
        line = log_line(server.process, b"restarting in")
        assert f"(pid {victim}) was killed by SIGKILL".encode() in line
        log_line(server.process, b"accepting")
        workers = children(server.process.pid)
        assert survivor in workers
        assert victim not in workers
        assert len(workers) == 2
        connections = answered_connections(server.port, 40)
        with closing_all(connections):
            served = serving_workers(connections, workers)
        assert len(served) == 2, served
        stopped_cleanly(server, workers)


def scrape(address: Address) -> dict[str, float]:
    """Every sample, a labelled one named like ``name{label=value}``."""
    url = f"http://{format_address(address)}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        sample.name + "".join(f"{{{k}={v}}}" for k, v in sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape_until(address: Address, expected: dict[str, float]) -> None:
    """Scrape until the metrics show ``expected``: workers report every 0.25 s."""
    deadline = time.monotonic() + SCRAPE_DEADLINE
    while True:
        values = scrape(address)
        if all(values[name] == value for name, value in expected.items()):
            return
        assert time.monotonic() < deadline, f"expected {expected}, got {values}"
        time.sleep(0.05)


def test_metrics_sum_the_workers_and_outlive_a_dead_one() -> None:
    with serve_in_subprocess("--workers", "2", "--metrics-port", "0") as server:
        (address,) = server.ready.metrics
        workers = children(server.process.pid)
        connections = answered_connections(server.port, 20)
        with closing_all(connections):
            served = serving_workers(connections, workers)
            assert len(served) == 2, served  # both workers have counts to sum
            totals = {
                "aioecho_connections_accepted_total": 20,
                "aioecho_received_bytes_total": 20 * len(b"abc\n"),
                "aioecho_sent_bytes_total": 20 * len(b"ABC_SB\n"),
                "aioecho_messages_answered_total": 20,
            }
            scrape_until(address, {**totals, "aioecho_connections_active": 20})
            os.kill(workers[0], signal.SIGKILL)
            log_line(server.process, b"accepting")
            # The dead worker's connections are gone, its totals are not.
            survivor = served[workers[1]]
            scrape_until(address, {**totals, "aioecho_connections_active": survivor})
        scrape_until(address, {**totals, "aioecho_connections_active": 0})
        stopped_cleanly(server, children(server.process.pid))


@pytest.mark.parametrize("loop", LOOPS)
def test_workers_share_a_unix_socket_that_the_parent_removes(loop: str, tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    with serve_in_subprocess("--workers", "2", "--unix", path, "--loop", loop) as server:
        assert (server.ready.unix, server.ready.addresses) == (path, ())
        assert f"serving on unix:{path}".encode() in log_line(server.process, b"serving on")
        workers = children(server.process.pid)
        assert len(workers) == 2
        for _ in range(20):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(path)
                sock.sendall(b"local\n")
                assert receive(sock, 9) == b"LOCAL_SB\n"
        stopped_cleanly(server, workers)
    assert not Path(path).exists()


def test_second_signal_forces_the_workers_to_stop() -> None:
    with serve_in_subprocess("--workers", "2", "--shutdown-timeout", "3600") as server:
        # A peer that reads nothing keeps its worker's graceful stop waiting.
        hog = never_reading_peer((server.host, server.port))
        server.process.send_signal(signal.SIGTERM)
        log_line(server.process, b"shutting down the workers")
        code, log = stop(server)
        hog.close()
    assert code == 0
    assert b"second signal" in log


def test_a_busy_port_is_one_line_and_exit_1() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            aioecho_command("--workers", "2", "--port", str(port)), capture_output=True, timeout=30
        )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use".encode() in lines[0]


def test_a_worker_that_cannot_start_stops_the_service_with_exit_1() -> None:
    program = (
        "import sys, aioecho.process.spawn as spawn, aioecho.cli\n"
        "spawn.command = lambda module: (sys.executable, '-c', 'raise SystemExit(3)')\n"
        "sys.exit(aioecho.cli.main(['--workers', '3', '--port', '0']))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=30)
    assert result.returncode == 1
    assert b"exited with code 3 before it was ready" in result.stderr
    assert b"restarting" not in result.stderr
    assert b"serving on" not in result.stderr


def test_restart_delays_double_up_to_the_maximum_and_reset_once_stable() -> None:
    delays = [RESTART_DELAY_MIN]
    for _ in range(10):
        delays.append(next_restart_delay(delays[-1], uptime=1.0))
    assert delays[:4] == [RESTART_DELAY_MIN * factor for factor in (1, 2, 4, 8)]
    assert delays[-1] == RESTART_DELAY_MAX
    assert next_restart_delay(RESTART_DELAY_MAX, uptime=3600.0) == RESTART_DELAY_MIN


def test_a_crash_loop_backs_off_on_the_clock_and_a_stable_run_starts_over() -> None:
    now = [0.0]
    backoff = RestartBackoff(lambda: now[0])
    waits = []
    for _ in range(8):  # starts, dies a second later, waits, starts again
        backoff.started()
        now[0] += 1.0
        waits.append(backoff.next_delay())
        now[0] += waits[-1]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    backoff.started()
    now[0] += STABLE_UPTIME  # up long enough to count as healthy
    assert backoff.next_delay() == RESTART_DELAY_MIN


def test_worker_stats_survive_the_pipe_and_add_up() -> None:
    counters = Counters()
    counters.accepted, counters.active, counters.bytes_in = 3, 1, 1 << 40
    counters.rejected[aioecho.CloseReason.IDLE_TIMEOUT] = 2
    counters.faults[Fault.RESET] = 5
    stats = snapshot(counters)
    assert decode_stats(encode_stats(stats)) == stats
    total = stats + stats
    assert isinstance(total, Stats)
    assert total.connections_accepted == 6
    assert total.faults[Fault.RESET] == 10
    assert total.bytes_received == 2 << 40
    assert total.connections_rejected["idle_timeout"] == 4
    assert total.connections_rejected["max_connections"] == 0


async def test_an_echo_server_is_one_process() -> None:
    with pytest.raises(aioecho.ConfigError, match="run_server"):
        await aioecho.start_server(port=0, workers=2)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_hung_worker_is_killed_restarted_logged_and_counted(loop: str) -> None:
    flags = ("--workers", "2", "--worker-timeout", "1", "--metrics-port", "0", "--loop", loop)
    with serve_in_subprocess(*flags) as server:
        victim, survivor = children(server.process.pid)
        os.kill(victim, signal.SIGSTOP)  # alive, its socket still queuing connections
        try:
            line = log_line(server.process, b"sent no status report")
            assert f"(pid {victim}) sent no status report for 1.0 s: killing it".encode() in line
            line = log_line(server.process, b"restarting in")
            assert f"(pid {victim}) was killed by SIGKILL".encode() in line
            log_line(server.process, b"accepting")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        workers = children(server.process.pid)
        assert survivor in workers
        assert victim not in workers
        assert len(workers) == 2
        (metrics,) = server.ready.metrics
        restarts = scrape(metrics)
        assert restarts["aioecho_worker_restarts_total{reason=hung}"] == 1
        assert restarts["aioecho_worker_restarts_total{reason=exited}"] == 0
        connections = answered_connections(server.port, 40)
        with closing_all(connections):
            assert len(serving_workers(connections, workers)) == 2
        stopped_cleanly(server, workers)


def log_until_either(process: subprocess.Popen[bytes], *texts: bytes) -> bytes:
    """Read a server's log up to the first line holding one of ``texts``; all of it."""
    assert process.stderr is not None
    seen = b""
    for line in process.stderr:
        seen += line
        if any(text in line for text in texts):
            return seen
    raise AssertionError(f"none of {texts!r} in the log: {seen!r}")


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("frozen", ["supervisor", "everything"])
def test_a_stopped_supervisor_kills_no_healthy_worker(loop: str, frozen: str) -> None:
    """SIGSTOP the parent (alone, or with its workers, as a frozen container) past the timeout."""
    flags = ("--workers", "2", "--worker-timeout", "1", "--loop", loop)
    with serve_in_subprocess(*flags) as server:
        workers = children(server.process.pid)
        connections = answered_connections(server.port, 4)
        with closing_all(connections):
            stopped = [server.process.pid, *(workers if frozen == "everything" else [])]
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)
            # What the test is about: a stop half as long again as --worker-timeout.
            time.sleep(1.5)
            for pid in reversed(stopped):
                os.kill(pid, signal.SIGCONT)
            # Logged at its first check after the stop: where it used to kill them.
            log = log_until_either(server.process, b"was held up", b"sent no status report")
            assert b"sent no status report" not in log
            assert re.search(rb"was held up for \d+\.\d s", log)
            for sock in connections:
                sock.sendall(b"still here\n")
                assert receive(sock, 14) == b"STILL HERE_SB\n"
            assert children(server.process.pid) == workers
        stopped_cleanly(server, workers)


def test_a_busy_metrics_port_is_reported_as_the_metrics_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        command = aioecho_command("--workers", "2", "--port", "0", "--metrics-port", str(port))
        result = subprocess.run(command, capture_output=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].endswith(
        f"cannot serve metrics on 127.0.0.1:{port}: Address already in use".encode()
    )
    assert b"worker" not in result.stderr  # none was started
