"""HTTP servers for tests: any ASGI app under uvicorn, and a ready echo + SSE app.

* :func:`serve_asgi` — serve an ASGI app in the calling event loop on
  127.0.0.1 and a free port; the block's end stops it (no task or socket left).
* :func:`echo_app` — a dependency-free ASGI app: ``GET /events`` is a
  Server-Sent Events stream of numbered events that resumes after the
  ``Last-Event-ID`` a reconnecting client sends (and, with ``cut_after``,
  drops the first connection part-way, so a client must resume); every other
  request is answered ``200`` with a JSON echo of what was sent.
* :func:`serve_echo_app` — both together.

uvicorn is needed (``pip install 'agenticaiframework-communication[testing]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

__all__ = ["EchoAppState", "EchoServer", "EventStream", "echo_app", "serve_asgi", "serve_echo_app"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass
class EchoAppState:
    """What the echo app saw.

    Attributes:
        requests: Each echoed request, as it was echoed (method, path, query,
            headers, body).
        last_event_ids: The ``Last-Event-ID`` of each ``/events`` connection
            (None for a first connection).
    """

    requests: list[dict[str, Any]] = field(default_factory=list)
    last_event_ids: list[str | None] = field(default_factory=list)


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return {k: v[-1] for k, v in parse_qs(raw).items()}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class EventStream:
    """An ASGI endpoint sending numbered Server-Sent Events, resumable by ``Last-Event-ID``.

    Each event is ``id: n``, ``event: <event>``, ``data: {"<field>": n}`` for
    n = 1 .. ``count``, starting after the ``Last-Event-ID`` the client sends;
    a ``retry:`` line comes first and an ``event: done`` (data ``{}``) last.
    A first connection (no ``Last-Event-ID``) ends after ``cut_after`` events
    when that is set, as a server that drops the stream does. The query
    parameters ``count``, ``cut_after`` and ``delay`` (seconds between
    events) override the defaults per request.

    Args:
        state: Records each connection's ``Last-Event-ID``.
        count: Events in the whole stream.
        cut_after: Drop a first connection after this many events (None: never).
        event: The event type of the numbered events.
        field: The JSON field holding the number.
        retry_ms: The ``retry:`` sent first, so a client reconnects quickly.
    """

    def __init__(
        self,
        state: EchoAppState,
        *,
        count: int = 5,
        cut_after: int | None = None,
        event: str = "message",
        field: str = "n",
        retry_ms: int = 100,
    ) -> None:
        self.state = state
        self.count = count
        self.cut_after = cut_after
        self.event = event
        self.field = field
        self.retry_ms = retry_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ``/events`` request."""
        query = _query(scope)
        last = _header(scope, b"last-event-id")
        self.state.last_event_ids.append(last)
        count = int(query.get("count", self.count))
        cut = query.get("cut_after")
        cut_after = int(cut) if cut is not None else self.cut_after
        delay = float(query.get("delay", 0))
        first = int(last) + 1 if last and last.isdigit() else 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-store"),
                ],
            }
        )

        async def chunk(text: str) -> None:
            await send({"type": "http.response.body", "body": text.encode(), "more_body": True})

        await chunk(f"retry: {self.retry_ms}\n\n")
        for n in range(first, count + 1):
            if delay:
                await asyncio.sleep(delay)
            data = json.dumps({self.field: n})
            await chunk(f"id: {n}\nevent: {self.event}\ndata: {data}\n\n")
            if last is None and cut_after is not None and n == cut_after:
                await send({"type": "http.response.body", "body": b""})
                return  # the server drops the stream; the client resumes
        await send({"type": "http.response.body", "body": b"event: done\ndata: {}\n\n"})


def echo_app(
    *, count: int = 5, cut_after: int | None = None
) -> tuple[Callable[[Scope, Receive, Send], Awaitable[None]], EchoAppState]:
    """The echo + SSE app (see the module docstring).

    Args:
        count: Events in the ``/events`` stream.
        cut_after: Drop a first ``/events`` connection after this many events.

    Returns:
        ``(app, state)``: the ASGI app and what it sees.
    """
    state = EchoAppState()
    events = EventStream(state, count=count, cut_after=cut_after)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websocket scopes: nothing to serve
        if scope["path"] == "/events":
            await events(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        echoed = {
            "method": scope["method"],
            "path": scope["path"],
            "query": _query(scope),
            "headers": {
                bytes(k).decode("latin-1"): bytes(v).decode("latin-1") for k, v in scope["headers"]
            },
            "body": body.decode("utf-8", errors="replace"),
        }
        state.requests.append(echoed)
        payload = json.dumps(echoed).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app, state


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, **config: Any) -> AsyncIterator[str]:
    """Serve an ASGI app under uvicorn in this event loop on 127.0.0.1, port 0.

    Args:
        app: The ASGI application.
        **config: Extra ``uvicorn.Config`` arguments (``ssl_certfile``...).

    Yields:
        The base URL, ``http://127.0.0.1:<port>`` (https when TLS is configured).

    Raises:
        RuntimeError: The server did not start.
    """
    import uvicorn

    from ._process import stop_accepting

    server = uvicorn.Server(
        uvicorn.Config(
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
    )
    # Ctrl-C should reach the caller (which then stops every server), not uvicorn.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(), name="uvicorn")
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("the HTTP server did not start")
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if config.get("ssl_certfile") else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        if server.started:
            await stop_accepting([sock for srv in server.servers for sock in srv.sockets])
        server.should_exit = True
        server.force_exit = True
        await task


@dataclass(frozen=True)
class EchoServer:
    """A running echo app: its base URL and what it saw."""

    url: str
    state: EchoAppState


@contextlib.asynccontextmanager
async def serve_echo_app(
    *, count: int = 5, cut_after: int | None = None
) -> AsyncIterator[EchoServer]:
    """Serve :func:`echo_app` on 127.0.0.1 and a free port.

    Args:
        count: Events in the ``/events`` stream.
        cut_after: Drop a first ``/events`` connection after this many events.

    Yields:
        The running server (``.url``, ``.state``).
    """
    app, state = echo_app(count=count, cut_after=cut_after)
    async with serve_asgi(app) as url:
        yield EchoServer(url, state)
