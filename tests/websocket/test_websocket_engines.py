"""The engine seam: which engine a client runs on, and what only big traffic shows.

Like every test in this folder, each runs on both engines (conftest.py).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import pytest

from agenticaiframework.communication import ConfigError, WebSocketClient, WebSocketConfig
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
