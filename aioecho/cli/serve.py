"""``python -m aioecho serve`` (the default command): run the echo server.

Its flags are generated from :class:`ServerConfig`'s fields, so a new server
option is declared once and appears here by itself; each can also be set
from the environment (:mod:`aioecho.cli.environment`).
"""

from __future__ import annotations

import argparse
import os
import ssl
from dataclasses import dataclass
from typing import Any, Literal

from ..config import FAULT_FIELDS, ConfigError, ServerConfig
from ..loops import LoopName, resolve_loop
from ..options import option
from ..process.logs import configure_logging
from ..process.readiness import ReadyReport
from ..process.runner import run_server
from ..tls import server_context
from . import environment
from .parsing import Parser, Sections, add_flags, add_sections, from_flags

LogLevel = Literal["debug", "info", "warning", "error"]

SECTIONS: Sections = (
    ("listening", ("host", "port", "unix", "unix_mode", "backlog")),
    ("protocol", ("framing", "suffix", "max_line", "unicode")),
    ("limits", ("max_connections", "max_connections_per_ip", "max_client_memory", "sndbuf")),
    ("timeouts", ("line_timeout", "idle_timeout", "write_timeout", "shutdown_timeout")),
    ("workers and event loop", ("workers", "worker_timeout", "loop")),
    ("TLS", ("tls_cert", "tls_key", "tls_handshake_timeout")),
    ("observability", ("log_level", "stats_interval", "metrics_port", "ready_file", "ready_fd")),
    ("faults (for testing clients; all off by default)", FAULT_FIELDS),
)
EXAMPLES = f"""\
examples:
  aioecho                                         127.0.0.1:8088, the best loop installed
  aioecho serve --host 0.0.0.0 --host :: --port 9000
  aioecho serve --workers 4 --max-line 1M --idle-timeout 5m
  aioecho serve --tls-cert cert.pem --tls-key key.pem --metrics-port 9100
  aioecho serve --delay 150us:10,2ms:5 --drop 0.01 --seed 1
  AIOECHO_PORT=9000 AIOECHO_WORKERS=4 aioecho serve

{environment.HELP}"""


@dataclass(frozen=True, slots=True)
class ProcessOptions:
    """How the serving process runs and reports, beside the server's own options."""

    loop: LoopName = option("auto", "event loop; auto takes uvloop when installed")
    log_level: LogLevel = option("info", "log verbosity")
    ready_file: str | None = option(
        None, "once accepting, write a JSON line (addresses, pid, ...) to this file", "PATH"
    )
    ready_fd: int | None = option(
        None, "once accepting, write the JSON line to this inherited descriptor and close it", "N"
    )


def add_parser(commands: argparse._SubParsersAction[Any]) -> Parser:
    """Register the ``serve`` subcommand."""
    parser: Parser = commands.add_parser(
        "serve",
        help="run the echo server (the default command)",
        description="Run the uppercase echo server until SIGTERM or Ctrl-C.",
        epilog=EXAMPLES,
    )
    placed = add_sections(parser, SECTIONS)
    add_flags(parser, ServerConfig, placed)
    add_flags(parser, ProcessOptions, placed)
    parser.set_defaults(run=main, parser=parser, from_environment={})
    return parser


def read_environment(parser: Parser) -> None:
    """Take the flags' defaults from ``AIOECHO_*`` variables (before parsing)."""
    parser.set_defaults(from_environment=environment.apply(parser, os.environ))


def main(options: argparse.Namespace) -> int:
    """Run the parsed ``serve`` command; the exit code."""
    parser: Parser = options.parser
    source = _Source(parser, options)
    process = from_flags(ProcessOptions, options)
    tls = None
    try:
        config = from_flags(ServerConfig, options)
        loop = resolve_loop(process.loop)
        if config.metrics_port is not None:
            import aioecho.metrics  # noqa: F401  (fails early, naming the extra to install)
        if config.tls_cert is not None and config.tls_key is not None:
            # Unreadable files fail here, before anything starts; the server serves with it.
            tls = server_context(config.tls_cert, config.tls_key)
    except ConfigError as exc:
        parser.error(source.blame(str(exc)))
    except (OSError, ssl.SSLError) as exc:
        parser.error(f"{source.name('tls_cert')}/{source.name('tls_key')}: {_reason(exc)}")
    ready = ReadyReport(process.ready_file, process.ready_fd)
    if ready.fd is not None and not _is_open(ready.fd):
        parser.error(f"{source.name('ready_fd')} {ready.fd}: not an open descriptor")
    if ready.file is not None and not os.path.isdir(os.path.dirname(ready.file) or "."):
        parser.error(f"{source.name('ready_file')} {ready.file}: no such directory")
    configure_logging(process.log_level.upper())
    # The process exits next: a late signal must not turn exit 0 into a death.
    return run_server(config, loop, ready=ready, after_stop="ignore", tls=tls)


class _Source:
    """Where a value came from, for messages: its flag or its environment variable."""

    def __init__(self, parser: Parser, options: argparse.Namespace) -> None:
        self._parser = parser
        self._options = options

    def variable(self, dest: str) -> str | None:
        """The variable ``dest`` was taken from, or None if a flag (or nothing) set it."""
        name: str | None = self._options.from_environment.get(dest)
        if name is None or getattr(self._options, dest) is not self._parser.get_default(dest):
            return None  # the flag was given: it won
        return name

    def name(self, dest: str) -> str:
        return self.variable(dest) or "--" + dest.replace("_", "-")

    def blame(self, message: str) -> str:
        """``message`` led by the variable it is about, if it came from one.

        A config's message starts with the name of the option it refuses.
        """
        option = message.split(" ", 1)[0].rstrip(":")
        name = self.variable(option)
        return message if name is None else f"{name}: {message}"


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except (OSError, OverflowError):
        return False
    return True


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
