"""A ``websockets`` (asyncio API) server speaking the UTCP WebSocket tool exchange.

``async with WSToolServer() as server``: ``server.url`` is ``ws://127.0.0.1:<port>/tools``.

* ``{"type": "utcp"}`` gets the UTCP manual below (its tools name this server's URL).
* ``{"tool": "echo", ...}`` (the arguments as JSON, no message template) gets
  ``{"echo": <arguments>}``.
* ``GREET <name>`` (a text template) gets ``hello <name>``.
* ``{"op": "hangup"}`` closes the connection (1000) without answering.
* ``{"op": "count", "n": N}`` gets N ``{"type": "tool_response", "result": i}``
  then ``{"type": "stream_end"}``; ``{"op": "explode"}`` gets a ``tool_error``.
* The handshake needs ``X-Api-Key: ws-key`` on ``/tools`` (else HTTP 401);
  ``/redirect?to=<url>`` answers the handshake with a 302 to ``<url>``.

The server records the number of connections and every message received.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, Self
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from agenticaiframework.communication.testing import LoopbackServer

WS_API_KEY = "ws-key"

__all__ = ["WS_API_KEY", "WSToolServer", "ws_manual"]


def ws_manual(url: str) -> dict[str, Any]:
    """The manual this server sends, its templates pointing at ``url``."""
    auth = {"auth_type": "api_key", "api_key": "${WS_KEY}", "var_name": "X-Api-Key"}
    return {
        "manual_version": "0.3.0",
        "utcp_version": "1.0.1",
        "tools": [
            {
                "name": "echo",
                "description": "Echo the arguments back",
                "tags": ["debug"],
                "inputs": {"type": "object", "properties": {"tool": {"type": "string"}}},
                "tool_call_template": {
                    "call_template_type": "websocket",
                    "url": url,
                    "auth": auth,
                    "response_format": "json",
                },
            },
            {
                "name": "greet",
                "description": "Greet someone by name",
                "tags": ["social"],
                "inputs": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                },
                "tool_call_template": {
                    "call_template_type": "websocket",
                    "url": url,
                    "auth": auth,
                    "message": "GREET UTCP_ARG_name_UTCP_ARG",
                    "response_format": "text",
                },
            },
            {
                "name": "count",
                "description": "Stream the numbers below n",
                "tags": ["stream"],
                "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}},
                "tool_call_template": {
                    "call_template_type": "websocket",
                    "url": url,
                    "auth": auth,
                    "message": {"op": "count", "n": "UTCP_ARG_n_UTCP_ARG"},
                },
            },
            {
                "name": "hangup",
                "description": "Close the connection instead of answering",
                "tool_call_template": {
                    "call_template_type": "websocket",
                    "url": url,
                    "auth": auth,
                    "message": {"op": "hangup"},
                },
            },
            {
                "name": "explode",
                "description": "Fail while streaming",
                "tool_call_template": {
                    "call_template_type": "websocket",
                    "url": url,
                    "auth": auth,
                    "message": {"op": "explode"},
                },
            },
        ],
    }


class WSToolServer(LoopbackServer):
    """The server; use as an async context manager."""

    def __init__(self) -> None:
        self._server: Server | None = None
        self.connections = 0
        self.received: list[str] = []
        self.url = ""

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path == "/redirect":
            target = parse_qs(query)["to"][0]
            return Response(HTTPStatus.FOUND, "Found", Headers({"Location": target}), b"")
        if request.headers.get("X-Api-Key") != WS_API_KEY:
            return Response(HTTPStatus.UNAUTHORIZED, "Unauthorized", Headers(), b"bad key\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        async for raw in ws:
            text = raw if isinstance(raw, str) else raw.decode()
            self.received.append(text)
            if text.startswith("GREET "):
                await ws.send("hello " + text[6:])
                continue
            msg = json.loads(text)
            if msg.get("type") == "utcp":
                await ws.send(json.dumps({"type": "noise"}))  # skipped by discovery
                await ws.send(json.dumps(ws_manual(self.url)))
            elif msg.get("op") == "count":
                for i in range(int(msg["n"])):
                    await ws.send(json.dumps({"type": "tool_response", "result": i}))
                await ws.send(json.dumps({"type": "stream_end"}))
            elif msg.get("op") == "hangup":
                await ws.close(1000, "bye")
                return
            elif msg.get("op") == "explode":
                await ws.send(json.dumps({"type": "tool_response", "result": "first"}))
                await ws.send(json.dumps({"type": "tool_error", "error": "kaboom", "code": 7}))
            else:
                await ws.send(json.dumps({"echo": msg}))

    async def start(self) -> Self:
        """Listen on 127.0.0.1 on a free port."""
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._check, compression=None
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/tools"
        return self

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
