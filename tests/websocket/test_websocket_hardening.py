"""WebSocketClient against hostile servers on loopback (issue 16).

Each test causes the fault for real with the websockets test server (a
redirecting handshake, a flood before the auth verdict, JSON nested too deep,
late replies) and checks what a user of the client sees.
"""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest

from agenticaiframework.communication import (
    ConfigError,
    ProtocolError,
    SecurityError,
    WebSocketClient,
    errors,
)
from agenticaiframework.communication.core import security as security_module
from agenticaiframework.communication.core.config import check_headers
from agenticaiframework.communication.websocket.protocol import hop_headers, redirect_target
from tests.servers.proxy import FaultProxy
from tests.servers.ws_server import WSServer


@pytest.fixture
async def server() -> AsyncIterator[WSServer]:
    """The websockets test server on a free loopback port."""
    async with WSServer() as srv:
        yield srv


@pytest.fixture
async def other() -> AsyncIterator[WSServer]:
    """A second test server: another origin (another port) on loopback."""
    async with WSServer() as srv:
        yield srv


def redirect(server: WSServer, to: str, status: int = 302) -> str:
    """The URL of ``server``'s handshake that answers with a redirect to ``to``."""
    return server.url(f"/redirect?to={quote(to, safe='')}&status={status}")


SECRET_HEADERS = {
    "X-API-Key": "key-123",
    "Private-Token": "private-456",
    "X-Tenant": "tenant-789",
    "X-Agent": "agent-1",
}


# ---------------------------------------------------------------- item 2: redirects


async def test_redirect_to_a_host_the_policy_refuses_is_never_contacted(
    server: WSServer, other: WSServer
) -> None:
    # 127.1 reaches this machine, but it is not a literal loopback host, so the
    # policy refuses plain text to it: the counting proxy must see nothing.
    async with FaultProxy(other.port) as counter:
        ws = WebSocketClient(
            redirect(server, f"ws://127.1:{counter.port}/headers"),
            headers=SECRET_HEADERS,
            auth={"type": "bearer", "token": "bearer-abc"},
        )
        with pytest.raises(SecurityError) as info:
            await ws.connect()
        assert info.value.code == "ERR_SECURITY"
        assert "127.1" in str(info.value)
        assert server.redirects == 1
        assert counter.accepted == 0
        assert other.handshakes == 0
        await ws.close()

    ws = WebSocketClient(redirect(server, "ws://agents.example.com/ws", status=307))
    with pytest.raises(SecurityError, match=r"agents\.example\.com"):
        await ws.connect()
    await ws.close()


async def test_cross_origin_redirect_drops_every_credential_header(
    server: WSServer, other: WSServer
) -> None:
    async with WebSocketClient(
        redirect(server, other.url("/headers")),
        headers=SECRET_HEADERS,
        credential_headers=["X-Tenant"],
        auth={"type": "bearer", "token": "bearer-abc"},
    ) as ws:
        seen = await ws.receive(timeout=5)
    assert other.handshakes == 1
    assert seen["x-agent"] == "agent-1"
    for name in ("x-api-key", "private-token", "x-tenant", "authorization"):
        assert name not in seen, name
    assert "key-123" not in str(seen) and "bearer-abc" not in str(seen)

    # An API key header of our own auth object goes too, whatever its name.
    async with WebSocketClient(
        redirect(server, other.url("/headers")),
        auth={"type": "api_key", "key": "k-000", "name": "X-Client"},
    ) as ws:
        seen = await ws.receive(timeout=5)
    assert "x-client" not in seen


async def test_same_origin_redirect_keeps_the_headers(server: WSServer) -> None:
    async with WebSocketClient(
        redirect(server, "/headers"),
        headers=SECRET_HEADERS,
        auth={"type": "bearer", "token": "bearer-abc"},
    ) as ws:
        seen = await ws.receive(timeout=5)
    assert server.redirects == 1
    assert seen["x-api-key"] == "key-123"
    assert seen["private-token"] == "private-456"
    assert seen["authorization"] == "Bearer bearer-abc"


async def test_first_message_auth_is_not_sent_after_a_cross_origin_redirect(
    server: WSServer, other: WSServer
) -> None:
    ws = WebSocketClient(redirect(server, other.url("/auth")), auth_message={"token": "good"})
    with pytest.raises(SecurityError, match="auth_message"):
        await ws.connect()
    await ws.close()
    assert other.handshakes == 1  # the hop was made (no credential header went)...
    await asyncio.sleep(0.1)
    assert other.received == []  # ...but the auth message never left
    # Same origin: the auth message goes out as usual.
    async with WebSocketClient(redirect(server, "/auth"), auth_message={"token": "good"}) as ws:
        await ws.send("hi")
        assert await ws.receive(timeout=5) == "hi"


