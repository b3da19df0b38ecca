"""WebSocket: WebSocketClient vs raw ``websockets`` (asyncio API), same server, same run.

The server runs in a child process (``python -m benchmarks.bench_websocket
--serve PORT``) so it does not share the event loop with the clients:
``/echo`` sends every frame back; ``/sink`` counts frames and answers the text
``sync`` with the count so far. Both sides send the same JSON dicts and decode
the same JSON replies (the raw side with the json module, as users would).
"""

from __future__ import annotations

import argparse
import asyncio
import json

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from agenticaiframework.communication import WebSocketClient

from .harness import Result, compare
from .servers import child_server, free_port


async def run(quick: bool) -> list[Result]:
    """Echo round trips and one-way messages through both clients."""
    n = 2_000 if quick else 50_000
    rounds = 2 if quick else 20  # short rounds, many: the median shrugs off the machine's drift
    port = free_port()
    async with child_server(["-m", "benchmarks.bench_websocket", "--serve", str(port)], port):
        base = f"ws://127.0.0.1:{port}"
        message = {"type": "token", "content": "hello", "seq": 1}
        ours_echo = WebSocketClient(f"{base}/echo", ping_interval=0)
        ours_sink = WebSocketClient(f"{base}/sink", ping_interval=0)
        async with (
            ours_echo,
            ours_sink,
            connect(f"{base}/echo", ping_interval=None) as raw_echo,
            connect(f"{base}/sink", ping_interval=None) as raw_sink,
        ):

            async def ours_round_trips(count: int) -> int:
                for _ in range(count):
                    await ours_echo.send(message)
                    await ours_echo.receive()
                return count

            async def raw_round_trips(count: int) -> int:
                for _ in range(count):
                    await raw_echo.send(json.dumps(message, separators=(",", ":")))
                    json.loads(await raw_echo.recv())
                return count

            async def ours_one_way(count: int) -> int:
                for _ in range(count):
                    await ours_sink.send(message)
                await ours_sink.send("sync")
                await ours_sink.receive()
                return count

            async def raw_one_way(count: int) -> int:
                for _ in range(count):
                    await raw_sink.send(json.dumps(message, separators=(",", ":")))
                await raw_sink.send("sync")
                await raw_sink.recv()
                return count

            return [
                await compare(
                    f"{n} echo round trips",
                    ours_round_trips,
                    raw_round_trips,
                    total=n,
                    rounds=rounds,
                ),
                await compare(
                    f"{n} one-way messages", ours_one_way, raw_one_way, total=n, rounds=rounds
                ),
            ]


async def _serve(port: int) -> None:
    async def handler(conn: ServerConnection) -> None:
        assert conn.request is not None
        if conn.request.path.startswith("/sink"):
            count = 0
            async for frame in conn:
                if frame == "sync":
                    await conn.send(json.dumps({"count": count}))
                else:
                    count += 1
        else:
            async for frame in conn:
                await conn.send(frame)

    async with serve(handler, "127.0.0.1", port, ping_interval=None) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the WebSocket benchmark server")
    parser.add_argument("--serve", type=int, required=True, help="port on 127.0.0.1")
    asyncio.run(_serve(parser.parse_args().serve))
