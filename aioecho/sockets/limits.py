"""The open-file limit: every connection, server or client side, costs a descriptor."""

from __future__ import annotations

import contextlib

try:
    import resource
except ImportError:  # not POSIX: no open-file limit to read or raise
    resource = None  # type: ignore[assignment]

# Descriptors kept free when max_connections is derived from the open-file
# limit: listening sockets, the metrics endpoint (at most
# METRICS_MAX_CONNECTIONS of them), logs, the loop's own.
RESERVED_DESCRIPTORS = 64


def raise_open_file_limit() -> int:
    """Lift the soft open-file limit to the hard one; the soft limit now in force.

    Child processes inherit the raised limit.
    """
    if resource is None:
        raise OSError("the open-file limit is POSIX-only (no resource module here)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def default_max_connections() -> int:
    """The open-file soft limit less a reserve for everything that is not a client."""
    if resource is None:
        raise OSError("the open-file limit is POSIX-only (no resource module here)")
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(1, soft - RESERVED_DESCRIPTORS)
