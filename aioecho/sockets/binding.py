"""Listening sockets: TCP on one or more addresses, or a Unix socket path.

Every failure is a :class:`BindError` that names the address it concerns, so
that a message can say which of a service's addresses could not be used.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Address = tuple[str, int]

# How long the probe of an existing socket file may wait for its listener:
# a live one answers a connect at once, a stale file refuses it at once.
STALE_PROBE_TIMEOUT = 1.0


class HostAndPort:
    """``host`` and ``port``, the parts of the ``address`` a subclass gives."""

    @property
    def address(self) -> Address:
        raise NotImplementedError

    @property
    def host(self) -> str:
        """The address listened on, such as ``127.0.0.1``."""
        return self.address[0]

    @property
    def port(self) -> int:
        """The port listened on (the real one, where the kernel chose it)."""
        return self.address[1]


def format_address(address: Address) -> str:
    """``host:port``, with IPv6 hosts in brackets."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BindError(OSError):
    """An address that cannot be listened on; the message names it and says why.

    ``role`` is what the address was for: ``listen`` for the echo service,
    ``serve metrics`` for the metrics endpoint.
    """

    def __init__(
        self, address: str, reason: str, errno: int | None = None, role: str = "listen"
    ) -> None:
        super().__init__(errno, reason)
        self.address = address
        self.role = role

    def __str__(self) -> str:
        return f"cannot {self.role} on {self.address}: {self.strerror}"

    def serving(self, role: str) -> BindError:
        """The same failure, reported for another role."""
        return BindError(self.address, str(self.strerror), self.errno, role)


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
            try:
                sock = socket.socket(family, kind, proto)
                sockets.append(sock)
                _bind(sock, family, address, reuse_port)
                if listen:
                    _listen(sock, backlog)
            except OSError as exc:
                where = format_address((address[0], address[1]))
                raise BindError(where, _reason(exc), exc.errno) from exc
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind(sock: socket.socket, family: int, address: tuple[Any, ...], reuse_port: bool) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        # One socket per family: "::" must not also claim IPv4.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(address)


def _resolve(hosts: Iterable[str], port: int) -> list[tuple[int, int, int, tuple[Any, ...]]]:
    """Distinct (family, type, proto, address) for every host, in order."""
    found: dict[tuple[int, int, int, tuple[Any, ...]], None] = {}
    for host in hosts:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except OSError as exc:
            raise BindError(format_address((host, port)), _reason(exc), exc.errno) from exc
        for family, kind, proto, _, address in infos:
            found[(family, kind, proto, tuple(address))] = None
    return list(found)


@dataclass(frozen=True)
class UnixSocketFile:
    """A socket file this process bound: its path and which file it was."""

    path: str
    device: int
    inode: int

    def remove(self) -> None:
        """Remove the file, unless another server has bound a new one at the path since."""
        with contextlib.suppress(FileNotFoundError):
            now = os.stat(self.path)
            if (now.st_dev, now.st_ino) == (self.device, self.inode):
                os.unlink(self.path)


def bind_unix(path: str, backlog: int, mode: int) -> tuple[socket.socket, UnixSocketFile]:
    """A listening Unix socket at ``path`` and its file, replacing a stale one left by a crash.

    The file gets the permission bits ``mode`` whatever the umask: they are
    set after the bind and before the listen, and a client can connect only
    once the socket listens, so none connects under the umask's bits.
    """
    where = f"unix:{path}"
    _remove_stale_socket(path, where)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, mode)
        identity = os.stat(path)
        _listen(sock, backlog)
    except OSError as exc:
        sock.close()
        raise BindError(where, _reason(exc), exc.errno) from exc
    return sock, UnixSocketFile(path, identity.st_dev, identity.st_ino)


def _remove_stale_socket(path: str, where: str) -> None:
    """Remove the socket file at ``path`` if nothing listens on it; refuse the path otherwise.

    A listener whose queue is full refuses a non-blocking connect at once
    (EAGAIN): it is alive, only busy, so the path counts as in use. The
    timeout bounds whatever else could make the probe wait.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise BindError(where, "exists and is not a socket; not replacing it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(STALE_PROBE_TIMEOUT)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)  # nobody listens: left over by a server that crashed
            return
        except BlockingIOError:
            raise BindError(where, "in use by a running server (its queue is full)") from None
        except TimeoutError:
            why = f"in use: its listener did not answer within {STALE_PROBE_TIMEOUT:g} s"
            raise BindError(where, why) from None
        except OSError as exc:
            raise BindError(where, _reason(exc), exc.errno) from exc
    raise BindError(where, "in use by a running server")


def _listen(sock: socket.socket, backlog: int) -> None:
    sock.listen(backlog)
    sock.setblocking(False)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
