"""The pytest plugin: echo servers as fixtures, in the test's own event loop.

``pip install aioecho`` registers this module through the ``pytest11`` entry
point, so its fixtures are available in every test suite of that
environment::

    async def test_my_client(echo_server: EchoTestServer) -> None:
        reader, writer = await asyncio.open_connection(echo_server.host, echo_server.port)

- ``echo_server``: a server on 127.0.0.1, on a free port, started before the
  test and shut down after it. ``@pytest.mark.echo_server(**options)`` sets
  its options (the fields of :class:`~aioecho.ServerConfig`).
- ``echo_server_factory``: ``await echo_server_factory(**options)`` starts
  another server; every server it started is shut down after the test.
- ``echo_clock``: a clock that moves only when the test says. A test that
  asks for it gets servers whose time limits (idle, line, write timeouts,
  delayed replies) follow it: ``echo_clock.advance(301)`` moves time on and
  applies the limits at once, with no real waiting::

      @pytest.mark.echo_server(idle_timeout=300)
      async def test_idle_clients_are_dropped(echo_server, echo_clock) -> None:
          reader, writer = await asyncio.open_connection(echo_server.host, echo_server.port)
          writer.write(b"hello\n")
          assert await reader.readline() == b"HELLO_SB\n"  # the server has the connection
          echo_clock.advance(301)
          assert await reader.read() == b"ERR idle timeout\n"

The servers run on the loop pytest-asyncio runs the test in (asyncio,
uvloop, or whatever the ``pytest_asyncio_loop_factories`` hook gives), so
tests use them from ``async def`` tests. pytest is imported by this module
only, never by ``import aioecho``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

import pytest

from .config import ConfigError, ServerConfig
from .server import EchoServer
from .sockets.binding import Address, HostAndPort

try:
    from pytest_asyncio import fixture as async_fixture
except ImportError:  # pragma: no cover - without pytest-asyncio no async test runs anyway
    # pytest itself then reports the async fixture that no plugin handled.
    async_fixture = pytest.fixture  # type: ignore[assignment]

__all__ = ["EchoClock", "EchoServerFactory", "EchoTestServer"]

MARKER = "echo_server"
MARKER_HELP = (
    f"{MARKER}(**options): options of the echo_server fixture's server "
    "(the fields of aioecho.ServerConfig, e.g. suffix='', max_line=1024)"
)

# Where a test server listens unless the options say otherwise: loopback
# only, on whichever port is free, so tests can run in parallel.
TEST_DEFAULTS: dict[str, Any] = {"host": "127.0.0.1", "port": 0}


class EchoTestServer(EchoServer, HostAndPort):
    """An :class:`~aioecho.EchoServer` with the accessors a test wants.

    ``host`` and ``port`` are where it listened once started; they stay
    readable after :meth:`shutdown`, so a test can check that its client
    copes with a server that went away.
    """

    _bound: tuple[Address, ...] = ()

    async def start(self) -> None:
        await super().start()
        self._bound = tuple(self.addresses)

    @property
    def address(self) -> Address:
        """The first ``(host, port)`` the server listened on."""
        if not self._bound:
            raise RuntimeError(
                f"no TCP address: the server was not started, or serves the Unix socket "
                f"{self.config.unix!r}"
            )
        return self._bound[0]


class EchoClock:
    """A clock that moves only when a test says so: the stand-in for the loop's
    clock where time is what the test is about.

    Servers started while a test uses the ``echo_clock`` fixture time their
    limits by it; :meth:`advance` moves it and applies those limits.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._servers: list[EchoServer] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, then apply every watched server's time limits.

        The servers first note what happened until now (a server stamps a
        connection's activity at its next check, not at every read), so that
        a read before the call counts as before it, as it would in real time.
        """
        for server in self._servers:
            server.check_timeouts()
        self.now += seconds
        for server in self._servers:
            server.check_timeouts()

    def watch(self, server: EchoServer) -> None:
        """Apply ``server``'s time limits on every :meth:`advance`."""
        self._servers.append(server)


class EchoServerFactory(Protocol):
    """The type of the ``echo_server_factory`` fixture."""

    def __call__(
        self, config: ServerConfig | None = None, /, **options: Any
    ) -> Awaitable[EchoTestServer]:
        """Start a server with ``options`` over ``config``; it stops after the test."""
        ...


def server_config(config: ServerConfig | None = None, /, **options: Any) -> ServerConfig:
    """``options`` over ``config`` (or over the test defaults), checked by name.

    Any field of :class:`~aioecho.ServerConfig` is an option, so options that
    later versions add work here unchanged.
    """
    known = {field.name for field in dataclasses.fields(ServerConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"unknown server option(s) {', '.join(map(repr, unknown))}; "
            f"the options are the fields of aioecho.ServerConfig: {', '.join(sorted(known))}"
        )
    if config is None:
        return ServerConfig(**{**TEST_DEFAULTS, **options})
    return dataclasses.replace(config, **options)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)


@async_fixture
async def echo_server_factory(
    request: pytest.FixtureRequest,
) -> AsyncIterator[EchoServerFactory]:
    """Start echo servers on demand: ``await echo_server_factory(suffix="")``.

    Options are the fields of :class:`~aioecho.ServerConfig`, over a
    ``ServerConfig`` given first if any, else over 127.0.0.1 on a free port.
    Every server started is shut down after the test.
    """
    check_runs_in_test_loop(request)
    started: list[EchoTestServer] = []
    clock: EchoClock | None = None
    if "echo_clock" in request.fixturenames:
        clock = request.getfixturevalue("echo_clock")

    async def start(config: ServerConfig | None = None, /, **options: Any) -> EchoTestServer:
        server = EchoTestServer(server_config(config, **options), clock=clock)
        if clock is not None:
            clock.watch(server)
        await server.start()
        started.append(server)
        return server

    yield start
    await asyncio.gather(*(server.shutdown() for server in started))


@pytest.fixture
def echo_clock() -> EchoClock:
    """A clock the test moves; servers of this test time their limits by it."""
    return EchoClock()


@async_fixture
async def echo_server(
    request: pytest.FixtureRequest, echo_server_factory: EchoServerFactory
) -> EchoTestServer:
    """An echo server on 127.0.0.1 and a free port, for the duration of the test.

    ``@pytest.mark.echo_server(**options)`` on the test, its class or its
    module sets the server's options.
    """
    try:
        # Building the server checks what only a server can (workers > 1 is a
        # process pool, not an EchoServer): a mark asking that is misuse too.
        return await echo_server_factory(marked_config(request))
    except (ConfigError, TypeError) as exc:
        message = f"@pytest.mark.{MARKER}: {exc}"
    # Failed outside the except block, so the report is the one line above.
    pytest.fail(message, pytrace=False)


def marked_config(request: pytest.FixtureRequest) -> ServerConfig:
    """The config the test's ``echo_server`` mark asks for (the defaults without one)."""
    mark = request.node.get_closest_marker(MARKER)
    if mark is None:
        return server_config()
    if mark.args:
        raise ConfigError(f"takes keyword options only, not {mark.args!r}")
    return server_config(**mark.kwargs)


def check_runs_in_test_loop(request: pytest.FixtureRequest) -> None:
    """Fail clearly where the server could not answer the test.

    The server serves only while its loop runs: a synchronous test, or an
    async test on another loop than the fixture's (a wider ``loop_scope``),
    would wait for replies forever.
    """
    asyncio_mark = request.node.get_closest_marker("asyncio")
    if asyncio_mark is None:
        pytest.fail(
            "aioecho's echo servers serve in the test's event loop: use them from an "
            "async test run by pytest-asyncio (mark it @pytest.mark.asyncio in strict mode)",
            pytrace=False,
        )
    test_scope = (
        asyncio_mark.kwargs.get("loop_scope")
        or asyncio_mark.kwargs.get("scope")
        or request.config.getini("asyncio_default_test_loop_scope")
        or "function"
    )
    fixture_scope = request.config.getini("asyncio_default_fixture_loop_scope")
    if fixture_scope in (None, "", "fixture-scope"):
        fixture_scope = "function"
    if test_scope != fixture_scope:
        pytest.fail(
            f"aioecho's echo servers run in the {fixture_scope}-scoped event loop "
            f"(asyncio_default_fixture_loop_scope) but this test runs in the {test_scope}-"
            f"scoped one, where they could not answer: set "
            f"asyncio_default_fixture_loop_scope = {test_scope}",
            pytrace=False,
        )
