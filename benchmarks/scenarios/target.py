"""The aioecho server under attack: one subprocess per scenario and loop.

Started and stopped by the benchmarks' launcher (:mod:`benchmarks.core.servers`),
so it is found, drained and stopped exactly as the matrix's servers are.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..core.servers import HOST, ServerProcess, ServerSpec, aioecho, running

DEFAULT_SUFFIX = "_SB"
# How often the peak sampler reads the server's resident memory.
RSS_SAMPLE_S = 0.05


def spec(loop: str, flags: Sequence[str]) -> ServerSpec:
    """``python -m aioecho serve --loop LOOP FLAGS... --host 127.0.0.1 --port 0``."""
    return aioecho(f"aioecho-{loop}", f"aioecho, {loop} loop", ("--loop", loop, *flags))


@contextlib.contextmanager
def serving(loop: str, flags: Sequence[str]) -> Iterator[ServerProcess]:
    """A running server; stopped (SIGTERM, then kill) however the block ends."""
    with running(spec(loop, flags)) as server:
        yield server


def suffix_of(flags: Sequence[str]) -> str:
    """The reply suffix the server runs with: the last ``--suffix`` among its flags."""
    found = argparse.ArgumentParser(add_help=False)
    found.add_argument("--suffix", default=DEFAULT_SUFFIX)
    return str(found.parse_known_args(list(flags))[0].suffix)


def open_files(server: ServerProcess) -> int:
    """Descriptors the server's processes hold: did it let go of the connections?"""
    return sum(len(list(Path(f"/proc/{pid}/fd").iterdir())) for pid in server.pids())


class PeakMemory:
    """The server's highest resident memory while the block runs, sampled in a thread."""

    def __init__(self, server: ServerProcess) -> None:
        self._server = server
        self.peak = server.rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take()

    def _sample(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_S):
            self._take()

    def _take(self) -> None:
        self.peak = max(self.peak, self._server.rss_bytes())


__all__ = ["HOST", "PeakMemory", "ServerProcess", "serving", "suffix_of"]
