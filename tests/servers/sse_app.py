"""A starlette + sse-starlette app that serves every kind of event stream the tests need.

Routes (all GET unless said otherwise):

* ``/events?count=&delay=&retry=&close_after=`` — numbered events ``id: n``,
  ``data: {"n": n}`` for n = 1..count, resuming after ``Last-Event-ID``; 204
  once nothing is left. ``close_after`` ends each response after that many
  events (the client then resumes); ``retry`` sends a ``retry:`` first.
* ``POST /completions`` — ``token`` events (one word each), then ``done``.
* ``/typed`` — a ``message``, an ``error`` and a ``done`` event, then silence.
* ``/spec`` — hand-written bytes: BOM, CRLF/CR/LF, comments, multi-line data,
  an event without data, unknown fields, split across writes.
* ``/fast?count=`` — pre-encoded numbered events in large writes (resumable).
* ``/forever`` — one event every 10 ms until the client leaves.
* ``/headers`` — one event whose data is the request's headers and query.
* ``/nocontent`` (204), ``/wrongtype`` (HTML 200), ``/status/{code}``,
  ``/flaky?fail=n`` (503 n times, then ``/events``).

Hostile streams (each holds the connection open at the end, until the client leaves):

* ``/empty_data_lines?bytes=`` — one event, then ``data:`` lines with nothing
  after the colon, ``bytes`` of them; the blank line that would end the event
  never comes.
* ``/unterminated_line?lines=&line=`` — one event, then ``lines`` bytes of
  ordinary ``data:`` lines, then a ``data:`` line of ``line`` bytes whose
  newline never comes.
* ``/bad_id?id=`` — ``id: 1``, then an event with the given id, then the
  response ends; any later connection gets ``id: 3`` and ``done``.
* ``/bad_retry?value=&then=done|close`` — an event, then ``retry: value`` and a
  second event in the same write, then ``done`` (or the response ends).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["COMPLETION_TOKENS", "SPEC_CHUNKS", "AppState", "make_app"]

COMPLETION_TOKENS = ["Once ", "upon ", "a ", "time, ", "an ", "agent ", "streamed."]

# Written one piece at a time: line ends of every kind, split in awkward places.
SPEC_CHUNKS: list[bytes] = [
    b"\xef\xbb\xbf: a comment right after the BOM\n",
    b"retry: 1500\n",
    b"data: first line\r\ndata: second line\r\n\r\n",
    b"event: custom\rid: 7\rdata:no space\r\r",
    b": keep-alive\n\n",
    b"event: lonely\nid: 8\n\n",  # no data line: not dispatched, but the id sticks
    b"data\n\n",  # a field name alone: data is ""
    b"data:  two spaces\nunknown: ignored\nid: bad\x00id\n\n",
    b"data: caf\xc3",  # a UTF-8 character split across writes
    b"\xa9\r",
    b"\n\nevent: done\ndata: bye\n\n",
]


@dataclass
class AppState:
    """What the app saw, for assertions."""

    hits: Counter[str] = field(default_factory=Counter)
    last_event_ids: list[str | None] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    connect_times: list[float] = field(default_factory=list)
    open_streams: int = 0
    fast_writes: int = 0


def make_app() -> tuple[Starlette, AppState]:
    """Build the app and the state it records into.

    Returns:
        The ASGI app and its state.
    """
    state = AppState()

    def seen(request: Request, name: str) -> int:
        state.hits[name] += 1
        state.connect_times.append(time.monotonic())
        last = request.headers.get("last-event-id")
        state.last_event_ids.append(last)
        return int(last) + 1 if last and last.isdigit() else 1

    async def tracked(events: AsyncIterator[Any]) -> AsyncIterator[Any]:
        state.open_streams += 1
        try:
            async for item in events:
                yield item
        finally:
            state.open_streams -= 1

    async def events(request: Request) -> Response:
        start = seen(request, "events")
        count = int(request.query_params.get("count", "5"))
        delay = float(request.query_params.get("delay", "0"))
        retry = request.query_params.get("retry")
        close_after = int(request.query_params.get("close_after", "0"))
        if start > count:
            return Response(status_code=204)

        async def gen() -> AsyncIterator[ServerSentEvent]:
            if retry is not None:
                yield ServerSentEvent(comment="hello", retry=int(retry))
            for sent, n in enumerate(range(start, count + 1), 1):
                yield ServerSentEvent(data=json.dumps({"n": n}), id=str(n))
                if close_after and sent >= close_after:
                    return
                if delay:
                    await asyncio.sleep(delay)

        return EventSourceResponse(tracked(gen()))

    async def flaky(request: Request) -> Response:
        state.hits["flaky"] += 1
        fail = int(request.query_params.get("fail", "1"))
        if state.hits["flaky"] <= fail:
            return PlainTextResponse("try later", status_code=503, headers={"Retry-After": "0"})
        return await events(request)

    async def completions(request: Request) -> Response:
        seen(request, "completions")
        body = await request.json()
        state.bodies.append(body)

        async def gen() -> AsyncIterator[ServerSentEvent]:
            for token in COMPLETION_TOKENS:
                yield ServerSentEvent(data=token, event="token")
            yield ServerSentEvent(data="[DONE]", event="done")

        return EventSourceResponse(tracked(gen()))

    async def typed(request: Request) -> Response:
        seen(request, "typed")

        async def gen() -> AsyncIterator[ServerSentEvent]:
            yield ServerSentEvent(data="hello agent", event="message")
            yield ServerSentEvent(data="tool failed", event="error")
            yield ServerSentEvent(data="", event="done")
            await asyncio.Event().wait()  # silence until the client leaves

        return EventSourceResponse(tracked(gen()))

    async def spec(request: Request) -> Response:
        seen(request, "spec")

        async def gen() -> AsyncIterator[bytes]:
            for piece in SPEC_CHUNKS:
                yield piece
                await asyncio.sleep(0.002)

        return StreamingResponse(tracked(gen()), media_type="text/event-stream")

    async def fast(request: Request) -> Response:
        start = seen(request, "fast")
        count = int(request.query_params.get("count", "20000"))
        if start > count:
            return Response(status_code=204)

        async def gen() -> AsyncIterator[bytes]:
            batch = 500
            for first in range(start, count + 1, batch):
                last = min(first + batch, count + 1)
                state.fast_writes += 1
                yield "".join(
                    f'id: {n}\ndata: {{"n": {n}, "text": "event number {n}"}}\n\n'
                    for n in range(first, last)
                ).encode()

        return StreamingResponse(
            tracked(gen()), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def forever(request: Request) -> Response:
        seen(request, "forever")

        async def gen() -> AsyncIterator[ServerSentEvent]:
            n = 0
            while True:
                n += 1
                yield ServerSentEvent(data=str(n), id=str(n))
                await asyncio.sleep(0.01)

        return EventSourceResponse(tracked(gen()))

    async def headers(request: Request) -> Response:
        seen(request, "headers")
        payload = {"headers": dict(request.headers), "query": dict(request.query_params)}

        async def gen() -> AsyncIterator[ServerSentEvent]:
            yield ServerSentEvent(data=json.dumps(payload))
            yield ServerSentEvent(data="", event="done")

        return EventSourceResponse(gen())

    async def nocontent(request: Request) -> Response:
        seen(request, "nocontent")
        return Response(status_code=204)

    async def wrongtype(request: Request) -> Response:
        seen(request, "wrongtype")
        return HTMLResponse("<html><body>not an event stream</body></html>")

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        seen(request, f"status/{code}")
        return PlainTextResponse(f"failure {code}: the server says no", status_code=code)

    def hold_open(pieces: AsyncIterator[bytes]) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            async for piece in pieces:
                yield piece
            await asyncio.Event().wait()  # the connection stays open

        return StreamingResponse(tracked(gen()), media_type="text/event-stream")

    async def empty_data_lines(request: Request) -> Response:
        seen(request, "empty_data_lines")
        total = int(request.query_params.get("bytes", str(8 * 1024 * 1024)))

        async def pieces() -> AsyncIterator[bytes]:
            yield b"id: 1\ndata: before\n\n"
            piece = b"data:\n" * 10_000
            for _ in range(0, total, len(piece)):
                yield piece

        return hold_open(pieces())

    async def unterminated_line(request: Request) -> Response:
        seen(request, "unterminated_line")
        lines = int(request.query_params.get("lines", "0"))
        line = int(request.query_params["line"])

        async def pieces() -> AsyncIterator[bytes]:
            yield b"id: 1\ndata: before\n\n"
            data_line = b"data: " + b"x" * 994 + b"\n"  # 1,000 bytes
            for _ in range(0, lines, 64 * len(data_line)):
                yield data_line * 64
            yield b"data: "
            piece = b"y" * 65_536
            for _ in range(0, line, len(piece)):
                yield piece

        return hold_open(pieces())

    async def bad_id(request: Request) -> Response:
        seen(request, "bad_id")
        if state.hits["bad_id"] == 1:
            bad = request.query_params["id"]
            body = f"id: 1\ndata: one\n\nid: {bad}\ndata: two\n\n"
        else:
            body = "id: 3\ndata: three\n\nevent: done\ndata: bye\n\n"
        return Response(body.encode(), media_type="text/event-stream")

    async def bad_retry(request: Request) -> Response:
        seen(request, "bad_retry")
        value = request.query_params["value"]
        body = f"data: first\n\nretry: {value}\ndata: second\n\n"
        if request.query_params.get("then", "done") == "done":
            body += "event: done\ndata: bye\n\n"
        return Response(body.encode(), media_type="text/event-stream")

    routes = [
        Route("/empty_data_lines", empty_data_lines),
        Route("/unterminated_line", unterminated_line),
        Route("/bad_id", bad_id),
        Route("/bad_retry", bad_retry),
        Route("/events", events),
        Route("/flaky", flaky),
        Route("/completions", completions, methods=["POST"]),
        Route("/typed", typed),
        Route("/spec", spec),
        Route("/fast", fast),
        Route("/forever", forever),
        Route("/headers", headers),
        Route("/nocontent", nocontent),
        Route("/wrongtype", wrongtype),
        Route("/status/{code:int}", status),
    ]
    return Starlette(routes=routes), state