async def test_redirect_loops_and_downgrades_end_with_our_errors(server: WSServer) -> None:
    loop = WebSocketClient(server.url("/loop"))
    with pytest.raises(ProtocolError, match="too many redirects"):
        await loop.connect()
    await loop.close()
    assert 1 < server.redirects <= 21
    bad = WebSocketClient(redirect(server, "http://127.0.0.1/x"))
    with pytest.raises(SecurityError, match="scheme"):
        await bad.connect()
    await bad.close()


def test_redirect_helpers_without_io() -> None:
    assert redirect_target("ws://h:1/a?x=1", 302, "/b") == "ws://h:1/b"
    assert redirect_target("ws://h:1/a", 200, "/b") is None
    assert redirect_target("ws://h:1/a", 302, None) is None
    headers = {"Authorization": "Bearer x", "X-API-Key": "k", "X-Tenant": "t", "X-Agent": "a"}
    assert hop_headers(headers, "ws://h:1/a", "ws://h:1/b", ()) == headers
    assert hop_headers(headers, "ws://h:1/a", "ws://h:2/b", ("x-tenant",)) == {"X-Agent": "a"}
    assert hop_headers(headers, "ws://h/a", "wss://h/b", ()) == {"X-Tenant": "t", "X-Agent": "a"}


# ---------------------------------------------------------------- item 12: auth flood


async def test_flood_before_the_auth_verdict_is_bounded_by_the_receive_queue(
    server: WSServer,
) -> None:
    tracemalloc.start()
    try:
        ws = WebSocketClient(
            server.url("/flood"), auth_message={"token": "good"}, receive_queue_size=4
        )
        with pytest.raises(ProtocolError) as info:
            await ws.connect()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    await ws.close()
    assert info.value.code == "ERR_PROTOCOL"
    assert "receive_queue_size=4" in str(info.value)
    assert peak < 20 * 1024 * 1024


async def test_messages_before_the_auth_verdict_within_the_bound_are_delivered(
    server: WSServer,
) -> None:
    async with WebSocketClient(
        server.url("/flood?n=4"), auth_message={"token": "good"}, receive_queue_size=4
    ) as ws:
        got = [(await ws.receive(timeout=5))["n"] for _ in range(4)]
        assert got == [0, 1, 2, 3]
        await ws.send("after auth")
        assert await ws.receive(timeout=5) == "after auth"


async def test_undecodable_message_before_the_auth_verdict_is_held_and_reported(
    server: WSServer,
) -> None:
    errors_seen: list[BaseException] = []
    ws = WebSocketClient(server.url("/flood?n=2&deep=1"), auth_message={"token": "good"})
    ws.on("error", errors_seen.append)
    async with ws:
        with pytest.raises(ProtocolError, match="nested too deeply"):
            await ws.receive(timeout=5)
        assert [(await ws.receive(timeout=5))["n"] for _ in range(2)] == [0, 1]
        assert len(errors_seen) == 1 and ws.stats.errors == 1
        assert server.received == [{"token": "good"}]


# ---------------------------------------------------------------- item 15: deep JSON


async def test_json_nested_too_deep_is_skipped_counted_and_the_stream_goes_on(
    server: WSServer,
) -> None:
    errors_seen: list[BaseException] = []
    ws = WebSocketClient(server.url("/deep"))
    ws.on("error", errors_seen.append)
    async with ws:
        with pytest.raises(ProtocolError) as info:
            await ws.receive(timeout=5)
        assert "nested too deeply" in str(info.value)
        assert await ws.receive(timeout=5) == {"type": "after"}
        assert errors_seen == [info.value]
        assert ws.stats.errors == 1
        assert ws.connected and ws.stats.reconnects == 0
        await ws.send({"still": "open"})
        assert await ws.receive(timeout=5) == {"still": "open"}
    assert server.handshakes == 1


# ---------------------------------------------------------------- item 18: bad config


