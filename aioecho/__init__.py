"""aioecho: a fast, abuse-resistant asyncio TCP echo service.

Each line ``hello\\n`` is answered ``HELLO_SB\\n``. Start a server inside any
running event loop::

    async with await aioecho.start_server(host="127.0.0.1", port=0) as server:
        host, port = server.addresses[0]
        async with await aioecho.connect(host, port) as client:
            assert await client.request("hello") == b"HELLO_SB"

or serve as a program until SIGINT or SIGTERM: ``aioecho.run_server(ServerConfig())``.
"""

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
