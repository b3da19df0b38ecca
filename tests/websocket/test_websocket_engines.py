"""The engine seam: which engine a client runs on, and what only big traffic shows.

Like every test in this folder, each runs on both engines (conftest.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agenticaiframework.communication import (
    ConfigError,
    ConnectionError,
    WebSocketClient,
    WebSocketConfig,
)
from tests.servers.ws_server import WSServer


@pytest.fixture
async def server() -> AsyncIterator[WSServer]:
    """The websockets test server, taking messages up to 8 MiB."""
    async with WSServer(max_size=8 * 1024 * 1024) as srv:
        yield srv


async def test_engine_comes_from_the_config_or_the_default(
    server: WSServer, ws_engine: str
) -> None:
    async with WebSocketClient(server.url("/echo")) as ws:
        assert ws.engine == ws_engine
        await ws.send({"engine": ws.engine})
        assert await ws.receive(timeout=5) == {"engine": ws_engine}
    other = "websockets" if ws_engine == "picows" else "picows"
    assert WebSocketClient(server.url("/echo"), engine=other).engine == other
    with pytest.raises(ConfigError, match="engine") as info:
        WebSocketConfig(engine="aiohttp")
    assert info.value.code == "ERR_CONFIG"


def test_picows_engine_without_picows_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picows", None)  # what an install without it sees
    with pytest.raises(ConfigError) as info:
        WebSocketClient("ws://127.0.0.1:1/ws", engine="picows")
    assert info.value.code == "ERR_CONFIG"
    assert "agenticaiframework-communication[picows]" in str(info.value)
    WebSocketClient("ws://127.0.0.1:1/ws", engine="websockets")  # the default needs nothing


@pytest.mark.parametrize("compression", [True, False])
async def test_big_messages_both_ways_fill_the_buffers_and_keep_their_order(
    server: WSServer, compression: bool
) -> None:
    # 48 messages of 256 KiB are sent before any is read back: the socket's
    # write buffer fills (sends wait) and unread replies pile up past the
    # 4-slot inbox (reading pauses); every byte must still come back, in order.
    chunk = 256 * 1024
    async with WebSocketClient(
        server.url("/echo"),
        compression=compression,
        max_message_size=chunk + 16,
        receive_queue_size=4,
    ) as ws:
        for i in range(48):
            await ws.send(bytes([i]) * chunk)
        for i in range(48):
            assert await ws.receive(timeout=10) == bytes([i]) * chunk
        text = "é" * (chunk // 2)  # 256 KiB of UTF-8, cut by a 2-byte character
        await ws.send(text)
        assert await ws.receive(timeout=10) == text
        assert ws.stats.reconnects == 0 and ws.stats.errors == 0


async def answer_of(frame: bytes, **config: Any) -> tuple[ConnectionError, bytes]:
    """Send ``frame`` from a peer of our own after the handshake.

    Returns:
        The error the client's ``receive()`` raised and the (unmasked) frame
        the client answered with.
    """
    answers: list[bytes] = []

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        writer.write(frame)
        await writer.drain()
        first, length = await reader.readexactly(2)
        mask = await reader.readexactly(4)
        payload = await reader.readexactly(length & 0x7F)
        answers.append(bytes([first]) + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        writer.close()
        await writer.wait_closed()

    listener = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with WebSocketClient(
            f"ws://127.0.0.1:{port}/", compression=False, auto_reconnect=False, **config
        ) as ws:
            with pytest.raises(ConnectionError) as info:
                await ws.receive(timeout=5)
    finally:
        listener.close()
        await listener.wait_closed()
    (answer,) = answers
    return info.value, answer


async def test_a_close_frame_without_a_code_is_answered_with_a_valid_one() -> None:
    # RFC 6455 allows a close frame with no payload.
    error, answer = await answer_of(b"\x88\x00")
    assert error.close_code == 1005  # "no status received", as websockets says
    assert answer[0] == 0x88  # a close frame...
    assert answer[1:] in (b"", b"\x03\xe8")  # ...empty or 1000, never the code 0


async def test_reserved_bits_fail_the_connection_with_1002() -> None:
    # FIN + RSV2 + text "hi": no extension was negotiated that gives RSV2 a meaning.
    error, answer = await answer_of(b"\xa1\x02hi")
    assert answer[0] == 0x88 and answer[1:3] == b"\x03\xea", answer  # close 1002
    assert error.close_code == 1006  # we failed it: no close frame came back
