"""``python -m aioecho bench`` in real subprocesses."""

from __future__ import annotations

import json
import os
import pty
import re
import resource
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from aioecho.bench.memory import listening_pids
from aioecho.procfs import rss_bytes

from .support import (
    Certificates,
    ChildServer,
    aioecho_command,
    refusal_from_a_real_start,
    refusal_in_process,
    serve_in_subprocess,
)

# Short runs: the point is the plumbing, not the numbers.
QUICK = ("--connections", "40", "--duration", "0.1", "--warmup", "0.02")
JSON_KEYS = {
    "connections", "connected", "connect_errors", "duration_s", "messages", "rps",
    "bytes_per_s", "latency_us", "connect_latency_us", "errors", "mismatches", "mode",
    "rate", "target", "processes",
}  # fmt: skip
PERCENTILE_KEYS = {"p50", "p90", "p95", "p99", "p999", "p9999", "max"}


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        aioecho_command("bench", *args), capture_output=True, text=True, timeout=60
    )


def bench_together(*runs: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Several independent ``bench`` runs at once; their results in order."""
    processes = [
        subprocess.Popen(
            aioecho_command("bench", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in runs
    ]
    done = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=60)
            done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:  # another run hung: leave none behind
                process.kill()
                process.communicate()
    return done


def target_of(server: ChildServer) -> tuple[str, ...]:
    return ("--host", server.host, "--port", str(server.port))


def test_without_a_target_it_benchmarks_a_local_server() -> None:
    done = bench(*QUICK, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result.keys() >= JSON_KEYS
    schema = resources.files("aioecho.bench").joinpath("result.schema.json").read_text()
    jsonschema.validate(result, json.loads(schema))
    assert result["command"][:4] == ["python", "-m", "aioecho", "bench"]
    assert PERCENTILE_KEYS == result["latency_us"].keys() == result["connect_latency_us"].keys()
    assert result["connected"] == result["connections"] == 40
    assert result["messages"] > 0
    assert result["mode"] == "closed"
    assert "aioecho child process" in result["server"]
    assert "\r" not in done.stdout  # no progress line when stdout is not a terminal


def test_processes_merge_into_one_result(echo_process: ChildServer) -> None:
    server = echo_process
    done = bench(*target_of(server), *QUICK, "--processes", "2", "--rate", "2000", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["processes"], result["connected"], result["mode"]) == (2, 40, "open")
    assert result["rate"] == 2000
    assert 1200 <= result["rps"] <= 2800
    assert result["target"] == f"{server.host}:{server.port}"


def test_wrong_replies_fail_the_run() -> None:
    with serve_in_subprocess("--framing", "chunk") as server:
        done = bench(*target_of(server), *QUICK)
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


REFUSED = "aioecho bench: error: "


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (("--size", "big"), "argument --size"),  # refused by the parser
        (("--connections", "0"), "connections must be at least 1"),  # by a BenchConfig check
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2_from_a_real_start(
    flags: tuple[str, ...], complaint: str
) -> None:
    [line] = refusal_from_a_real_start("bench", *flags)
    assert line.startswith(REFUSED + complaint)


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (("--connections", "0"), "connections must be at least 1"),
        (("--size", "big"), "argument --size"),
        (("--expect", "rot13"), "argument --expect"),
        (("--rate", "-1"), "rate must be positive"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(
    flags: tuple[str, ...], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [line] = refusal_in_process(capsys, "bench", *flags)
    assert line.startswith(REFUSED + complaint)


def on_terminal(*args: str, interrupt_when: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Run ``bench`` with a terminal as stdout; the exit code, output and stderr.

    With ``interrupt_when``, send SIGINT once the output shows those bytes:
    the progress line is the readiness signal.
    """
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        aioecho_command("bench", *args), stdout=terminal, stderr=subprocess.PIPE
    )
    os.close(terminal)
    output = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 30)
        assert ready, f"no output from the benchmark: {output!r}"
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end closed
            break
        if not chunk:
            break
        output += chunk
        if interrupt_when is not None and interrupt_when in output:
            process.send_signal(signal.SIGINT)
            interrupt_when = None
    os.close(controller)
    assert process.stderr is not None
    with process.stderr:
        return process.wait(timeout=30), output, process.stderr.read()


