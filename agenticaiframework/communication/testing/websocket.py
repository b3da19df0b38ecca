"""A WebSocket server for tests: echo, or your handler, on 127.0.0.1 and a free port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["WebSocketServer", "echo_handler", "serve_websocket"]


async def echo_handler(connection: Any) -> None:
    """Send every message back as it came (text as text, binary as binary)."""
    from websockets.exceptions import ConnectionClosed

    with contextlib.suppress(ConnectionClosed):  # the client left: nothing to answer
        async for message in connection:
            await connection.send(message)


@dataclass(frozen=True)
class WebSocketServer:
    """A running server from :func:`serve_websocket`.

    Attributes:
        url: ``ws://127.0.0.1:<port><path>``.
        port: The port it listens on.
    """

    url: str
    port: int


@contextlib.asynccontextmanager
async def serve_websocket(
    handler: Callable[[Any], Awaitable[None]] | None = None,
    *,
    path: str = "/",
    **options: Any,
) -> AsyncIterator[WebSocketServer]:
    """Serve WebSocket connections with the ``websockets`` asyncio server.

    Args:
        handler: ``async def handler(connection)`` for each connection (a
            ``websockets.asyncio.server.ServerConnection``); :func:`echo_handler`
            when None. Every path is served by it; ``path`` only shapes the URL.
        path: The path of the yielded URL.
        **options: More ``websockets.asyncio.server.serve`` arguments (``max_size``...).

    Yields:
        The running server; every connection is closed when the block ends.
    """
    from websockets.asyncio.server import serve

    from ._process import stop_accepting

    options.setdefault("ping_interval", None)
    async with serve(handler or echo_handler, "127.0.0.1", 0, **options) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        try:
            yield WebSocketServer(f"ws://127.0.0.1:{port}{path}", port)
        finally:
            await stop_accepting(server.sockets)
