"""Instructions per line of a server, counted by callgrind: a figure noise cannot blur.

The server runs under ``valgrind --tool=callgrind``, which counts the
instructions it executes in user space (the kernel's share is not counted).
One connection sends lines of the load's size, ``pipeline`` at a time, and
reads every reply; a run of ``lines`` lines and a run of ``lines`` more
differ by exactly the per-line work, so start-up and shut-down cancel out:
``(count(2n) - count(n)) / n``.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core.load import Load
from ..core.servers import ServerSpec, running

# Start-up under valgrind takes seconds: the readiness wait allows for it.
TOTALS = re.compile(r"^(?:summary|totals): (\d+)", re.MULTILINE)
SUFFIX_GROWTH = len(b"_SB")


def available() -> str | None:
    """Why callgrind cannot count here, or ``None`` when it can."""
    return None if shutil.which("valgrind") else "valgrind is not installed"


@dataclass(frozen=True)
class UnderCallgrind(ServerSpec):
    """A server of the comparison, run under callgrind into ``output``."""

    output: str = ""

    @property
    def command(self) -> list[str]:
        counting = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.output}"]
        return [*counting, *super().command]


def per_line(spec: ServerSpec, load: Load, lines: int) -> float:
    """The instructions ``spec``'s server spends per line of ``load`` (one connection)."""
    return (count(spec, load, 2 * lines) - count(spec, load, lines)) / lines


def count(spec: ServerSpec, load: Load, lines: int) -> int:
    """All the instructions of one run of the server that answers ``lines`` lines."""
    with tempfile.TemporaryDirectory() as folder:
        output = str(Path(folder, "callgrind.out"))
        counted = UnderCallgrind(**{**dataclasses.asdict(spec), "output": output})
        with running(counted) as server:
            exchange(server.port, load, lines)
        match = TOTALS.search(Path(output).read_text())
    if match is None:
        raise RuntimeError(f"{spec.name}: callgrind wrote no total")
    return int(match.group(1))


def exchange(port: int, load: Load, lines: int) -> None:
    """Send ``lines`` lines of ``load.size`` bytes, ``load.pipeline`` at a time; read replies."""
    batch = (b"x" * (load.size - 1) + b"\n") * load.pipeline
    reply_size = len(batch) + SUFFIX_GROWTH * load.pipeline
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(lines // load.pipeline):
            sock.sendall(batch)
            received = 0
            while received < reply_size:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("the server closed the connection")
                received += len(chunk)
