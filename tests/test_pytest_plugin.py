"""The pytest plugin, through real inner test runs (pytester) that talk to real servers.

Each inner run has the project's setup: asyncio_mode = auto and both loops
from the ``pytest_asyncio_loop_factories`` hook, so every inner test runs on
asyncio and on uvloop.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

INNER_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

INNER_CONFTEST = """
import asyncio

import uvloop


def pytest_asyncio_loop_factories(config, item):
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
"""

# What inner tests share: one line exchanged over a real socket, and a check
# that the test runs on the loop its id names.
INNER_HELPERS = """
import asyncio

import pytest

from aioecho.pytest_plugin import EchoClock, EchoServerFactory, EchoTestServer


async def exchange(server, line):
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(line)
    reply = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return reply


def assert_on_the_loop_of(request):
    loop_module = type(asyncio.get_running_loop()).__module__
    assert loop_module.startswith("uvloop") == ("[uvloop]" in request.node.name)
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory set up like the project's own test suite."""
    pytester.makeini(INNER_INI)
    pytester.makeconftest(INNER_CONFTEST)
    return pytester


def run_inner(pytester: pytest.Pytester, tests: str, *args: str) -> pytest.RunResult:
    """Run ``tests`` (with the shared helpers above them) in a fresh pytest, verbosely."""
    pytester.makepyfile(test_inner=INNER_HELPERS + textwrap.dedent(tests))
    return pytester.runpytest("-v", "--strict-markers", "-p", "no:cacheprovider", *args)


