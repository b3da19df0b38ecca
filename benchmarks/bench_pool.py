"""Pool and manager: pooled vs unpooled HTTP requests, and health checks over 1,000 clients.

Rows:

* pooled vs unpooled: ``ConnectionPool.get_connection(url)`` + GET, against a
  new ``HTTPClient`` per request (connect, GET, close), same concurrency.
* pooled vs one shared client: the pool's cost over a single shared
  ``httpx.AsyncClient`` doing the same GETs (the best case without a pool).
* health_check over 1,000 clients: ``ConnectionManager.health_check()`` over
  1,000 registered HTTPClients against one local server, in milliseconds
  (lower is better), against calling the same clients' ``health_check()``
  with a bare ``asyncio.gather``. "cold" includes opening 1,000 TCP
  connections; "warm" reuses them.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx

from agenticaiframework.communication import (
    ConnectionManager,
    ConnectionPool,
    HTTPClient,
    HTTPConfig,
)

from .harness import Result, compare_rows
from .servers import uvicorn_server

CONFIG = HTTPConfig(max_retries=0)


async def run(quick: bool) -> list[Result]:
    """All rows, one server, one run."""
    async with uvicorn_server() as url:
        results = await _throughput(url, quick)
        results.extend(await _health(url, 200 if quick else 1_000))
    return results


async def _throughput(url: str, quick: bool) -> list[Result]:
    n = 200 if quick else 1_000
    workers = 10
    rounds = 2 if quick else 5

    async def fan_out(one: Callable[[], Awaitable[None]], n: int) -> int:
        async def worker(count: int) -> None:
            for _ in range(count):
                await one()

        await asyncio.gather(*(worker(n // workers) for _ in range(workers)))
        return n // workers * workers

    async with ConnectionPool(
        protocol="http", max_connections=workers, connection_timeout=30, config=CONFIG
    ) as pool:

        async def pooled_one() -> None:
            async with pool.get_connection(url) as conn:
                (await conn.get("/")).json()

        async def unpooled_one() -> None:
            async with HTTPClient(url, config=CONFIG) as client:
                (await client.get("/")).json()

        async def pooled(count: int) -> int:
            return await fan_out(pooled_one, count)

        async def unpooled(count: int) -> int:
            return await fan_out(unpooled_one, count)

        async with httpx.AsyncClient(
            base_url=url, limits=httpx.Limits(max_connections=workers)
        ) as shared:

            async def shared_one() -> None:
                (await shared.get("/")).json()

            async def one_client(count: int) -> int:
                return await fan_out(shared_one, count)

            # One pooled baseline timed once a round against both alternatives.
            return await compare_rows(
                [
                    (
                        f"{n} GETs, {workers} workers: pooled (ours) vs unpooled (raw)",
                        pooled,
                        unpooled,
                    ),
                    (
                        f"{n} GETs, {workers} workers: pooled (ours) vs one shared httpx "
                        "client (raw)",
                        pooled,
                        one_client,
                    ),
                ],
                total=n,
                rounds=rounds,
                memory_share=0.2,
            )


async def _health(url: str, count: int) -> list[Result]:
    ours = ConnectionManager(health_timeout=10)
    for i in range(count):
        ours.register(f"c{i}", HTTPClient(url, config=CONFIG))
    bare = [HTTPClient(url, config=CONFIG) for _ in range(count)]

    async def via_manager() -> float:
        start = time.perf_counter()
        verdicts = await ours.health_check()
        elapsed = time.perf_counter() - start
        if not all(v.is_healthy for v in verdicts.values()):
            raise RuntimeError("a health check failed in the benchmark")
        return elapsed * 1000

    async def via_gather() -> float:
        start = time.perf_counter()
        verdicts = await asyncio.gather(*(c.health_check(timeout=10) for c in bare))
        elapsed = time.perf_counter() - start
        if not all(v.is_healthy for v in verdicts):
            raise RuntimeError("a health check failed in the benchmark")
        return elapsed * 1000

    async with ours:
        for client in bare:
            await client.connect()
        try:
            cold_raw = await via_gather()
            cold_ours = await via_manager()
            warm_ours: list[float] = []
            warm_raw: list[float] = []
            for _ in range(3):
                warm_ours.append(await via_manager())
                warm_raw.append(await via_gather())
        finally:
            await asyncio.gather(*(c.close() for c in bare))
    return [
        Result(
            f"health_check, {count} clients, cold (lower is better)",
            cold_ours,
            cold_raw,
            0,
            0,
            "ms",
        ),
        Result(
            f"health_check, {count} clients, warm (lower is better)",
            statistics.median(warm_ours),
            statistics.median(warm_raw),
            0,
            0,
            "ms",
        ),
    ]


if __name__ == "__main__":
    import sys

    from .harness import format_table

    print(format_table("pool", asyncio.run(run("--quick" in sys.argv))))
