"""Server configuration: one frozen dataclass shared by the library and the CLI.

Each field carries its help text in its metadata, so the command line is
generated from this single list instead of repeating it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .durations import Duration
from .faults import FaultPlan, parse_delays
from .options import option
from .sizes import MIB, ByteSize

Framing = Literal["line", "chunk"]
FRAMINGS: tuple[Framing, ...] = ("line", "chunk")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
DEFAULT_MAX_LINE = 65536
# listen() takes a C int; the kernel caps it further (net.core.somaxconn).
MAX_BACKLOG = 2**31 - 1
# setsockopt() takes a C int.
MAX_SNDBUF = 2**31 - 1
# A stats line more often than this is a flood of logs, not a summary.
MIN_STATS_INTERVAL = 0.1


# The options set_faults() may change on a running server.
FAULT_FIELDS = (
    "delay",
    "jitter",
    "bandwidth",
    "fragment",
    "drop",
    "reset",
    "close_after",
    "stall_after",
    "seed",
)


class ConfigError(ValueError):
    """An option has a value the server cannot run with."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything an :class:`~aioecho.EchoServer` needs to know before it starts."""

    host: str | tuple[str, ...] = option(
        DEFAULT_HOST, "address to listen on; repeat the flag for several", "HOST", repeat=True
    )
    port: int = option(DEFAULT_PORT, "TCP port; 0 picks any free port", "PORT")
    framing: Framing = option(
        "line", "line: one reply per LF-terminated line; chunk: one reply per read"
    )
    suffix: str = option("_SB", "text appended to every reply (may be empty)", "TEXT")
    max_line: int = option(DEFAULT_MAX_LINE, "longest accepted line body, in bytes", "BYTES")
    backlog: int = option(1024, "listen queue length", "N")
    shutdown_timeout: float = option(
        5.0, "seconds a graceful stop waits for owed replies to flush", "SECONDS"
    )
    max_connections: int | None = option(
        None, "open connections allowed at once; default: the open-file limit less a reserve", "N"
    )
    max_connections_per_ip: int = option(
        0, "open connections allowed from one peer address; 0 = no limit", "N"
    )
    max_client_memory: ByteSize = option(
        ByteSize(256 * MIB),
        "bytes held for all clients together (unanswered input, unsent replies) before "
        "the biggest holder is refused; K, M, G suffixes; 0 = no limit",
        "BYTES",
    )
    sndbuf: ByteSize = option(
        ByteSize(0),
        "SO_SNDBUF of each accepted connection, as HAProxy's tune.sndbuf.client: caps the "
        "kernel memory a client that does not read can pin (Linux doubles it); "
        "0 = the kernel's own, autotuned",
        "BYTES",
    )
    line_timeout: float = option(
        30.0, "a line must be complete this long after its first byte; 0 = never", "SECONDS"
    )
    idle_timeout: float = option(
        300.0, "close a connection that sends nothing for this long; 0 = never", "SECONDS"
    )
    write_timeout: float = option(
        30.0, "close a connection whose replies are stuck this long; 0 = never", "SECONDS"
    )
    stats_interval: float = option(0.0, "log a stats line this often; 0 = never", "SECONDS")
    metrics_port: int | None = option(
        None, "serve Prometheus metrics at /metrics on this port (extra: metrics)", "PORT"
    )
    unix: str | None = option(None, "listen on this Unix socket path instead of TCP", "PATH")
    tls_cert: str | None = option(None, "serve TLS with this certificate chain (PEM)", "PEM")
    tls_key: str | None = option(None, "private key for --tls-cert (PEM)", "PEM")
    tls_handshake_timeout: float = option(
        3.0, "seconds a client has to finish its TLS handshake", "SECONDS"
    )
    workers: int = option(1, "worker processes sharing the port; 1 = serve in-process", "N")
    worker_timeout: float = option(
        5.0, "restart a worker that sends no status report for this long", "SECONDS"
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
    )
    jitter: Duration = option(
        Duration(0), "fault: add a uniform random delay in [0, DURATION) to every reply", "DURATION"
    )
    bandwidth: ByteSize = option(
        ByteSize(0), "fault: reply bytes per second per connection; 0 = unlimited", "BYTES"
    )
    fragment: int = option(0, "fault: write replies in pieces of N bytes; 0 = whole", "N")
    drop: float = option(0.0, "fault: probability (0..1) a line gets no reply", "P")
    reset: float = option(0.0, "fault: probability (0..1) a line gets a TCP reset", "P")
    close_after: ByteSize | None = option(
        None, "fault: close a connection once this many bytes were sent to it", "BYTES"
    )
    stall_after: int | None = option(
        None, "fault: answer N lines, then neither read nor answer (connection stays open)", "N"
    )
    seed: int | None = option(None, "seed for the faults: same seed, same input, same faults", "N")

    def __post_init__(self) -> None:
        self._read_text_fields()
        self._check_faults()
        _check(0 <= self.port <= 65535, f"port must be 0..65535, not {self.port}")
        _check(bool(self.hosts) and all(self.hosts), "host must not be empty")
        _check(
            (self.tls_cert is None) == (self.tls_key is None),
            "tls_cert and tls_key go together",
        )
        _check(self.workers >= 1, f"workers must be at least 1, not {self.workers}")
        _check(self.framing in FRAMINGS, f"framing must be one of {FRAMINGS}")
        _check(self.max_line >= 1, f"max_line must be at least 1, not {self.max_line}")
        _check(
            1 <= self.backlog <= MAX_BACKLOG,
            f"backlog must be 1..{MAX_BACKLOG}, not {self.backlog}",
        )
        durations = ("shutdown_timeout", "idle_timeout", "write_timeout", "line_timeout")
        for name in (*durations, "stats_interval", "tls_handshake_timeout", "worker_timeout"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"{name} must be 0 or more, not {value}")
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
            self.max_connections_per_ip >= 0,
            f"max_connections_per_ip must not be negative, not {self.max_connections_per_ip}",
        )
        _check(
            self.max_client_memory >= 0,
            f"max_client_memory must not be negative, not {self.max_client_memory}",
        )
        _check(
            0 <= self.sndbuf <= MAX_SNDBUF, f"sndbuf must be 0..{MAX_SNDBUF}, not {self.sndbuf}"
        )
        _check(
            self.max_connections is None or self.max_connections >= 1,
            f"max_connections must be at least 1, not {self.max_connections}",
        )
        _check(
            self.metrics_port is None or 0 <= self.metrics_port <= 65535,
            f"metrics_port must be 0..65535, not {self.metrics_port}",
        )
        _check(
            "\n" not in self.suffix and "\r" not in self.suffix,
            "suffix must not contain CR or LF: it would break line framing",
        )

    def _read_text_fields(self) -> None:
        """Read the fields a person may write as text (``64M``, ``2ms``) into their types."""
        try:
            for name, kind in _TEXT_FIELDS.items():
                value = getattr(self, name)
                if value is not None:
                    object.__setattr__(self, name, kind(value))
            parse_delays(self.delay)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def _check_faults(self) -> None:
        """Check the fault fields' ranges, and that the framing can carry faults."""
        for name in ("drop", "reset"):
            _check(0 <= getattr(self, name) <= 1, f"{name} must be a probability 0..1")
        for name in ("bandwidth", "fragment", "close_after", "stall_after"):
            value = getattr(self, name)
            _check(value is None or value >= 0, f"{name} must not be negative, not {value}")
        _check(
            self.framing == "line" or not self.faults.active,
            "faults need line framing: a chunk has no reply boundary to fault",
        )

    @property
    def faults(self) -> FaultPlan:
        """The faults these options ask for (:attr:`FaultPlan.active` is False by default)."""
        return FaultPlan(
            delays=parse_delays(self.delay),
            jitter=self.jitter,
            bandwidth=self.bandwidth,
            fragment=self.fragment,
            drop=self.drop,
            reset=self.reset,
            close_after=self.close_after,
            stall_after=self.stall_after,
            seed=self.seed,
        )

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every address to listen on."""
        return (self.host,) if isinstance(self.host, str) else tuple(self.host)

    @property
    def suffix_bytes(self) -> bytes:
        """The suffix as it goes on the wire (UTF-8)."""
        return self.suffix.encode()


_TEXT_FIELDS: dict[str, type[ByteSize] | type[Duration]] = {
    "max_client_memory": ByteSize,
    "sndbuf": ByteSize,
    "bandwidth": ByteSize,
    "close_after": ByteSize,
    "jitter": Duration,
}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
