"""ConnectionPool: many concurrent requests over a few shared HTTP clients.

Starts the demo's embedded HTTP server on 127.0.0.1.
Run: ``python examples/pool_example.py`` (needs the ``demo`` extra).
"""

from __future__ import annotations

import asyncio

from agenticaiframework.communication import ConnectionPool, HTTPConfig
from agenticaiframework.communication.testing.servers import serve_http


async def main() -> None:
    """Forty requests through a pool limited to three clients per host."""
    async with serve_http() as (base_url, _state):
        pool = ConnectionPool(
            protocol="http",
            max_connections=10,
            max_connections_per_host=3,
            connection_timeout=5,
            config=HTTPConfig(max_retries=1),
        )
        async with pool:

            async def create(i: int) -> int:
                async with pool.get_connection(base_url) as client:
                    response = await client.post("/tasks", json={"input": f"job {i}"})
                    status: int = response.status_code
                    return status

            statuses = await asyncio.gather(*(create(i) for i in range(40)))
            stats = pool.stats
            print(f"{len(statuses)} requests, statuses {sorted(set(statuses))}")
            print(
                f"clients created={stats.created} peak in use={stats.peak_in_use} "
                f"idle={stats.idle} per host={dict(stats.per_host)}"
            )


if __name__ == "__main__":
    asyncio.run(main())
