"""A real ``websockets`` (asyncio API) server on 127.0.0.1, port 0, for the tests.

``async with WSServer() as server`` listens on ``server.port``; ``server.url(path)``
gives ``ws://127.0.0.1:<port><path>``. Endpoints, chosen by path:

* ``/echo``   every frame sent back as is (text as text, binary as binary).
* ``/ws``     the guide's server: ``{"type": "subscribe", "channel": c}`` gets
  three ``{"type": "update"}`` messages then ``{"type": "done"}``;
  ``{"type": "chat"}`` gets ``{"type": "token", "content": ...}`` tokens then
  ``{"type": "done"}``; ``{"type": "hello"}`` gets ``{"type": "welcome"}``;
  ``{"type": "ping"}`` gets ``{"type": "pong"}``; anything else is echoed.
* ``/rpc``    ``{"id": x, ...}`` answered with ``{"id": x, "result": ...}`` after a
  small random delay (so replies come out of order), plus an id-less
  ``{"type": "notice"}`` after every tenth request.
* ``/record`` every received message is appended to ``server.received``; nothing
  is sent back except ``{"type": "ack", "n": count}`` when asked with ``"sync"``.
* ``/stream?n=N`` sends N numbered messages then ``{"type": "done"}``.
* ``/mixed?n=N`` sends N numbered messages, every third one fragmented into
  three frames and every fifth binary, then ``{"type": "done"}``.
* ``/close?code=C&reason=R`` sends ``{"type": "bye"}`` then closes with C/R.
* ``/big?size=N`` sends one text message of N bytes, then echoes.
* ``/raw``    sends the non-JSON texts ``hello world`` and ``{not json`` and a
  binary frame, then echoes.
* ``/auth``   ARCP-style first-message auth: ``auth_required``, then
  ``{"token": "good"}`` gets ``auth_success`` (then echo), anything else gets
  ``auth_error`` and a 1008 close; the auth message is kept in ``server.received``.
* ``/textping`` sends the text ``ping`` and reports ``{"type": "got", "data": ...}``
  for the next message it receives.
* ``/headers`` sends the handshake request headers as a JSON object.
* ``/secret/...`` needs ``Authorization: Bearer good`` (else HTTP 401), then echoes.
* ``/status/<code>`` answers the handshake with that HTTP status.
* ``/redirect?to=URL`` answers the handshake with ``302`` and ``Location: URL``
  (``&status=307`` for another code); ``server.redirects`` counts them.
* ``/loop``   answers the handshake with ``302`` to itself, forever.
* ``/deep`` sends JSON nested 100,000 deep (``[[[...]]]``), then
  ``{"type": "after"}``, then echoes.
* ``/flood?n=N`` first-message auth with a hostile twist: sends N messages
  (endless without ``n``; with ``&deep=1`` the first is JSON nested 100,000
  deep) before reading the auth message, then ``auth_success``, then echoes.
* ``/late`` ``{"id": x, "delay": s}`` is answered with ``{"id": x, "result": "late"}``
  after ``s`` seconds, followed at once by ``{"type": "after", "id_answered": x}``.
* ``/trickle?n=N`` sends N numbered messages a few milliseconds apart, then
  ``{"type": "done"}``, then echoes.

``server.handshakes`` counts opened connections, ``server.open_connections`` the
live ones. The subprotocol ``chat.v1`` is accepted when offered.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from agenticaiframework.communication.testing import LoopbackServer

__all__ = ["WSServer"]

_CHAT_REPLY = ["I ", "can ", "help ", "with ", "that."]


def _select_subprotocol(
    conn: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    return Subprotocol("chat.v1") if "chat.v1" in offered else None


class WSServer(LoopbackServer):
    """The loopback WebSocket test server (see the module docstring).

    Args:
        max_size: Largest message the server accepts (bigger ones close 1009).
        compression: ``"deflate"`` or None.
    """

    def __init__(self, *, max_size: int = 1024 * 1024, compression: str | None = "deflate") -> None:
        self.max_size = max_size
        self.compression = compression
        self.port = 0
        self.handshakes = 0
        self.open_connections = 0
        self.received: list[Any] = []
        self.headers_seen: list[Headers] = []
        self.redirects = 0
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, path: str = "/echo") -> str:
        """The ws:// URL of ``path`` on this server."""
        return f"ws://127.0.0.1:{self.port}{path}"

    async def start(self) -> WSServer:
        """Listen on 127.0.0.1 on a free port."""
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            max_size=self.max_size,
            compression=self.compression,
            select_subprotocol=_select_subprotocol,
            process_request=self._process_request,
            ping_interval=None,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def close(self) -> None:
        """Close every connection (1001) and stop listening."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        path = parts.path
        if path == "/redirect":
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            self.redirects += 1
            response = conn.respond(HTTPStatus(int(query.get("status", "302"))), "moved\n")
            response.headers["Location"] = query["to"]
            return response
        if path == "/loop":
            self.redirects += 1
            response = conn.respond(HTTPStatus.FOUND, "again\n")
            response.headers["Location"] = "/loop"
            return response
        if path.startswith("/status/"):
            status = HTTPStatus(int(path.rsplit("/", 1)[1]))
            return conn.respond(status, f"{status.phrase}\n")
        if path.startswith("/secret") and request.headers.get("Authorization") != "Bearer good":
            return conn.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        assert conn.request is not None
        self.handshakes += 1
        self.open_connections += 1
        self.headers_seen.append(conn.request.headers)
        parts = urlsplit(conn.request.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        routes = {
            "echo": self._echo,
            "ws": self._ws,
            "rpc": self._rpc,
            "record": self._record,
            "stream": self._stream,
            "mixed": self._mixed,
            "close": self._close,
            "big": self._big,
            "raw": self._raw,
            "auth": self._auth,
            "textping": self._textping,
            "headers": self._headers,
            "deep": self._deep,
            "flood": self._flood,
            "late": self._late,
            "trickle": self._trickle,
        }
        handler = routes.get(parts.path.strip("/").split("/")[0], self._echo)
        try:
            await handler(conn, query)
        except ConnectionClosed:
            pass
        finally:
            self.open_connections -= 1

    # -- endpoints -----------------------------------------------------------

    async def _echo(self, conn: ServerConnection, query: dict[str, str]) -> None:
        async for message in conn:
            await conn.send(message)

    async def _secret(self, conn: ServerConnection, query: dict[str, str]) -> None:
        await self._echo(conn, query)

    async def _ws(self, conn: ServerConnection, query: dict[str, str]) -> None:
        async for raw in conn:
            try:
                msg = json.loads(raw)
            except ValueError:
                await conn.send(raw)
                continue
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "subscribe":
                for seq in range(3):
                    await conn.send(
                        json.dumps({"type": "update", "channel": msg.get("channel"), "seq": seq})
                    )
                await conn.send(json.dumps({"type": "done"}))
            elif kind == "chat":
                for token in _CHAT_REPLY:
                    await conn.send(json.dumps({"type": "token", "content": token}))
                await conn.send(json.dumps({"type": "done"}))
            elif kind == "hello":
                await conn.send(json.dumps({"type": "welcome"}))
            elif kind == "ping":
                await conn.send(json.dumps({"type": "pong", "timestamp": 0.0}))
            else:
                await conn.send(raw)

    async def _rpc(self, conn: ServerConnection, query: dict[str, str]) -> None:
        count = 0

        async def reply(msg: dict[str, Any]) -> None:
            await asyncio.sleep(random.uniform(0, 0.02))
            await conn.send(json.dumps({"id": msg["id"], "result": msg.get("params")}))

        try:
            async for raw in conn:
                msg = json.loads(raw)
                count += 1
                task = asyncio.create_task(reply(msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                if count % 10 == 0:
                    await conn.send(json.dumps({"type": "notice", "count": count}))
        finally:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _record(self, conn: ServerConnection, query: dict[str, str]) -> None:
        async for raw in conn:
            if raw == "sync":
                await conn.send(json.dumps({"type": "ack", "n": len(self.received)}))
                continue
            self.received.append(json.loads(raw) if isinstance(raw, str) else raw)

    async def _stream(self, conn: ServerConnection, query: dict[str, str]) -> None:
        for i in range(int(query.get("n", "10"))):
            await conn.send(json.dumps({"type": "item", "n": i}))
        await conn.send(json.dumps({"type": "done"}))
        await self._echo(conn, query)

    async def _mixed(self, conn: ServerConnection, query: dict[str, str]) -> None:
        for i in range(int(query.get("n", "10"))):
            text = json.dumps({"type": "item", "n": i})
            message: str | bytes = text.encode() if i % 5 == 4 else text
            if i % 3 == 0:
                cut = len(message) // 3
                # An iterable is sent as one message in several frames.
                await conn.send([message[:cut], message[cut : 2 * cut], message[2 * cut :]])
            else:
                await conn.send(message)
        await conn.send(json.dumps({"type": "done"}))
        await self._echo(conn, query)

    async def _close(self, conn: ServerConnection, query: dict[str, str]) -> None:
        await conn.send(json.dumps({"type": "bye"}))
        await conn.close(int(query.get("code", "1000")), query.get("reason", ""))

    async def _big(self, conn: ServerConnection, query: dict[str, str]) -> None:
        await conn.send("x" * int(query.get("size", "2000000")))
        await self._echo(conn, query)

    async def _raw(self, conn: ServerConnection, query: dict[str, str]) -> None:
        await conn.send("hello world")
        await conn.send("{not json")
        await conn.send(b"\x00\x01binary")
        await self._echo(conn, query)

    async def _auth(self, conn: ServerConnection, query: dict[str, str]) -> None:
        await conn.send(json.dumps({"type": "auth_required", "message": "Send your token"}))
        msg = json.loads(await conn.recv())
        self.received.append(msg)
        if msg.get("token") != "good":
            await conn.send(json.dumps({"type": "auth_error", "message": "Invalid token"}))
            await conn.close(1008, "auth failed")
            return
        await conn.send(json.dumps({"type": "auth_success", "message": "Authentication ok"}))
        await self._echo(conn, query)

    async def _textping(self, conn: ServerConnection, query: dict[str, str]) -> None:
        await conn.send("ping")
        data = await conn.recv()
        await conn.send(json.dumps({"type": "got", "data": data}))
        await self._echo(conn, query)

    async def _headers(self, conn: ServerConnection, query: dict[str, str]) -> None:
        assert conn.request is not None
        await conn.send(json.dumps({k.lower(): v for k, v in conn.request.headers.raw_items()}))
        await self._echo(conn, query)

    async def _deep(self, conn: ServerConnection, query: dict[str, str]) -> None:
        await conn.send("[" * 100_000 + "]" * 100_000)
        await conn.send(json.dumps({"type": "after"}))
        await self._echo(conn, query)

    async def _flood(self, conn: ServerConnection, query: dict[str, str]) -> None:
        count = int(query["n"]) if "n" in query else None
        sent = 0
        if query.get("deep"):
            await conn.send("[" * 100_000 + "]" * 100_000)
        while count is None or sent < count:
            await conn.send(json.dumps({"type": "flood", "n": sent, "pad": "x" * 1000}))
            sent += 1
            await asyncio.sleep(0)  # the client runs in this event loop too
        msg = json.loads(await conn.recv())
        self.received.append(msg)
        kind = "auth_success" if msg.get("token") == "good" else "auth_error"
        await conn.send(json.dumps({"type": kind}))
        await self._echo(conn, query)

    async def _late(self, conn: ServerConnection, query: dict[str, str]) -> None:
        async def answer(msg: dict[str, Any]) -> None:
            await asyncio.sleep(float(msg.get("delay", 0)))
            await conn.send(json.dumps({"id": msg["id"], "result": "late"}))
            await conn.send(json.dumps({"type": "after", "id_answered": msg["id"]}))

        try:
            async for raw in conn:
                task = asyncio.create_task(answer(json.loads(raw)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _trickle(self, conn: ServerConnection, query: dict[str, str]) -> None:
        for i in range(int(query.get("n", "10"))):
            await conn.send(json.dumps({"type": "item", "n": i}))
            await asyncio.sleep(0.003 if i % 2 else 0)
        await conn.send(json.dumps({"type": "done"}))
        await self._echo(conn, query)
