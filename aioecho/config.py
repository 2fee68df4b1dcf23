"""Server configuration: one frozen dataclass shared by the library and the CLI.

Each field carries its help text in its metadata, so the command line is
generated from this single list instead of repeating it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from .bounds import BYTES, COUNT, MAX_WHOLE, PORT, PROBABILITY, SECONDS, Bounds, Text, check_fields
from .durations import Duration
from .faults import FaultPlan, parse_delays
from .filemode import FileMode
from .options import option
from .sizes import MIB, ByteSize, parse_size

T = TypeVar("T")

Framing = Literal["line", "chunk"]
FRAMINGS: tuple[Framing, ...] = ("line", "chunk")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
DEFAULT_MAX_LINE = 65536
# listen() takes a C int; the kernel caps it further (net.core.somaxconn).
MAX_BACKLOG = 2**31 - 1
# Each worker is a whole interpreter (tens of MiB) with its own pipes to the
# supervisor; more than 256 of them is past any machine's worth of cores
# (a bound that does not depend on the machine a config is checked on).
MAX_WORKERS = 256
# setsockopt() takes a C int.
MAX_SNDBUF = 2**31 - 1
# A stats line more often than this is a flood of logs, not a summary.
MIN_STATS_INTERVAL = 0.1


# The options set_faults() may change on a running server.
# The fault options are FaultPlan's fields, in its order; only ``delay`` is
# named for how it is written (``150us:10,2ms``), the plan holding it parsed.
FAULT_FIELDS = tuple(
    "delay" if field.name == "delays" else field.name for field in dataclasses.fields(FaultPlan)
)


class ConfigError(ValueError):
    """An option has a value the server cannot run with."""


class TargetError(ValueError):
    """A target that cannot be used: a name that does not resolve, an address
    of the wrong form, or a local server that would not start (the harness's
    and the Locust integration's alike)."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything an :class:`~aioecho.EchoServer` needs to know before it starts."""

    host: str | tuple[str, ...] = option(
        DEFAULT_HOST, "address to listen on; repeat the flag for several", "HOST", repeat=True
    )
    port: int = option(DEFAULT_PORT, "TCP port; 0 picks any free port", "PORT", check=PORT)
    framing: Framing = option(
        "line", "line: one reply per LF-terminated line; chunk: one reply per read"
    )
    suffix: str = option(
        "_SB", "text appended to every reply (may be empty)", "TEXT", check=Text("'_SB'")
    )
    max_line: int = option(
        DEFAULT_MAX_LINE,
        "longest accepted line body, in bytes; K, M, G suffixes",
        "BYTES",
        check=Bounds(int, 1, MAX_WHOLE, " bytes"),
        parse=parse_size,
    )
    backlog: int = option(1024, "listen queue length", "N", check=Bounds(int, 1, MAX_BACKLOG))
    shutdown_timeout: float = option(
        5.0,
        "seconds a graceful stop waits for owed replies to flush",
        "DURATION",
        check=SECONDS,
        parse=Duration,
    )
    max_connections: int | None = option(
        None,
        "open connections allowed at once; default: the open-file limit less a reserve",
        "N",
        check=Bounds(int, 1, MAX_WHOLE),
    )
    max_connections_per_ip: int = option(
        0, "open connections allowed from one peer address; 0 = no limit", "N", check=COUNT
    )
    max_client_memory: ByteSize = option(
        ByteSize(256 * MIB),
        "bytes held for all clients together (unanswered input, unsent replies) before "
        "the biggest holder is refused; K, M, G suffixes; 0 = no limit",
        "BYTES",
        check=BYTES,
    )
    sndbuf: ByteSize = option(
        ByteSize(0),
        "SO_SNDBUF of each accepted connection, as HAProxy's tune.sndbuf.client: caps the "
        "kernel memory a client that does not read can pin (Linux doubles it); "
        "0 = the kernel's own, autotuned",
        "BYTES",
        check=Bounds(int, 0, MAX_SNDBUF, " bytes"),
    )
    line_timeout: float = option(
        30.0,
        "a line must be complete this long after its first byte; 0 = never",
        "DURATION",
        check=SECONDS,
        parse=Duration,
    )
    idle_timeout: float = option(
        300.0,
        "close a connection that sends nothing for this long; 0 = never",
        "DURATION",
        check=SECONDS,
        parse=Duration,
    )
    write_timeout: float = option(
        30.0,
        "close a connection whose replies are stuck this long; 0 = never",
        "DURATION",
        check=SECONDS,
        parse=Duration,
    )
    stats_interval: float = option(
        0.0,
        "log a stats line this often; 0 = never",
        "DURATION",
        check=SECONDS,
        parse=Duration,
    )
    metrics_port: int | None = option(
        None,
        "serve Prometheus metrics at /metrics on this port (extra: metrics)",
        "PORT",
        check=PORT,
    )
    unix: str | None = option(
        None, "listen on this Unix socket path instead of TCP", "PATH", check=Text("'/run/echo'")
    )
    tls_cert: str | None = option(
        None, "serve TLS with this certificate chain (PEM)", "PEM", check=Text("'cert.pem'")
    )
    tls_key: str | None = option(
        None, "private key for --tls-cert (PEM)", "PEM", check=Text("'key.pem'")
    )
    unix_mode: FileMode = option(
        FileMode(0o600),
        "permissions of the --unix socket file, in octal as chmod takes them (660: the "
        "file's group may connect too); set whatever the umask",
        "MODE",
    )
    tls_handshake_timeout: float = option(
        3.0,
        "seconds a client has to finish its TLS handshake",
        "DURATION",
        check=SECONDS,
        parse=Duration,
    )
    workers: int = option(
        1,
        f"worker processes sharing the port (at most {MAX_WORKERS}); 1 = serve in-process",
        "N",
        check=Bounds(int, 1, MAX_WORKERS),
    )
    worker_timeout: float = option(
        5.0,
        "restart a worker that sends no status report for this long",
        "DURATION",
        check=SECONDS,
        parse=Duration,
    )
    unicode: bool = option(
        False, "uppercase valid UTF-8 lines by Unicode rules (straße -> STRASSE)"
    )
    # Faults, for testing clients: all off by default (see FaultPlan).
    delay: str = option(
        "",
        "fault: delay replies, fortio style: 50ms (all), or DELAY:PERCENT pairs such as "
        "150us:10,2ms:5,0.5s:1 (the rest undelayed)",
        "SPEC",
        check=Text("'50ms' or '150us:10,2ms:5'"),
    )
    jitter: Duration = option(
        Duration(0),
        "fault: add a uniform random delay in [0, DURATION) to every reply",
        "DURATION",
        check=SECONDS,
    )
    bandwidth: ByteSize = option(
        ByteSize(0),
        "fault: reply bytes per second per connection; 0 = unlimited",
        "BYTES",
        check=BYTES,
    )
    fragment: int = option(
        0, "fault: write replies in pieces of N bytes; 0 = whole", "N", check=COUNT
    )
    drop: float = option(
        0.0, "fault: probability (0..1) a line gets no reply", "P", check=PROBABILITY
    )
    reset: float = option(
        0.0, "fault: probability (0..1) a line gets a TCP reset", "P", check=PROBABILITY
    )
    close_after: ByteSize | None = option(
        None, "fault: close a connection once this many bytes were sent to it", "BYTES", check=BYTES
    )
    stall_after: int | None = option(
        None,
        "fault: answer N lines, then neither read nor answer (connection stays open)",
        "N",
        check=COUNT,
    )
    seed: int | None = option(
        None,
        "seed for the faults: same seed, same input, same faults",
        "N",
        check=Bounds(int, -MAX_WHOLE - 1, MAX_WHOLE),
    )

    def __post_init__(self) -> None:
        self._check_values()
        self._check_faults()
        _check(bool(self.hosts) and all(self.hosts), "host must not be empty")
        _check(
            (self.tls_cert is None) == (self.tls_key is None),
            "tls_cert and tls_key go together",
        )
        _check(self.framing in FRAMINGS, f"framing must be one of {FRAMINGS}")
        _check(self.tls_handshake_timeout > 0, "tls_handshake_timeout must be above 0")
        _check(self.worker_timeout >= 1, "worker_timeout must be at least 1 second")
        _check(
            self.stats_interval == 0 or self.stats_interval >= MIN_STATS_INTERVAL,
            f"stats_interval must be 0 (off) or at least {MIN_STATS_INTERVAL} seconds",
        )
        _check(
            self.unix is None or (self.unix != "" and not self.unix.startswith("\0")),
            "unix must be a file path (abstract sockets are not supported)",
        )
        _check(
            "\n" not in self.suffix and "\r" not in self.suffix,
            "suffix must not contain CR or LF: it would break line framing",
        )

    def _check_values(self) -> None:
        """Check every field's type and range; read text (``64M``, ``2ms``) into its type first."""
        for name, kind in _TEXT_FIELDS.items():
            if isinstance(value := getattr(self, name), str):
                object.__setattr__(self, name, _read(name, kind, value))
        check_fields(self, ConfigError)
        for name, kind in _TEXT_FIELDS.items():
            if (value := getattr(self, name)) is not None:
                object.__setattr__(self, name, kind(value))  # a number, in range: its type
        _read("delay", parse_delays, self.delay)

    def _check_faults(self) -> None:
        """Check that the framing can carry the faults asked for."""
        _check(
            self.framing == "line" or not self.faults.active,
            "faults need line framing: a chunk has no reply boundary to fault",
        )

    @property
    def faults(self) -> FaultPlan:
        """The faults these options ask for (:attr:`FaultPlan.active` is False by default)."""
        options = {name: getattr(self, name) for name in FAULT_FIELDS}
        return FaultPlan(delays=parse_delays(options.pop("delay")), **options)

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every address to listen on."""
        return (self.host,) if isinstance(self.host, str) else tuple(self.host)

    @property
    def suffix_bytes(self) -> bytes:
        """The suffix as it goes on the wire (UTF-8)."""
        return self.suffix.encode()


_TEXT_FIELDS: dict[str, type[ByteSize] | type[Duration] | type[FileMode]] = {
    "max_client_memory": ByteSize,
    "sndbuf": ByteSize,
    "bandwidth": ByteSize,
    "close_after": ByteSize,
    "jitter": Duration,
    "unix_mode": FileMode,
}


def _read(name: str, parse: Callable[[str], T], text: str) -> T:
    """``parse(text)``; its ValueError as a ConfigError that names the option."""
    try:
        return parse(text)
    except ValueError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(name) else f"{name}: {message}") from None


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
