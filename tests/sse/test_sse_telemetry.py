"""SSE stream spans: one CLIENT span per stream, reconnects as events, traceparent on every request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from agenticaiframework.communication import SSEClient
from agenticaiframework.communication.core import errors
from agenticaiframework.communication.testing.http import echo_app, serve_asgi
from tests.telemetry_support import OTel, otel, traceparent_of

__all__ = ["otel"]

SECRET = "sse-secret-91c2"


class Headers:
    """Wraps the echo app: records the headers of every request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append({bytes(k).decode(): bytes(v).decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Headers]]:
    app, _ = echo_app(count=5, cut_after=2)
    recorder = Headers(app)
    async with serve_asgi(recorder) as url:
        yield url, recorder


async def test_the_stream_is_one_span_with_reconnects_as_events(
    server: tuple[str, Headers], otel: OTel
) -> None:
    url, recorder = server
    tracer = otel.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("parent") as parent:
        async with SSEClient(
            f"{url}/events?access_token={SECRET}", terminal_event="done", **otel.kwargs
        ) as client:
            events = [event async for event in client]
    assert [e.id for e in events if e.event == "message"] == ["1", "2", "3", "4", "5"]
    (span,) = otel.named("GET")
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    attrs = dict(span.attributes or {})
    assert attrs["url.full"] == f"{url}/events?access_token=***"
    assert attrs["http.response.status_code"] == 200
    assert attrs["agentcomm.sse.events"] == 6  # five numbered events and "done"
    (reconnect,) = [e for e in span.events if e.name == "sse.reconnect"]
    assert reconnect.attributes["sse.last_event_id"] == "2"  # type: ignore[index]
    # The first request and the resumed one both name the stream's span.
    assert [h["traceparent"] for h in recorder.seen] == [traceparent_of(span)] * 2
    assert recorder.seen[1]["last-event-id"] == "2"
    assert SECRET not in otel.all_attribute_text()
    metrics = otel.metrics()
    assert sum(p.value for p in metrics["agentcomm.sse.events"]) == 6
    assert sum(p.value for p in metrics["agentcomm.client.reconnects"]) == 1


async def test_a_refused_stream_marks_the_span_failed(
    server: tuple[str, Headers], otel: OTel
) -> None:
    url, _ = server
    client = SSEClient(f"{url}/nothing-here", auto_reconnect=False, **otel.kwargs)
    with pytest.raises(errors.ProtocolError):  # the echo answers JSON, not a stream
        await client.connect()
    await client.close()
    (span,) = otel.named("GET")
    assert span.status.status_code is StatusCode.ERROR
    assert "UnexpectedContentTypeError" in span.attributes["error.type"]  # type: ignore[operator]


async def test_telemetry_false_sends_no_traceparent(
    server: tuple[str, Headers], otel: OTel
) -> None:
    url, recorder = server
    tracer = otel.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("parent"):
        async with SSEClient(
            f"{url}/events?cut_after=0", terminal_event="done", telemetry=False, **otel.kwargs
        ) as client:
            async for _ in client:
                pass
    assert [s.name for s in otel.spans()] == ["parent"]
    assert all("traceparent" not in h for h in recorder.seen)
