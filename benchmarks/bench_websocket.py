"""WebSocket: WebSocketClient on each engine vs raw websockets and raw picows, same run.

The server runs in a child process (``python -m benchmarks.bench_websocket
--serve PORT``) so it does not share the event loop with the clients. It is a
picows server (frames parsed in C), so that the server is not what limits the
fastest client: ``/echo`` sends every frame back; ``/sink`` counts frames and
answers the text ``sync`` with the count so far. It offers no compression, so
no side compresses.

Sides: ours on the ``websockets`` engine and on the ``picows`` engine; raw
``websockets`` (asyncio API); raw picows twice, through its core API (a
listener whose ``on_ws_frame`` resolves a future: what picows' own examples
do) and through its websockets-compatible asyncio API
(``picows.websockets``). Every side sends the same JSON dicts and decodes the
same JSON replies (the raw sides with the json module, as users would).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import picows
from picows.websockets.asyncio.client import connect as compat_connect
from websockets.asyncio.client import connect

from agenticaiframework.communication import WebSocketClient

from .harness import Result, Side, compare_rows
from .servers import child_server, free_port

_TEXT = picows.WSMsgType.TEXT


class _RawPicows(picows.WSListener):  # type: ignore[misc]
    """picows' core API as its users write it: replies resolve a future."""

    def __init__(self) -> None:
        super().__init__()
        self.transport: picows.WSTransport | None = None
        self.reply: asyncio.Future[Any] | None = None

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type is _TEXT and self.reply is not None:
            reply, self.reply = self.reply, None
            reply.set_result(json.loads(frame.get_payload_as_utf8_text()))

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.send(_TEXT, text.encode())

    def expect(self) -> asyncio.Future[Any]:
        self.reply = asyncio.get_running_loop().create_future()
        return self.reply


async def _disconnect(transport: picows.WSTransport) -> None:
    transport.send_close(picows.WSCloseCode.OK)
    transport.disconnect()
    await transport.wait_disconnected()


def _dumps(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"))


def _sides(
    send: Callable[[Any], Awaitable[None]], recv: Callable[[], Awaitable[Any]]
) -> tuple[Side, Side]:
    """Echo and one-way sides over one send/receive pair of a client."""
    message = {"type": "token", "content": "hello", "seq": 1}

    async def echo(count: int) -> int:
        for _ in range(count):
            await send(message)
            await recv()
        return count

    async def one_way(count: int) -> int:
        for _ in range(count):
            await send(message)
        await send("sync")
        await recv()
        return count

    return echo, one_way


async def run(quick: bool) -> list[Result]:
    """Echo round trips and one-way messages through every client."""
    n = 1_000 if quick else 50_000
    rounds = 2 if quick else 20  # short rounds, many: the median shrugs off the machine's drift
    port = free_port()
    async with child_server(["-m", "benchmarks.bench_websocket", "--serve", str(port)], port):
        base = f"ws://127.0.0.1:{port}"
        clients = {
            f"ours ({engine} engine)": (
                WebSocketClient(f"{base}/echo", ping_interval=0, engine=engine),
                WebSocketClient(f"{base}/sink", ping_interval=0, engine=engine),
            )
            for engine in ("websockets", "picows")
        }
        async with contextlib.AsyncExitStack() as stack:
            for pair in clients.values():
                for client in pair:
                    await stack.enter_async_context(client)
            raw_ws = [
                await stack.enter_async_context(connect(f"{base}{path}", ping_interval=None))
                for path in ("/echo", "/sink")
            ]
            raw_compat = [
                await stack.enter_async_context(compat_connect(f"{base}{path}", ping_interval=None))
                for path in ("/echo", "/sink")
            ]
            raw_core = []
            for path in ("/echo", "/sink"):
                transport, listener = await picows.ws_connect(_RawPicows, f"{base}{path}")
                stack.push_async_callback(_disconnect, transport)
                raw_core.append(listener)
            results = await _measure(
                clients,
                (raw_ws[0], raw_ws[1]),
                (raw_compat[0], raw_compat[1]),
                (raw_core[0], raw_core[1]),
                n,
                rounds,
            )
    return results


async def _measure(
    clients: dict[str, tuple[WebSocketClient, WebSocketClient]],
    raw_ws: tuple[Any, Any],
    raw_compat: tuple[Any, Any],
    raw_core: tuple[_RawPicows, _RawPicows],
    n: int,
    rounds: int,
) -> list[Result]:
    echo: dict[str, Side] = {}
    one_way: dict[str, Side] = {}
    for name, (to_echo, to_sink) in clients.items():
        echo[name] = _sides(to_echo.send, to_echo.receive)[0]
        one_way[name] = _sides(to_sink.send, to_sink.receive)[1]

    def raw_pair(conn: Any) -> tuple[Side, Side]:
        async def send(message: Any) -> None:
            await conn.send(message if isinstance(message, str) else _dumps(message))

        async def recv() -> Any:
            return json.loads(await conn.recv())

        return _sides(send, recv)

    for name, (e, s) in (("raw websockets", raw_ws), ("raw picows (websockets API)", raw_compat)):
        echo[name] = raw_pair(e)[0]
        one_way[name] = raw_pair(s)[1]

    def core_pair(listener: _RawPicows) -> tuple[Side, Side]:
        # picows' send is synchronous: the raw side does not await it.
        message = {"type": "token", "content": "hello", "seq": 1}

        async def echo_side(count: int) -> int:
            for _ in range(count):
                reply = listener.expect()  # before sending: the reply may come at once
                listener.send(_dumps(message))
                await reply
            return count

        async def one_way_side(count: int) -> int:
            for _ in range(count):
                listener.send(_dumps(message))
            reply = listener.expect()
            listener.send("sync")
            await reply
            return count

        return echo_side, one_way_side

    echo["raw picows (core API)"] = core_pair(raw_core[0])[0]
    one_way["raw picows (core API)"] = core_pair(raw_core[1])[1]
    pairs = [
        ("ours (websockets engine)", "raw websockets"),
        ("ours (picows engine)", "raw websockets"),
        ("ours (picows engine)", "raw picows (core API)"),
        ("ours (picows engine)", "raw picows (websockets API)"),
    ]
    results: list[Result] = []
    for label, sides in ((f"{n} echo round trips", echo), (f"{n} one-way messages", one_way)):
        results += await compare_rows(
            [(f"{label}: {a} vs {b}", sides[a], sides[b]) for a, b in pairs],
            total=n,
            rounds=rounds,
        )
    return results


class _Echo(picows.WSListener):  # type: ignore[misc]
    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type is picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type is _TEXT or frame.msg_type is picows.WSMsgType.BINARY:
            transport.send(frame.msg_type, frame.get_payload_as_bytes())


class _Sink(picows.WSListener):  # type: ignore[misc]
    count = 0

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type is picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.get_payload_as_bytes() == b"sync":
            transport.send(_TEXT, json.dumps({"count": self.count}).encode())
        else:
            self.count += 1


async def _serve(port: int) -> None:
    def listener(request: picows.WSUpgradeRequest) -> picows.WSListener:
        return _Sink() if request.path.startswith(b"/sink") else _Echo()

    server = await picows.ws_create_server(listener, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the WebSocket benchmark server")
    parser.add_argument("--serve", type=int, required=True, help="port on 127.0.0.1")
    asyncio.run(_serve(parser.parse_args().serve))
