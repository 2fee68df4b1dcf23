"""How evenly a server served its connections.

A server that serves 900 of 1,000 connections well and starves 100 shows a
fine total and a p99 that hides who waited: the starved connections send
little, so they weigh little in the latency histogram. These figures look
per connection instead: how many round trips each got in the window, how
even that is (Jain's fairness index: 1 when all got the same, 1/n when one
got everything), how many went a whole second of the window without a
reply, and the longest each waited between two replies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def fairness(trips: Sequence[int], gaps_us: Sequence[int], starved: int) -> dict[str, Any]:
    """The fairness figures of the connections whose round trips (in the window)
    and longest gaps between replies (µs) are given; ``starved`` of them had
    a whole second of the window without a reply."""
    ordered = sorted(trips)
    gaps = sorted(gaps_us)
    return {
        "connections": len(ordered),
        "round_trips": {
            "min": ordered[0] if ordered else None,
            "p1": rank(ordered, 1),
            "median": rank(ordered, 50),
            "max": ordered[-1] if ordered else None,
        },
        "jain_index": jain_index(ordered),
        "starved": starved,
        "longest_gap_us": {"p99": rank(gaps, 99), "max": gaps[-1] if gaps else None},
    }


def jain_index(values: Sequence[int]) -> float | None:
    """(Σx)² / (n·Σx²), rounded to 4 digits; ``None`` when nothing was served."""
    squares = sum(value * value for value in values)
    if not squares:
        return None
    return round(sum(values) ** 2 / (len(values) * squares), 4)


def rank(ordered: Sequence[int], percent: float) -> int | None:
    """The nearest-rank percentile of sorted values."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]
