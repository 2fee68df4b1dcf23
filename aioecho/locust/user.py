"""``EchoUser``: a Locust user that speaks the aioecho line protocol.

Importing this module imports Locust, which imports gevent and monkey-patches
the standard library; that is why only :mod:`aioecho.locust` reaches it, and
only when ``EchoUser`` is asked for.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from typing import Any

from ..extras import import_extra

try:
    from locust import User, events, task
    from locust.env import Environment
    from locust.runners import Runner, WorkerRunner
except ImportError:
    import_extra("locust", "locust", "aioecho.locust.EchoUser")  # names the extra to install
    raise

from .wire import (
    EchoConnection,
    EchoFailure,
    Payload,
    Target,
    TargetError,
    Trust,
    check_body,
    expected_reply,
    make_body,
    parse_target,
)

logger = logging.getLogger(__name__)

# The exit code of a run refused for a --host it cannot use, as for a bad flag.
USAGE_ERROR = 2


class EchoUser(User):
    """One simulated client: one connection, lines sent one at a time, every reply checked.

    The target is Locust's ``--host`` (or a ``host`` class attribute), as
    ``tcp://HOST:PORT`` or ``tls://HOST:PORT``. Each request is reported to
    Locust under :attr:`request_type` with its response time and reply
    length; a wrong reply, a timeout, a reset, a refused connection or a
    failed TLS handshake is reported as a failure whose message says which,
    and the next request reconnects.

    Subclass it and set the class attributes below to shape the traffic, or
    write your own ``@task`` methods with :meth:`echo`. A subclass that
    declares tasks of its own runs those instead of the default
    :meth:`send_line` task, not in addition to it.
    """

    abstract = True

    line_size: int = 64
    """Body bytes of a line sent by :meth:`send_line`, not counting the terminator."""
    payload: Payload = "text"
    """``"text"``: mixed-case ASCII; ``"random"``: any bytes but CR and LF. Either way
    each line differs from the one before."""
    terminator: bytes = b"\n"
    """Line terminator: ``b"\\n"`` or ``b"\\r\\n"``."""
    suffix: bytes = b"_SB"
    """The suffix the server appends (its ``--suffix``)."""
    timeout: float = 5.0
    """Seconds one request (or a connect) may take before it fails as timed out."""
    request_type: str = "ECHO"
    """The *Type* column of Locust's statistics for echo requests."""
    connect_type: str = "CONNECT"
    """The *Type* column for connection attempts, reported as requests of their own."""
    tls_ca: str | None = None
    """For ``tls://``: a PEM file of the CAs to verify the server against; None uses
    the system's CAs. The certificate must also name the host of ``--host``."""
    tls_insecure: bool = False
    """For ``tls://``: verify nothing, for self-signed test servers."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.rng = random.Random()
        self.connection: EchoConnection | None = None
        # Parsed per user, not at import: a worker learns --host from the master
        # only when the test starts. A host given at startup has already been
        # checked by check_targets; this catches one typed into the web UI.
        self.target: Target = parse_target(self.host)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Locust merges a base class's tasks into its subclasses'. The default
        # task is a default: custom traffic must replace it, not be diluted by it.
        own = [each for each in cls.tasks if each is not EchoUser.send_line]
        if own:
            cls.tasks = own

    def on_start(self) -> None:
        """Open the connection (a failure is reported and retried by the next request)."""
        self.connect()

    def on_stop(self) -> None:
        """Close the connection."""
        self.disconnect()

    def connect(self) -> EchoConnection | None:
        """Open a connection to the target, reported as a ``CONNECT`` request."""
        self.disconnect()
        started, start_time = time.perf_counter(), time.time()
        try:
            trust = Trust(self.tls_ca, self.tls_insecure)
            self.connection = EchoConnection.open(self.target, self.timeout, trust)
        except EchoFailure as exc:
            self._report(self.connect_type, "connect", started, start_time, 0, exc)
            return None
        self._report(self.connect_type, "connect", started, start_time, 0, None)
        return self.connection

    def disconnect(self) -> None:
        """Close the connection if one is open."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def echo(self, body: bytes, *, name: str | None = None) -> bytes | None:
        """Send ``body`` plus :attr:`terminator` and check the reply byte for byte.

        Returns the reply, or None when the request failed; the failure has
        been reported to Locust and the connection dropped, so the next call
        reconnects. ``name`` is the row in Locust's statistics (default
        ``"<size> B"``).
        """
        check_body(body)
        connection = self.connection or self.connect()
        if connection is None:
            return None
        line = body + self.terminator
        expected = expected_reply(body, self.suffix, self.terminator)
        name = name if name is not None else f"{len(body)} B"
        started, start_time = time.perf_counter(), time.time()
        try:
            reply = connection.request(line, expected, self.timeout)
        except EchoFailure as exc:
            # After a wrong or missing reply the stream is out of step with the
            # requests: only a new connection can be trusted again.
            self.disconnect()
            self._report(self.request_type, name, started, start_time, 0, exc)
            return None
        self._report(self.request_type, name, started, start_time, len(reply), None)
        return reply

    @task
    def send_line(self) -> None:
        """The default task: one line of :attr:`line_size` bytes of :attr:`payload`."""
        self.echo(make_body(self.line_size, self.payload, self.rng))

    def _report(
        self,
        request_type: str,
        name: str,
        started: float,
        start_time: float,
        response_length: int,
        exception: EchoFailure | None,
    ) -> None:
        self.environment.events.request.fire(
            request_type=request_type,
            name=name,
            start_time=start_time,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=response_length,
            exception=exception,
            context=self.context(),
        )


