"""HTTP: HTTPClient vs httpx.AsyncClient, same server, same run."""

from __future__ import annotations

import asyncio

import httpx

from agenticaiframework.communication import HTTPClient

from .harness import Result, Side, compare
from .servers import uvicorn_server


async def run(quick: bool) -> list[Result]:
    """Sequential and concurrent GETs through both clients."""
    n = 300 if quick else 5_000
    inflight = 100
    async with uvicorn_server() as url:
        # Idle connections must outlive the other side's run (about 10 s at 100
        # in flight): with httpx's default 5 s keep-alive expiry, every timed
        # run after a switch of sides reopened 100 connections and took twice
        # as long, so the ratio said who went second. Both sides get the same
        # pool, through our client's transport seam.
        limits = httpx.Limits(
            max_connections=inflight, max_keepalive_connections=inflight, keepalive_expiry=600
        )
        ours = HTTPClient(url, transport=httpx.AsyncHTTPTransport(limits=limits))
        raw = httpx.AsyncClient(base_url=url, limits=limits)
        async with ours, raw:

            def seq(client: HTTPClient | httpx.AsyncClient) -> Side:
                async def side(count: int) -> int:
                    for _ in range(count):
                        (await client.get("/")).json()
                    return count

                return side

            def conc(client: HTTPClient | httpx.AsyncClient) -> Side:
                async def side(count: int) -> int:
                    sem = asyncio.Semaphore(inflight)

                    async def one() -> None:
                        async with sem:
                            (await client.get("/")).json()

                    await asyncio.gather(*(one() for _ in range(count)))
                    return count

                return side

            rounds = 2 if quick else 20
            return [
                await compare(f"{n} sequential GETs", seq(ours), seq(raw), total=n, rounds=rounds),
                await compare(
                    f"{n} GETs, {inflight} in flight",
                    conc(ours),
                    conc(raw),
                    total=n,
                    # Rounds of 1,000: each round fills the 100 slots and drains them.
                    rounds=2 if quick else 5,
                ),
            ]