def test_a_terminal_gets_a_live_progress_line(echo_process: ChildServer) -> None:
    # Progress comes every half second: a run that lasts past the first one.
    args = ("--connections", "5", "--rate", "1000", "--duration", "0.8", "--warmup", "0")
    code, output, _ = on_terminal(*target_of(echo_process), *args)
    assert code == 0
    assert b"\r\x1b[K" in output
    assert b"msg/s" in output
    assert output.rstrip().endswith(b"OK")


@pytest.mark.parametrize("processes", ["1", "2"])
def test_ctrl_c_ends_a_long_run_with_a_result(processes: str, echo_process: ChildServer) -> None:
    args = ("--connections", "20", "--duration", "60", "--warmup", "0", "--processes", processes)
    code, output, errors = on_terminal(*target_of(echo_process), *args, interrupt_when=b"msg/s")
    assert code == 0, errors
    assert b"Traceback" not in errors
    measured = re.search(rb"measured +([0-9.]+) s", output)
    assert measured is not None, output
    assert float(measured.group(1)) < 30
    assert output.rstrip().endswith(b"OK")


def test_import_aioecho_does_not_need_the_bench_extra() -> None:
    code = "import sys, aioecho, aioecho.cli, aioecho.bench; assert 'hdrh' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def limit_descriptors(count: int) -> Callable[[], None]:
    """A preexec_fn: the child may open at most ``count`` files, hard limit included."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))

    return apply


def test_out_of_descriptors_is_a_reason_not_a_crash(echo_process: ChildServer) -> None:
    target = target_of(echo_process)
    done = subprocess.run(
        aioecho_command(
            "bench", *target, *QUICK, "--connections", "300", "--processes", "1", "--json"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_descriptors(200),
    )
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["connect_errors"]["fd_limit"] > 0
    assert result["connected"] + sum(result["connect_errors"].values()) == 300
    assert result["messages"] > 0  # the connections that did open were measured


def test_processes_are_added_to_stay_under_the_descriptor_limit(
    echo_process: ChildServer,
) -> None:
    target = target_of(echo_process)
    done = subprocess.run(
        aioecho_command("bench", *target, *QUICK, "--connections", "300", "--json"),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_descriptors(200),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["processes"] >= 3  # (200 - 64 reserved) descriptors each
    assert result["connected"] == 300


def test_tls_targets_are_verified_or_trusted_on_request(certificates: Certificates) -> None:
    cert, key, ca_file = certificates.cert, certificates.key, certificates.ca
    with serve_in_subprocess("--tls-cert", str(cert), "--tls-key", str(key)) as server:
        target = (*target_of(server), *QUICK, "--connections", "10", "--json")
        verified, trusted, untrusted = bench_together(
            (*target, "--tls", "--tls-ca", str(ca_file)),
            (*target, "--tls", "--tls-insecure"),
            (*target, "--tls"),
        )
    for done in (verified, trusted):
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["connected"] == 10
    assert untrusted.returncode == 1
    assert json.loads(untrusted.stdout)["connect_errors"] == {"tls": 10}


def test_tls_needs_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    [line] = refusal_in_process(capsys, "bench", "--tls")
    assert line.startswith(REFUSED + "tls needs a target")


def test_a_missing_ca_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # Refused by the system: a real start, as for the other kinds of refusal.
    missing = tmp_path / "missing.pem"
    target = ("--host", "127.0.0.1", "--port", "9")
    [line] = refusal_from_a_real_start("bench", *target, "--tls", "--tls-ca", str(missing))
    assert line.startswith(f"{REFUSED}--tls-ca {missing}: ")


@pytest.mark.parametrize("rate", ["1:2", "fast", "1000:2000:soon"])
def test_a_bad_rate_is_one_line_and_exit_2(rate: str, capsys: pytest.CaptureFixture[str]) -> None:
    [line] = refusal_in_process(capsys, "bench", "--rate", rate)
    assert line.startswith(REFUSED + "argument --rate: rate must be R or FROM:TO:DURATION")


def test_a_local_server_is_measured_for_cpu_not_memory(echo_process: ChildServer) -> None:
    args = ("--connections", "4", "--duration", "0.3", "--warmup", "0.05", "--idle", "20")
    for processes in ("1", "2"):
        done = bench(*target_of(echo_process), *args, "--processes", processes, "--json")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["server_cpu_us_per_rt"] > 0, result
        assert result["server_bytes_per_connection"] is None  # not a server it started
        assert result["idle_alive"] == 20


def test_the_timeline_is_printed_on_request(echo_process: ChildServer) -> None:
    args = ("--connections", "4", "--duration", "1.2", "--warmup", "0")
    done = bench(*target_of(echo_process), *args, "--timeline", "--timeline-by", "due")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["second", "round"])
    rows = [line.split() for line in lines[header + 1 : header + 3]]
    assert [row[0] for row in rows] == ["0", "1"]
    trips = sum(int(row[1].replace(",", "")) for row in rows)
    verified = re.search(r"messages +([0-9,]+) verified", done.stdout)
    assert verified is not None
    assert trips == int(verified.group(1).replace(",", ""))


def test_a_ramp_and_an_hgrm_file_from_the_command_line(
    tmp_path: Path, echo_process: ChildServer
) -> None:
    hgrm = tmp_path / "latency.hgrm"
    args = ("--connections", "10", "--duration", "0.1", "--warmup", "0.05")
    ramp = ("--rate", "200:1000:0.1s")
    done = bench(*target_of(echo_process), *args, *ramp, "--json", "--hgrm", str(hgrm))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["rate"], result["rate_to"], result["ramp_s"]) == (200, 1000, 0.1)
    assert abs(result["due"] - 60) <= 1  # the area under the ramp
    assert result["sent"] == result["answered"] + result["timed_out"] + result["unanswered"]
    assert result["latency_histogram"]  # also in the file, in milliseconds
    lines = hgrm.read_text().splitlines()
    assert lines[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    assert lines[-1].startswith("#[Buckets = ")
    counts = [int(line.split()[2]) for line in lines[2:] if line and not line.startswith("#")]
    assert counts == sorted(counts)
    assert counts[-1] == result["messages"]
    max_ms = float(re.search(r"#\[Max +=\s+([0-9.]+)", hgrm.read_text()).group(1))  # type: ignore[union-attr]
    assert max_ms == pytest.approx(result["latency_us"]["max"] / 1000, rel=0.01)


def test_find_max_rate_refuses_a_bound_below_the_floor(echo_process: ChildServer) -> None:
    args = ("--connections", "10", "--duration", "0.2", "--warmup", "0", "--rate", "250")
    # A 1 µs bound no server meets: the floor step shows it, the search stops there.
    done = bench(*target_of(echo_process), *args, "--find-max-rate", "1us", "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert re.fullmatch(
        r"aioecho bench: --find-max-rate: the floor here is p99 [0-9,]+ µs at 200 msg/s, "
        r"over the asked bound of 1 µs: ask for a bound above the floor",
        line,
    ), line


def test_the_server_of_a_local_port_is_found_and_measured(echo_process: ChildServer) -> None:
    server = echo_process
    pids = listening_pids(server.port)
    assert pids == [server.process.pid]
    size = rss_bytes(server.process.pid)
    assert size is not None
    assert size > 1_000_000  # a Python process
    done = bench(*target_of(server), *QUICK, "--processes", "1", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "server_bytes_per_connection" in result
    assert result["source_addresses"] == {"127.0.0.1": 40}
    assert result["connect_s"] > 0


def test_the_local_server_ignores_the_variables_of_serve_flags() -> None:
    # Exported for some other server, they must not shape the one the run starts.
    env = {**os.environ, "AIOECHO_FRAMING": "chunk", "AIOECHO_MAX_LINE": "10"}
    done = subprocess.run(
        aioecho_command("bench", *QUICK, "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["errors"], result["mismatches"]) == (0, 0)
    assert result["messages"] > 0
