"""Listening sockets and the server's own accept loop.

The loops' ``create_server`` handle running out of file descriptors
differently and neither as a long-running service wants: asyncio logs a
traceback for every failed accept, libuv silently accepts and drops. This
loop pauses accepting with one log line, resumes as soon as a descriptor is
freed, and hands each accepted socket to the server, which can refuse it
before building a transport.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

from ..core import Counters
from .binding import Address

logger = logging.getLogger("aioecho")

# Accepts per readiness event: bounded so that a connection flood cannot
# starve the connections already being served.
ACCEPT_BATCH = 128

# How long to wait before retrying when descriptors ran out and none has been
# freed by a closing connection (the value trio uses).
ACCEPT_RETRY_DELAY = 0.1


_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Listener:
    """Accepts connections on some listening sockets and passes them on."""

    def __init__(
        self,
        sockets: list[socket.socket],
        on_accept: Callable[[socket.socket], None],
        counters: Counters,
        log_prefix: str = "",
    ) -> None:
        self.sockets = sockets
        self._log_prefix = log_prefix
        self._on_accept = on_accept
        self._loop = asyncio.get_running_loop()
        self._accepting = False
        self._out_of_descriptors = False
        self._retry: asyncio.TimerHandle | None = None
        self._counters = counters  # failed accepts are counted with the server's other counters

    @property
    def addresses(self) -> list[Address]:
        """The bound ``(host, port)`` of every TCP socket."""
        return [sock.getsockname()[:2] for sock in self.sockets if sock.family != socket.AF_UNIX]

    @property
    def is_accepting(self) -> bool:
        return self._accepting or self._retry is not None

    def start(self) -> None:
        for sock in self.sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)
        self._accepting = True

    def close(self) -> None:
        """Stop accepting and close the listening sockets."""
        self._stop_accepting()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for sock in self.sockets:
            sock.close()

    def descriptor_freed(self) -> None:
        """A connection closed: if accepting was paused for lack of descriptors, resume."""
        if self._retry is not None:
            self._retry.cancel()
            self._resume()

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                connection, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                self._caught_up()
                return
            except OSError as exc:
                self._counters.accept_errors += 1
                if exc.errno in _OUT_OF_RESOURCES:
                    self._pause(exc)
                    return
                logger.debug("accept failed: %s", exc)  # e.g. the peer left first
                continue
            if connection.family != socket.AF_UNIX:
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._on_accept(connection)

    def _pause(self, exc: OSError) -> None:
        if not self._out_of_descriptors:
            self._out_of_descriptors = True
            logger.warning(
                "%scannot accept: %s; serving open connections, accepting again once one closes",
                self._log_prefix,
                exc.strerror,
            )
        self._stop_accepting()
        self._retry = self._loop.call_later(ACCEPT_RETRY_DELAY, self._resume)

    def _caught_up(self) -> None:
        # The episode ends when the accept queue is empty, not at the first
        # accept: descriptors often come back one by one while clients wait.
        if self._out_of_descriptors:
            self._out_of_descriptors = False
            logger.info("%saccepting connections again", self._log_prefix)

    def _resume(self) -> None:
        self._retry = None
        self.start()
        # Accept now rather than on the next readiness event: Linux's accept()
        # fails with EMFILE before it looks at the queue, so the pause may
        # have begun with nobody waiting, and then no event would come to end
        # the episode.
        for sock in self.sockets:
            if not self._accepting:
                break  # out of descriptors again: the retry is scheduled
            self._accept(sock)

    def _stop_accepting(self) -> None:
        if self._accepting:
            for sock in self.sockets:
                self._loop.remove_reader(sock.fileno())
            self._accepting = False


def set_send_buffer(sock: socket.socket, size: int) -> None:
    """Cap the kernel's send buffer of an accepted socket (SO_SNDBUF; 0 leaves the default).

    Linux doubles the value for its bookkeeping, caps it at
    ``net.core.wmem_max`` and no longer autotunes that socket's buffer.
    """
    if size:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
