"""The supervisor's watchdog on a clock the test moves: deadlines, its stalls, pending reports."""

from __future__ import annotations

import os

import pytest

from aioecho.core import Counters
from aioecho.process.status import StatusReader, encode_stats
from aioecho.process.watchdog import Watchdog
from aioecho.pytest_plugin import EchoClock
from aioecho.stats import snapshot

GRACE = 5.0
INTERVAL = GRACE / 4


def on_schedule(clock: EchoClock, watchdog: Watchdog[str], seconds: float) -> list[str]:
    """Let ``seconds`` pass check by check, as a watchdog that runs on time; who was overdue."""
    found: list[str] = []
    for _ in range(round(seconds / INTERVAL)):
        clock.advance(INTERVAL)
        found += watchdog.overdue()
    return found


def test_the_watchdog_names_who_missed_the_deadline_on_its_clock() -> None:
    clock = EchoClock()
    watchdog: Watchdog[str] = Watchdog(clock, INTERVAL)
    watchdog.expect("one", GRACE)
    watchdog.expect("two", GRACE)
    assert on_schedule(clock, watchdog, 3.75) == []
    watchdog.expect("two", GRACE)  # two reported; one did not
    assert on_schedule(clock, watchdog, 1.25) == []
    assert on_schedule(clock, watchdog, 1.25) == ["one"]
    watchdog.forget("one")
    assert on_schedule(clock, watchdog, 2.5) == []
    assert on_schedule(clock, watchdog, 1.25) == ["two"]
    assert watchdog.held_up == 0.0


def test_time_the_watchdog_itself_was_stopped_is_not_counted() -> None:
    clock = EchoClock()
    watchdog: Watchdog[str] = Watchdog(clock, INTERVAL)
    watchdog.expect("worker", GRACE)
    assert on_schedule(clock, watchdog, 2.5) == []  # 2.5 s of its grace used
    clock.advance(INTERVAL + 8.0)  # the next check comes 8 s late: the watchdog was stopped
    assert watchdog.overdue() == []
    assert watchdog.held_up == 8.0
    # A party that stays silent is still found, after the rest of its grace.
    assert on_schedule(clock, watchdog, 1.25) == []
    assert on_schedule(clock, watchdog, 1.25) == ["worker"]


def test_a_watchdog_late_on_every_check_still_finds_a_silent_party() -> None:
    clock = EchoClock()
    watchdog: Watchdog[str] = Watchdog(clock, INTERVAL)
    watchdog.expect("worker", GRACE)
    checks = 0
    while not watchdog.overdue():
        checks += 1
        assert checks < 10
        clock.advance(INTERVAL + 3.0)  # starved: every check 3 s late
    assert checks == 5  # 4 intervals of its own running time make the grace, then one more


@pytest.mark.parametrize("reported", [True, False])
async def test_reports_waiting_in_the_pipe_are_read_before_judging(reported: bool) -> None:
    read_fd, write_fd = os.pipe()
    clock = EchoClock()
    watchdog: Watchdog[str] = Watchdog(clock, INTERVAL)
    status = StatusReader(read_fd, lambda _: watchdog.expect("worker", GRACE))
    watchdog.listen("worker", status.drain)
    watchdog.expect("worker", GRACE)
    assert on_schedule(clock, watchdog, 3.75) == []
    if reported:
        # Written but not yet read: the loop never ran the reader (no await since).
        os.write(write_fd, encode_stats(snapshot(Counters())) * 3)
    try:
        assert on_schedule(clock, watchdog, 2.5) == ([] if reported else ["worker"])
    finally:
        os.close(write_fd)
        status.drain()  # to its end of file: the reader closes its end
    assert status.closed.is_set()


async def test_a_pipe_at_end_of_file_is_drained_and_closed() -> None:
    read_fd, write_fd = os.pipe()
    heard: list[object] = []
    status = StatusReader(read_fd, heard.append)
    os.write(write_fd, encode_stats(snapshot(Counters())))
    os.close(write_fd)
    status.drain()
    assert len(heard) == 1
    assert status.closed.is_set()
    status.drain()  # nothing more, and no read of a closed descriptor
