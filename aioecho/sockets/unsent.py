"""What the kernel still holds for a socket, where the platform can tell."""

from __future__ import annotations

import array
import asyncio
import fcntl
import termios

# Linux's SIOCOUTQ shares TIOCOUTQ's number: bytes sent but not yet
# acknowledged by the peer.
_SIOCOUTQ = getattr(termios, "TIOCOUTQ", None)


def kernel_unsent(transport: asyncio.BaseTransport) -> int | None:
    """Bytes in the kernel's send queue not yet acknowledged, or None if unknown."""
    sock = transport.get_extra_info("socket")
    if _SIOCOUTQ is None or sock is None:
        return None
    count = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), _SIOCOUTQ, count, True)
    except OSError:
        return None
    return count[0]
