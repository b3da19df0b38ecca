"""HTTPClient against the demo's embedded HTTP server (started here, on 127.0.0.1).

Run: ``python examples/http_example.py`` (needs the ``demo`` extra: uvicorn, starlette).
"""

from __future__ import annotations

import asyncio

from agenticaiframework.communication import HTTPClient, HTTPStatusError
from agenticaiframework.communication.testing.servers import serve_http


async def main() -> None:
    """Create a task, read it back, hit a missing one, and check health."""
    async with (
        serve_http() as (base_url, _state),
        HTTPClient(base_url, headers={"X-Trace": "example"}, max_retries=1) as client,
    ):
        created = await client.post("/tasks", json={"input": "summarise the report"})
        print(f"POST /tasks -> {created.status_code} {created.json()}")
        task = (await client.get(f"/tasks/{created.json()['id']}")).json()
        print(f"GET /tasks/{task['id']} -> {task}")

        missing = await client.get("/tasks/999")
        try:
            missing.raise_for_status()
        except HTTPStatusError as exc:
            print(f"GET /tasks/999 -> {exc}")

        status = await client.health_check("/health")
        print(f"healthy={status.is_healthy} latency={status.latency_ms:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
