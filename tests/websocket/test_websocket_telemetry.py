"""WebSocket telemetry: the handshake span and its headers, request() and messaging spans, the
opt-in trace field in JSON messages, reconnects; on both engines (conftest)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import takewhile
from traceback import walk_stack
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from agenticaiframework.communication import WebSocketClient
from tests.servers.proxy import FaultProxy
from tests.servers.ws_server import WSServer
from tests.telemetry_support import OTel, otel, traceparent_of

__all__ = ["otel"]

SECRET = "ws-secret-88a1"
FAST: dict[str, Any] = {"reconnect_delay": 0.02, "max_reconnect_delay": 0.05, "close_timeout": 0.3}


@pytest.fixture
async def server() -> AsyncIterator[WSServer]:
    async with WSServer() as srv:
        yield srv


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_the_handshake_span_names_the_traceparent_the_server_gets(
    server: WSServer, otel: OTel
) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("parent") as parent:
        async with WebSocketClient(
            server.url(f"/headers?token={SECRET}"), headers={"X-Api-Key": SECRET}, **otel.kwargs
        ) as ws:
            headers = await ws.receive(timeout=5)
    (connect,) = otel.named("websocket connect")
    assert connect.kind is SpanKind.CLIENT
    assert connect.parent is not None
    assert connect.parent.span_id == parent.get_span_context().span_id
    assert headers["traceparent"] == traceparent_of(connect)
    attrs = dict(connect.attributes or {})
    assert attrs["url.full"].endswith("/headers?token=***")
    assert attrs["messaging.system"] == "websocket"
    (received,) = otel.named("receive /headers")
    assert received.kind is SpanKind.CONSUMER
    assert SECRET not in otel.all_attribute_text()


async def test_request_send_and_the_trace_field_round_trip(server: WSServer, otel: OTel) -> None:
    async with WebSocketClient(server.url("/echo"), trace_field="_trace", **otel.kwargs) as ws:
        reply = await ws.request({"op": "sum", "args": [1, 2]})
        await ws.send("plain text")  # not a JSON object: sent as is
        assert await ws.receive(timeout=5) == "plain text"
    (request,) = otel.named("request /echo")
    (send, _plain) = otel.named("send /echo")
    assert request.kind is SpanKind.CLIENT and send.kind is SpanKind.PRODUCER
    assert send.parent is not None and send.parent.span_id == request.context.span_id
    # The echoed reply carries the field the send span injected.
    assert reply["_trace"]["traceparent"] == traceparent_of(send)
    assert reply["op"] == "sum"
    points = otel.metrics()["messaging.client.sent.messages"]
    assert sum(p.value for p in points) == 2
    assert otel.metrics()["agentcomm.websocket.request.duration"][0].count == 1


async def test_a_received_trace_field_parents_the_receive_span(
    server: WSServer, otel: OTel
) -> None:
    async with WebSocketClient(server.url("/echo"), trace_field="_trace", **otel.kwargs) as ws:
        await ws.send({"n": 1})
        message = await ws.receive(timeout=5)
    (send,) = otel.named("send /echo")
    (received,) = otel.named("receive /echo")
    assert message["_trace"]["traceparent"] == traceparent_of(send)
    assert received.parent is not None and received.parent.span_id == send.context.span_id
    assert received.context.trace_id == send.context.trace_id


async def test_without_trace_field_messages_are_sent_unchanged(
    server: WSServer, otel: OTel
) -> None:
    async with WebSocketClient(server.url("/record"), **otel.kwargs) as ws:
        await ws.send({"n": 1})
        await ws.send("sync")
        assert await ws.receive(timeout=5) == {"type": "ack", "n": 1}
    assert server.received == [{"n": 1}]


async def test_a_reconnect_and_its_flush_are_reported(server: WSServer, otel: OTel) -> None:
    async with FaultProxy(server.port) as proxy:
        ws = WebSocketClient(f"ws://127.0.0.1:{proxy.port}/record", **FAST, **otel.kwargs)
        async with ws:
            proxy.refuse = True
            await proxy.cut()
            await until(lambda: not ws.connected)
            await ws.send({"n": 1})  # queued during the outage
            proxy.refuse = False
            await until(lambda: ws.connected and ws.pending_sends == 0)
    (span,) = otel.named("websocket reconnect")
    events = {e.name: dict(e.attributes or {}) for e in span.events}
    assert events["reconnect"]["agentcomm.reconnect.attempts"] >= 1
    assert events["flush"]["agentcomm.queued_messages"] == 1
    metrics = otel.metrics()
    assert sum(p.value for p in metrics["agentcomm.client.reconnects"]) == 1
    assert sum(p.value for p in metrics["agentcomm.client.queued_messages"]) == 1
    assert len(otel.named("websocket connect")) == 2


async def test_telemetry_false_sends_no_traceparent(server: WSServer, otel: OTel) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("parent"):
        async with WebSocketClient(
            server.url("/headers"), telemetry=False, trace_field="_trace", **otel.kwargs
        ) as ws:
            headers = await ws.receive(timeout=5)
    assert "traceparent" not in headers
    assert [s.name for s in otel.spans()] == ["parent"]


async def test_with_telemetry_off_send_and_request_reach_the_wire_from_their_own_frames(
    server: WSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Per-message cost: no inner coroutine (the old _send/_request) between the public
    # method and the engine's send; the client's frames the wire call sits under are listed.
    test = sys._getframe().f_code
    chains: list[list[str]] = []
    async with WebSocketClient(server.url("/echo"), telemetry=False) as ws:
        conn = ws._conn
        assert conn is not None
        wire = conn.send

        def send(data: str | bytes) -> Awaitable[None]:
            frames = takewhile(lambda f: f[0].f_code is not test, walk_stack(sys._getframe(1)))
            chains.append([frame.f_code.co_qualname for frame, _ in frames])
            return wire(data)

        monkeypatch.setattr(conn, "send", send)
        await ws.send({"n": 1})
        assert await ws.receive(timeout=5) == {"n": 1}
        reply = await ws.request({"op": "sum"})
    assert reply["op"] == "sum"
    assert chains == [
        ["WebSocketClient.send"],
        ["WebSocketClient.send", "WebSocketClient.request"],
    ]
