"""Injection writes exactly what the application's global propagator would, and follows it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage, context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from agenticaiframework.communication.core.config import HTTPConfig
from agenticaiframework.communication.core.telemetry import Instrumentation, instrumentation_for
from tests.telemetry_support import OTel, otel

__all__ = ["otel"]


class _Custom(TextMapPropagator):
    """A propagator of the application's own (B3-like): one made-up header."""

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[Any] = default_setter,
    ) -> None:
        ctx = trace.get_current_span(context).get_span_context()
        setter.set(carrier, "x-custom-trace", f"{ctx.trace_id:x}:{ctx.span_id:x}")

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[Any] = default_getter,
    ) -> Context:
        return context or Context()

    @property
    def fields(self) -> set[str]:
        return {"x-custom-trace"}


@pytest.fixture
def live(otel: OTel) -> Instrumentation:
    return instrumentation_for(HTTPConfig(**otel.kwargs), "http")


@pytest.fixture
def restore_textmap() -> Iterator[None]:
    saved = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(saved)


def _api_headers(span: Any = None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=None if span is None else trace.set_span_in_context(span))
    return carrier


def test_w3c_headers_match_the_apis_propagator(live: Instrumentation) -> None:
    state = TraceState([("vendor", "v1"), ("other", "x")])
    remote = NonRecordingSpan(
        SpanContext(0xABC, 0x12, is_remote=True, trace_flags=TraceFlags(0), trace_state=state)
    )
    sampled = NonRecordingSpan(
        SpanContext(0x1 << 100, 0xFFFF, is_remote=False, trace_flags=TraceFlags(1))
    )
    for span in (remote, sampled):
        assert live.trace_headers(span) == _api_headers(span)
        token = context.attach(trace.set_span_in_context(span))
        try:
            assert live.trace_headers() == _api_headers()
        finally:
            context.detach(token)
    assert live.trace_headers(remote)["tracestate"] == "vendor=v1,other=x"
    assert live.trace_headers(sampled)["traceparent"].endswith("-01")
    assert live.trace_headers() == {} == _api_headers()  # no current span: nothing


def test_baggage_is_written_only_when_there_is_some(live: Instrumentation) -> None:
    span = NonRecordingSpan(SpanContext(7, 8, is_remote=False, trace_flags=TraceFlags(1)))
    assert "baggage" not in live.trace_headers(span)
    token = context.attach(baggage.set_baggage("tenant", "a b"))
    try:
        headers = live.trace_headers(span)
        assert headers == _api_headers(span)
    finally:
        context.detach(token)
    assert headers["baggage"] == "tenant=a+b"


def test_the_applications_own_global_propagator_is_followed(
    live: Instrumentation, restore_textmap: None
) -> None:
    span = NonRecordingSpan(SpanContext(0xAB, 0xCD, is_remote=False, trace_flags=TraceFlags(1)))
    default = propagate.get_global_textmap()
    w3c = live.trace_headers(span)
    propagate.set_global_textmap(_Custom())
    assert live.trace_headers(span) == {"x-custom-trace": "ab:cd"}
    assert live.inject_pairs(None, span) == [("x-custom-trace", "ab:cd")]
    propagate.set_global_textmap(default)
    assert live.trace_headers(span) == w3c
