"""WebSocketClient against a real websockets server on loopback.

Outages are caused for real with the fault-injection proxy (TCP resets,
refused reconnects). The I/O-free helpers of ``_ws_protocol`` are tested at
the end on their own.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trustme
from websockets.asyncio.server import ServerConnection, serve

from agenticaiframework.communication import (
    AuthenticationError,
    ClosedError,
    ConfigError,
    ConnectionError,
    HTTPStatusError,
    MessageTooLargeError,
    ProtocolError,
    QueueFullError,
    SecurityError,
    TimeoutError,
    WebSocketClient,
    WebSocketConfig,
)
from agenticaiframework.communication.websocket.protocol import (
    AuthReply,
    CloseAction,
    RequestIds,
    auth_reply,
    classify_close,
    describe_close,
    with_query,
)
from tests.servers.ports import free_port
from tests.servers.proxy import FaultProxy
from tests.servers.ws_server import WSServer

FAST: dict[str, Any] = {"reconnect_delay": 0.02, "max_reconnect_delay": 0.05, "close_timeout": 0.3}


@pytest.fixture
async def server() -> AsyncIterator[WSServer]:
    """The websockets test server on a free loopback port."""
    async with WSServer() as srv:
        yield srv


@pytest.fixture
async def proxy(server: WSServer) -> AsyncIterator[FaultProxy]:
    """A fault-injection proxy in front of the test server."""
    async with FaultProxy(server.port) as prx:
        yield prx


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds (or fail the test)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


# ---------------------------------------------------------------- messages


async def test_echo_of_each_message_type(server: WSServer) -> None:
    async with WebSocketClient(server.url("/echo")) as ws:
        for message in ({"a": 1, "b": [1, 2]}, [1, "two", None], "plain text", b"\x00\xffbin"):
            await ws.send(message)
            assert await ws.receive(timeout=5) == message
        await ws.send("é ünïcode ✓")
        assert await ws.receive(timeout=5) == "é ünïcode ✓"
    assert ws.stats.sent == 5 and ws.stats.received == 5


async def test_message_format_pins_the_type(server: WSServer) -> None:
    async with WebSocketClient(server.url("/echo"), message_format="text") as ws:
        await ws.send({"a": 1})
        assert await ws.receive(timeout=5) == '{"a":1}'
    async with WebSocketClient(server.url("/echo"), message_format="bytes") as ws:
        await ws.send("hi")
        assert await ws.receive(timeout=5) == b"hi"
    async with WebSocketClient(server.url("/echo"), message_format="json") as ws:
        await ws.send("not json")
        with pytest.raises(ProtocolError):
            await ws.receive(timeout=5)
        await ws.send([1])  # the stream goes on after a bad frame
        assert await ws.receive(timeout=5) == [1]


async def test_non_json_text_comes_through_as_str(server: WSServer) -> None:
    async with WebSocketClient(server.url("/raw")) as ws:
        assert await ws.receive(timeout=5) == "hello world"
        assert await ws.receive(timeout=5) == "{not json"
        assert await ws.receive(timeout=5) == b"\x00\x01binary"
        assert ws.stats.errors == 0


async def test_thousand_messages_arrive_complete_and_in_order(server: WSServer) -> None:
    async with WebSocketClient(server.url("/stream?n=1000")) as ws:
        got = []
        async for message in ws:
            if message["type"] == "done":
                break
            got.append(message["n"])
        assert got == list(range(1000))
        for i in range(1000):
            await ws.send({"i": i})
        echoed = [(await ws.receive(timeout=5))["i"] for _ in range(1000)]
        assert echoed == list(range(1000))


@pytest.mark.parametrize("queue_size", [1000, 2])
async def test_fragmented_and_whole_messages_keep_their_order(
    server: WSServer, queue_size: int
) -> None:
    # Whole messages take a fast path from the parser, fragmented ones go
    # through websockets' assembler and our reader task: none may overtake
    # another, also when a tiny inbox makes the reader wait (backpressure).
    async with WebSocketClient(
        server.url("/mixed?n=300"), receive_queue_size=queue_size, message_format="auto"
    ) as ws:
        got: list[int] = []
        async for message in ws:
            if isinstance(message, bytes):
                message = json.loads(message)
            if message["type"] == "done":
                break
            got.append(message["n"])
            if len(got) % 50 == 0:
                await asyncio.sleep(0.02)  # let frames pile up behind a slow consumer
        assert got == list(range(300))
        assert ws.stats.received == 301


async def test_receive_timeout_and_not_connected(server: WSServer) -> None:
    ws = WebSocketClient(server.url("/record"))
    with pytest.raises(ConnectionError, match="not connected"):
        await ws.send("x")
    async with ws:
        with pytest.raises(TimeoutError) as info:
            await ws.receive(timeout=0.05)
        assert info.value.code == "ERR_TIMEOUT"


# ---------------------------------------------------------------- events


async def test_each_event_fires_when_it_should(server: WSServer, proxy: FaultProxy) -> None:
    seen: list[Any] = []
    ws = WebSocketClient(f"ws://127.0.0.1:{proxy.port}/echo", **FAST)

    @ws.on("open")
    def on_open() -> None:
        seen.append("open")

    @ws.on("message")
    async def on_message(data: Any) -> None:
        seen.append(("message", data))
        if data == "boom":
            raise RuntimeError("handler failed")

    @ws.on("close")
    def on_close(code: int, reason: str) -> None:
        seen.append(("close", code, reason))

    @ws.on("error")
    async def on_error(error: BaseException) -> None:
        seen.append(("error", type(error).__name__, str(error)))

    @ws.on("reconnect")
    def on_reconnect(attempts: int) -> None:
        seen.append(("reconnect", attempts))

    await ws.connect()
    assert seen == ["open"]
    await ws.send({"n": 1})
    await ws.send("boom")
    await until(lambda: len(seen) >= 4)
    assert seen[1:] == [
        ("message", {"n": 1}),
        ("message", "boom"),
        ("error", "RuntimeError", "handler failed"),
    ]
    # The reader survived the raising handler; the message also reached iteration.
    assert await ws.receive(timeout=5) == {"n": 1}
    assert await ws.receive(timeout=5) == "boom"

    seen.clear()
    await proxy.cut()
    await until(lambda: "open" in seen)
    assert seen == [("close", 1006, ""), ("reconnect", 1), "open"]

    seen.clear()
    await ws.close(4001, "bye now")
    assert seen == [("close", 4001, "bye now")]
    await ws.close()  # idempotent
    assert seen == [("close", 4001, "bye now")]


async def test_handlers_fire_without_a_read_loop(server: WSServer) -> None:
    got: list[Any] = []
    ws = WebSocketClient(server.url("/stream?n=50"), receive_queue_size=4)
    ws.on("message", got.append)
    await ws.connect()
    await until(lambda: len(got) == 51)
    assert [m.get("n") for m in got[:50]] == list(range(50))
    # Nobody iterated: the buffer kept only the newest messages, reading never stalled.
    assert await ws.receive(timeout=5) == {"type": "item", "n": 47}
    assert ws.dropped_from_buffer == 47
    await ws.close()


async def test_normal_server_close_ends_iteration_quietly(server: WSServer) -> None:
    async with WebSocketClient(server.url("/close?code=1000&reason=done"), **FAST) as ws:
        got = [message async for message in ws]
        assert got == [{"type": "bye"}]
        with pytest.raises(ConnectionError) as info:
            await ws.receive(timeout=5)
        assert info.value.close_code == 1000
        with pytest.raises(ConnectionError):
            await ws.send("after close")
    assert server.handshakes == 1  # no reconnect


async def test_application_close_code_is_fatal(server: WSServer) -> None:
    async with WebSocketClient(server.url("/close?code=4000&reason=kicked"), **FAST) as ws:
        assert await ws.receive(timeout=5) == {"type": "bye"}
        with pytest.raises(ConnectionError) as info:
            async for _ in ws:
                pass
        assert info.value.code == "ERR_CONNECTION"
        assert (info.value.close_code, info.value.close_reason) == (4000, "kicked")
    assert server.handshakes == 1


async def test_service_restart_close_reconnects(server: WSServer) -> None:
    async with WebSocketClient(server.url("/close?code=1012&reason=restart"), **FAST) as ws:
        assert await ws.receive(timeout=5) == {"type": "bye"}
        assert await ws.receive(timeout=5) == {"type": "bye"}  # from the new connection
        assert ws.stats.reconnects >= 1


# ---------------------------------------------------------------- reconnect


async def test_outage_sends_arrive_once_in_order(server: WSServer, proxy: FaultProxy) -> None:
    ws = WebSocketClient(f"ws://127.0.0.1:{proxy.port}/record", **FAST)
    order: list[str] = []
    ws.on("reconnect", lambda attempts: order.append(f"reconnect:{ws.pending_sends}"))
    ws.on("open", lambda: order.append("open"))
    async with ws:
        for i in range(50):
            await ws.send({"n": i})
        await ws.send("sync")
        assert await ws.receive(timeout=5) == {"type": "ack", "n": 50}

        proxy.refuse = True  # the outage lasts until we say so
        await proxy.cut()
        await until(lambda: not ws.connected)
        for i in range(50, 150):
            await ws.send({"n": i})
        assert ws.pending_sends == 100
        await asyncio.sleep(0.1)  # some reconnect attempts fail meanwhile
        proxy.refuse = False
        await until(lambda: ws.connected)
        for i in range(150, 160):
            await ws.send({"n": i})
        await ws.send("sync")
        assert await ws.receive(timeout=5) == {"type": "ack", "n": 160}
    assert [m["n"] for m in server.received] == list(range(160))
    assert order == ["open", "reconnect:0", "open"]
    assert ws.stats.reconnects == 1


async def test_server_going_away_reconnects_and_open_resubscribes(
    server: WSServer, proxy: FaultProxy
) -> None:
    async with WSServer() as replacement:
        ws = WebSocketClient(f"ws://127.0.0.1:{proxy.port}/ws", **FAST)

        @ws.on("open")
        async def subscribe() -> None:
            await ws.send({"type": "subscribe", "channel": "news"})

        async with ws:
            first = [await ws.receive(timeout=5) for _ in range(4)]
            assert first[-1] == {"type": "done"}
            proxy.target_port = replacement.port
            await server.close()  # a restart: the server says 1001 going away
            again = [await ws.receive(timeout=5) for _ in range(4)]
            assert again == first
            assert replacement.handshakes == 1
            assert ws.stats.reconnects == 1


async def test_iteration_continues_across_a_reconnect(server: WSServer, proxy: FaultProxy) -> None:
    async with WebSocketClient(f"ws://127.0.0.1:{proxy.port}/echo", **FAST) as ws:
        await ws.send({"n": 1})
        got = []
        async for message in ws:
            got.append(message["n"])
            if message["n"] == 1:
                await proxy.cut()
                await until(lambda: not ws.connected)
                await ws.send({"n": 2})  # queued, flushed after the reconnect
            if message["n"] == 2:
                break
        assert got == [1, 2]


async def test_reconnect_gives_up_after_n_attempts(server: WSServer, proxy: FaultProxy) -> None:
    errors_seen: list[BaseException] = []
    ws = WebSocketClient(f"ws://127.0.0.1:{proxy.port}/echo", max_reconnect_attempts=3, **FAST)
    ws.on("error", errors_seen.append)
    async with ws:
        proxy.refuse = True
        accepted = proxy.accepted
        await proxy.cut()
        await until(lambda: not ws.connected)
        pending = asyncio.ensure_future(ws.request({"q": 1}, timeout=10))  # queued
        with pytest.raises(ConnectionError) as info:
            async for _ in ws:
                pass
        assert info.value.code == "ERR_CONNECTION"
        assert info.value.close_code == 1006
        assert "gave up reconnecting after 3 attempt(s)" in str(info.value)
        assert proxy.accepted - accepted == 3
        assert errors_seen == [info.value]
        with pytest.raises(ConnectionError, match="gave up"):
            await pending  # the queued request fails with the same error
        with pytest.raises(ConnectionError):
            await ws.send("too late")


async def test_dead_link_found_by_keepalive_and_reconnected(
    server: WSServer, proxy: FaultProxy
) -> None:
    closes: list[tuple[int, str]] = []
    ws = WebSocketClient(
        f"ws://127.0.0.1:{proxy.port}/echo",
        ping_interval=0.05,
        ping_timeout=0.05,
        open_timeout=0.3,
        **FAST,
    )
    ws.on("close", lambda code, reason: closes.append((code, reason)))
    async with ws:
        proxy.stall = True  # the link stays up but carries nothing: only pings notice
        await until(lambda: not ws.connected)
        await ws.send("while down")
        proxy.stall = False
        assert await ws.receive(timeout=5) == "while down"
        assert closes[0][0] == 1006
        assert ws.stats.reconnects == 1


async def test_no_reconnect_when_disabled(server: WSServer, proxy: FaultProxy) -> None:
    async with WebSocketClient(
        f"ws://127.0.0.1:{proxy.port}/echo", auto_reconnect=False, **FAST
    ) as ws:
        await proxy.cut()
        with pytest.raises(ConnectionError) as info:
            await ws.receive(timeout=5)
        assert info.value.close_code == 1006
        with pytest.raises(ConnectionError, match="lost: code 1006"):
            await ws.send("x")


async def test_send_queue_is_bounded(server: WSServer, proxy: FaultProxy) -> None:
    async with WebSocketClient(
        f"ws://127.0.0.1:{proxy.port}/echo", send_queue_size=3, **FAST
    ) as ws:
        proxy.refuse = True
        await proxy.cut()
        await until(lambda: not ws.connected)
        for i in range(3):
            await ws.send(str(i))
        with pytest.raises(QueueFullError) as info:
            await ws.send("3")
        assert info.value.code == "ERR_QUEUE_FULL"
        proxy.refuse = False
        assert [await ws.receive(timeout=5) for _ in range(3)] == ["0", "1", "2"]


# ---------------------------------------------------------------- sizes


async def test_oversized_message_reported_then_stream_goes_on(server: WSServer) -> None:
    errors_seen: list[BaseException] = []
    ws = WebSocketClient(server.url("/big?size=5000"), max_message_size=1000, **FAST)
    ws.on("error", errors_seen.append)
    async with ws:
        with pytest.raises(MessageTooLargeError) as info:
            await ws.receive(timeout=5)
        assert info.value.code == "ERR_MESSAGE_TOO_LARGE"
        assert "max_message_size (1000 bytes)" in str(info.value)
        assert errors_seen == [info.value]
        # Documented outcome: closed with 1009, then reconnected (the server resends).
        with pytest.raises(MessageTooLargeError):
            await ws.receive(timeout=5)
        assert ws.stats.reconnects >= 1


async def test_oversized_message_without_reconnect_ends_stream(server: WSServer) -> None:
    async with WebSocketClient(
        server.url("/big?size=5000"), max_message_size=1000, auto_reconnect=False
    ) as ws:
        with pytest.raises(MessageTooLargeError):
            await ws.receive(timeout=5)
        with pytest.raises(ConnectionError) as info:
            await ws.receive(timeout=5)
        assert info.value.close_code == 1009


async def test_outgoing_message_too_big_for_server() -> None:
    async with WSServer(max_size=1000) as small:
        async with WebSocketClient(small.url("/echo"), **FAST) as ws:
            await ws.send("y" * 5000)
            with pytest.raises(ConnectionError) as info:
                await ws.receive(timeout=5)
            assert info.value.close_code == 1009
            assert "message too big" in str(info.value)


# ---------------------------------------------------------------- request/response


async def test_hundred_concurrent_requests_each_get_their_reply(server: WSServer) -> None:
    async with WebSocketClient(server.url("/rpc")) as ws:
        replies = await asyncio.gather(
            *(ws.request({"method": "double", "params": i}, timeout=5) for i in range(100))
        )
        assert [r["result"] for r in replies] == list(range(100))
        assert len({r["id"] for r in replies}) == 100
        # The id-less notices still reach iteration.
        notices = [await ws.receive(timeout=5) for _ in range(10)]
        assert [n["count"] for n in notices] == list(range(10, 101, 10))
        assert ws._pending == {}


async def test_request_in_open_handler_ok_in_message_handler_refused(server: WSServer) -> None:
    outcomes: list[Any] = []
    ws = WebSocketClient(server.url("/rpc"))

    @ws.on("open")
    async def hello() -> None:
        outcomes.append(await ws.request({"params": "from open"}, timeout=5))

    @ws.on("message")
    async def nested(data: Any) -> None:
        try:
            await ws.request({"params": "nested"}, timeout=1)
        except ProtocolError as exc:
            outcomes.append(exc.code)

    async with ws:
        assert outcomes[0]["result"] == "from open"
        for i in range(10):  # the tenth request brings an id-less notice
            await ws.request({"params": i}, timeout=5)
        await until(lambda: len(outcomes) == 2)
        assert outcomes[1] == "ERR_PROTOCOL"


async def test_request_timeout_cleans_up(server: WSServer) -> None:
    async with WebSocketClient(server.url("/record"), request_id_field="rid") as ws:
        with pytest.raises(TimeoutError) as info:
            await ws.request({"rid": 7, "q": "?"}, timeout=0.05)
        assert info.value.code == "ERR_TIMEOUT"
        assert ws._pending == {}
        await until(lambda: len(server.received) == 1)
        assert server.received == [{"rid": 7, "q": "?"}]
        with pytest.raises(ProtocolError):
            await ws.request("not a dict")  # type: ignore[arg-type]


async def test_pending_request_fails_on_close(server: WSServer) -> None:
    ws = WebSocketClient(server.url("/record"))
    await ws.connect()
    pending = asyncio.ensure_future(ws.request({"q": 1}))
    await until(lambda: bool(ws._pending))
    await ws.close()
    with pytest.raises(ClosedError):
        await pending


# ---------------------------------------------------------------- handshake, auth, TLS


async def test_compression_negotiated_or_not(server: WSServer) -> None:
    async with WebSocketClient(server.url("/headers")) as ws:
        headers = await ws.receive(timeout=5)
        assert "permessage-deflate" in headers["sec-websocket-extensions"]
        assert ws.extensions == ["permessage-deflate"]
        await ws.send("z" * 100_000)
        assert await ws.receive(timeout=5) == "z" * 100_000
    async with WebSocketClient(server.url("/headers"), compression=False) as ws:
        headers = await ws.receive(timeout=5)
        assert "sec-websocket-extensions" not in headers
        assert ws.extensions == []


async def test_headers_subprotocol_and_bearer_auth(server: WSServer) -> None:
    async with WebSocketClient(
        server.url("/headers"),
        headers={"X-Agent": "a1"},
        subprotocols=["chat.v1"],
        auth={"type": "bearer", "token": "tok123"},
    ) as ws:
        headers = await ws.receive(timeout=5)
        assert headers["x-agent"] == "a1"
        assert headers["authorization"] == "Bearer tok123"
        assert ws.subprotocol == "chat.v1"
    async with WebSocketClient(
        server.url("/secret"), auth={"type": "bearer", "token": "good"}
    ) as ws:
        await ws.send("in")
        assert await ws.receive(timeout=5) == "in"


async def test_handshake_status_errors(server: WSServer) -> None:
    with pytest.raises(AuthenticationError) as auth_info:
        await WebSocketClient(server.url("/secret")).connect()
    assert auth_info.value.code == "ERR_AUTH"
    with pytest.raises(HTTPStatusError) as status_info:
        await WebSocketClient(server.url("/status/503")).connect()
    assert status_info.value.status_code == 503
    with pytest.raises(ConnectionError) as refused:
        await WebSocketClient(f"ws://127.0.0.1:{free_port()}/").connect()
    assert refused.value.code == "ERR_CONNECTION"


async def test_first_message_auth_handshake(server: WSServer) -> None:
    async with WebSocketClient(server.url("/auth"), auth_message={"token": "good"}) as ws:
        await ws.send({"after": "auth"})
        assert await ws.receive(timeout=5) == {"after": "auth"}
    ws = WebSocketClient(server.url("/auth"), auth_message={"token": "bad"})
    with pytest.raises(AuthenticationError, match="Invalid token"):
        await ws.connect()
    await ws.close()


async def test_text_ping_answered_with_pong(server: WSServer) -> None:
    async with WebSocketClient(server.url("/textping"), answer_text_ping=True) as ws:
        assert await ws.receive(timeout=5) == {"type": "got", "data": "pong"}
    async with WebSocketClient(server.url("/textping")) as ws:
        assert await ws.receive(timeout=5) == "ping"  # off by default: delivered as is


async def test_wss_with_custom_ca(tmp_path: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    async def echo(conn: ServerConnection) -> None:
        async for message in conn:
            await conn.send(message)

    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx) as tls_server:
        port = next(iter(tls_server.sockets)).getsockname()[1]
        async with WebSocketClient(f"wss://127.0.0.1:{port}/", ca_certs=str(ca_file)) as ws:
            await ws.send({"secure": True})
            assert await ws.receive(timeout=5) == {"secure": True}
        with pytest.raises(ConnectionError) as info:
            await WebSocketClient(f"wss://127.0.0.1:{port}/").connect()
        assert info.value.code == "ERR_TLS"


async def test_plain_ws_to_remote_host_refused_before_connecting() -> None:
    with pytest.raises(SecurityError) as info:
        WebSocketClient("ws://agents.example.com/ws")
    assert info.value.code == "ERR_SECURITY"
    with pytest.raises(SecurityError):
        WebSocketClient("ws://localhost.evil.com/ws")
    with pytest.raises(SecurityError, match="unsupported URL scheme"):
        WebSocketClient("http://127.0.0.1/ws")
    WebSocketClient("ws://agents.example.com/ws", allow_insecure=True)  # explicit opt-out
    WebSocketClient("wss://agents.example.com/ws")


def test_config_merge_and_validation() -> None:
    base = WebSocketConfig(ping_interval=5, max_reconnect_attempts=2)
    ws = WebSocketClient("wss://example.com/ws", config=base, ping_timeout=3)
    assert (ws.config.ping_interval, ws.config.ping_timeout) == (5, 3)
    assert ws.config.retry_config().max_retries == 1
    with pytest.raises(ConfigError, match="send_queue_size"):
        WebSocketClient("wss://example.com/ws", send_queue_size=-1)
    with pytest.raises(ConfigError, match="subprotocols"):
        WebSocketConfig(subprotocols="chat")
    with pytest.raises(ConfigError, match="not a field"):
        WebSocketClient("wss://example.com/ws", pingInterval=3)
    with pytest.raises(ValueError, match="unknown event"):
        ws.on("opened", print)
    assert "tok" not in repr(WebSocketConfig(auth={"type": "bearer", "token": "tok"}))


# ---------------------------------------------------------------- health, cleanup


async def test_health_check_ping_round_trip(server: WSServer) -> None:
    ws = WebSocketClient(server.url("/echo"))
    status = await ws.health_check()
    assert not status.is_healthy and "not connected" in status.detail
    async with ws:
        status = await ws.health_check()
        assert status.is_healthy and "pong in" in status.detail
        assert status.latency_ms >= 0


async def test_close_leaves_no_task_or_connection(server: WSServer, proxy: FaultProxy) -> None:
    before = asyncio.all_tasks()
    ws = WebSocketClient(f"ws://127.0.0.1:{proxy.port}/echo", **FAST)
    ws.on("message", lambda m: None)
    await ws.connect()
    await ws.send("x")
    iterating = asyncio.ensure_future(ws.receive(timeout=5))
    await iterating
    consumer = asyncio.ensure_future(anext(aiter(ws), None))
    proxy.refuse = True
    await proxy.cut()  # close in the middle of reconnecting
    await until(lambda: not ws.connected)
    await ws.send("queued")
    await ws.close()
    assert await consumer is None  # iteration in another task ends quietly
    assert len(ws._tasks) == 0
    assert asyncio.all_tasks() - before == set()
    await until(lambda: server.open_connections == 0)
    with pytest.raises(ClosedError):
        await ws.send("x")
    with pytest.raises(ClosedError):
        await ws.connect()


async def test_close_code_is_checked_before_closing(server: WSServer) -> None:
    async with WebSocketClient(server.url("/echo")) as ws:
        with pytest.raises(ConfigError, match="code"):
            await ws.close(1006)
        with pytest.raises(ConfigError, match="reason"):
            await ws.close(1000, "r" * 124)
        assert ws.connected
        await ws.send("still open")
        assert await ws.receive(timeout=5) == "still open"


async def test_close_during_open_handler_and_from_message_handler(server: WSServer) -> None:
    ws = WebSocketClient(server.url("/ws"))

    @ws.on("message")
    async def stop(data: Any) -> None:
        await ws.close()

    await ws.connect()
    await ws.send({"type": "hello"})
    await until(lambda: ws.is_closed)
    await until(lambda: len(ws._tasks) == 0)
    assert [m async for m in ws] == []


# ---------------------------------------------------------------- I/O-free helpers


def test_close_policy() -> None:
    assert classify_close(1000) is CloseAction.NORMAL
    assert classify_close(4000, ours=True) is CloseAction.NORMAL
    for code in (None, 1001, 1006, 1011, 1012, 1013, 1014):
        assert classify_close(code) is CloseAction.RECONNECT
    for code in (1002, 1003, 1007, 1008, 1009, 4000):
        assert classify_close(code) is CloseAction.FATAL
    assert classify_close(1009, sent_code=1009, sent_first=True) is CloseAction.TOO_BIG
    assert classify_close(1006, sent_code=1009) is CloseAction.TOO_BIG
    assert describe_close(4001, "kicked") == "code 4001 (application code): kicked"
    assert describe_close(1011, "") == "code 1011 (internal error)"


def test_request_ids_and_auth_replies() -> None:
    ids = RequestIds()
    first, second = ids.next(), ids.next()
    assert first != second and first.endswith("-1") and second.endswith("-2")
    assert RequestIds().next() != first
    ok, bad = ("auth_success",), ("auth_error",)
    assert auth_reply({"type": "auth_success"}, ok, bad) is AuthReply.SUCCESS
    assert auth_reply({"type": "auth_error"}, ok, bad) is AuthReply.ERROR
    assert auth_reply({"type": "auth_required"}, ok, bad) is AuthReply.PROMPT
    assert auth_reply("hello", ok, bad) is AuthReply.OTHER
    assert with_query("wss://h/ws", {}) == "wss://h/ws"
    assert with_query("wss://h/ws?a=1", {"key": "x y"}) == "wss://h/ws?a=1&key=x+y"
