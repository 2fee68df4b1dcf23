"""``python -m aioecho client``: flags generated from :class:`ClientConfig`.

Every way the conversation can fail ends the same way: one line on stderr
and exit code 1. A bad flag is one line and exit code 2; Ctrl-C is quiet,
with exit code 130.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import ssl
import sys
from dataclasses import dataclass
from typing import Any

from .bounds import MAX_WHOLE, SECONDS, Bounds, check_fields
from .client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    Endpoint,
    ReplyError,
    ReplyTooLongError,
    reply_bound,
)
from .config import ConfigError, ServerConfig
from .loops import LoopName, LoopUnavailableError, resolve_loop, run_on
from .options import add_flags, from_flags, option
from .tls import client_context, ssl_reason

INTERRUPTED = 128 + signal.SIGINT  # what a shell reports for a Ctrl-C

_SERVER = ServerConfig()

# What OpenSSL reports when the bytes that came back are no TLS record at all.
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Where the ``client`` command connects, and the bounds it keeps."""

    host: str = option(_SERVER.hosts[0], "server address", "HOST")
    port: int = option(_SERVER.port, "server port", "PORT", check=Bounds(int, 1, 65535))
    unix: str | None = option(None, "connect to this Unix socket instead", "PATH")
    tls: bool = option(False, "speak TLS to the server")
    tls_ca: str | None = option(None, "CA certificate(s) to verify it with", "FILE")
    tls_insecure: bool = option(False, "do not verify its certificate (self-signed)")
    timeout: float = option(
        DEFAULT_TIMEOUT, "give up on a reply that takes longer; 0 = never", "SECONDS", check=SECONDS
    )
    connect_timeout: float = option(
        DEFAULT_CONNECT_TIMEOUT,
        "give up on connecting (TLS handshake included) after this long; 0 = never",
        "SECONDS",
        check=SECONDS,
    )
    max_line: int = option(
        _SERVER.max_line,
        "the server's --max-line; with --suffix it bounds a reply",
        "BYTES",
        check=Bounds(int, 1, MAX_WHOLE, " bytes"),
    )
    suffix: str = option(_SERVER.suffix, "the server's --suffix", "TEXT")
    max_reply: int | None = option(
        None,
        "longest reply accepted, terminator included; default: from --max-line",
        "BYTES",
        check=Bounds(int, 2, MAX_WHOLE, " bytes"),
    )
    loop: LoopName = option("auto", "event loop; auto takes uvloop when installed")

    def __post_init__(self) -> None:
        check_fields(self, ConfigError)
        if self.unix is not None and self.uses_tls and not self.tls_insecure:
            # A socket path names no host the certificate could be checked against.
            raise ConfigError("TLS over --unix needs --tls-insecure")

    @property
    def uses_tls(self) -> bool:
        """``--tls-ca`` and ``--tls-insecure`` imply ``--tls``."""
        return self.tls or self.tls_ca is not None or self.tls_insecure

    @property
    def reply_limit(self) -> int:
        """The longest reply accepted, terminator included."""
        return self.max_reply or reply_bound(self.max_line, self.suffix)


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Register the ``client`` subcommand."""
    parser = commands.add_parser("client", help="talk to a server: a prompt, or a pipe filter")
    add_flags(parser, ClientConfig)
    parser.set_defaults(client_parser=parser)


def main(options: argparse.Namespace) -> int:
    """Run the parsed ``client`` command; the exit code."""
    parser: argparse.ArgumentParser = options.client_parser
    try:
        config = from_flags(ClientConfig, options)
        loop = resolve_loop(config.loop)
        tls = client_context(config.tls_ca, config.tls_insecure) if config.uses_tls else None
    except (ConfigError, LoopUnavailableError) as exc:
        parser.error(str(exc))
    except OSError as exc:  # ssl.SSLError included: a CA file that is not PEM
        parser.error(f"--tls-ca {options.tls_ca}: {describe(exc)}")
    endpoint = Endpoint(config.host, config.port, config.unix, tls)
    connect = functools.partial(
        endpoint.connect,
        timeout=config.timeout or None,  # the library's None waits forever
        max_reply=config.reply_limit,
        connect_timeout=config.connect_timeout or None,
        suffix=config.suffix,
    )
    from .console import OutputClosedError, interactive, pipe

    try:
        if sys.stdin.isatty():
            return interactive(connect, loop)
        return run_on(loop, pipe(connect, sys.stdin.fileno(), sys.stdout.buffer))
    except KeyboardInterrupt:
        return INTERRUPTED
    except OutputClosedError as exc:
        # Nothing more can be written there, not even at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"aioecho client: {exc}", file=sys.stderr)
        return 1
    except (ReplyError, OSError) as exc:
        print(f"aioecho client: {endpoint}: {describe(exc)}", file=sys.stderr)
        return 1


def describe(exc: Exception) -> str:
    """One line that says what went wrong, for a person."""
    if isinstance(exc, ReplyTooLongError):
        return f"{exc} (see --max-line and --max-reply)"
    if isinstance(exc, ssl.SSLError):
        hint = " (is it a TLS server?)" if exc.reason in _NOT_TLS else ""
        return f"TLS failed: {ssl_reason(exc)}{hint}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
