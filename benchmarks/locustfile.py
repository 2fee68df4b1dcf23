"""Locust load against an aioecho server (or anything speaking its protocol).

One machine::

    python -m aioecho &
    locust -f benchmarks/locustfile.py --headless -u 200 -r 50 -t 1m --host tcp://127.0.0.1:8088

Against a TLS server, ``--host tls://HOST:PORT``, with ``--tls-ca ca.pem`` for a
private CA or ``--tls-insecure`` for a self-signed test certificate.

Many machines: the same file on a ``--master`` and on every ``--worker``
(see docs/locust.md, "Across machines"). Every simulated user keeps
one connection and sends its next line as soon as the previous reply has been
checked, so the load is set by the number of users.

The options below appear in ``locust --help``, in config files and in the web
UI, and the master passes them on to its workers.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from locust import events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, Runner

from aioecho.locust import EchoUser
from aioecho.locust.wire import PAYLOADS


def _with_default(parser: LocustArgumentParser, flag: str, what: str, **options: Any) -> None:
    """A flag whose help ends with its default value."""
    parser.add_argument(flag, help=f"{what} (default: %(default)s)", **options)


def add_options(parser: LocustArgumentParser) -> None:
    line_size = "body bytes of each line, without the newline"
    _with_default(
        parser, "--line-size", line_size, type=int, default=EchoUser.line_size, metavar="BYTES"
    )
    payload = "text: mixed-case ASCII; random: any bytes but CR and LF"
    _with_default(parser, "--payload", payload, choices=PAYLOADS, default=EchoUser.payload)
    suffix = "the suffix the server appends to replies"
    _with_default(parser, "--suffix", suffix, default=EchoUser.suffix.decode(), metavar="TEXT")
    _with_default(
        parser,
        "--request-timeout",
        "a request with no full reply after this long fails",
        type=float,
        default=EchoUser.timeout,
        metavar="SECONDS",
    )
    _with_default(
        parser,
        "--wait-time",
        "each user's pause after a checked reply before its next line; 0 sends at once,"
        " the most load per user",
        type=float,
        default=0.0,
        metavar="SECONDS",
    )
    parser.add_argument(
        "--tls-ca",
        default=EchoUser.tls_ca,
        metavar="FILE",
        help="tls:// targets: verify the server against the CAs in this PEM file, found at"
        " this path on every worker (default: the system's CAs)",
    )
    parser.add_argument(
        "--tls-insecure",
        action="store_true",
        default=EchoUser.tls_insecure,
        help="tls:// targets: do not verify the server's certificate (self-signed test servers)",
    )


# How long a quitting master waits for its workers' final reports.
FINAL_REPORTS_TIMEOUT = 10.0


def wait_for_final_reports(environment: Environment, runner: Runner | None, **_: Any) -> None:
    """Make a master that is stopped (SIGTERM, Ctrl-C) count every worker's last requests.

    Quitting, a master tells its workers to quit, each sends a final report,
    and the master listens for half a second more: a busy worker's report can
    come later and its last requests would be missing from the summary, the
    --json output and the exit code. So the master first asks them itself and
    waits until each has reported and quit. (A --run-time run stops before
    this event, with only that half second.)
    """
    if not isinstance(runner, MasterRunner):
        return

    def collect(**_: Any) -> None:
        if not runner.greenlet:  # it no longer listens to its workers
            return
        # As the runner's own quit begins: stopped, it hands no users of a
        # worker that leaves to the others.
        runner.stop(send_stop_to_client=False)
        for worker in runner.clients.all:
            runner.server.send_to_client(Message("quit", None, worker.id))  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + FINAL_REPORTS_TIMEOUT
        # A worker leaves runner.clients when its "quit" arrives, after its final report.
        while runner.clients.all and time.monotonic() < deadline:
            gevent.sleep(0.01)

    # Listeners of "quitting" run last-added first: this one before the runner's own.
    environment.events.quitting.add_listener(collect)  # type: ignore[no-untyped-call]


events.init_command_line_parser.add_listener(add_options)  # type: ignore[no-untyped-call]
events.init.add_listener(wait_for_final_reports)  # type: ignore[no-untyped-call]


class Echo(EchoUser):
    """The default traffic: lines of ``--line-size`` bytes of ``--payload``."""

    host = "tcp://127.0.0.1:8088"  # where `python -m aioecho` listens; --host overrides it
    pause = 0.0  # seconds between a checked reply and the next line: --wait-time

    def wait_time(self) -> float:
        """Locust's pause after each task: ``--wait-time``."""
        return self.pause

    def on_start(self) -> None:
        options = self.environment.parsed_options
        if options is not None:  # None only when run as a library, without a command line
            self.line_size = options.line_size
            self.payload = options.payload
            self.suffix = options.suffix.encode()
            self.timeout = options.request_timeout
            self.tls_ca = options.tls_ca or None  # the web UI sends an empty field as ""
            self.tls_insecure = options.tls_insecure
            self.pause = options.wait_time
        super().on_start()
