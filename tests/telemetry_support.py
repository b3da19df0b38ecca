"""Shared helpers of the telemetry tests: a private SDK per test, never the global one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind


@dataclass
class OTel:
    """A tracer and meter provider for one test, with in-memory exporters."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments that point a client at these providers."""
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def kind(self, kind: SpanKind) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.kind is kind]

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points."""
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def all_attribute_text(self) -> str:
        """Every attribute, event and status text of every span and metric, as one string."""
        parts: list[str] = []
        for span in self.spans():
            parts.append(span.name)
            parts.extend(f"{k}={v}" for k, v in (span.attributes or {}).items())
            for event in span.events:
                parts.append(event.name)
                parts.extend(f"{k}={v}" for k, v in (event.attributes or {}).items())
            parts.append(str(span.status.description))
        for points in self.metrics().values():
            for point in points:
                parts.extend(f"{k}={v}" for k, v in (point.attributes or {}).items())
        return "\n".join(parts)


def traceparent_of(span: ReadableSpan) -> str:
    """The ``traceparent`` header naming ``span``."""
    ctx = span.get_span_context()
    assert ctx is not None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


@pytest.fixture
def otel() -> Iterator[OTel]:
    """A private SDK: pass ``**otel.kwargs`` to a client."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield OTel(tracer_provider, meter_provider, exporter, reader)
    tracer_provider.shutdown()
    meter_provider.shutdown()
