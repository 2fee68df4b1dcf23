"""Names for why a connection failed to open or was lost.

The report counts failures by these names, so that "800 refused, 200 out of
file descriptors" tells the user what to fix instead of a wall of tracebacks.
"""

from __future__ import annotations

import errno
import ssl

REFUSED = "refused"
TIMEOUT = "timeout"
RESET = "reset"
CLOSED = "closed"  # the server closed the connection in the middle of the run
FD_LIMIT = "fd_limit"
NO_PORTS = "no_ports"
UNREACHABLE = "unreachable"
TLS = "tls"  # the TLS handshake failed: certificate not trusted, not a TLS server
NOT_ATTEMPTED = "not_attempted"  # the ramp-up gave up: nothing could connect
INTERRUPTED = "interrupted"  # the run was stopped before this connection was tried

DESCRIPTIONS = {
    REFUSED: "connection refused",
    TIMEOUT: "timed out",
    RESET: "reset by peer",
    CLOSED: "closed by the server",
    FD_LIMIT: "out of file descriptors",
    NO_PORTS: "out of local ports or addresses",
    UNREACHABLE: "network unreachable",
    TLS: "TLS handshake failed",
    NOT_ATTEMPTED: "not attempted (every earlier attempt failed)",
    INTERRUPTED: "not attempted (the run was stopped)",
}

_BY_ERRNO = {
    errno.ECONNREFUSED: REFUSED,
    errno.ETIMEDOUT: TIMEOUT,
    errno.ECONNRESET: RESET,
    errno.ECONNABORTED: RESET,
    errno.EPIPE: RESET,
    errno.EMFILE: FD_LIMIT,
    errno.ENFILE: FD_LIMIT,
    errno.EADDRNOTAVAIL: NO_PORTS,
    errno.EADDRINUSE: NO_PORTS,
    errno.ENETUNREACH: UNREACHABLE,
    errno.EHOSTUNREACH: UNREACHABLE,
}


def classify(exc: BaseException | None) -> str:
    """The failure name for ``exc``; ``None`` means the peer closed cleanly."""
    if exc is None:
        return CLOSED
    if isinstance(exc, TimeoutError) and exc.errno is None:
        return TIMEOUT  # asyncio.timeout's, not the kernel's ETIMEDOUT
    if isinstance(exc, ssl.SSLError):
        return TLS  # its errno is the TLS library's, not the kernel's
    if isinstance(exc, OSError) and exc.errno is not None:
        known = _BY_ERRNO.get(exc.errno)
        return known or errno.errorcode.get(exc.errno, str(exc.errno)).lower()
    return type(exc).__name__


def describe(reason: str) -> str:
    """A human phrase for a failure name."""
    return DESCRIPTIONS.get(reason, reason)
