"""Where the load goes: a resolved address, the source addresses to spread
connections over, and the local aioecho server started when none is given."""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..config import DEFAULT_MAX_LINE, DEFAULT_PORT
from ..config import TargetError as TargetError  # raised here; the harness's API names it
from ..core import DISABLE_VARIABLE
from ..process.child import ChildServer
from ..process.launch import LaunchError, aioecho_command
from ..sockets.limits import raise_open_file_limit
from .config import BenchConfig

# Leave part of the ephemeral port range to the rest of the machine (and to
# ports still held by earlier runs) before spreading over another source.
PORT_MARGIN = 2000
# connect() finds a free ephemeral port by probing, and every probe looks
# the 4-tuple up among the established connections: with a source's range
# 90% used, connecting costs about a millisecond of kernel time (measured at
# 18,000 connections per source: 93% of the client's CPU in
# __inet_hash_connect). Toward loopback, where source addresses are free,
# each one gets at most this share of its range.
SOURCE_FILL = 0.25
FIRST_SOURCE = ipaddress.IPv4Address("127.0.0.1")
PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
FALLBACK_PORT_RANGE = (32768, 60999)  # Linux's default
# How long a probe may take to find which of a name's addresses is listening.
PROBE_TIMEOUT = 1.0
# How long the local server may take to say where it listens.
SERVER_START_TIMEOUT = 15.0
SERVER_STOP_TIMEOUT = 10.0
# Descriptors a client process needs besides its connections: stdio, the
# loop's epoll and self-pipe, pipes to workers, files of imported modules.
FD_RESERVE = 64


@dataclass(frozen=True)
class Target:
    """A resolved server address.

    ``sources`` is empty when the kernel may pick the source address; else
    connection ``i`` binds to ``sources[i % len(sources)]`` first.
    """

    host: str
    port: int
    family: int
    sockaddr: tuple[Any, ...]
    sources: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_local(self) -> bool:
        """Whether the server shares this machine (and its cores) with the client."""
        return ipaddress.ip_address(self.sockaddr[0]).is_loopback

    def source_for(self, connection: int) -> str | None:
        """The address connection ``connection`` binds to, if any."""
        return self.sources[connection % len(self.sources)] if self.sources else None


def resolve(host: str, port: int, connections: int) -> Target:
    """Resolve ``host`` once, and plan source addresses for ``connections``.

    One source address reaches a given server port from at most one
    ephemeral port range (about 28,000 ports). Connections to an IPv4
    loopback target are spread over 127.0.0.1, 127.0.0.2, ... once they
    would fill a quarter of it: the whole of 127/8 is local on Linux, each
    source address has its own range, and a range kept sparse keeps
    connecting cheap. Other targets get one source, so at most one range.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetError(f"cannot resolve {host}: {exc.strerror}") from exc
    family, sockaddr = _listening(infos)
    address = ipaddress.ip_address(sockaddr[0])
    per_source = ports_per_source()
    sources: tuple[str, ...] = ()
    spreadable = address.version == 4 and address.is_loopback
    if connections > per_source and not spreadable:
        raise TargetError(
            f"{connections} connections need more than one source address, which only "
            f"works toward an IPv4 loopback target: use at most {per_source}"
        )
    comfortable = max(1, int(per_source * SOURCE_FILL))
    if spreadable and connections > comfortable:
        count = math.ceil(connections / comfortable)
        sources = tuple(str(FIRST_SOURCE + n) for n in range(count))
    return Target(host, port, family, tuple(sockaddr), sources)


def _listening(infos: list[Any]) -> tuple[int, tuple[Any, ...]]:
    """The first address that accepts a connection; the first address if none does.

    A name like ``localhost`` often resolves to ``::1`` before ``127.0.0.1``
    while the server listens on only one of them: benchmarking the other
    would report every connection refused.
    """
    candidates = list(dict.fromkeys((info[0], tuple(info[4])) for info in infos))
    if len(candidates) > 1:
        for family, sockaddr in candidates:
            with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.settimeout(PROBE_TIMEOUT)
                probe.connect(sockaddr)
                return family, sockaddr
    return candidates[0]


def ports_per_source() -> int:
    """Connections one source address can open toward one server port."""
    try:
        with open(PORT_RANGE_FILE) as file:
            low, high = (int(part) for part in file.read().split())
    except (OSError, ValueError):
        low, high = FALLBACK_PORT_RANGE
    return max(1, high - low + 1 - PORT_MARGIN)


def target_port(config: BenchConfig) -> int:
    return DEFAULT_PORT if config.port is None else config.port


def local_server_command(config: BenchConfig) -> list[str]:
    """``python -m aioecho`` on a free port of 127.0.0.1, as the run asks for it."""
    return aioecho_command(
        "serve",
        "--host", "127.0.0.1", "--port", "0",
        "--loop", config.server_loop, "--suffix", config.suffix,
        # Lines as long as requested must not be refused as too long
        # (aioecho's default max-line is the smallest it gets).
        "--max-line", str(max(DEFAULT_MAX_LINE, config.size)),
    )  # fmt: skip


def local_server_environment() -> dict[str, str]:
    """This environment without the ``AIOECHO_*`` variables that set serve's flags.

    The local server runs as the run asks, whatever the shell exported for
    other servers; the variable that picks the build is passed on.
    """
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AIOECHO_") or name == DISABLE_VARIABLE
    }


@contextlib.contextmanager
def open_target(config: BenchConfig) -> Iterator[tuple[Target, str | None]]:
    """The configured target, or a local server started for the run.

    Yields the target and, for a local server, a description of it.
    """
    if not config.spawns_server:
        yield resolve(config.host or "127.0.0.1", target_port(config), config.connections), None
        return
    try:
        server = ChildServer.start(
            local_server_command(config),
            timeout=SERVER_START_TIMEOUT,
            env=local_server_environment(),
        )
    except LaunchError as exc:
        raise TargetError(f"the local server did not start: {exc}") from None
    try:
        host, port = server.address
        yield (
            resolve(host, port, config.connections),
            f"aioecho child process ({server.ready.details})",
        )
    finally:
        server.stop(SERVER_STOP_TIMEOUT)


def usable_descriptors() -> int:
    """Raise the soft open-file limit to the hard one; the result, less a reserve.

    Children inherit the raised limit, the local server included.
    """
    return max(1, raise_open_file_limit() - FD_RESERVE)
