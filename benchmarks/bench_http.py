"""HTTP: HTTPClient vs httpx.AsyncClient, same server, same run."""

from __future__ import annotations

import asyncio

import httpx

from agenticaiframework.communication import HTTPClient

from .harness import Result, compare
from .servers import uvicorn_server


async def run(quick: bool) -> list[Result]:
    """Sequential and concurrent GETs through both clients."""
    n = 300 if quick else 5_000
    inflight = 100
    async with uvicorn_server() as url:
        ours = HTTPClient(url, pool_maxsize=inflight, pool_connections=inflight)
        raw = httpx.AsyncClient(
            base_url=url,
            limits=httpx.Limits(max_connections=inflight, max_keepalive_connections=inflight),
        )
        async with ours, raw:

            async def ours_seq() -> int:
                for _ in range(n):
                    (await ours.get("/")).json()
                return n

            async def raw_seq() -> int:
                for _ in range(n):
                    (await raw.get("/")).json()
                return n

            async def ours_conc() -> int:
                sem = asyncio.Semaphore(inflight)

                async def one() -> None:
                    async with sem:
                        (await ours.get("/")).json()

                await asyncio.gather(*(one() for _ in range(n)))
                return n

            async def raw_conc() -> int:
                sem = asyncio.Semaphore(inflight)

                async def one() -> None:
                    async with sem:
                        (await raw.get("/")).json()

                await asyncio.gather(*(one() for _ in range(n)))
                return n

            rounds = 1 if quick else 3
            return [
                await compare(
                    f"{n} sequential GETs", ours_seq, raw_seq, rounds=rounds, warmup=True
                ),
                await compare(
                    f"{n} GETs, {inflight} in flight",
                    ours_conc,
                    raw_conc,
                    rounds=rounds,
                    warmup=True,
                ),
            ]
