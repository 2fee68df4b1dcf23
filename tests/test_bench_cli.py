"""``python -m aioecho bench`` in real subprocesses."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys

import pytest

from .support import aioecho_command, serve_in_subprocess

# Short runs: the point is the plumbing, not the numbers.
QUICK = ("--connections", "40", "--duration", "0.5", "--warmup", "0.1")
JSON_KEYS = {
    "connections", "connected", "connect_errors", "duration_s", "messages", "rps",
    "bytes_per_s", "latency_us", "connect_latency_us", "errors", "mismatches", "mode",
    "rate", "target", "processes",
}  # fmt: skip
PERCENTILE_KEYS = {"p50", "p90", "p99", "p999", "p9999", "max"}


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        aioecho_command("bench", *args), capture_output=True, text=True, timeout=60
    )


def test_without_a_target_it_benchmarks_a_local_server() -> None:
    done = bench(*QUICK, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result.keys() >= JSON_KEYS
    assert PERCENTILE_KEYS == result["latency_us"].keys() == result["connect_latency_us"].keys()
    assert result["connected"] == result["connections"] == 40
    assert result["messages"] > 0
    assert result["mode"] == "closed"
    assert "aioecho child process" in result["server"]
    assert "\r" not in done.stdout  # no progress line when stdout is not a terminal


def test_processes_merge_into_one_result() -> None:
    with serve_in_subprocess() as server:
        target = ("--host", server.host, "--port", str(server.port))
        done = bench(*target, *QUICK, "--processes", "2", "--rate", "2000", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["processes"], result["connected"], result["mode"]) == (2, 40, "open")
    assert result["rate"] == 2000
    assert 1200 <= result["rps"] <= 2800
    assert result["target"] == f"{server.host}:{server.port}"


def test_wrong_replies_fail_the_run() -> None:
    with serve_in_subprocess("--framing", "chunk") as server:
        done = bench("--host", server.host, "--port", str(server.port), *QUICK)
    assert done.returncode == 1
    assert "mismatches  40" in done.stdout
    assert "expected b'" in done.stdout
    assert done.stdout.rstrip().endswith(
        "FAILED: 40 wrong replies, no round trip completed while measuring"
    )


def test_a_refused_target_is_reported_without_a_traceback() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        done = bench("--port", str(port), *QUICK)
    assert done.returncode == 1
    assert "connected   0 of 40  (40 connection refused)" in done.stdout
    assert "Traceback" not in done.stderr


def test_an_unresolvable_host_is_one_line() -> None:
    done = bench("--host", "no-such-host.invalid", *QUICK)
    assert done.returncode == 1
    assert done.stderr.startswith("aioecho bench: cannot resolve no-such-host.invalid")
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "flags", [("--connections", "0"), ("--size", "big"), ("--expect", "rot13"), ("--rate", "-1")]
)
def test_a_bad_flag_is_one_line_and_exit_2(flags: tuple[str, ...]) -> None:
    done = bench(*flags)
    assert done.returncode == 2
    assert done.stderr.startswith("aioecho bench: error: ")
    assert len(done.stderr.splitlines()) == 1


def test_a_terminal_gets_a_live_progress_line() -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        aioecho_command("bench", "--connections", "20", "--duration", "1.2", "--warmup", "0"),
        stdout=terminal,
        stderr=subprocess.PIPE,
    )
    os.close(terminal)
    output = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 30)
        assert ready, "no output from the benchmark"
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end closed
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=30) == 0
    assert b"\r\x1b[K" in output
    assert b"msg/s" in output
    assert output.rstrip().endswith(b"OK")
    assert process.stderr is not None
    process.stderr.close()


def test_import_aioecho_does_not_need_the_bench_extra() -> None:
    code = "import sys, aioecho, aioecho.cli, aioecho.bench; assert 'hdrh' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
