"""The shape of a load, as every benchmark and the C load client take it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Load:
    """Concurrent connections, line size in bytes, messages in flight on each."""

    connections: int
    size: int
    pipeline: int

    @property
    def label(self) -> str:
        return f"{self.connections} conns, {size_label(self.size)}, k={self.pipeline}"


def size_label(size: int) -> str:
    """``64 B``, ``1 KiB``, ``16 KiB``."""
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"
