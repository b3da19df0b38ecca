"""HTTP: HTTPClient on each wire engine vs raw httpx, httpx + aiohttp transport and raw aiohttp.

Same server, same run, over plain HTTP and over TLS (a trustme certificate,
the same CA trusted by every client). The server is
:mod:`benchmarks.canned_http_server`, a child process on its own CPU that
answers with a canned response: behind uvicorn the server's own time per
request exceeded the fastest client's and hid the differences being measured.
Our client runs on its two engines:
httpx's own transport (``transport="httpx"``) and aiohttp under httpx
(``transport="aiohttp"``). The baselines: raw ``httpx.AsyncClient``, raw
httpx with httpx-aiohttp's ``AiohttpTransport``, and raw
``aiohttp.ClientSession`` (the ceiling: no httpx at all).
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import trustme
from httpx_aiohttp import AiohttpTransport

from agenticaiframework.communication import HTTPClient
from agenticaiframework.communication.http.aiohttp_engine import AiohttpEngine
from agenticaiframework.communication.http.engine import _default_ssl_context

from .harness import Result, Side, compare_rows
from .servers import canned_http_server

Get = Callable[[], Awaitable[Any]]


def _sequential(get: Get) -> Side:
    async def side(count: int) -> int:
        for _ in range(count):
            await get()
        return count

    return side


def _concurrent(get: Get, inflight: int) -> Side:
    async def side(count: int) -> int:
        sem = asyncio.Semaphore(inflight)

        async def one() -> None:
            async with sem:
                await get()

        await asyncio.gather(*(one() for _ in range(count)))
        return count

    return side


async def run(quick: bool) -> list[Result]:
    """Sequential and concurrent GETs through every client, over plain HTTP and over TLS."""
    n = 300 if quick else 5_000
    with tempfile.TemporaryDirectory() as folder:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        key_file, cert_file = f"{folder}/key.pem", f"{folder}/cert.pem"
        cert.private_key_pem.write_to_path(key_file)
        cert.cert_chain_pems[0].write_to_path(cert_file)
        tls = ssl.create_default_context()
        ca.configure_trust(tls)
        results: list[Result] = []
        async with canned_http_server() as url:
            results += await _rows(url, _default_ssl_context(False), "", n, quick)
        async with canned_http_server(tls=(key_file, cert_file)) as url:
            results += await _rows(url, tls, "TLS, ", n, quick)
        return results


async def _rows(
    url: str, ssl_context: ssl.SSLContext, prefix: str, n: int, quick: bool
) -> list[Result]:
    inflight = 100
    # Idle connections must outlive the other sides' rounds (about 10 s at 100
    # in flight): with a 5 s keep-alive expiry, every timed run after a switch
    # of sides reopened 100 connections and took twice as long, so the ratio
    # said who went second. Every side gets the same pool, ours through the
    # transport seam.
    expiry = 600.0
    limits = httpx.Limits(
        max_connections=inflight, max_keepalive_connections=inflight, keepalive_expiry=expiry
    )
    ours_httpx = HTTPClient(
        url, transport=httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits)
    )
    ours_aiohttp = HTTPClient(
        url,
        transport=AiohttpEngine(ssl_context, max_connections=inflight, keepalive_expiry=expiry),
    )
    raw_httpx = httpx.AsyncClient(base_url=url, limits=limits, verify=ssl_context)
    httpx_aiohttp = httpx.AsyncClient(
        base_url=url,
        transport=AiohttpTransport(verify=ssl_context, limits=limits, trust_env=False),
    )
    raw_aiohttp = aiohttp.ClientSession(
        url,
        connector=aiohttp.TCPConnector(limit=inflight, keepalive_timeout=expiry, ssl=ssl_context),
    )
    async with ours_httpx, ours_aiohttp, raw_httpx, httpx_aiohttp, raw_aiohttp:

        async def aiohttp_get() -> Any:
            async with raw_aiohttp.get("/") as response:
                return await response.json()

        async def ours_httpx_get() -> Any:
            return (await ours_httpx.get("/")).json()

        async def ours_aiohttp_get() -> Any:
            return (await ours_aiohttp.get("/")).json()

        async def raw_httpx_get() -> Any:
            return (await raw_httpx.get("/")).json()

        async def httpx_aiohttp_get() -> Any:
            return (await httpx_aiohttp.get("/")).json()

        gets = {
            "ours (httpx engine)": ours_httpx_get,
            "ours (aiohttp engine)": ours_aiohttp_get,
            "raw httpx": raw_httpx_get,
            "httpx + aiohttp transport": httpx_aiohttp_get,
            "raw aiohttp": aiohttp_get,
        }
        pairs = [
            ("ours (httpx engine)", "raw httpx"),
            ("ours (aiohttp engine)", "raw httpx"),
            ("ours (aiohttp engine)", "httpx + aiohttp transport"),
            ("ours (aiohttp engine)", "raw aiohttp"),
        ]
        results: list[Result] = []
        for label, make in (
            (f"{prefix}{n} sequential GETs", _sequential),
            (
                f"{prefix}{n} GETs, {inflight} in flight",
                lambda get: _concurrent(get, inflight),
            ),
        ):
            sides = {name: make(get) for name, get in gets.items()}
            results += await compare_rows(
                [(f"{label}: {a} vs {b}", sides[a], sides[b]) for a, b in pairs],
                total=n,
                rounds=2 if quick else 10,
            )
        return results
