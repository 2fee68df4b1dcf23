"""One client process of a benchmark run over several: ``python -m aioecho.bench.client_process``.

The runner (:mod:`aioecho.bench.runner`) starts it with a
:class:`~aioecho.bench.runner.ClientTask` on stdin and the other end of a
socket pair; the process connects its share of the connections, reports,
runs when told, and sends its partial result back.
"""

from __future__ import annotations

import signal

if __name__ == "__main__":
    # First: the parent decides when to stop, and Ctrl-C reaches every process
    # of the terminal's group, from before the imports below run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

from ..process import spawn
from .runner import ClientTask, worker_main


def main() -> None:
    """Run the share of the load handed over on stdin."""
    task: ClientTask = spawn.received()
    worker_main(task)


if __name__ == "__main__":
    main()