def test_echo_server_answers_over_a_real_socket_on_both_loops(inner: pytest.Pytester) -> None:
    result = run_inner(
        inner,
        """
        async def test_hello(echo_server: EchoTestServer, request) -> None:
            assert_on_the_loop_of(request)
            assert echo_server.host == "127.0.0.1"
            assert echo_server.port > 0
            assert await exchange(echo_server, b"hello\\n") == b"HELLO_SB\\n"
            assert echo_server.stats.messages_answered == 1
        """,
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_hello?asyncio? PASSED*", "*test_hello?uvloop? PASSED*"])


def test_a_wrong_expectation_fails_with_the_real_reply(inner: pytest.Pytester) -> None:
    result = run_inner(
        inner,
        """
        async def test_expects_no_suffix(echo_server: EchoTestServer) -> None:
            assert await exchange(echo_server, b"hello\\n") == b"HELLO\\n"
        """,
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*AssertionError: assert b'HELLO_SB\\n' == b'HELLO\\n'*"])


def test_the_mark_configures_the_server(inner: pytest.Pytester) -> None:
    result = run_inner(
        inner,
        """
        @pytest.mark.echo_server(suffix="", max_line=8)
        async def test_no_suffix_and_short_lines(echo_server: EchoTestServer) -> None:
            assert await exchange(echo_server, b"hello\\n") == b"HELLO\\n"
            assert await exchange(echo_server, b"much too long\\n") == (
                b"ERR line too long (max 8 bytes)\\n"
            )
            assert echo_server.stats.connections_rejected["line_too_long"] == 1


        @pytest.mark.echo_server(suffix="!")
        class TestMarkedClass:
            async def test_marked_by_its_class(self, echo_server: EchoTestServer) -> None:
                assert await exchange(echo_server, b"hi\\n") == b"HI!\\n"

            @pytest.mark.echo_server(suffix="?")
            async def test_its_own_mark_wins(self, echo_server: EchoTestServer) -> None:
                assert await exchange(echo_server, b"hi\\n") == b"HI?\\n"
        """,
    )
    result.assert_outcomes(passed=6)


def test_the_factory_starts_several_independent_servers(inner: pytest.Pytester) -> None:
    result = run_inner(
        inner,
        """
        from aioecho import ServerConfig


        async def test_two_servers(echo_server_factory: EchoServerFactory, request) -> None:
            assert_on_the_loop_of(request)
            plain = await echo_server_factory()
            shouting = await echo_server_factory(suffix="!!")
            assert plain.port != shouting.port
            assert await exchange(plain, b"a\\n") == b"A_SB\\n"
            assert await exchange(shouting, b"b\\n") == b"B!!\\n"
            assert await exchange(shouting, b"c\\n") == b"C!!\\n"
            assert plain.stats.messages_answered == 1
            assert shouting.stats.messages_answered == 2


        async def test_a_config_then_options(echo_server_factory: EchoServerFactory) -> None:
            config = ServerConfig(port=0, suffix="?", max_line=4)
            server = await echo_server_factory(config, suffix="")
            assert server.config.max_line == 4
            assert await exchange(server, b"ok\\n") == b"OK\\n"


        async def test_beside_the_default_server(
            echo_server: EchoTestServer, echo_server_factory: EchoServerFactory
        ) -> None:
            other = await echo_server_factory(framing="chunk")
            assert other.port != echo_server.port
            assert await exchange(echo_server, b"x\\n") == b"X_SB\\n"
            assert other.config.framing == "chunk"
        """,
    )
    result.assert_outcomes(passed=6)


def test_the_factory_serves_a_unix_socket(inner: pytest.Pytester) -> None:
    result = run_inner(
        inner,
        """
        async def test_unix(echo_server_factory: EchoServerFactory, tmp_path) -> None:
            server = await echo_server_factory(unix=str(tmp_path / "echo.sock"))
            reader, writer = await asyncio.open_unix_connection(server.unix_path)
            writer.write(b"local\\n")
            assert await reader.readline() == b"LOCAL_SB\\n"
            writer.close()
            await writer.wait_closed()
            with pytest.raises(RuntimeError, match="serves the Unix socket"):
                server.port
        """,
    )
    result.assert_outcomes(passed=2)


def test_every_server_is_shut_down_after_its_test(inner: pytest.Pytester) -> None:
    result = run_inner(
        inner,
        """
        servers = []


        async def test_starts_servers(
            echo_server: EchoTestServer, echo_server_factory: EchoServerFactory
        ) -> None:
            servers.extend([echo_server, await echo_server_factory()])
            assert all(server.is_serving for server in servers[-2:])


        async def test_finds_them_stopped() -> None:
            assert servers
            for server in servers:
                assert not server.is_serving
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.open_connection(server.host, server.port)
        """,
    )
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize(
    ("mark", "setting"),
    [
        pytest.param("@pytest.mark.asyncio", "asyncio_mode=strict", id="strict mode"),
        pytest.param(
            '@pytest.mark.asyncio(loop_scope="module")',
            "asyncio_default_fixture_loop_scope=module",
            id="a wider loop scope the fixtures share",
        ),
    ],
)
def test_the_servers_work_under_other_asyncio_settings(
    inner: pytest.Pytester, mark: str, setting: str
) -> None:
    test = f"""
        {mark}
        async def test_marked(echo_server: EchoTestServer) -> None:
            assert await exchange(echo_server, b"hello\\n") == b"HELLO_SB\\n"
        """
    result = run_inner(inner, test, "-o", setting)
    result.assert_outcomes(passed=2)


def test_faults_come_through_the_mark_and_the_factory(inner: pytest.Pytester) -> None:
    result = run_inner(
        inner,
        """
        @pytest.mark.echo_server(fragment=2)
        async def test_marked(echo_server: EchoTestServer, echo_clock: EchoClock) -> None:
            reader, writer = await asyncio.open_connection(echo_server.host, echo_server.port)
            writer.write(b"abc\\n")
            pieces = []
            for _ in range(4):
                # The next piece may go only once the test's clock has moved.
                pieces.append(await reader.read(100))
                echo_clock.advance(1)
            writer.close()
            assert pieces == [b"AB", b"C_", b"SB", b"\\n"]
            assert echo_server.stats.faults["fragment"] == 1

        async def test_factory(echo_server_factory: EchoServerFactory) -> None:
            server = await echo_server_factory(drop=1.0)
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b"gone\\n")
            writer.write_eof()
            assert await reader.read() == b""
            writer.close()
            assert server.stats.faults["drop"] == 1
        """,
    )
    result.assert_outcomes(passed=4)


def python_example(document: str, heading: str) -> str:
    """The first Python block after ``heading`` in a document of the repository."""
    text = (Path(__file__).parent.parent / document).read_text()
    after = text[text.index(f"\n{heading}\n") :]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize(
    ("document", "heading", "tests"),
    [
        pytest.param("docs/testing.md", "## Faults", 4, id="faults"),
        pytest.param("README.md", "## The pytest plugin", 1, id="readme"),
    ],
)
def test_the_documented_examples_pass_on_both_loops(
    inner: pytest.Pytester, document: str, heading: str, tests: int
) -> None:
    example = python_example(document, heading)
    inner.makepyfile(test_documented=example)
    result = inner.runpytest("-v", "--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2 * example.count("\nasync def test_"))
    assert example.count("\nasync def test_") == tests


MARKED = """
@pytest.mark.echo_server({arguments})
async def test_marked(echo_server: EchoTestServer) -> None:
    pass
"""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            'sufix=""',
            "@pytest.mark.echo_server: unknown server option(s) 'sufix'; the options are "
            "the fields of aioecho.ServerConfig: *",
            id="unknown option",
        ),
        pytest.param(
            "max_line=0",
            "@pytest.mark.echo_server: max_line must be 1..2**63-1 bytes, not 0",
            id="bad value",
        ),
        pytest.param(
            "fragment=0.5",
            "@pytest.mark.echo_server: fragment must be a whole number 0..2**63-1, not 0.5",
            id="bad type",
        ),
        pytest.param(
            '"_SB"',
            "@pytest.mark.echo_server: takes keyword options only, not ('_SB',)",
            id="positional",
        ),
        pytest.param(
            "workers=2",
            "@pytest.mark.echo_server: workers > 1 needs run_server(): an EchoServer is one "
            "process",
            id="workers",
        ),
    ],
)
def test_a_misused_mark_is_reported_in_one_line(
    inner: pytest.Pytester, arguments: str, message: str
) -> None:
    result = run_inner(inner, MARKED.format(arguments=arguments))
    assert_one_line_error(result, message, errors=2)  # once per loop


