"""The per-read core of the server and the harness in the build this process runs:
compiled or pure Python.

``aioecho/_core/`` holds the sources. Where Cython and a C compiler were
present at install, the build compiled a copy of them into the package
``aioecho._core_c``, with the digest of the sources it was compiled from
(``aioecho._core_c.built_from``). That package runs unless
``AIOECHO_NO_EXTENSIONS=1`` is set, and only while its digest is the digest
of ``aioecho/_core/`` now: after an edit, the sources run (with a warning
until the next ``pip install -e .``), never stale compiled code.

Everything else in aioecho takes the core's names from here.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType
from typing import TYPE_CHECKING

from . import _core

DISABLE_VARIABLE = "AIOECHO_NO_EXTENSIONS"
COMPILED_PACKAGE = "aioecho._core_c"
MODULES = ("connections", "counters", "framing", "harness", "latency", "protocol")


def compiled_modules() -> list[ModuleType] | None:
    """The compiled core's modules, or None where the sources must run."""
    if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
        return None
    try:
        built_from = importlib.import_module(f"{COMPILED_PACKAGE}.built_from")
    except ImportError:
        return None  # not compiled here
    problem = "compiled from other sources (rebuild with: pip install -e .)"
    if _core.source_digest() == built_from.DIGEST:
        try:
            return [importlib.import_module(f"{COMPILED_PACKAGE}.{name}") for name in MODULES]
        except ImportError as exc:
            problem = f"not loadable: {exc}"
    warnings.warn(
        f"aioecho: the compiled core is ignored, running pure Python: it is {problem}",
        RuntimeWarning,
        stacklevel=2,
    )
    return None


if TYPE_CHECKING:
    from ._core import connections, counters, framing, harness, latency, protocol

    COMPILED: bool
else:
    _compiled = compiled_modules()
    COMPILED = _compiled is not None
    connections, counters, framing, harness, latency, protocol = _compiled or [
        importlib.import_module(f"{_core.__name__}.{name}") for name in MODULES
    ]

Clock = connections.Clock
Connection = connections.Connection
ConnectionTracker = connections.ConnectionTracker
RECEIVE_BUFFER_SIZE = connections.RECEIVE_BUFFER_SIZE
Timeouts = connections.Timeouts

CloseReason = counters.CloseReason
Counters = counters.Counters
Fault = counters.Fault

LineEcho = framing.LineEcho

BenchConnection = harness.BenchConnection
ClosedLoopConnection = harness.ClosedLoopConnection
ClosedLoopProtocol = harness.ClosedLoopProtocol
OpenLoopConnection = harness.OpenLoopConnection
OpenLoopProtocol = harness.OpenLoopProtocol
Tally = harness.Tally
MAX_EXAMPLES = harness.MAX_EXAMPLES
NEVER = harness.NEVER

LatencyCounts = latency.LatencyCounts

ChunkEchoProtocol = protocol.ChunkEchoProtocol
EchoConnection = protocol.EchoConnection
EchoProtocol = protocol.EchoProtocol
LineEchoProtocol = protocol.LineEchoProtocol
ERROR_LINGER_SECONDS = protocol.ERROR_LINGER_SECONDS
MAX_CONNECTIONS_ERROR = protocol.MAX_CONNECTIONS_ERROR
MAX_CONNECTIONS_PER_IP_ERROR = protocol.MAX_CONNECTIONS_PER_IP_ERROR
REPLY_SLICE = protocol.REPLY_SLICE
TLS_LAYER_HELD = protocol.TLS_LAYER_HELD
TLS_READ_HIGH_WATER = protocol.TLS_READ_HIGH_WATER
WRITE_HIGH_WATER = protocol.WRITE_HIGH_WATER
WRITE_LOW_WATER = protocol.WRITE_LOW_WATER
