"""WebSocketClient: events, request/response and a health check.

Starts the demo's embedded WebSocket server on 127.0.0.1, then talks to it.
Run: ``python examples/websocket_example.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agenticaiframework.communication import WebSocketClient
from agenticaiframework.communication.testing.servers import serve_websocket


async def main() -> None:
    """Say hello on open, make concurrent requests, check health."""
    async with serve_websocket() as url:
        ws = WebSocketClient(url, reconnect_delay=0.1)

        @ws.on("open")
        async def say_hello() -> None:
            await ws.send({"type": "hello"})

        @ws.on("message")
        def show(message: Any) -> None:
            print(f"pushed: {message}")

        async with ws:
            welcome = await ws.receive(timeout=5)
            print(f"received: {welcome}")
            sums = await asyncio.gather(
                *(ws.request({"method": "add", "params": [i, i]}) for i in range(3))
            )
            print(f"request/response: {[reply['result'] for reply in sums]}")
            status = await ws.health_check()
            print(f"healthy={status.is_healthy} latency={status.latency_ms:.1f} ms")
            print(f"stats: sent={ws.stats.sent} received={ws.stats.received}")


if __name__ == "__main__":
    asyncio.run(main())
