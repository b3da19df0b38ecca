"""The demo: embedded loopback servers, then a walk through the clients.

Run it with ``agentcomm demo`` or ``python -m agenticaiframework.communication demo``.
Every server binds 127.0.0.1 on a free port and is stopped before the demo
returns; nothing is contacted outside this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO

from .http import HTTPClient

__all__ = ["run_demo"]


def _http_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    tasks: dict[str, dict[str, Any]] = {}

    async def create_task(request: Request) -> JSONResponse:
        body = await request.json()
        task_id = str(len(tasks) + 1)
        tasks[task_id] = {"id": task_id, "status": "queued", **body}
        return JSONResponse(tasks[task_id], status_code=201)

    async def get_task(request: Request) -> JSONResponse:
        task = tasks.get(request.path_params["task_id"])
        if task is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(task)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/tasks", create_task, methods=["POST"]),
            Route("/tasks/{task_id}", get_task),
            Route("/health", health),
        ]
    )


@contextlib.asynccontextmanager
async def _serve_http(app: Any) -> AsyncIterator[str]:
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws="none",
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="demo-uvicorn")
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("the demo HTTP server did not start")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class _Reporter:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.perf_counter()

    def step(self, protocol: str, text: str) -> None:
        elapsed = time.perf_counter() - self.start
        print(f"[{elapsed:5.2f}s] {protocol:<9} {text}", file=self.out, flush=True)


async def _http_walkthrough(url: str, report: Callable[[str, str], None]) -> None:
    async with HTTPClient(url) as client:
        created = await client.post("/tasks", json={"title": "summarise the logs"})
        report("http", f"POST /tasks -> {created.status_code} {created.json()}")
        fetched = await client.get(f"/tasks/{created.json()['id']}")
        report(
            "http", f"GET /tasks/{created.json()['id']} -> {fetched.status_code} {fetched.json()}"
        )
        missing = await client.get("/tasks/999")
        report("http", f"GET /tasks/999 -> {missing.status_code} (is_success={missing.is_success})")
        health = await client.health_check("/health")
        report("http", f"health: healthy={health.is_healthy} latency={health.latency_ms:.1f} ms")


async def run_demo(out: TextIO = sys.stdout) -> int:
    """Start the embedded servers, walk through each client, and stop everything.

    Args:
        out: Where the walk-through is printed.

    Returns:
        The process exit status (0 when every step worked).
    """
    reporter = _Reporter(out)
    reporter.step("demo", "starting embedded servers on 127.0.0.1")
    async with _serve_http(_http_app()) as http_url:
        reporter.step("http", f"server at {http_url}")
        await _http_walkthrough(http_url, reporter.step)
    reporter.step("demo", "all servers stopped; done")
    return 0
