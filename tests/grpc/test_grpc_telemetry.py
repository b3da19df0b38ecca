"""gRPC client spans per call shape, status codes and metadata injection, on a real server."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from itertools import takewhile
from traceback import walk_stack
from types import CodeType
from typing import Any

import grpc
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from agenticaiframework.communication import GRPCClient, RemoteError
from agenticaiframework.communication.testing.grpc import GRPCServer, serve_grpc_proto
from tests.servers.grpc_server import PROTO_FILE
from tests.telemetry_support import OTel, otel, traceparent_of

__all__ = ["otel"]

SECRET = "grpc-bearer-5d1e"


class Servicer:
    """AgentService, DataService and ChatService that record each call's metadata."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def _seen(self, context: Any) -> None:
        self.metadata.append({k: v for k, v in context.invocation_metadata()})

    async def ExecuteTask(self, request: Any, context: Any) -> dict[str, Any]:
        self._seen(context)
        if request.fail_code:
            await context.abort(grpc.StatusCode(_code(request.fail_code)), "told to fail")
        return {"task_id": request.task_id, "result": "done"}

    async def StreamTokens(self, request: Any, context: Any) -> AsyncIterator[dict[str, Any]]:
        self._seen(context)
        for index in range(request.count):
            yield {"token": f"t{index}", "index": index}

    async def UploadData(self, requests: Any, context: Any) -> dict[str, Any]:
        self._seen(context)
        chunks = [r async for r in requests]
        return {"chunks": len(chunks), "total_bytes": sum(len(c.chunk) for c in chunks)}

    async def Chat(self, requests: Any, context: Any) -> AsyncIterator[dict[str, Any]]:
        self._seen(context)
        async for message in requests:
            yield {"message": message.message}


def _code(number: int) -> tuple[int, str]:
    return next(c.value for c in grpc.StatusCode if c.value[0] == number)


@pytest.fixture(scope="module")
def servicer() -> Servicer:
    return Servicer()


@pytest.fixture
async def server(servicer: Servicer) -> AsyncIterator[GRPCServer]:
    services = {
        "agents.v1.AgentService": servicer,
        "agents.v1.DataService": servicer,
        "agents.v1.ChatService": servicer,
    }
    async with serve_grpc_proto(PROTO_FILE, services) as srv:
        yield srv


def _client(server: GRPCServer, otel: OTel, **kw: Any) -> GRPCClient:
    return GRPCClient(server.target, proto_files=[str(PROTO_FILE)], **otel.kwargs, **kw)


async def test_a_unary_call_is_a_client_span_and_the_server_sees_its_traceparent(
    server: GRPCServer, servicer: Servicer, otel: OTel
) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    async with _client(server, otel, metadata={"authorization": f"Bearer {SECRET}"}) as client:
        with tracer.start_as_current_span("parent") as parent:
            reply = await client.call("AgentService", "ExecuteTask", {"task_id": "t1"})
    assert reply["result"] == "done"
    (span,) = otel.named("agents.v1.AgentService/ExecuteTask")
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    attrs = dict(span.attributes or {})
    assert attrs["rpc.system"] == "grpc"
    assert attrs["rpc.service"] == "agents.v1.AgentService"
    assert attrs["rpc.method"] == "ExecuteTask"
    assert attrs["rpc.grpc.status_code"] == 0
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == server.port
    assert servicer.metadata[-1]["traceparent"] == traceparent_of(span)
    assert servicer.metadata[-1]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in otel.all_attribute_text()
    (point,) = otel.metrics()["rpc.client.call.duration"]
    assert point.count == 1 and point.attributes["rpc.grpc.status_code"] == 0


