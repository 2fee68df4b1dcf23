"""Fault injection: the plan that decides each line's fate, and the outbox that carries it out.

Pure Python, beside the compiled core rather than inside it: a connection
hands its replies to a :class:`FaultOutbox` through the core's one reply
seam (``aioecho._core.sink``) only while a fault is on.
"""

from .outbox import FaultOutbox
from .plan import DelayStep, FaultPlan, Verdict, parse_delays

__all__ = ["DelayStep", "FaultOutbox", "FaultPlan", "Verdict", "parse_delays"]
