"""Fault injection: the spec syntax, and the plan that decides each line's fate.

A :class:`FaultPlan` is immutable and shared by the connections it was
given to; each connection draws from its own random generator. With a seed,
the n-th connection accepted under the plan always gets the same generator,
so the faults a connection sees depend only on the seed, on its place in
the order of connections, and on the lines it sends (not on how TCP cut
them up, nor on what other connections send).
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from ..bounds import Bounds
from ..durations import parse_duration

PERCENT = 100.0
PERCENTAGE = Bounds(float, 0, PERCENT)


class Verdict(Enum):
    """What happens to one line instead of, or before, its reply."""

    ANSWER = "answer"
    DROP = "drop"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class DelayStep:
    """Delay ``seconds`` when the roll (0..100) falls under ``below``."""

    seconds: float
    below: float


# Read once per text: a config checks its delay when made and hands out its
# plan on every FaultPlan it makes after; the steps are immutable.
@functools.lru_cache(maxsize=64)
def parse_delays(text: str) -> tuple[DelayStep, ...]:
    """Read fortio's delay syntax: ``DURATION`` or ``DURATION:PERCENT[,DURATION:PERCENT...]``.

    A lone duration delays every reply; otherwise each pair delays that
    percentage of replies, the percentages add up to at most 100, and the
    rest go undelayed: ``150us:10,2ms:5,0.5s:1`` delays 10 % by 150 µs, 5 %
    by 2 ms, 1 % by 0.5 s and 84 % not at all. An empty text means no delay.
    """
    if not text.strip():
        return ()
    if ":" not in text and "," not in text:
        return (DelayStep(parse_duration(text), PERCENT),)
    steps: list[DelayStep] = []
    total = 0.0
    for entry in text.split(","):
        duration, colon, percent = entry.partition(":")
        if not colon:
            raise ValueError(f"delay {text!r}: {entry!r} is not DURATION:PERCENT")
        total += _percent(percent, text)
        if round(total, 9) > PERCENT:
            raise ValueError(f"delay {text!r}: the percentages add up to more than 100")
        steps.append(DelayStep(parse_duration(duration), total))
    return tuple(steps)


def _percent(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"delay {spec!r}: {text!r} is not a percentage") from None
    PERCENTAGE.check(f"delay {spec!r}: a percentage", value)  # nan and inf too
    return value


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Which faults to inject, as :class:`~aioecho.ServerConfig`'s fault fields describe.

    Decisions are per line, drawn in a fixed order from the connection's
    generator: reset, then drop, then delay, then jitter (each only when on).
    """

    delays: tuple[DelayStep, ...] = ()
    jitter: float = 0.0
    bandwidth: int = 0
    fragment: int = 0
    drop: float = 0.0
    reset: float = 0.0
    close_after: int | None = None
    stall_after: int | None = None
    seed: int | None = None

    @property
    def active(self) -> bool:
        """Whether any fault is on (a seed alone changes nothing)."""
        return self.draws or bool(
            self.delays or self.bandwidth or self.fragment or self.close_after is not None
        )

    @property
    def draws(self) -> bool:
        """Whether lines may differ in fate: some fault is drawn line by line (or counted)."""
        return bool(
            self.reset
            or self.drop
            or self.jitter
            or self.stall_after is not None
            or len(self.delays) > 1
            or (self.delays and self.delays[0].below < PERCENT)
        )

    def generators(self) -> Iterator[random.Random]:
        """One generator per connection, in the order the connections are accepted.

        With a seed, the n-th is seeded from the seed and n (a string seed is
        hashed with SHA-512, the same in every process); without, each is
        unpredictable.
        """
        for number in itertools.count():
            yield random.Random(None if self.seed is None else f"{self.seed}/{number}")

    def verdict(self, rng: random.Random) -> Verdict:
        """Whether a line is answered, dropped or answered by a reset."""
        if self.reset and rng.random() < self.reset:
            return Verdict.RESET
        if self.drop and rng.random() < self.drop:
            return Verdict.DROP
        return Verdict.ANSWER

    def delay(self, rng: random.Random) -> float:
        """The delay the spec draws for a reply (0: none)."""
        if not self.delays:
            return 0.0
        roll = rng.random() * PERCENT
        return next((step.seconds for step in self.delays if roll < step.below), 0.0)

    def extra_delay(self, rng: random.Random) -> float:
        """The jitter drawn for a reply, uniform in [0, jitter)."""
        return rng.random() * self.jitter if self.jitter else 0.0
