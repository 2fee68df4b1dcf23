"""What the kernel still holds for a socket, where the platform can tell
(POSIX: ``fcntl`` and ``termios``; elsewhere every answer is "unknown")."""

from __future__ import annotations

import array
import asyncio

try:
    import fcntl
    import termios
except ImportError:  # not POSIX: the queues cannot be asked about
    fcntl = termios = None  # type: ignore[assignment]

# Linux's SIOCOUTQ shares TIOCOUTQ's number: bytes sent but not yet
# acknowledged by the peer. FIONREAD (SIOCINQ): bytes received, not yet read.
_SIOCOUTQ = getattr(termios, "TIOCOUTQ", None)
_SIOCINQ = getattr(termios, "FIONREAD", None)


def kernel_unsent(transport: asyncio.BaseTransport) -> int | None:
    """Bytes in the kernel's send queue not yet acknowledged, or None if unknown."""
    return _queued(transport, _SIOCOUTQ)


def kernel_unread(transport: asyncio.BaseTransport) -> int | None:
    """Bytes in the kernel's receive queue not yet read, or None if unknown."""
    return _queued(transport, _SIOCINQ)


def _queued(transport: asyncio.BaseTransport, request: int | None) -> int | None:
    sock = transport.get_extra_info("socket")
    if request is None or sock is None:
        return None
    count = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), request, count, True)
    except OSError:
        return None
    return count[0]
