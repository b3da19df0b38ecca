"""One trace across protocols: a parent span around an HTTP call, a gRPC call and an MCP tool
call over stdio (and an MQTT 5 publish consumed by a second client) gives spans that all share
the parent's trace id; each server side sees a traceparent naming the client span; no secret
reaches any attribute."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from agenticaiframework.communication import GRPCClient, HTTPClient, MQTTClient
from agenticaiframework.communication.agents.mcp import MCPClient
from agenticaiframework.communication.testing.grpc import serve_grpc_proto
from agenticaiframework.communication.testing.http import serve_asgi
from tests.servers import trace_child
from tests.servers.grpc_server import PROTO_FILE
from tests.servers.mosquitto import Mosquitto
from tests.telemetry_support import OTel, otel, traceparent_of

__all__ = ["otel"]

TOKEN = "e2e-token-3b7f0a"
PASSWORD = "e2e-password-c41d"


class _HeaderApp:
    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.seen.append({bytes(k).decode(): bytes(v).decode() for k, v in scope["headers"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class _Service:
    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    async def ExecuteTask(self, request: Any, context: Any) -> dict[str, Any]:
        self.metadata.append(dict(context.invocation_metadata()))
        return {"task_id": request.task_id, "result": "done"}


@pytest.fixture
async def http_app() -> AsyncIterator[tuple[str, _HeaderApp]]:
    app = _HeaderApp()
    async with serve_asgi(app) as url:
        yield url, app


async def test_one_trace_across_http_mqtt_grpc_and_mcp(
    http_app: tuple[str, _HeaderApp], otel: OTel
) -> None:
    url, app = http_app
    service = _Service()
    tracer = otel.tracer_provider.get_tracer("e2e")
    async with (
        serve_grpc_proto(PROTO_FILE, {"agents.v1.AgentService": service}) as grpc_server,
        Mosquitto() as broker,
        HTTPClient(
            url.replace("://", f"://user:{PASSWORD}@"),
            headers={"Authorization": f"Bearer {TOKEN}"},
            **otel.kwargs,
        ) as http,
        GRPCClient(
            grpc_server.target,
            proto_files=[str(PROTO_FILE)],
            metadata={"x-api-key": TOKEN},
            **otel.kwargs,
        ) as grpc,
        MCPClient(
            command=[sys.executable, trace_child.__file__, f"--token={TOKEN}"], **otel.kwargs
        ) as mcp,
        MQTTClient(broker.url, protocol="5", **otel.kwargs) as consumer,
        MQTTClient(
            broker.url.replace("://", f"://agent:{PASSWORD}@"), protocol="5", **otel.kwargs
        ) as producer,
    ):
        handled: list[Any] = []
        consumer.on_message("events/+", qos=1)(lambda topic, payload: handled.append(payload))
        await consumer.subscribe("events/+", qos=1)
        with tracer.start_as_current_span("agent turn") as parent:
            await http.get(f"/step?access_token={TOKEN}")
            await producer.publish("events/step", {"token": TOKEN}, qos=1)
            await grpc.call("AgentService", "ExecuteTask", {"task_id": "t1"})
            result = await mcp.call_tool("add", {"a": 1, "b": 2, "secret": TOKEN})
        received = await consumer.receive()  # runs the handler: outside the parent span
    trace_id = parent.get_span_context().trace_id
    http_span = otel.named("GET")[0]
    grpc_span = otel.named("agents.v1.AgentService/ExecuteTask")[0]
    mcp_span = otel.named("tools/call add")[0]
    publish = otel.named("publish events/step")[0]
    process = otel.named("process events/+")[0]
    assert handled == [{"token": TOKEN}]
    assert publish.kind is SpanKind.PRODUCER and publish.context.trace_id == trace_id
    assert (
        publish.parent is not None and publish.parent.span_id == parent.get_span_context().span_id
    )
    # The consumer ran later, in another client: its span joins the trace through the message.
    assert process.kind is SpanKind.CONSUMER and process.context.trace_id == trace_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    assert received.user_properties["traceparent"] == traceparent_of(publish)
    for span, kind in (
        (http_span, SpanKind.CLIENT),
        (grpc_span, SpanKind.CLIENT),
        (mcp_span, SpanKind.CLIENT),
    ):
        assert span.context.trace_id == trace_id, span.name
        assert span.kind is kind
        assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert app.seen[-1]["traceparent"] == traceparent_of(http_span)
    assert service.metadata[-1]["traceparent"] == traceparent_of(grpc_span)
    assert json.loads(result["content"][0]["text"])["traceparent"] == traceparent_of(mcp_span)
    exported = otel.all_attribute_text()
    assert TOKEN not in exported and PASSWORD not in exported
