"""An alarm on the event loop that rings at a nanosecond instant.

Event loops time their timers in whole milliseconds: asyncio rounds the
selector's timeout up to the next millisecond, libuv (uvloop) counts in
milliseconds of a cached clock. A pacer on such timers writes each message up
to a millisecond after it is due, which is most of an 80 µs round trip's
reported latency. On Linux a ``timerfd`` armed at an absolute instant of
``CLOCK_MONOTONIC`` (the clock of ``time.monotonic_ns``) becomes readable
when the instant passes, and the loop's ``epoll_wait`` returns at once
whatever timeout it was given: the alarm then rings within the kernel's
wake-up latency (tens of microseconds) instead. Elsewhere the loop's timer
serves.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from time import monotonic_ns

NS_PER_S = 1_000_000_000
CLOCK_MONOTONIC = 1
TFD_CLOEXEC = 0o2000000
TFD_NONBLOCK = 0o4000
TFD_TIMER_ABSTIME = 1
# The loop timers' resolution, where no timerfd serves.
LOOP_TIMER_S = 0.001


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    """The C library, where it has timerfd (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        ]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class Alarm:
    """Calls ``callback()`` on the running loop once the instant set by :meth:`at`
    has passed (monotonic nanoseconds). One instant at a time: setting another
    replaces it. :meth:`close` when done."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._loop = asyncio.get_running_loop()
        self._fd = -1
        self._spec = _Itimerspec()
        self._handle: asyncio.TimerHandle | None = None
        if _LIBC is not None:
            fd = _LIBC.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
            if fd >= 0:
                self._fd = fd
                self._loop.add_reader(fd, self._ring)

    @property
    def precise(self) -> bool:
        """Whether the alarm rings to the microsecond (a timerfd), not the millisecond."""
        return self._fd >= 0

    def at(self, instant: int) -> None:
        """Ring once ``instant`` (monotonic ns) has passed; now if it already has."""
        if self._fd >= 0:
            assert _LIBC is not None
            value = self._spec.it_value
            # Zero disarms a timerfd: an instant in the past rings at once anyway.
            instant = max(instant, 1)
            value.tv_sec, value.tv_nsec = divmod(instant, NS_PER_S)
            if _LIBC.timerfd_settime(self._fd, TFD_TIMER_ABSTIME, self._spec, None) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            return
        if self._handle is not None:
            self._handle.cancel()
        delay = max(0.0, (instant - monotonic_ns()) / NS_PER_S)
        if delay:
            # A timer under a millisecond makes uvloop poll with a zero
            # timeout until it is due: a busy spin.
            delay = max(delay, LOOP_TIMER_S)
        self._handle = self._loop.call_later(delay, self._callback)

    def close(self) -> None:
        """Ring no more and release the timer."""
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _ring(self) -> None:
        try:
            os.read(self._fd, 8)  # the expiry count: reading it re-arms readiness
        except BlockingIOError:
            return  # re-armed for later since it became readable
        self._callback()
