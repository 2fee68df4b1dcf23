"""Listening sockets: TCP on one or more addresses, or a Unix socket path."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterable


class BindError(OSError):
    """A listening address cannot be used, with a message that says why."""


def bind_tcp(
    hosts: Iterable[str], port: int, backlog: int, reuse_port: bool = False, listen: bool = True
) -> list[socket.socket]:
    """Listening sockets for every address the hosts resolve to, all on one port.

    With port 0 the first address picks a free port and the others reuse it,
    so that ``--host 127.0.0.1 --host ::1`` or ``localhost`` listen on one port.
    ``reuse_port`` lets several processes listen on the same port (SO_REUSEPORT).
    ``listen=False`` only binds: the sockets hold the port but take no connections.
    """
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, address in _resolve(hosts, port):
            if port == 0 and sockets:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                # One socket per family: "::" must not also claim IPv4.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            if listen:
                _listen(sock, backlog)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _resolve(hosts: Iterable[str], port: int) -> list[tuple[int, int, int, tuple[object, ...]]]:
    """Distinct (family, type, proto, address) for every host, in order."""
    found: dict[tuple[int, int, int, tuple[object, ...]], None] = {}
    for host in hosts:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            found[(family, kind, proto, tuple(address))] = None
    return list(found)


def bind_unix(path: str, backlog: int) -> socket.socket:
    """A listening Unix socket at ``path``, replacing a stale one left by a crash."""
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        _listen(sock, backlog)
    except OSError:
        sock.close()
        raise
    return sock


def remove_unix_socket(path: str) -> None:
    """Remove the socket file on a clean shutdown (if it is still there)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _remove_stale_socket(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise BindError(f"{path} exists and is not a socket; not replacing it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)  # nobody listens: left over by a server that crashed
            return
    raise BindError(f"{path} is in use by a running server")


def _listen(sock: socket.socket, backlog: int) -> None:
    sock.listen(backlog)
    sock.setblocking(False)