async def test_a_failed_status_sets_error_type_and_status(server: GRPCServer, otel: OTel) -> None:
    async with _client(server, otel, max_retries=0) as client:
        with pytest.raises(RemoteError):
            await client.call("AgentService", "ExecuteTask", {"task_id": "t", "fail_code": 7})
    (span,) = otel.named("agents.v1.AgentService/ExecuteTask")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["rpc.grpc.status_code"] == 7  # type: ignore[index]
    assert span.attributes["error.type"] == "PERMISSION_DENIED"  # type: ignore[index]
    (point,) = otel.metrics()["rpc.client.call.duration"]
    assert point.attributes["error.type"] == "PERMISSION_DENIED"


async def test_each_streaming_shape_is_one_span_with_injected_metadata(
    server: GRPCServer, servicer: Servicer, otel: OTel
) -> None:
    async with _client(server, otel) as client:
        tokens = [t async for t in client.stream_call("AgentService", "StreamTokens", {"count": 3})]
        upload = await client.stream_send(
            "DataService", "UploadData", [{"chunk": b"ab"}, {"chunk": b"c"}]
        )
        async with client.bidirectional_stream(
            "ChatService", "Chat", [{"message": "hi"}, {"message": "yo"}]
        ) as chat:
            echoed = [m async for m in chat]
    assert len(tokens) == 3 and upload["chunks"] == 2 and len(echoed) == 2
    names = [
        "agents.v1.AgentService/StreamTokens",
        "agents.v1.DataService/UploadData",
        "agents.v1.ChatService/Chat",
    ]
    spans = [otel.named(name) for name in names]
    assert all(len(found) == 1 for found in spans), [s.name for s in otel.spans()]
    for (span,), seen in zip(spans, servicer.metadata[-3:], strict=True):
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET
        assert span.attributes["rpc.grpc.status_code"] == 0  # type: ignore[index]
        assert seen["traceparent"] == traceparent_of(span)
    assert len(otel.metrics()["rpc.client.call.duration"]) == 3


async def test_telemetry_false_injects_nothing(
    server: GRPCServer, servicer: Servicer, otel: OTel
) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    async with _client(server, otel, telemetry=False) as client:
        with tracer.start_as_current_span("parent"):
            await client.call("AgentService", "ExecuteTask", {"task_id": "t1"})
    assert [s.name for s in otel.spans()] == ["parent"]
    assert "traceparent" not in servicer.metadata[-1]


class _Recording:
    """A stub that lists the client's frames each call to it sits under, then calls the stub."""

    def __init__(self, stub: Any, test: CodeType, chains: list[list[str]]) -> None:
        self._stub = stub
        self._test = test
        self._chains = chains

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        test = self._test
        frames = takewhile(lambda f: f[0].f_code is not test, walk_stack(sys._getframe(1)))
        self._chains.append([frame.f_code.co_qualname for frame, _ in frames])
        return self._stub(*args, **kwargs)


async def test_with_telemetry_off_calls_reach_the_stub_from_their_own_frames(
    server: GRPCServer,
) -> None:
    # Per-call cost: no inner coroutine (the old _unary/_client_stream) between call() or
    # stream_send() and the gRPC stub; the client's frames each stub call sits under are listed.
    test = sys._getframe().f_code
    chains: list[list[str]] = []
    client = GRPCClient(server.target, proto_files=[str(PROTO_FILE)], telemetry=False)
    async with client:
        # The first calls make the stubs; the next ones go through the recording wrappers.
        await client.call("AgentService", "ExecuteTask", {"task_id": "t0"})
        await client.stream_send("DataService", "UploadData", [{"chunk": b"a"}])
        for path, stub in list(client._callables.items()):
            client._callables[path] = _Recording(stub, test, chains)
        reply = await client.call("AgentService", "ExecuteTask", {"task_id": "t1"})
        upload = await client.stream_send(
            "DataService", "UploadData", [{"chunk": b"ab"}, {"chunk": b"c"}]
        )
    assert reply["task_id"] == "t1" and reply["result"] == "done"
    assert upload["chunks"] == 2 and upload["total_bytes"] == 3
    assert chains == [["GRPCClient.call"], ["GRPCClient.stream_send"]]
