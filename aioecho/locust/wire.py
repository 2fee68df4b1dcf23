"""The client side of a Locust user, without Locust: targets, lines, verified replies.

Everything here uses plain blocking sockets. Under Locust, gevent has
monkey-patched :mod:`socket`, so the same calls become cooperative; outside
Locust (in tests, in a script) they are ordinary blocking calls. Keeping this
module free of Locust and gevent is what lets it be imported and tested
without either.
"""

from __future__ import annotations

import functools
import math
import random
import select
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from ..client import ERROR_PREFIX
from ..config import TargetError as TargetError  # raised here, named by the plugin
from ..tls import client_context, ssl_reason

Payload = Literal["text", "random"]
PAYLOADS: tuple[Payload, ...] = ("text", "random")

LF = b"\n"
CR = b"\r"

# The text payload mixes cases, digits and spaces so that every reply
# exercises the uppercase transform and the pass-through of other bytes. Each
# line starts at a random point of it, so that a reply that went to the wrong
# connection, or a stale one, fails instead of matching by coincidence.
_TEXT = b"The quick brown fox jumps over 13 lazy dogs. "

# Random bodies map LF and CR to other bytes instead of redrawing them: a LF
# would split the line in two, a trailing CR would turn into a CRLF terminator.
_NO_LINE_BREAKS = bytes.maketrans(LF + CR, b"nr")

# How many bytes of each side a mismatch message shows. Locust
# groups failures by their message, so the message starts at the first
# differing byte: a wrong suffix then reads the same for every request,
# even with random bodies, and stays one row in the failure table.
_SHOWN = 24

_RECV_SIZE = 64 * 1024

# settimeout(0) would switch the socket to non-blocking mode instead of
# timing out at once; a tiny positive timeout raises TimeoutError as wanted.
_EXPIRED = 1e-9


@dataclass(frozen=True, slots=True)
class Target:
    """Where the load goes: ``scheme://host:port``."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_target(url: str | None) -> Target:
    """Parse Locust's ``--host``: ``tcp://HOST:PORT`` or ``tls://HOST:PORT``, IPv6 in brackets."""
    usage = "expected tcp://HOST:PORT or tls://HOST:PORT (IPv6 as tcp://[::1]:PORT)"
    if not url:
        raise TargetError(f"no target: pass --host, {usage}")
    if "://" not in url:
        raise TargetError(f"--host {url!r} has no scheme: {usage}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a bad port, or an unbalanced IPv6 bracket
        raise TargetError(f"--host {url!r}: {exc}; {usage}") from None
    if parts.scheme not in OPENERS:
        raise TargetError(f"--host {url!r}: unsupported scheme {parts.scheme!r}; {usage}")
    if not parts.hostname or not port:
        raise TargetError(f"--host {url!r} needs both a host and a non-zero port: {usage}")
    if parts.username is not None or parts.path or parts.query or parts.fragment:
        raise TargetError(f"--host {url!r} has parts an echo target cannot use: {usage}")
    return Target(parts.scheme, parts.hostname, port)


def make_body(size: int, payload: Payload, rng: random.Random) -> bytes:
    """A line body of ``size`` bytes, without terminator, that is one valid request."""
    if size < 0:
        raise ValueError(f"line size must not be negative, not {size}")
    if payload == "text":
        start = rng.randrange(len(_TEXT))
        repeats = (start + size) // len(_TEXT) + 1
        return (_TEXT * repeats)[start : start + size]
    if payload == "random":
        return rng.randbytes(size).translate(_NO_LINE_BREAKS)
    raise ValueError(f"payload must be one of {PAYLOADS}, not {payload!r}")


def check_body(body: bytes) -> None:
    """Refuse a body that would not travel as exactly one line."""
    if LF in body:
        raise ValueError("a line body must not contain LF: it would be two requests")
    if body.endswith(CR):
        raise ValueError("a line body must not end with CR: it would read as a CRLF terminator")


def expected_reply(body: bytes, suffix: bytes, terminator: bytes) -> bytes:
    """What a correct server answers to ``body + terminator``.

    Written out from the protocol rather than borrowed from the server's own
    transform: a checker that shares the server's code would share its bugs.
    """
    return body.upper() + suffix + terminator


class EchoFailure(Exception):
    """A request that did not get the right reply; its message says why."""

    def __repr__(self) -> str:
        # Locust files failures under repr(exception); the default repr would
        # escape the message a second time and hide it behind the class name.
        return f"{type(self).__name__}: {self}"


class ConnectFailed(EchoFailure):
    """The connection could not be opened."""


class ReplyTimeout(EchoFailure):
    """No complete reply came within the request timeout."""


class ConnectionLost(EchoFailure):
    """The connection was reset or closed before the reply was complete."""


class ReplyMismatch(EchoFailure):
    """The reply differs from the expected echo (an ``ERR`` line included)."""


@dataclass(frozen=True, slots=True)
class Trust:
    """How a ``tls://`` target's certificate is checked; plain TCP ignores it."""

    ca: str | None = None
    """A PEM file of the CAs to trust; None trusts the system's CAs."""
    insecure: bool = False
    """Check nothing: any certificate, any name (self-signed test servers)."""


Opener = Callable[[Target, float, Trust], socket.socket]


def _open_tcp(target: Target, timeout: float, trust: Trust) -> socket.socket:
    sock = socket.create_connection((target.host, target.port), timeout=timeout)
    try:
        # Every request is one small write the server must see at once: waiting
        # for Nagle's algorithm would add the peer's delayed-ACK time to it.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def _open_tls(target: Target, timeout: float, trust: Trust) -> socket.socket:
    try:  # before connecting: a bad CA file is no network failure
        context = _tls_context(trust)
    except OSError as exc:  # missing, unreadable, or without a PEM certificate
        raise ConnectFailed(
            f"connect to {target} failed: cannot load the CA file {trust.ca!r}: {_reason(exc)}"
        ) from None
    deadline = time.monotonic() + timeout  # for the TCP connect and the handshake together
    sock = _open_tcp(target, timeout, trust)
    try:
        tls = context.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
    except BaseException:
        sock.close()  # a no-op if wrap_socket took the socket over: it closes that itself
        raise
    try:
        _handshake(tls, deadline)
    except BaseException:
        tls.close()
        raise
    tls.settimeout(timeout)
    return tls


def _handshake(tls: ssl.SSLSocket, deadline: float) -> None:
    """Finish the TLS handshake by ``deadline`` (``time.monotonic()``), or raise TimeoutError.

    A socket timeout would bound each wait for the server, not the
    handshake: gevent's sockets restart it after every byte, so a server
    dripping one byte within each timeout held the handshake forever. Here
    the socket does not block, and each wait is for what is left until the
    deadline (``select.poll`` is gevent's own once Locust has patched it).
    """
    tls.setblocking(False)
    while True:
        try:
            tls.do_handshake()
            return
        except ssl.SSLWantReadError:
            _wait_for(tls, select.POLLIN, deadline)
        except ssl.SSLWantWriteError:
            _wait_for(tls, select.POLLOUT, deadline)


def _wait_for(sock: socket.socket, events: int, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    poller = select.poll()
    poller.register(sock.fileno(), events)
    if remaining <= 0 or not poller.poll(math.ceil(remaining * 1000)):
        raise TimeoutError("TLS handshake timed out")


# One context per trust setting and process, shared by every connection of every
# user: each context holds its own copy of the CA store, and loading the
# system's CAs takes milliseconds. Under Locust, gevent has patched ``ssl``
# before this runs, so the context makes cooperative sockets.
@functools.cache
def _tls_context(trust: Trust) -> ssl.SSLContext:
    return client_context(trust.ca, trust.insecure)


# One opener per scheme: a TLS scheme is an opener that wraps the TCP socket.
OPENERS: dict[str, Opener] = {"tcp": _open_tcp, "tls": _open_tls}


class EchoConnection:
    """One connection that sends lines and checks each reply byte for byte."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def open(cls, target: Target, timeout: float, trust: Trust = Trust()) -> EchoConnection:
        """Connect to ``target`` (and finish a TLS handshake); raises :class:`EchoFailure`.

        ``timeout`` bounds the TCP connect and the TLS handshake together,
        however slowly the server sends its part.
        """
        try:
            return cls(OPENERS[target.scheme](target, timeout, trust))
        except TimeoutError:
            raise ConnectFailed(f"connect to {target} timed out after {timeout:g} s") from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectFailed(
                f"TLS handshake with {target} failed: certificate verification failed:"
                f" {exc.verify_message}"
            ) from None
        except ssl.SSLError as exc:
            raise ConnectFailed(f"TLS handshake with {target} failed: {_reason(exc)}") from None
        except OSError as exc:
            raise ConnectFailed(f"connect to {target} failed: {_reason(exc)}") from None

    def request(self, line: bytes, expected: bytes, timeout: float) -> bytes:
        """Send ``line``, return its reply if it equals ``expected``, else raise.

        ``timeout`` bounds the whole request, sending and receiving together.
        After an :class:`EchoFailure` the connection is out of step with its
        requests: close it and open a new one.
        """
        deadline = time.monotonic() + timeout
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(line)
            reply = self._read_reply(len(expected), deadline)
        except TimeoutError:
            raise ReplyTimeout(f"timed out after {timeout:g} s waiting for the reply") from None
        except OSError as exc:
            raise ConnectionLost(f"connection lost: {_reason(exc)}") from None
        if reply != expected:
            raise ReplyMismatch(describe_mismatch(expected, reply))
        return reply

    def _read_reply(self, expected_size: int, deadline: float) -> bytes:
        """Read up to the first LF, or until the reply is already longer than expected.

        Stopping at the expected size means a server that streams garbage
        without a newline fails fast instead of timing out.
        """
        reply = bytearray()
        while LF not in reply and len(reply) < expected_size:
            self.sock.settimeout(max(deadline - time.monotonic(), _EXPIRED))
            chunk = self.sock.recv(_RECV_SIZE)
            if not chunk:
                raise ConnectionLost(
                    f"server closed the connection after {len(reply)} of {expected_size} bytes"
                    " of the reply"
                )
            reply += chunk
        return bytes(reply)

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        self.sock.close()


def describe_mismatch(expected: bytes, got: bytes) -> str:
    """Where ``got`` first differs from ``expected``, both shown from there, truncated."""
    if got.startswith(ERROR_PREFIX):
        return f"server answered an error: {_show(got.rstrip(CR + LF))}"
    at = next(
        (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
        min(len(expected), len(got)),
    )
    return (
        f"reply differs at byte {at} (expected {len(expected)} bytes, got {len(got)}): "
        f"expected {_show(expected[at:])}, got {_show(got[at:])}"
    )


def _show(data: bytes) -> str:
    if len(data) <= _SHOWN:
        return repr(data)
    return f"{data[:_SHOWN]!r}... ({len(data) - _SHOWN} more bytes)"


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError) and exc.strerror:
        # Locust counts failures by their text, which must not change with the build.
        return ssl_reason(exc)
    return f"[Errno {exc.errno}] {exc.strerror}" if exc.strerror else repr(exc)
