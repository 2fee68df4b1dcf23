"""The open-file limit: every connection, server or client side, costs a descriptor."""

from __future__ import annotations

import contextlib
import resource


def raise_open_file_limit() -> int:
    """Lift the soft open-file limit to the hard one; the soft limit now in force.

    Child processes inherit the raised limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft
