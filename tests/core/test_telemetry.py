"""The telemetry core: resolution (nothing when nothing is configured), propagation helpers, logs."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest
from opentelemetry import baggage, context
from opentelemetry.trace import NoOpTracerProvider

from agenticaiframework.communication.core.config import HTTPConfig, MQTTConfig
from agenticaiframework.communication.core.errors import ConfigError, RemoteError
from agenticaiframework.communication.core.telemetry import (
    DISABLED,
    TraceLogFilter,
    error_type,
    extract,
    extract_field,
    extract_meta,
    extract_pairs,
    instrumentation_for,
)
from tests.telemetry_support import OTel, otel, traceparent_of

__all__ = ["otel"]


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_the_package_and_using_a_client_imports_no_opentelemetry() -> None:
    out = _run(
        """
        import asyncio, sys
        import agenticaiframework.communication as comm
        from agenticaiframework.communication.core.telemetry import DISABLED

        async def main():
            client = comm.HTTPClient("http://127.0.0.1:9")
            await client.connect()
            assert client._otel is DISABLED
            await client.close()

        asyncio.run(main())
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    assert out == "[]"


def test_opentelemetry_imported_without_an_sdk_resolves_to_disabled() -> None:
    out = _run(
        """
        import opentelemetry.trace, opentelemetry.metrics
        from agenticaiframework.communication.core.config import HTTPConfig
        from agenticaiframework.communication.core.telemetry import DISABLED, instrumentation_for
        print(instrumentation_for(HTTPConfig(), "http") is DISABLED)
        """
    )
    assert out == "True"


def test_a_global_sdk_turns_it_on_and_telemetry_false_off() -> None:
    out = _run(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from agenticaiframework.communication.core.config import HTTPConfig
        from agenticaiframework.communication.core.telemetry import instrumentation_for
        trace.set_tracer_provider(TracerProvider())
        on = instrumentation_for(HTTPConfig(), "http")
        off = instrumentation_for(HTTPConfig(telemetry=False), "http")
        print(on.tracing, on.metering, off.enabled)
        """
    )
    assert out == "True False False"


def test_a_noop_provider_given_is_disabled() -> None:
    config = HTTPConfig(tracer_provider=NoOpTracerProvider())
    assert instrumentation_for(config, "http") is DISABLED


def test_telemetry_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="telemetry"):
        HTTPConfig(telemetry="no")  # type: ignore[arg-type]


def test_providers_are_not_in_repr_and_do_not_affect_equality(otel: OTel) -> None:
    config = MQTTConfig(**otel.kwargs)
    assert "provider" not in repr(config)
    assert config == MQTTConfig()


def test_inject_and_extract_round_trip_every_carrier(otel: OTel) -> None:
    instrumentation = instrumentation_for(HTTPConfig(**otel.kwargs), "http")
    tracer = otel.tracer_provider.get_tracer("test")
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with tracer.start_as_current_span("parent") as parent:
            expected = traceparent_of(parent)  # type: ignore[arg-type]
            headers = instrumentation.trace_headers()
            pairs = instrumentation.inject_pairs([("traceparent", "stale"), ("k", "v")])
            caller_params = {"a": 1, "_meta": {"progressToken": 7}}
            params = instrumentation.inject_meta(caller_params)
            listed = instrumentation.inject_meta([1, 2])
            message = instrumentation.inject_field({"type": "x"}, "_trace")
            text = instrumentation.inject_field("not a dict", "_trace")
    finally:
        context.detach(token)
    assert headers["traceparent"] == expected
    assert headers["baggage"] == "tenant=acme"
    assert pairs[0] == ("k", "v") and ("traceparent", expected) in pairs
    assert [k for k, _ in pairs].count("traceparent") == 1
    assert params["_meta"] == {"progressToken": 7, **headers}
    assert caller_params == {"a": 1, "_meta": {"progressToken": 7}}  # not changed
    assert listed == [1, 2]
    assert message == {"type": "x", "_trace": headers}
    assert text == "not a dict"
    for ctx in (
        extract(headers),
        extract_pairs([("TraceParent", expected), ("other", "x")]),
        extract_meta(params),
        extract_field(message, "_trace"),
    ):
        assert ctx is not None
        from opentelemetry.trace import get_current_span

        span_context = get_current_span(ctx).get_span_context()
        assert f"{span_context.span_id:016x}" == expected.split("-")[2]
    assert extract({"x": "y"}) is None
    assert extract_meta({"a": 1}) is None
    assert extract_field({"_trace": "garbage"}, "_trace") is None
    from opentelemetry.trace import get_current_span

    broken = extract({"traceparent": "00-zz-zz-01"})
    assert broken is not None and not get_current_span(broken).get_span_context().is_valid


def test_disabled_injects_nothing() -> None:
    assert DISABLED.trace_headers() == {}
    assert DISABLED.inject_pairs(None) == []
    assert DISABLED.inject_meta({"a": 1}) == {"a": 1}
    DISABLED.count("agentcomm.client.reconnects")  # a no-op, no meter needed


def test_error_type_names_remote_codes_and_types() -> None:
    assert error_type(RemoteError("x", remote_code=-32601)) == "-32601"
    assert error_type(RemoteError("x", remote_code="NOT_FOUND")) == "NOT_FOUND"
    assert error_type(TimeoutError()) == "TimeoutError"
    assert (
        error_type(ConfigError("x")) == "agenticaiframework.communication.core.errors.ConfigError"
    )


def test_log_filter_adds_ids_only_inside_a_span(otel: OTel) -> None:
    log_filter = TraceLogFilter()
    tracer = otel.tracer_provider.get_tracer("test")

    def record() -> logging.LogRecord:
        return logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)

    outside = record()
    assert log_filter.filter(outside) and not hasattr(outside, "trace_id")
    with tracer.start_as_current_span("s") as span:
        inside = record()
        assert log_filter.filter(inside)
    assert inside.trace_id == f"{span.get_span_context().trace_id:032x}"  # type: ignore[attr-defined]
    assert inside.span_id == f"{span.get_span_context().span_id:016x}"  # type: ignore[attr-defined]


def test_live_tracing_covers_every_logger_of_the_package(otel: OTel) -> None:
    part = logging.getLogger("agenticaiframework.communication.some.part")
    assert not any(isinstance(f, TraceLogFilter) for f in part.filters)
    instrumentation_for(HTTPConfig(**otel.kwargs), "http")
    assert any(isinstance(f, TraceLogFilter) for f in part.filters)
    assert any(
        isinstance(f, TraceLogFilter)
        for f in logging.getLogger("agenticaiframework.communication.mqtt").filters
    )
