"""Measuring one cell: a fresh server process, then the load client, repeated.

Each cell gets its own server process, so a server that dies under one load
(select beyond FD_SETSIZE) costs that cell only, and its memory before the
first connection is a clean baseline. The load comes from one client
process: the C client ``benchmarks/c/echo_load`` when it can be built, so
that the client is not the limit, else the harness library in this process.

The server's CPU time is counted over the measured window only (connecting,
warm-up and closing are left out) and divided by the round trips of that
window; its memory is the peak while the connections are open. The client's
CPU is the client's alone: the C client's own CPU over its window, or the
harness's event-loop thread's, never this process's sampling threads.
"""

from __future__ import annotations

import bisect
import resource
import threading
import time
from time import monotonic_ns
from typing import Any, Literal

from aioecho import bench

from ..core import cprograms, proc
from ..core.load import Load
from ..core.servers import ServerError, ServerProcess, running
from .matrix import Matrix
from .model import Cell, Outcome, Sample
from .servers import SERVERS

US_PER_S = 1_000_000
NS_PER_S = 1_000_000_000
# How often the server's CPU time and memory are read: often enough to place
# the measured window to within a few percent of a one-second run.
SAMPLE_INTERVAL = 0.02
# Two progress reports that span less of the run than this are too close to
# measure CPU between; the window is then extended at the measured rate.
MIN_MARKED_SHARE = 0.25
# A connect that takes longer than this counts as failed: a server that
# cannot keep up with accepting is one of the results.
CONNECT_TIMEOUT = 5.0
# After a failed run, how long a server whose connections were reset may take
# to exit, so that the report names its death rather than the resets.
DEATH_GRACE = 1.0

# Where a probe's sample holds what (after the time, at 0).
SERVER_CPU, RSS, CLIENT_CPU = 1, 2, 3
Client = Literal["c", "python"]
HARNESS = "the aioecho harness (Python, in the suite's process)"


