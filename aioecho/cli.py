"""The command line: ``serve`` (the default), ``client``.

Flags of ``serve`` are generated from :class:`ServerConfig`'s fields, so a
new server option is declared once and appears here by itself.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__, client_cli
from .bench import cli as bench_cli
from .config import ConfigError, ServerConfig
from .loops import LOOP_NAMES, LoopUnavailableError, resolve_loop
from .options import add_flags, from_flags
from .process.early import release_stop_signals
from .process.logs import configure_logging
from .process.readiness import ReadyReport
from .process.runner import run_server
from .tls import server_context

DEFAULTS = ServerConfig()
COMMANDS = ("serve", "client", "bench")
LOG_LEVELS = ("debug", "info", "warning", "error")
HELP_FLAGS = ("-h", "--help", "--version")


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line and exit code 2, without the usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aioecho", description="Uppercase TCP echo service.")
    parser.add_argument("--version", action="version", version=f"aioecho {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{serve,client,bench}")
    serve = commands.add_parser("serve", help="run the echo server (the default command)")
    add_flags(serve, ServerConfig)
    serve.add_argument(
        "--loop",
        choices=LOOP_NAMES,
        default="auto",
        help="event loop; auto takes uvloop when installed (default: auto)",
    )
    serve.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="log verbosity (default: info)"
    )
    serve.add_argument(
        "--ready-file",
        metavar="PATH",
        help="once accepting, write a JSON line (addresses, pid, ...) to this file",
    )
    serve.add_argument(
        "--ready-fd",
        type=int,
        metavar="N",
        help="once accepting, write the JSON line to this inherited descriptor and close it",
    )
    client_cli.add_parser(commands)
    bench_cli.add_parser(commands)
    return parser


def parsers() -> dict[str, argparse.ArgumentParser]:
    """The parser of each command (``serve``, ``client``, ``bench``), for the docs' reference."""
    commands = next(
        action
        for action in build_parser()._actions  # argparse names its subcommands nowhere public
        if isinstance(action, argparse._SubParsersAction)
    )
    return {name: commands.choices[name] for name in COMMANDS}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in COMMANDS and args[0] not in HELP_FLAGS):
        args.insert(0, "serve")  # every serve flag works without the word serve
    parser = build_parser()
    options = parser.parse_args(args)
    if options.command != "serve":
        release_stop_signals()  # only a service stops on them gracefully
    if options.command == "client":
        return client_cli.main(options)
    if options.command == "bench":
        return bench_cli.main(options)
    return _serve(parser, options)


def _serve(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    try:
        config = from_flags(ServerConfig, options)
        loop = resolve_loop(options.loop)  # a missing uvloop fails here, with exit 2
        if config.metrics_port is not None:
            import aioecho.metrics  # noqa: F401  (fails early, with the extra to install)
        if config.tls_cert is not None and config.tls_key is not None:
            server_context(config.tls_cert, config.tls_key)  # unreadable files: fail early
    except (ConfigError, LoopUnavailableError, ImportError) as exc:
        parser.error(str(exc))
    except (OSError, ssl.SSLError) as exc:
        parser.error(f"--tls-cert/--tls-key: {_reason(exc)}")
    ready = ReadyReport(options.ready_file, options.ready_fd)
    if ready.fd is not None and not _is_open(ready.fd):
        parser.error(f"--ready-fd {ready.fd}: not an open descriptor")
    if ready.file is not None and not os.path.isdir(os.path.dirname(ready.file) or "."):
        parser.error(f"--ready-file {ready.file}: no such directory")
    configure_logging(options.log_level.upper())
    # The process exits next: a late signal must not turn exit 0 into a death.
    return run_server(config, loop, ready=ready, after_stop="ignore")


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except (OSError, OverflowError):
        return False
    return True


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def main_entry(*_: Any) -> NoReturn:
    """Console-script entry point."""
    sys.exit(main())
