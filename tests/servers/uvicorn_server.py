"""Run an ASGI app under uvicorn inside the test's event loop, on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, **config: Any) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (port 0) and yield its base URL.

    Args:
        app: The ASGI application.
        **config: Extra ``uvicorn.Config`` arguments (``ssl_certfile``...).

    Yields:
        ``http://127.0.0.1:<port>`` (or https when TLS is configured).
    """
    cfg = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws="none",
        access_log=False,
        timeout_graceful_shutdown=1,
        **config,
    )
    server = uvicorn.Server(cfg)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(), name="uvicorn")
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("uvicorn exited before starting")
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if config.get("ssl_certfile") else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        await task