def check_targets(environment: Environment, runner: Runner | None, **_: Any) -> None:
    """Stop a master or local run at startup if an ``EchoUser`` cannot use its host.

    Without this, a master would hand a bad ``--host`` to its workers, whose
    users would fail to start, and run to its time limit with no load and an
    exit code of 0.
    """
    if isinstance(runner, WorkerRunner):
        return  # a worker learns the host from its master when the test starts
    options = environment.parsed_options
    headless = options is not None and bool(options.headless)
    for user_class in environment.user_classes:
        host = environment.host or user_class.host
        if not issubclass(user_class, EchoUser) or (host is None and not headless):
            continue  # not ours, or the web UI will ask for the host
        try:
            parse_target(host)
        except TargetError as exc:
            logger.error("%s: %s", user_class.__name__, exc)
            sys.exit(USAGE_ERROR)


def fail_without_success(environment: Environment, runner: Runner | None, **_: Any) -> None:
    """Make a headless run in which no echo request succeeded end with a failure exit code.

    Without this, a run whose users never got a reply (a server that never
    completes a handshake, say) reported 0 requests and exited 0. Connects
    do not count: a connection that echoes nothing is no success. Judged as
    the run quits, after a master's listeners for its workers' final
    reports (``quitting`` runs its listeners last-added first).
    """
    options = environment.parsed_options
    if isinstance(runner, WorkerRunner) or options is None or not options.headless:
        return
    ours = [each for each in environment.user_classes if issubclass(each, EchoUser)]
    if not ours:
        return
    connect_types = {each.connect_type for each in ours}

    def judge(**_: Any) -> None:
        succeeded = sum(
            entry.num_requests - entry.num_failures
            for (_name, method), entry in environment.stats.entries.items()
            if method not in connect_types
        )
        if succeeded == 0 and not environment.process_exit_code:
            logger.error("no echo request succeeded: the run failed")
            environment.process_exit_code = options.exit_code_on_error

    environment.events.quitting.add_listener(judge)  # type: ignore[no-untyped-call]


# Locust's EventHook.add_listener has no annotations.
events.init.add_listener(check_targets)  # type: ignore[no-untyped-call]
events.init.add_listener(fail_without_success)  # type: ignore[no-untyped-call]
