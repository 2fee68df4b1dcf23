"""Baseline: ``select.poll``, the tutorial's next rung after ``select``.

poll takes a list of descriptors of any number (no FD_SETSIZE cap), but
like select the kernel walks the whole list on every call: its cost still
grows with the connections watched, idle or not. One thread, the same reply
rule and reads as the select baseline.
"""

from __future__ import annotations

import select
import socket

from ._common import serve_forever, serve_polled


def serve(server: socket.socket) -> None:
    """Accept and echo forever; returns only by exception."""
    serve_polled(server, select.poll(), select.POLLIN)


if __name__ == "__main__":
    serve_forever(serve, __doc__)
