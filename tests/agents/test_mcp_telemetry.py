"""MCP client spans per the MCP conventions, and context both ways in ``params._meta``."""

from __future__ import annotations

import json
import sys
from traceback import walk_stack
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from agenticaiframework.communication.agents.mcp import MCPClient
from tests.servers import trace_child
from tests.telemetry_support import OTel, otel, traceparent_of

__all__ = ["otel"]

CHILD = [sys.executable, trace_child.__file__]


async def test_a_tool_call_is_an_mcp_span_and_the_server_sees_its_traceparent(otel: OTel) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    async with MCPClient(command=CHILD, **otel.kwargs) as mcp:
        with tracer.start_as_current_span("parent") as parent:
            result = await mcp.call_tool("add", {"a": 1, "b": 2})
    (span,) = otel.named("tools/call add")
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    attrs = dict(span.attributes or {})
    assert attrs["mcp.method.name"] == "tools/call"
    assert attrs["gen_ai.tool.name"] == "add"
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["mcp.protocol.version"] == mcp.protocol_version
    assert attrs["network.transport"] == "pipe"
    assert attrs["jsonrpc.request.id"] == "2"  # initialize was 1
    meta = json.loads(result["content"][0]["text"])
    assert meta["traceparent"] == traceparent_of(span)
    (point,) = otel.metrics()["mcp.client.operation.duration"]
    assert point.attributes["mcp.method.name"] == "tools/call"


async def test_a_server_request_continues_the_servers_trace(otel: OTel) -> None:
    sampled: list[dict[str, Any]] = []

    def sampling(params: dict[str, Any]) -> dict[str, Any]:
        sampled.append(params)
        return {"role": "assistant", "content": {"type": "text", "text": "ok"}, "model": "m"}

    async with MCPClient(command=CHILD, sampling_handler=sampling, **otel.kwargs) as mcp:
        await mcp.call_tool("sample", {})
    assert sampled
    (served,) = otel.named("sampling/createMessage")
    assert served.kind is SpanKind.SERVER
    _, trace_id, span_id, _ = trace_child.SERVER_TRACEPARENT.split("-")
    assert f"{served.context.trace_id:032x}" == trace_id
    assert served.parent is not None and f"{served.parent.span_id:016x}" == span_id
    assert served.attributes["mcp.method.name"] == "sampling/createMessage"  # type: ignore[index]


async def test_telemetry_false_sends_no_meta(otel: OTel) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    async with MCPClient(command=CHILD, telemetry=False, **otel.kwargs) as mcp:
        with tracer.start_as_current_span("parent"):
            result = await mcp.call_tool("add", {"a": 1, "b": 2})
    assert json.loads(result["content"][0]["text"]) is None
    assert [s.name for s in otel.spans()] == ["parent"]


async def test_over_streamable_http_the_http_post_is_a_child_of_the_mcp_span(otel: OTel) -> None:
    from tests.servers.mcp_process import python_server

    server = python_server()
    url = await server.start()
    try:
        async with MCPClient(url, **otel.kwargs) as mcp:
            result = await mcp.call_tool("echo", {"text": "hi"})
            session_id = mcp.session_id
    finally:
        await server.stop()
    assert result["isError"] is False
    (span,) = otel.named("tools/call echo")
    attrs = dict(span.attributes or {})
    assert attrs["network.transport"] == "tcp"
    assert session_id and attrs["mcp.session.id"] == session_id
    posts = [
        s
        for s in otel.named("POST")
        if s.parent is not None and s.parent.span_id == span.context.span_id
    ]
    assert len(posts) == 1 and posts[0].kind is SpanKind.CLIENT
    assert posts[0].context.trace_id == span.context.trace_id


async def test_with_telemetry_off_a_request_is_sent_from_its_own_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Per-request cost: no wrapping coroutine (the old _send_request) between the
    # session's request() and the transport; the session frames the send sits under.
    chains: list[list[str]] = []
    async with MCPClient(command=CHILD, telemetry=False) as mcp:
        session = mcp._session
        assert session is not None
        transport = session._transport
        wire = transport.send

        async def send(message: Any) -> None:
            frames = [f.f_code.co_qualname for f, _ in walk_stack(sys._getframe(1))]
            chains.append([name for name in frames if name.startswith("MCPSession.")])
            await wire(message)

        monkeypatch.setattr(transport, "send", send)
        assert await mcp.call_tool("add", {"a": 1, "b": 2})
    assert chains[0] == ["MCPSession._request", "MCPSession.request"]
