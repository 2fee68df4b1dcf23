"""Stalls the percentiles hide.

A closed loop sends nothing while it waits: when a server freezes for a
second, each connection has one request in flight, so a run of millions of
round trips has a few hundred slow ones and a p99 that looks fine
(coordinated omission). Two signs give the stall away: a second of the
timeline with almost no round trips, and a maximum far beyond the p99.99.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from .histogram import Summary

# A second with fewer round trips than this share of the median second collapsed.
COLLAPSE_SHARE = 0.1
# Seconds of the window a collapse can be judged against: fewer, and one
# slow second is the median itself.
MIN_SECONDS = 3
# A maximum this many times the p99.99, and at least this long, is a stall.
STALL_FACTOR = 10
STALL_MIN_US = 10_000


def stall_warnings(latency: Summary, seconds: Sequence[dict[str, Any]]) -> list[str]:
    """What suggests the run stalled, from the latency and the whole seconds of
    the timeline; empty when nothing does."""
    warnings = []
    if len(seconds) >= MIN_SECONDS:
        typical = statistics.median(second["round_trips"] for second in seconds)
        worst = min(seconds, key=lambda second: second["round_trips"])
        if worst["round_trips"] < COLLAPSE_SHARE * typical:
            warnings.append(
                f"stall: second {worst['second']} had {worst['round_trips']:,} round trips "
                f"against a median of {typical:,.0f} per second"
            )
    slowest, rare = latency.get("max"), latency.get("p9999")
    if slowest is not None and rare and slowest >= STALL_MIN_US and slowest > STALL_FACTOR * rare:
        warnings.append(
            f"stall: the slowest round trip took {slowest / 1000:,.1f} ms, "
            f"{slowest / rare:,.0f}x the p99.99 of {rare / 1000:,.2f} ms"
        )
    return warnings