class Probe:
    """Watches the server, and the thread that made the probe, while the client runs.

    A thread samples the server's CPU time and memory, and the CPU time of
    the thread that made the probe (the one that runs the harness's event
    loop), every ``SAMPLE_INTERVAL``; the harness's progress callback stamps
    the count of measured round trips. At 10,000 connections the harness's
    progress reports come late and rarely (its loop is busy), so the window
    may hold a single report: its end is then placed where the measured rate
    says the last round trip completed.
    """

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.client_thread = threading.get_native_id()
        # monotonic ns, server CPU s, server RSS bytes, client thread CPU s
        self.samples: list[tuple[int, float, int, float]] = []
        self.marks: list[tuple[int, int]] = []  # monotonic ns, round trips measured so far
        self._others = (0.0, 0.0, 0.0)  # see _others_clock: at start, then the differences
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="server-probe", daemon=True)

    def __enter__(self) -> Probe:
        self._others = self._others_clock()
        # Sampled here, not only by the thread: it may not get the GIL for a
        # while, and the CPU used before its first sample would be lost.
        self._take_sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take_sample()  # the harness has returned: the window is over
        (t1, m1, c1), (t0, m0, c0) = self._others_clock(), self._others
        self._others = (t1 - t0, m1 - m0, c1 - c0)

    def other_load(self) -> float:
        """Cores busy with neither the server nor this client while the harness ran.

        On a shared machine this says how far to trust a sample: whatever it
        is, it took CPU from the server or the client.
        """
        elapsed, machine, client = self._others
        server = self.samples[-1][1] - self.samples[0][1]
        return max(0.0, (machine - client - server) / elapsed) if elapsed > 0 else 0.0

    @staticmethod
    def _others_clock() -> tuple[float, float, float]:
        """Wall time, machine CPU and the client's CPU, in seconds.

        The client is this process and its children that have ended (a C load
        client that has returned); a running server is not counted there.
        """
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        client = time.process_time() + children.ru_utime + children.ru_stime
        return monotonic_ns() / NS_PER_S, proc.machine_busy_seconds(), client

    def __call__(self, progress: Any) -> None:
        if progress.phase == "measuring":
            self.marks.append((monotonic_ns(), progress.messages))

    def window(self, messages: int, rps: float) -> tuple[int, int, int] | None:
        """The harness's measured window as far as its reports place it: start and end
        (monotonic ns) and the round trips between them."""
        if not self.marks or rps <= 0:
            return None
        start, first = self.marks[0]
        end, last = self.marks[-1]
        if last - first < messages * MIN_MARKED_SHARE:
            # The measurement ended when its last round trip completed, at the measured rate.
            end, last = start + int((messages - first) / rps * NS_PER_S), messages
        return start, end, last - first

    def cpu_us_per_rt(self, messages: int, rps: float) -> float | None:
        """Server CPU microseconds per round trip over the harness's measured window."""
        window = self.window(messages, rps)
        return None if window is None else self.cpu_us_between(*window)

    def cpu_us_between(self, start: int, end: int, round_trips: int) -> float | None:
        """Server CPU microseconds per round trip from ``start`` to ``end`` (monotonic ns)."""
        end = min(end, self.samples[-1][0])  # it ended before the client returned
        if round_trips <= 0 or end <= start:
            return None
        return (self._at(end, SERVER_CPU) - self._at(start, SERVER_CPU)) * US_PER_S / round_trips

    def harness_cpu(self, messages: int, rps: float) -> float | None:
        """Cores the harness's event-loop thread used over its measured window: the
        client's CPU without this process's other threads (the probe's, the log readers')."""
        window = self.window(messages, rps)
        if window is None:
            return None
        start, end = window[0], min(window[1], self.samples[-1][0])
        if end <= start:
            return None
        used = self._at(end, CLIENT_CPU) - self._at(start, CLIENT_CPU)
        return used * NS_PER_S / (end - start)

    def rss_per_conn(self, idle: int, connections: int) -> float | None:
        """Peak memory above ``idle`` while the harness ran, per connection, in bytes."""
        if not self.samples:
            return None
        return (max(sample[RSS] for sample in self.samples) - idle) / connections

    def _at(self, when: int, field: int) -> float:
        """A CPU time of the samples at ``when``, interpolated between the samples around it."""
        times = [sample[0] for sample in self.samples]
        after = min(bisect.bisect_left(times, when), len(times) - 1)
        before = max(after - 1, 0)
        t0, t1 = self.samples[before][0], self.samples[after][0]
        cpu0, cpu1 = self.samples[before][field], self.samples[after][field]
        if t1 == t0:
            return cpu1
        return cpu0 + (cpu1 - cpu0) * (when - t0) / (t1 - t0)

    def _sample(self) -> None:
        while True:
            self._take_sample()
            if self._stop.wait(SAMPLE_INTERVAL):
                return

    def _take_sample(self) -> None:
        pids = self.server.pids()
        now = monotonic_ns()
        client = proc.thread_cpu_seconds(self.client_thread)
        self.samples.append((now, proc.cpu_seconds(pids), proc.rss_bytes(pids), client))


def choose_client(requested: str) -> tuple[Client, str]:
    """The client a run uses (``auto``: the C client when it builds) and a note saying why."""
    if requested == "python":
        return "python", HARNESS
    why = cprograms.build()
    if why is None:
        return "c", "benchmarks/c/echo_load (C, one thread)"
    if requested == "c":
        raise RuntimeError(f"the C load client cannot be built: {why}")
    return "python", f"{HARNESS}, because {why}"


def run_cell(cell: Cell, matrix: Matrix) -> Outcome:
    """Start the cell's server, run every repeat, stop it: the outcome, never an exception."""
    spec = SERVERS[cell.server]
    if (why := spec.unavailable()) is not None:
        return Outcome(cell, "not run", why)
    client, _ = choose_client(matrix.client)
    repeat = _repeat_with_c if client == "c" else _repeat_with_harness
    samples: list[Sample] = []
    try:
        with running(spec) as server:
            idle = server.rss_bytes()
            for _ in range(matrix.repeats):
                result = repeat(server, cell.load, matrix, idle)
                if isinstance(result, str):
                    return Outcome(cell, "failed", result, tuple(samples))
                samples.append(result)
    except ServerError as exc:
        return Outcome(cell, "not run" if spec.processes > 1 else "failed", str(exc))
    return Outcome(cell, "ok", "", tuple(samples))


