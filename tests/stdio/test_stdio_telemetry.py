"""JSON-RPC over stdio: a CLIENT span per request, trace context in ``params._meta``."""

from __future__ import annotations

import sys
from itertools import takewhile
from traceback import walk_stack

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from agenticaiframework.communication import RemoteError, STDIOClient
from tests.servers import trace_child
from tests.telemetry_support import OTel, otel, traceparent_of

__all__ = ["otel"]

CHILD = [sys.executable, trace_child.__file__]


async def test_a_request_is_a_client_span_and_the_child_gets_its_traceparent(otel: OTel) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    async with STDIOClient(command=CHILD, message_format="jsonrpc", **otel.kwargs) as client:
        with tracer.start_as_current_span("parent") as parent:
            echoed = await client.request("echo", {"x": 1})
            with pytest.raises(RemoteError):
                await client.request("missing", {"x": 2})
    (span,) = otel.named("echo")
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    attrs = dict(span.attributes or {})
    assert attrs["rpc.system"] == "jsonrpc"
    assert attrs["rpc.method"] == "echo"
    assert attrs["rpc.jsonrpc.request_id"] == 1
    assert echoed["x"] == 1
    assert echoed["_meta"]["traceparent"] == traceparent_of(span)
    (failed,) = otel.named("missing")
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "-32601"  # type: ignore[index]
    points = otel.metrics()["rpc.client.call.duration"]
    assert sorted(p.attributes.get("error.type", "") for p in points) == ["", "-32601"]


async def test_list_params_are_sent_unchanged(otel: OTel) -> None:
    async with STDIOClient(command=CHILD, message_format="jsonrpc", **otel.kwargs) as client:
        assert await client.request("echo", [1, 2]) == [1, 2]
    assert len(otel.named("echo")) == 1


async def test_telemetry_false_adds_no_meta(otel: OTel) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    async with STDIOClient(
        command=CHILD, message_format="jsonrpc", telemetry=False, **otel.kwargs
    ) as client:
        with tracer.start_as_current_span("parent"):
            assert await client.request("echo", {"x": 1}) == {"x": 1}
    assert [s.name for s in otel.spans()] == ["parent"]


async def test_with_telemetry_off_a_request_is_written_from_its_own_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Per-request cost: no inner coroutine (the old _request) between request() and the
    # write to the child's stdin; the client's frames the write sits under are listed.
    test = sys._getframe().f_code
    chains: list[list[str]] = []
    async with STDIOClient(command=CHILD, message_format="jsonrpc", telemetry=False) as client:
        stdin = client._stdin
        assert stdin is not None
        wire = stdin.write

        def write(data: bytes | bytearray | memoryview) -> None:
            frames = takewhile(lambda f: f[0].f_code is not test, walk_stack(sys._getframe(1)))
            chains.append([frame.f_code.co_qualname for frame, _ in frames])
            wire(data)

        monkeypatch.setattr(stdin, "write", write)
        assert await client.request("echo", {"x": 1}) == {"x": 1}
    assert chains == [["STDIOClient.request"]]
