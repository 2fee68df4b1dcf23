"""Every async test runs twice: on the stdlib loop and on uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
import uvloop

import aioecho
from aioecho import EchoServer


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def loop_name() -> str:
    """Which kind of loop the current test runs on."""
    loop: Any = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[EchoServer]:
    """A running server with the options of the test's ``server_options`` mark."""
    mark = request.node.get_closest_marker("server_options")
    options: dict[str, Any] = {"host": "127.0.0.1", "port": 0, **(mark.kwargs if mark else {})}
    async with await aioecho.start_server(**options) as running:
        yield running
