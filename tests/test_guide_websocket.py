"""The guide's WebSocket snippets, as written, pointed at the local websockets server.

Each snippet is wrapped in a test; only the URLs change (``wss://...`` becomes
the loopback server's ``ws://`` URL). Assertions after a snippet check what its
user would see.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.servers.ws_server import WSServer


@pytest.fixture
async def ws_server() -> AsyncIterator[WSServer]:
    """The websockets test server on a free loopback port."""
    async with WSServer() as server:
        yield server


async def test_ws_basic_usage(ws_server: WSServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(20)  # INFO; the snippet imports logging itself
    url = ws_server.url("/ws")

    import logging

    logger = logging.getLogger(__name__)

    from agenticaiframework.communication import WebSocketClient

    async with WebSocketClient(url) as ws:
        # Send message
        await ws.send({"type": "subscribe", "channel": "updates"})

        # Receive messages
        async for message in ws:
            logger.info(f"Received: {message}")

            if message.get("type") == "done":
                break

    assert "Received: {'type': 'update', 'channel': 'updates', 'seq': 0}" in caplog.text
    assert "Received: {'type': 'done'}" in caplog.text
    assert ws.is_closed


async def test_ws_configuration(ws_server: WSServer) -> None:
    url = ws_server.url("/echo")

    from agenticaiframework.communication import WebSocketClient, WebSocketConfig

    config = WebSocketConfig(
        # Connection settings
        ping_interval=30,
        ping_timeout=10,
        close_timeout=5,
        # Reconnection
        auto_reconnect=True,
        reconnect_delay=1.0,
        max_reconnect_attempts=5,
        # Message handling
        max_message_size=1024 * 1024,  # 1MB
        compression=True,
    )

    ws = WebSocketClient(url, config=config)

    # The configured client works as configured.
    async with ws:
        await ws.send({"hello": "config"})
        assert await ws.receive(timeout=5) == {"hello": "config"}
        assert ws.extensions == ["permessage-deflate"]
    assert ws.config.max_reconnect_attempts == 5


async def test_ws_event_handling(ws_server: WSServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(20)  # INFO; the snippet imports logging itself
    url = ws_server.url("/ws")

    import logging

    logger = logging.getLogger(__name__)

    from agenticaiframework.communication import WebSocketClient

    ws = WebSocketClient(url)

    @ws.on("open")
    async def on_open():
        logger.info("Connection opened")
        await ws.send({"type": "hello"})

    @ws.on("message")
    async def on_message(data):
        logger.info(f"Received: {data}")

    @ws.on("close")
    async def on_close(code, reason):
        logger.info(f"Connection closed: {code} - {reason}")

    @ws.on("error")
    async def on_error(error):
        logger.info(f"Error: {error}")

    # Start connection
    await ws.connect()

    # No read loop was written: the message handler still sees the reply.
    for _ in range(200):
        if "Received: {'type': 'welcome'}" in caplog.text:
            break
        await asyncio.sleep(0.01)
    assert "Connection opened" in caplog.text
    assert "Received: {'type': 'welcome'}" in caplog.text
    await ws.close()
    assert "Connection closed: 1000 - " in caplog.text
    assert "Error:" not in caplog.text


async def test_ws_chat_style(ws_server: WSServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(20)  # INFO; the snippet imports logging itself
    url = ws_server.url("/ws")
    from agenticaiframework.communication import WebSocketClient

    import logging

    logger = logging.getLogger(__name__)

    async with WebSocketClient(url) as ws:
        # Send chat message
        await ws.send(
            {"type": "chat", "message": "Hello, how can you help me?", "user_id": "user_123"}
        )

        # Receive streaming response
        response_text = ""
        async for message in ws:
            if message["type"] == "token":
                response_text += message["content"]
                print(message["content"], end="", flush=True)
            elif message["type"] == "done":
                break

        logger.info(f"\nFull response: {response_text}")

    assert response_text == "I can help with that."
    assert "Full response: I can help with that." in caplog.text