@pytest.mark.parametrize(
    "url",
    [
        "ws://[::1",
        "ws://127.0.0.1:99999/ws",
        "ws://127.0.0.1:port/ws",
        "ws://127.0.0.1:0/ws",
        "ws://127.0.0.1/ws#frag",
    ],
)
def test_bad_urls_are_config_errors_naming_the_url(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        WebSocketClient(url)
    assert info.value.code == "ERR_CONFIG"
    assert url.split("//")[1][:8] in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Agent", "caf\u00e9-value"),
        ("X-Agent", "nul\x00value"),
        ("X-Agent", "crlf-value\r\nInjected: yes"),
        ("X Agent", "value-1"),
        ("X-Agent\n", "value-1"),
    ],
)
def test_bad_header_values_are_config_errors_naming_the_header(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        WebSocketClient("ws://127.0.0.1:1/ws", headers={name: value})
    assert info.value.code == "ERR_CONFIG"
    assert repr(name) in str(info.value)
    assert value not in str(info.value)


async def test_bad_auth_header_value_is_a_config_error(server: WSServer) -> None:
    ws = WebSocketClient(server.url("/echo"), auth={"type": "bearer", "token": "t\u00f6ken"})
    with pytest.raises(ConfigError, match="Authorization"):
        await ws.connect()
    await ws.close()
    assert server.handshakes == 0


def test_check_headers_without_io() -> None:
    check_headers("headers", {"X-Ok": "visible ascii\tand tabs"})
    with pytest.raises(ConfigError, match="'X-Bad'"):
        check_headers("headers", {"X-Bad": "\x7f"})


# ---------------------------------------------------------------- item 20: late replies


async def test_late_reply_to_a_timed_out_request_is_dropped(server: WSServer) -> None:
    async with WebSocketClient(server.url("/late")) as ws:
        with pytest.raises(errors.TimeoutError):
            await ws.request({"id": "slow", "delay": 0.3}, timeout=0.05)
        after = await ws.receive(timeout=5)
        assert after == {"type": "after", "id_answered": "slow"}
        assert ws.late_replies == 1
        assert ws.stats.errors == 0
        # A request answered in time still gets its reply.
        reply = await ws.request({"id": "fast", "delay": 0}, timeout=5)
        assert reply == {"id": "fast", "result": "late"}
        assert await ws.receive(timeout=5) == {"type": "after", "id_answered": "fast"}


async def test_late_reply_to_a_cancelled_request_is_dropped(server: WSServer) -> None:
    async with WebSocketClient(server.url("/late")) as ws:
        task = asyncio.ensure_future(ws.request({"id": "gone", "delay": 0.3}, timeout=10))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await ws.receive(timeout=5) == {"type": "after", "id_answered": "gone"}
        assert ws.late_replies == 1


# ---------------------------------------------------------------- item 23: cancelled reads


@pytest.mark.parametrize("how", ["receive", "anext"])
async def test_short_timeouts_never_lose_nor_repeat_a_message(server: WSServer, how: str) -> None:
    count = 300
    async with WebSocketClient(server.url(f"/trickle?n={count}")) as ws:
        got: list[Any] = []
        timeouts = 0
        async with asyncio.timeout(50):
            while not got or got[-1] != "done":
                try:
                    async with asyncio.timeout(0.001):
                        message = await (ws.receive() if how == "receive" else anext(ws))
                except TimeoutError:
                    timeouts += 1
                    continue
                got.append(message.get("n", message["type"]))
        assert got == [*range(count), "done"]
        assert timeouts > 0  # reads were really cancelled on the way
        assert ws.connected and ws.stats.reconnects == 0
        await ws.send("still open")
        assert await ws.receive(timeout=5) == "still open"
    assert server.handshakes == 1


# ---------------------------------------------------------------- logs and repr


async def test_debug_logs_of_a_connection_carry_no_secret(
    server: WSServer, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("websockets", "websockets.client"):
        logging.getLogger(name).removeFilter(security_module._redacting_filter)
    caplog.set_level(logging.DEBUG)
    async with WebSocketClient(
        server.url("/echo?token=query-secret"),
        headers={"X-API-Key": "api-key-secret"},
        auth={"type": "bearer", "token": "bearer-secret"},
    ) as ws:
        await ws.send("x")
        assert await ws.receive(timeout=5) == "x"
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "Authorization" in text or "authorization" in text  # the header lines were logged
    for secret in ("api-key-secret", "bearer-secret", "query-secret"):
        assert secret not in text, secret


def test_repr_and_errors_hide_credentials() -> None:
    ws = WebSocketClient("ws://user:pw-secret@127.0.0.1:1/ws?api_key=q-secret")
    assert "pw-secret" not in repr(ws) and "q-secret" not in repr(ws)
    assert "127.0.0.1:1" in repr(ws)
    with pytest.raises(ConfigError) as info:
        WebSocketClient("ws://user:pw-secret@127.0.0.1:99999/ws?api_key=q-secret")
    assert "pw-secret" not in str(info.value) and "q-secret" not in str(info.value)


async def test_connection_errors_hide_credentials(other: WSServer) -> None:
    ws = WebSocketClient(other.url("/status/503?api_key=q-secret"))
    with pytest.raises(Exception) as info:
        await ws.connect()
    assert "q-secret" not in str(info.value)
    await ws.close()