def _repeat_with_c(server: ServerProcess, load: Load, matrix: Matrix, idle: int) -> Sample | str:
    return c_sample(server, load, matrix.duration, matrix.warmup, idle)


def c_sample(
    server: ServerProcess, load: Load, duration: float, warmup: float, idle: int = 0
) -> Sample | str:
    """One run of the C load client against ``server``: a sample, or why the server
    could not take the load. ``idle`` is the server's memory before any connection."""
    with Probe(server) as probe:
        run = cprograms.run_load(server.port, load, duration, warmup)
    if not run.passed or run.result is None:
        return server.death(DEATH_GRACE) or run.failure()
    if (death := server.death()) is not None:
        return death
    result = run.result
    start, end = int(result["start_s"] * NS_PER_S), int(result["end_s"] * NS_PER_S)
    return Sample(
        rps=result["rps"],
        latency_us=dict(result["latency_us"]),
        cpu_us_per_rt=_round(probe.cpu_us_between(start, end, result["messages"]), 2),
        rss_per_conn=_round(probe.rss_per_conn(idle, load.connections), 0),
        client_cpu=round(result["cpu_s"] / result["duration_s"], 3),
        other_load=round(probe.other_load(), 2),
        errors=result["errors"] + result["mismatches"],
        bench=result,
    )


def _repeat_with_harness(
    server: ServerProcess, load: Load, matrix: Matrix, idle: int
) -> Sample | str:
    """One run of the harness: a sample, or why the server could not take the load."""
    config = bench.BenchConfig(
        host="127.0.0.1",
        port=server.port,
        connections=load.connections,
        size=load.size,
        pipeline=load.pipeline,
        duration=matrix.duration,
        warmup=matrix.warmup,
        connect_timeout=CONNECT_TIMEOUT,
        processes=1,
    )
    try:
        with Probe(server) as probe:
            result = bench.run(config, on_progress=probe)
    except (bench.TargetError, bench.WorkerError, OSError) as exc:
        return server.death(DEATH_GRACE) or f"harness failed: {exc}"
    if not result.ok:
        return server.death(DEATH_GRACE) or describe_failure(result.to_dict())
    if (death := server.death()) is not None:
        return death
    return Sample(
        rps=result.rps,
        latency_us=dict(result.latency_us),
        cpu_us_per_rt=_round(probe.cpu_us_per_rt(result.messages, result.rps), 2),
        rss_per_conn=_round(probe.rss_per_conn(idle, load.connections), 0),
        client_cpu=_round(probe.harness_cpu(result.messages, result.rps), 3),
        other_load=round(probe.other_load(), 2),
        errors=result.errors + result.mismatches,
        bench=result.to_dict(),
    )


def describe_failure(result: dict[str, Any]) -> str:
    """What went wrong in a harness result that is not ``ok``, in one line."""
    parts = []
    if result["connected"] < result["connections"]:
        parts.append(
            f"{result['connected']}/{result['connections']} connected"
            + _reasons(result["connect_errors"])
        )
    if result["errors"]:
        parts.append(f"{result['errors']} lost" + _reasons(result["error_reasons"]))
    if result["mismatches"]:
        examples = "; ".join(result["mismatch_examples"][:1])
        parts.append(f"{result['mismatches']} wrong replies ({examples})")
    if not result["messages"]:
        parts.append("no round trip completed")
    return ", ".join(parts) or "the harness reported a failure"


def _reasons(counts: dict[str, int]) -> str:
    """`` (473 refused, 2 reset)``, or nothing."""
    if not counts:
        return ""
    return " (" + ", ".join(f"{count} {reason}" for reason, count in counts.items()) + ")"


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
