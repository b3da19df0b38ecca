"""ConnectionManager: one health check over clients of several protocols.

Starts the demo's embedded HTTP, WebSocket and gRPC servers on 127.0.0.1,
plus a Python child process, and registers one unreachable client to show an
unhealthy verdict. Run: ``python examples/manager_example.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys

from agenticaiframework.communication import (
    ConnectionManager,
    GRPCClient,
    HealthStatus,
    HTTPClient,
    STDIOClient,
    WebSocketClient,
)
from agenticaiframework.communication.testing.servers import (
    serve_grpc,
    serve_http,
    serve_websocket,
)


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def main() -> None:
    """Register, connect, check, monitor once, close."""
    async with contextlib.AsyncExitStack() as stack:
        http_url, _ = await stack.enter_async_context(serve_http())
        ws_url = await stack.enter_async_context(serve_websocket())
        grpc_target = await stack.enter_async_context(serve_grpc())

        manager = ConnectionManager(health_timeout=2, connect_timeout=5)
        manager.register("api", HTTPClient(http_url))
        manager.register("events", WebSocketClient(ws_url))
        manager.register("model", GRPCClient(grpc_target))
        manager.register("worker", STDIOClient(command=[sys.executable, "-c", "input()"]))
        manager.register("offline", HTTPClient(f"http://127.0.0.1:{unused_port()}", max_retries=0))

        async with manager:
            print(f"connect errors: {sorted(manager.connect_errors)}")
            for name, status in (await manager.health_check()).items():
                mark = "ok  " if status.is_healthy else "DOWN"
                print(f"{mark} {name:8} {status.latency_ms:7.1f} ms  {status.detail}")

            changes: list[str] = []

            def on_change(name: str, old: HealthStatus | None, new: HealthStatus) -> None:
                changes.append(f"{name}:{'up' if new.is_healthy else 'down'}")

            manager.start_monitoring(0.2, on_change=on_change)
            while len(changes) < len(manager.names()):
                await asyncio.sleep(0.05)
            await manager.stop_monitoring()
            print(f"first verdicts from monitoring: {sorted(changes)}")


if __name__ == "__main__":
    asyncio.run(main())
