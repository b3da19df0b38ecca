"""SSE: SSEClient vs raw httpx-sse ``aconnect_sse``, same stream, same run.

The server (this module's ``app``, under uvicorn in a child process) sends
numbered events pre-encoded, ``batch`` events per write, then ``event: done``.
Both sides read until ``done`` (ours through ``terminal_event="done"``, raw by
breaking out of the loop), and both decode each event's JSON data.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import httpx
from httpx_sse import aconnect_sse

from agenticaiframework.communication import SSEClient

from .harness import Result, Side, compare
from .servers import child_server, free_port

_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Stream ``count`` events, ``batch`` per write, then a ``done`` event."""
    if scope["type"] != "http":
        return
    query = parse_qs(scope.get("query_string", b"").decode())
    count = int(query.get("count", ["1000"])[0])
    batch = int(query.get("batch", ["500"])[0])
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    for first in range(1, count + 1, batch):
        body = "".join(
            f'id: {n}\ndata: {{"n": {n}, "text": "token number {n}"}}\n\n'
            for n in range(first, min(first + batch, count + 1))
        ).encode()
        await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": b"event: done\ndata: {}\n\n"})


def _ours(base: str, batch: int) -> Side:
    async def side(count: int) -> int:
        got = 0
        url = f"{base}/events?count={count}&batch={batch}"
        async with SSEClient(url, terminal_event="done") as sse:
            async for event in sse:
                event.json()
                got += 1
        return got

    return side


def _raw(client: httpx.AsyncClient, base: str, batch: int) -> Side:
    async def side(count: int) -> int:
        got = 0
        url = f"{base}/events?count={count}&batch={batch}"
        async with aconnect_sse(client, "GET", url) as source:
            async for event in source.aiter_sse():
                event.json()
                got += 1
                if event.event == "done":
                    break
        return got

    return side


async def run(quick: bool) -> list[Result]:
    """Events per second through both clients, in large writes and one event per write."""
    n = 5_000 if quick else 100_000
    port = free_port()
    args = [
        "-m", "uvicorn", "benchmarks.bench_sse:app", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log", "--lifespan", "off", "--ws", "none",
    ]  # fmt: skip
    results: list[Result] = []
    # The raw side reuses one httpx client (creating one costs milliseconds:
    # its TLS context); ours opens an SSEClient per stream, as the guide does.
    async with child_server(args, port), httpx.AsyncClient() as raw_client:
        base = f"http://127.0.0.1:{port}"
        for batch, label in ((500, "500 events per write"), (1, "1 event per write")):
            count = n if batch > 1 else n // 5
            # One stream per round.
            results.append(
                await compare(
                    f"{count} events, {label}",
                    _ours(base, batch),
                    _raw(raw_client, base, batch),
                    total=count,
                    rounds=2 if quick else 5,
                    unit="events/s",
                )
            )
    return results
