"""What connections cost in memory: resident set sizes from ``/proc``.

The client measures itself; a server on this machine is found by the
listening socket of the target port (every process holding one, so all
workers of a multi-process server count) and measured where ``/proc``
lets us read it. Outside Linux, or without permission, there is no figure.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..procfs import PROC, rss_bytes, summed

TCP_TABLES = ("net/tcp", "net/tcp6")
LISTEN = "0A"  # the kernel's TCP_LISTEN state, as /proc/net/tcp writes it
# A server opens its listening sockets at start-up, among its first
# descriptors: looking at only these keeps the scan cheap beside processes
# that hold a hundred thousand connections.
FIRST_DESCRIPTORS = 256


def listening_pids(port: int) -> list[int]:
    """Processes this user can see holding a socket that listens on ``port``."""
    inodes = _listening_inodes(port)
    if not inodes:
        return []
    owners = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and _holds_any(entry, inodes):
            owners.append(int(entry.name))
    return sorted(owners)


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in TCP_TABLES:
        with contextlib.suppress(OSError):
            for line in (PROC / table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    return inodes


def _holds_any(process: Path, sockets: set[str]) -> bool:
    try:
        numbers = sorted(int(name) for name in os.listdir(process / "fd"))
    except (OSError, ValueError):
        return False  # another user's process, or gone
    for number in numbers[:FIRST_DESCRIPTORS]:
        with contextlib.suppress(OSError):
            if os.readlink(process / "fd" / str(number)) in sockets:
                return True
    return False


class ServerMemory:
    """The resident memory of a server on this machine, before and after connecting."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._before: int | None = None
        self._after: int | None = None

    @classmethod
    def of_local_port(cls, port: int) -> ServerMemory:
        """The processes listening on ``port`` here (none found: no figure)."""
        return cls(listening_pids(port))

    def before_connecting(self) -> None:
        self._before = summed(rss_bytes, self.pids)

    def after_connecting(self) -> None:
        self._after = summed(rss_bytes, self.pids)

    def per_connection(self, connections: int) -> float | None:
        """Bytes the server grew by per connection, if it could be measured."""
        if self._before is None or self._after is None or connections <= 0:
            return None
        return round((self._after - self._before) / connections)
