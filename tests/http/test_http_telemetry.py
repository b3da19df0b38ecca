"""HTTP client spans, metrics and traceparent injection, against a real loopback server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from agenticaiframework.communication import HTTPClient
from agenticaiframework.communication.core import errors
from agenticaiframework.communication.core.telemetry import DISABLED
from agenticaiframework.communication.testing.http import serve_asgi
from tests.telemetry_support import OTel, otel, traceparent_of

__all__ = ["otel"]

SECRET = "tok-7f3a9c-SECRET"
FAST = {"retry_delay": 0.01, "max_retry_delay": 0.05}


class Recorder:
    """A small ASGI app: records every request's headers; /flaky fails twice, /hop redirects."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.flaky = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        headers = {bytes(k).decode(): bytes(v).decode() for k, v in scope["headers"]}
        self.seen.append((path, headers))
        status, extra, body = 200, [], b"ok"
        if path == "/flaky":
            self.flaky += 1
            if self.flaky <= 2:
                status, body = 503, b"busy"
        elif path == "/hop":
            status, extra = 302, [(b"location", b"/ok")]
        elif path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Recorder]]:
    app = Recorder()
    async with serve_asgi(app) as url:
        yield url, app


async def test_one_client_span_in_the_parent_trace_and_the_server_sees_it(
    server: tuple[str, Recorder], otel: OTel
) -> None:
    url, app = server
    tracer = otel.tracer_provider.get_tracer("test")
    async with HTTPClient(url, **otel.kwargs) as client:
        with tracer.start_as_current_span("parent") as parent:
            response = await client.get(f"/ok?api_key={SECRET}&page=2")
    assert response.status_code == 200
    (span,) = otel.named("GET")
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.context.trace_id == parent.get_span_context().trace_id
    attrs = dict(span.attributes or {})
    assert attrs["http.request.method"] == "GET"
    assert attrs["http.response.status_code"] == 200
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == int(url.rsplit(":", 1)[1])
    assert attrs["url.full"] == f"{url}/ok?api_key=***&page=2"
    assert app.seen[-1][1]["traceparent"] == traceparent_of(span)
    assert SECRET not in otel.all_attribute_text()
    (point,) = otel.metrics()["http.client.request.duration"]
    assert point.count == 1
    assert point.attributes["http.response.status_code"] == 200
    assert "url.full" not in point.attributes


async def test_each_retry_is_a_child_span_with_its_resend_count(
    server: tuple[str, Recorder], otel: OTel
) -> None:
    url, app = server
    async with HTTPClient(url, **otel.kwargs, **FAST) as client:
        response = await client.get("/flaky")
    assert response.status_code == 200
    spans = otel.named("GET")
    logical = [s for s in spans if "http.request.resend_count" not in (s.attributes or {})]
    resends = sorted(
        (s for s in spans if "http.request.resend_count" in (s.attributes or {})),
        key=lambda s: s.attributes["http.request.resend_count"],  # type: ignore[index]
    )
    assert len(logical) == 1 and len(resends) == 2
    (root,) = logical
    assert [s.attributes["http.request.resend_count"] for s in resends] == [1, 2]  # type: ignore[index]
    for child in resends:
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert child.kind is SpanKind.CLIENT
    assert resends[-1].attributes["http.response.status_code"] == 200  # type: ignore[index]
    # The first attempt went out under the logical span, each resend under its own span.
    sent = [h["traceparent"] for path, h in app.seen if path == "/flaky"]
    assert sent == [traceparent_of(root), traceparent_of(resends[0]), traceparent_of(resends[1])]
    assert root.attributes["http.response.status_code"] == 200  # type: ignore[index]
    assert root.status.status_code is StatusCode.UNSET


async def test_a_redirect_hop_is_a_child_span(server: tuple[str, Recorder], otel: OTel) -> None:
    url, app = server
    async with HTTPClient(url, **otel.kwargs) as client:
        response = await client.get("/hop")
    assert response.status_code == 200
    (hop,) = [s for s in otel.named("GET") if s.attributes.get("http.request.resend_count")]  # type: ignore[union-attr]
    assert hop.attributes["url.full"] == f"{url}/ok"  # type: ignore[index]
    assert app.seen[-1] == ("/ok", app.seen[-1][1])
    assert app.seen[-1][1]["traceparent"] == traceparent_of(hop)


async def test_a_5xx_answer_marks_the_span_failed(server: tuple[str, Recorder], otel: OTel) -> None:
    url, _ = server
    async with HTTPClient(url, max_retries=0, **otel.kwargs) as client:
        response = await client.get("/status/500")
    assert response.status_code == 500
    (span,) = otel.named("GET")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "500"  # type: ignore[index]
    (point,) = otel.metrics()["http.client.request.duration"]
    assert point.attributes["error.type"] == "500"


async def test_a_refused_connection_records_error_type(otel: OTel) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with HTTPClient(f"http://127.0.0.1:{port}", max_retries=0, **otel.kwargs) as client:
        with pytest.raises(errors.ConnectionError):
            await client.get(f"/x?token={SECRET}")
    (span,) = otel.named("GET")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"].endswith("ConnectionError")  # type: ignore[index,union-attr]
    assert SECRET not in otel.all_attribute_text()


async def test_a_stream_span_lasts_to_the_end_of_the_block(
    server: tuple[str, Recorder], otel: OTel
) -> None:
    url, app = server
    async with HTTPClient(url, **otel.kwargs) as client:
        async with client.stream("GET", "/ok") as response:
            assert otel.named("GET") == []  # not ended yet
            assert await response.aread() == b"ok"
    (span,) = otel.named("GET")
    assert app.seen[-1][1]["traceparent"] == traceparent_of(span)


async def test_telemetry_false_sends_nothing_and_records_nothing(
    server: tuple[str, Recorder], otel: OTel
) -> None:
    url, app = server
    tracer = otel.tracer_provider.get_tracer("test")
    async with HTTPClient(url, telemetry=False, **otel.kwargs) as client:
        assert client._otel is DISABLED
        with tracer.start_as_current_span("parent"):
            await client.get("/ok")
    assert [s.name for s in otel.spans()] == ["parent"]
    assert "traceparent" not in app.seen[-1][1]
    assert "http.client.request.duration" not in otel.metrics()


async def test_no_sdk_configured_means_no_instrumentation(server: tuple[str, Recorder]) -> None:
    url, app = server
    async with HTTPClient(url) as client:
        assert client._otel is DISABLED
        await client.get("/ok")
    assert "traceparent" not in app.seen[-1][1]


async def test_log_records_written_in_a_span_carry_its_ids(
    server: tuple[str, Recorder], otel: OTel, caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = server
    caplog.set_level(logging.INFO, logger="agenticaiframework.communication.http")
    async with HTTPClient(url, **otel.kwargs, **FAST) as client:
        await client.get("/flaky")
    root = next(s for s in otel.named("GET") if "http.request.resend_count" not in s.attributes)  # type: ignore[operator]
    retries = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    assert retries
    for record in retries:
        assert record.trace_id == f"{root.context.trace_id:032x}"  # type: ignore[attr-defined]
        assert record.span_id == f"{root.context.span_id:016x}"  # type: ignore[attr-defined]
