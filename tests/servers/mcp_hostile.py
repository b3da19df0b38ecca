"""A Streamable HTTP MCP server of our own that misbehaves on request, for the tests.

``make_app(state)`` returns a starlette app answering ``POST/GET/DELETE /mcp``.
``initialize`` is answered correctly (with ``state.version``,
``state.capabilities`` and a session id unless ``state.stateless``); every other request is answered by
``state.behaviour[method]``, one of:

* ``"json"``: a normal JSON body with ``state.results[method]`` (for
  ``tools/list`` a page by cursor from ``state.pages``);
* ``"garbage-sse"``: an SSE stream with a line that is not JSON, a
  notification, then the response;
* ``"oversized-sse"``: one SSE event of ``state.big`` bytes;
* ``"oversized-json"``: a JSON body of ``state.big`` bytes;
* ``"endless-sse"``: keep-alive comments and notifications, never the response;
* ``"cut-then-forget"``: an SSE stream with an event id that ends, the
  server forgetting every session (the resuming GET gets 404);
* ``"cut-no-id"``: an SSE stream that ends without an event id or response;
* ``"wrong-type"``: 200 with ``text/plain``;
* ``"insufficient-scope"``: 403 with a Bearer ``insufficient_scope`` challenge;
* ``"json-error-no-id"`` / ``"json-other-id"``: a JSON body that answers
  no request of ours (an error with id null, a reply to another id);
* GET ``/mcp`` streams the next of ``state.get_events`` and ends (405 when
  none is left);
* ``/old`` is an HTTP+SSE (2024-11-05) endpoint: POST gets 405, GET streams
  ``state.legacy_events`` then stalls;
* ``"server-request"``: an SSE stream sending ``state.server_request`` (id
  ``"srv-1"``), then, once the client has POSTed its answer, the response
  with ``{"answer": <that answer>}``.

Sessions: ``initialize`` opens a new one (``hostile-session-N``); a request
whose ``MCP-Session-Id`` is not in ``state.sessions`` gets 404 (clear it to
make the server "forget"; ``state.forget_always`` forgets each new session at
once).

``state.seen`` records (HTTP method, JSON-RPC method or None, headers) of
every request; ``state.sent_bytes`` counts what the endless stream wrote.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["HostileState", "make_app"]


@dataclasses.dataclass
class HostileState:
    """What the app does and what it saw."""

    version: str = "2025-11-25"
    stateless: bool = False
    capabilities: dict[str, Any] = dataclasses.field(default_factory=lambda: {"tools": {}})
    behaviour: dict[str, str] = dataclasses.field(default_factory=dict)
    results: dict[str, Any] = dataclasses.field(default_factory=dict)
    pages: dict[str | None, tuple[list[dict[str, Any]], str | None]] = dataclasses.field(
        default_factory=dict
    )
    big: int = 2 * 1024 * 1024
    seen: list[tuple[str, str | None, dict[str, str]]] = dataclasses.field(default_factory=list)
    sent_bytes: int = 0
    sessions: set[str] = dataclasses.field(default_factory=set)
    initialized: int = 0
    forget_always: bool = False
    params: list[tuple[str, Any]] = dataclasses.field(default_factory=list)
    server_request: dict[str, Any] = dataclasses.field(default_factory=dict)
    answers: dict[Any, Any] = dataclasses.field(default_factory=dict)
    legacy_events: bytes = b""
    get_events: list[bytes] = dataclasses.field(default_factory=list)


def _sse(payload: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


def make_app(state: HostileState) -> Starlette:
    """The app (see the module docstring)."""

    async def mcp(request: Request) -> Response:
        headers = dict(request.headers)
        if request.method != "POST":
            state.seen.append((request.method, None, headers))
            known = headers.get("mcp-session-id") in state.sessions
            if request.method == "GET" and not known and "last-event-id" in headers:
                return Response("unknown session", status_code=404)
            if request.method == "GET" and state.get_events:
                # One batch of events per GET, then the stream ends (the client reconnects).
                batch = state.get_events.pop(0)
                return Response(batch, media_type="text/event-stream")
            return Response(status_code=405 if request.method == "GET" else 200)
        message = json.loads(await request.body())
        method = message.get("method")
        state.seen.append(("POST", method, headers))
        state.params.append((method, message.get("params")))
        if method is None and "id" in message:  # the client's answer to our request
            state.answers[message["id"]] = message
            return Response(status_code=202)
        known = headers.get("mcp-session-id") in state.sessions
        if method != "initialize" and not state.stateless and not known:
            return Response("unknown session", status_code=404)
        if "id" not in message:
            return Response(status_code=202)
        rid = message["id"]
        if method == "initialize":
            result = {
                "protocolVersion": state.version,
                "capabilities": state.capabilities,
                "serverInfo": {"name": "hostile", "version": "1"},
            }
            state.initialized += 1
            session = f"hostile-session-{state.initialized}"
            if not state.forget_always:
                state.sessions.add(session)
            extra = {} if state.stateless else {"mcp-session-id": session}
            return JSONResponse({"jsonrpc": "2.0", "id": rid, "result": result}, headers=extra)
        behaviour = state.behaviour.get(method, "json")
        reply = {"jsonrpc": "2.0", "id": rid, "result": state.results.get(method, {})}
        if method == "tools/list" and state.pages:
            cursor = (message.get("params") or {}).get("cursor")
            tools, next_cursor = state.pages[cursor]
            page: dict[str, Any] = {"tools": tools}
            if next_cursor is not None:
                page["nextCursor"] = next_cursor
            reply["result"] = page
        if behaviour == "json":
            return JSONResponse(reply)
        if behaviour == "oversized-json":
            body = json.dumps({**reply, "result": {"pad": "x" * state.big}})
            return Response(body, media_type="application/json")
        if behaviour == "insufficient-scope":
            challenge = 'Bearer error="insufficient_scope", scope="files:write admin"'
            return Response(status_code=403, headers={"www-authenticate": challenge})
        if behaviour == "json-error-no-id":
            error = {"code": -32600, "message": "bad request"}
            return JSONResponse({"jsonrpc": "2.0", "id": None, "error": error})
        if behaviour == "json-other-id":
            return JSONResponse({"jsonrpc": "2.0", "id": 12345, "result": {}})
        if behaviour == "wrong-type":
            return Response("hello", media_type="text/plain")

        async def stream() -> AsyncIterator[bytes]:
            if behaviour == "garbage-sse":
                yield b"data: {this is not json\n\n"
                yield _sse(
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/message",
                        "params": {"level": "info", "data": "still here"},
                    }
                )
                yield _sse(reply)
            elif behaviour == "oversized-sse":
                yield b"data: " + b"x" * state.big + b"\n\n"
                yield _sse(reply)
            elif behaviour == "endless-sse":
                chunk = _sse(
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/message",
                        "params": {"level": "debug", "data": "x" * 1000},
                    }
                )
                while True:
                    state.sent_bytes += len(chunk)
                    yield chunk
                    await asyncio.sleep(0.001)
            elif behaviour == "server-request":
                yield _sse({"jsonrpc": "2.0", "id": "srv-1", **state.server_request})
                for _ in range(1000):
                    if "srv-1" in state.answers:
                        break
                    await asyncio.sleep(0.01)
                answer = state.answers.pop("srv-1", None)
                yield _sse({"jsonrpc": "2.0", "id": rid, "result": {"answer": answer}})
            elif behaviour == "cut-then-forget":
                yield b"retry: 50\nid: c1\ndata: \n\n"
                state.sessions.clear()
            elif behaviour == "cut-no-id":
                yield _sse(
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/message",
                        "params": {"level": "info", "data": "then nothing"},
                    }
                )

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def old(request: Request) -> Response:
        """An HTTP+SSE (2024-11-05) server: POST refused, GET streams ``legacy_events``."""
        state.seen.append((request.method, None, dict(request.headers)))
        if request.method == "POST":
            return Response(status_code=405)

        async def stream() -> AsyncIterator[bytes]:
            yield state.legacy_events
            await asyncio.sleep(30)

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]),
            Route("/old", old, methods=["GET", "POST"]),
        ]
    )
