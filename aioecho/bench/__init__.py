"""The load-benchmark harness, as a library.

Run a load against a server on the running loop and read the result::

    from aioecho import bench

    config = bench.BenchConfig(host="127.0.0.1", port=port, connections=100, duration=2)
    result = await bench.run_async(config)
    assert result.ok, bench.to_table(result)
    print(result.rps, result.latency_us["p99"])

``bench.run(config)`` is the blocking form the command line uses: it can
start a local server and fan the load out over several processes.

Needs the ``bench`` extra (``hdrhistogram``). Only the configuration is
imported eagerly, so that ``python -m aioecho`` can register its ``bench``
command without it; the rest loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports
from .config import BenchConfig, BenchConfigError

if TYPE_CHECKING:
    from .report import to_json, to_table
    from .result import BenchResult
    from .runner import WorkerError, run, run_async
    from .target import TargetError

_LAZY = {
    "BenchResult": "result",
    "TargetError": "target",
    "WorkerError": "runner",
    "run": "runner",
    "run_async": "runner",
    "to_json": "report",
    "to_table": "report",
}

__all__ = [
    "BenchConfig",
    "BenchConfigError",
    "BenchResult",
    "TargetError",
    "WorkerError",
    "run",
    "run_async",
    "to_json",
    "to_table",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
