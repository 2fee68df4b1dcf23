"""What the supervisor tells a worker it starts (pickled on the worker's stdin).

Its own module, so that the worker entry (run as ``__main__``) and the
supervisor unpickle and pickle one and the same class.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ServerConfig
from ..loops import LoopName


@dataclass(frozen=True)
class WorkerSpec:
    """One worker's orders."""

    number: int
    config: ServerConfig
    """The service's config with the port resolved, one worker, no metrics or stats lines."""
    loop: LoopName
    log_level: int
    status_fd: int
    """The write end of the status pipe."""
    listen_fds: tuple[int, ...]
    """Listening sockets to serve; none: bind the config's addresses with SO_REUSEPORT."""
