"""aioecho: a fast, abuse-resistant asyncio TCP echo service.

Each line ``hello\\n`` is answered ``HELLO_SB\\n``. Start a server inside any
running event loop::

    async with await aioecho.start_server(host="127.0.0.1", port=0) as server:
        host, port = server.addresses[0]
        async with await aioecho.connect(host, port) as client:
            assert await client.request("hello") == b"HELLO_SB"

or serve as a program until SIGINT or SIGTERM: ``aioecho.run_server(ServerConfig())``.

The names below load on first use, so that importing the package costs
nothing: ``python -m aioecho`` catches the stop signals before it imports
the server (see :mod:`aioecho.process.early`).
"""

from __future__ import annotations

from .lazy import lazy_exports

# Not typing's: importing typing would cost the start of every program a few
# milliseconds, during which a stop signal is not caught yet. Type checkers
# take any TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .client import (
        ConnectionClosedError,
        EchoClient,
        ExtraReplyError,
        ReplyError,
        ReplyTimeoutError,
        ReplyTooLongError,
        ServerError,
        connect,
    )
    from .config import ConfigError, ServerConfig
    from .core import COMPILED, CloseReason
    from .process.runner import run_server
    from .server import EchoServer, start_server
    from .stats import Stats

__version__ = "0.1.0"

_LAZY = {
    "ConnectionClosedError": "client",
    "EchoClient": "client",
    "ExtraReplyError": "client",
    "ReplyError": "client",
    "ReplyTimeoutError": "client",
    "ReplyTooLongError": "client",
    "ServerError": "client",
    "connect": "client",
    "ConfigError": "config",
    "ServerConfig": "config",
    "COMPILED": "core",
    "CloseReason": "core",
    "run_server": "process.runner",
    "EchoServer": "server",
    "start_server": "server",
    "Stats": "stats",
}

__all__ = [
    "COMPILED",
    "CloseReason",
    "ConfigError",
    "ConnectionClosedError",
    "EchoClient",
    "EchoServer",
    "ExtraReplyError",
    "ReplyError",
    "ReplyTimeoutError",
    "ReplyTooLongError",
    "ServerConfig",
    "ServerError",
    "Stats",
    "__version__",
    "connect",
    "run_server",
    "start_server",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
