"""Baseline: ``select.epoll``, level-triggered, as a reader of the tutorial
would write it after the select and poll rungs.

The kernel keeps the watched set between calls and hands back only the
descriptors that are ready, so a call costs what is ready, not what is
watched: idle connections cost (nearly) nothing. Level-triggered, like
select and poll: a descriptor with unread data is reported again on the next
call, so one read per readiness is enough. One thread, the same reply rule
and reads as the select baseline.
"""

from __future__ import annotations

import select
import socket

from ._common import serve_forever, serve_polled


def serve(server: socket.socket) -> None:
    """Accept and echo forever; returns only by exception."""
    serve_polled(server, select.epoll(), select.EPOLLIN)


if __name__ == "__main__":
    serve_forever(serve, __doc__)