@pytest.mark.parametrize(
    ("tests", "message"),
    [
        pytest.param(
            """
            def test_synchronous(echo_server: EchoTestServer) -> None:
                pass
            """,
            "aioecho's echo servers serve in the test's event loop: use them from an async "
            "test run by pytest-asyncio *",
            id="sync test",
        ),
        pytest.param(
            """
            @pytest.mark.asyncio(loop_scope="module")
            async def test_in_another_loop(echo_server: EchoTestServer) -> None:
                pass
            """,
            "aioecho's echo servers run in the function-scoped event loop "
            "(asyncio_default_fixture_loop_scope) but this test runs in the module-scoped "
            "one, where they could not answer: set asyncio_default_fixture_loop_scope = module",
            id="other loop",
        ),
    ],
)
def test_misuse_is_reported_in_one_line(inner: pytest.Pytester, tests: str, message: str) -> None:
    result = run_inner(inner, tests)
    # Once per loop; a synchronous test is not run per loop.
    assert_one_line_error(result, message, errors=1 if "def test_synchronous" in tests else 2)


def assert_one_line_error(result: pytest.RunResult, message: str, errors: int) -> None:
    result.assert_outcomes(errors=errors)
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*During handling*")


def test_listing_the_plugin_in_a_conftest_too_registers_it_once(inner: pytest.Pytester) -> None:
    inner.makeconftest(INNER_CONFTEST + '\npytest_plugins = ["aioecho.pytest_plugin"]\n')
    result = run_inner(
        inner,
        """
        async def test_hello(echo_server: EchoTestServer) -> None:
            assert await exchange(echo_server, b"hello\\n") == b"HELLO_SB\\n"
        """,
    )
    result.assert_outcomes(passed=2)


def test_the_mark_is_registered(inner: pytest.Pytester) -> None:
    result = inner.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.echo_server(**options): *"])


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(
            "import sys, aioecho; assert 'pytest' not in sys.modules, 'pytest imported'",
            id="import aioecho leaves pytest alone",
        ),
        pytest.param(
            "import sys; sys.modules['pytest'] = None; import aioecho",
            id="import aioecho without pytest",
        ),
        pytest.param(
            "import sys; sys.modules['pytest_asyncio'] = None; import aioecho.pytest_plugin",
            id="the plugin loads without pytest-asyncio",
        ),
    ],
)
def test_importing(script: str) -> None:
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
