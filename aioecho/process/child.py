"""A server in a child process, as the harness, the benchmark suite and the
tests all run one: started (``launch.launch_server`` for aioecho), its
output read by threads into a bounded tail for the whole of its life (a
child whose pipe fills up would block, and a benchmark would measure that),
and stopped by asking first: SIGTERM, then SIGKILL if it does not go.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..sockets.binding import HostAndPort
from .launch import START_TIMEOUT, LaunchedServer, LaunchError, launch_server
from .readiness import Readiness

STOP_TIMEOUT = 10.0
TAIL_LINES = 20


class LogTail:
    """The last lines a child wrote on the pipes it follows; ``on_line`` sees each."""

    def __init__(self, on_line: Callable[[bytes], None] | None = None) -> None:
        self.lines: deque[bytes] = deque(maxlen=TAIL_LINES)
        self._on_line = on_line
        self._readers: list[threading.Thread] = []

    def follow(self, pipe: IO[bytes] | None) -> None:
        """Read ``pipe`` to its end in a thread."""
        if pipe is not None:
            reader = threading.Thread(target=self._read, args=(pipe,), daemon=True)
            reader.start()
            self._readers.append(reader)

    def last(self) -> str:
        """The last line that says something, or ``no output``."""
        lines = [line.strip() for line in self.lines if line.strip()]
        return lines[-1].decode(errors="replace") if lines else "no output"

    def join(self, timeout: float = 1.0) -> None:
        for reader in self._readers:
            reader.join(timeout)

    def _read(self, pipe: IO[bytes]) -> None:
        with pipe:
            for line in pipe:
                self.lines.append(line)
                if self._on_line is not None:
                    self._on_line(line)


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


class ChildServer(HostAndPort):
    """``python -m aioecho`` serving in a child process (see :meth:`start`)."""

    def __init__(self, launched: LaunchedServer, log: LogTail) -> None:
        self.process = launched.process
        self.ready: Readiness = launched.ready
        self.log = log

    @classmethod
    def start(
        cls,
        command: Sequence[str],
        *,
        timeout: float = START_TIMEOUT,
        follow_log: bool = True,
        **popen: Any,
    ) -> ChildServer:
        """Launch ``command`` (an aioecho serve command line) and wait until it serves.

        With ``follow_log`` its stderr is read into :attr:`log`; without, it is
        left a pipe for the caller to read. Raises :class:`LaunchError`, with
        the server's last log line, if it exits first or is not ready in time.
        """
        popen.setdefault("stdout", subprocess.DEVNULL)
        popen.setdefault("stderr", subprocess.PIPE)
        try:
            launched = launch_server(command, timeout=timeout, **popen)
        except LaunchError as exc:
            _, err = exc.process.communicate()
            last = (err or b"").decode(errors="replace").strip().splitlines()
            raise LaunchError(f"{exc}: {last[-1] if last else 'no output'}", exc.process) from None
        log = LogTail()
        if follow_log:
            log.follow(launched.process.stderr)
        return cls(launched, log)

    @property
    def address(self) -> tuple[str, int]:
        """Its first TCP address."""
        return self.ready.addresses[0]

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Ask it to stop (SIGTERM), kill it if it does not in time; the exit status."""
        status = stop_process(self.process, timeout)
        self.log.join()
        return status

    def kill(self) -> None:
        """Kill it now (a test's server, whose clean exit is not the point)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
