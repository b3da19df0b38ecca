"""Telemetry cost: each client with OpenTelemetry off, on without an SDK, and on with an SDK.

For each small-message workload, clients of the same kind do the same work
against the same server:

- ``telemetry=False``: the baseline (stands in for "opentelemetry-api not
  installed": both resolve to the same disabled instrumentation, and the
  hot paths then do one attribute check);
- default, with ``opentelemetry-api`` imported and no SDK configured (the
  global provider is the API's proxy): must be >= 0.98x the baseline;
- an SDK ``TracerProvider`` (batch processor, an exporter that drops
  everything) and ``MeterProvider`` (an in-memory reader, never collected)
  given as ``tracer_provider=`` / ``meter_provider=``: the overhead of
  recording every span and metric, reported per operation (target <= 15%);
- where OpenTelemetry has an official instrumentation of the library under
  the client (``opentelemetry-instrumentation-httpx``, ``-grpc``, when
  installed), the same ``telemetry=False`` client instrumented by it with an
  SDK like ours: the httpx one makes a span and a duration metric per
  request, as ours; the gRPC one spans only.

- the floor: the ``telemetry=False`` client's call wrapped in just the SDK
  calls ours makes per operation (its spans started and ended, its metrics
  recorded; nothing made current, nothing propagated): the least overhead
  any instrumentation producing the same spans and metrics can have here.

Below the table, per instrumented row: the overhead as a ratio and in µs
per operation; then the SDK calls alone in a tight loop (warm caches, so
lower than the floor), in µs and as a share of the operation's time.

The table's "ours" is the variant, "raw" the ``telemetry=False`` baseline.
Run alone: ``python -m benchmarks.bench_telemetry [--quick] [--cpu]``
(``--cpu``: this process's CPU time per operation instead, steadier on a
shared machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from agenticaiframework.communication import (
    GRPCClient,
    HTTPClient,
    MQTTClient,
    STDIOClient,
    WebSocketClient,
)
from tests.servers.grpc_server import PROTO_FILE
from tests.servers.mosquitto import Mosquitto

from .bench_stdio import _JSONRPC
from .harness import Result, Side, compare_rows, format_table
from .servers import child_server, free_port, pin_server, uvicorn_server

__all__ = ["run"]


def _official(module: str, name: str) -> Any:
    """An official instrumentation's class, for comparison only (not a dependency), or None."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return None


_OTEL_INSTRUMENTATION = "opentelemetry.instrumentation"
HTTPXClientInstrumentor = _official(f"{_OTEL_INSTRUMENTATION}.httpx", "HTTPXClientInstrumentor")
GrpcAioInstrumentorClient = _official(f"{_OTEL_INSTRUMENTATION}.grpc", "GrpcAioInstrumentorClient")

# Notes run() leaves for overhead_lines() (the SDK floor of each workload).
_NOTES: list[str] = []

# Per workload: the SDK calls our instrumentation makes per operation
# (spans, histogram records, counter adds).
_SDK_CALLS: dict[str, tuple[int, int, int]] = {
    "HTTP GET": (1, 1, 0),
    "gRPC unary": (1, 1, 0),
    "JSON-RPC over stdio": (1, 1, 0),
    "WebSocket request()": (2, 1, 1),
    "MQTT 5 publish QoS 1": (1, 0, 1),
}


class _DropExporter(SpanExporter):
    """An exporter that accepts and drops every span (the SDK's own cost only)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _sdk() -> tuple[dict[str, Any], Callable[[], None]]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_DropExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])

    def shutdown() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return {"tracer_provider": tracer_provider, "meter_provider": meter_provider}, shutdown


Call = Callable[[Any, int], Awaitable[None]]


def _side(client: Any, call: Call) -> Side:
    async def side(count: int) -> int:
        for i in range(count):
            await call(client, i)
        return count

    return side


def _bare_side(client: Any, call: Call, sdk: dict[str, Any], label: str) -> Side:
    """The uninstrumented client's call wrapped in just the SDK calls ours makes (the floor).

    Spans started (five attributes) and ended around the call, one more
    attribute at the end, the metrics recorded: no context made current,
    nothing propagated, no attributes derived from the call. What any
    instrumentation emitting the same spans and metrics pays at least, in
    the same process state as the real workload (a tight loop of SDK calls
    alone runs with warm caches and understates it).
    """
    spans, histograms, counters = _SDK_CALLS[label]
    tracer = sdk["tracer_provider"].get_tracer("floor")
    meter = sdk["meter_provider"].get_meter("floor")
    histogram = meter.create_histogram("floor.duration", unit="s")
    counter = meter.create_counter("floor.messages")
    attributes = dict(_FLOOR_ATTRIBUTES)
    kind = SpanKind.CLIENT

    async def side(count: int) -> int:
        for i in range(count):
            started = time.perf_counter()
            opened = [
                tracer.start_span(label, kind=kind, attributes=attributes) for _ in range(spans)
            ]
            await call(client, i)
            for span in opened:
                span.set_attribute("rpc.grpc.status_code", 0)
                span.end()
            for _ in range(histograms):
                histogram.record(time.perf_counter() - started, attributes)
            for _ in range(counters):
                counter.add(1, attributes)
        return count

    return side


_FLOOR_ATTRIBUTES: dict[str, Any] = {
    "rpc.system": "grpc",
    "rpc.service": "AgentService",
    "rpc.method": "ExecuteTask",
    "server.address": "127.0.0.1",
    "server.port": 50051,
}


async def _http_get(client: HTTPClient, i: int) -> None:
    response = await client.get("/")
    assert response.status_code == 200


async def _grpc_unary(client: GRPCClient, i: int) -> None:
    reply = await client.call("AgentService", "ExecuteTask", {"task_id": str(i), "input": "x"})
    assert reply["task_id"] == str(i)


async def _jsonrpc(client: STDIOClient, i: int) -> None:
    result = await client.request("echo", {"i": i})
    assert result["i"] == i


async def _ws_request(client: WebSocketClient, i: int) -> None:
    reply = await client.request({"n": i})
    assert reply["n"] == i


async def _mqtt_publish(client: MQTTClient, i: int) -> None:
    await client.publish("bench/telemetry", b"x" * 64, qos=1)


@contextlib.asynccontextmanager
async def _ws_clients(kw: list[dict[str, Any]]) -> AsyncIterator[list[Any]]:
    port = free_port()
    async with (
        child_server(["-m", "benchmarks.bench_websocket", "--serve", str(port)], port),
        contextlib.AsyncExitStack() as stack,
    ):
        clients = []
        for k in kw:
            client = WebSocketClient(f"ws://127.0.0.1:{port}/echo", ping_interval=0, **k)
            clients.append(await stack.enter_async_context(client))
        yield clients


@contextlib.asynccontextmanager
async def _mqtt_clients(kw: list[dict[str, Any]]) -> AsyncIterator[list[Any]]:
    async with Mosquitto() as broker, contextlib.AsyncExitStack() as stack:
        pin_server(broker.pid)
        yield [
            await stack.enter_async_context(MQTTClient(broker.url, protocol="5", **k)) for k in kw
        ]


@contextlib.asynccontextmanager
async def _http_clients(kw: list[dict[str, Any]]) -> AsyncIterator[list[Any]]:
    async with uvicorn_server() as url, contextlib.AsyncExitStack() as stack:
        clients = []
        for k in kw:
            official = k.get("official")
            own = {key: v for key, v in k.items() if key != "official"}
            client = HTTPClient(url, max_retries=0, **own)
            clients.append(await stack.enter_async_context(client))
            if official is not None:
                # httpx's instrumentation wraps the transport of our client's httpx client.
                HTTPXClientInstrumentor.instrument_client(client._client, **official)
        yield clients


@contextlib.asynccontextmanager
async def _grpc_clients(kw: list[dict[str, Any]]) -> AsyncIterator[list[Any]]:
    port = free_port()
    async with (
        child_server(["-m", "benchmarks.bench_grpc", "--serve", str(port)], port),
        contextlib.AsyncExitStack() as stack,
    ):
        clients = []
        for k in kw:
            official = k.get("official")
            own = {key: v for key, v in k.items() if key != "official"}
            client = GRPCClient(f"127.0.0.1:{port}", proto_files=[str(PROTO_FILE)], **own)
            if official is None:
                clients.append(await stack.enter_async_context(client))
                continue
            # grpc's instrumentation adds its interceptors to the channels opened meanwhile.
            instrumentor = GrpcAioInstrumentorClient()
            instrumentor.instrument(tracer_provider=official["tracer_provider"])
            try:
                clients.append(await stack.enter_async_context(client))
            finally:
                instrumentor.uninstrument()
        yield clients


@contextlib.asynccontextmanager
async def _stdio_clients(kw: list[dict[str, Any]]) -> AsyncIterator[list[Any]]:
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for k in kw:
            client = STDIOClient(_JSONRPC, message_format="jsonrpc", **k)
            clients.append(await stack.enter_async_context(client))
            pin_server(client.pid)
        yield clients


_OFFICIAL: dict[str, tuple[str, Any]] = {
    "HTTP GET": ("opentelemetry-instrumentation-httpx", HTTPXClientInstrumentor),
    "gRPC unary": ("opentelemetry-instrumentation-grpc, spans only", GrpcAioInstrumentorClient),
}


def _workloads() -> list[tuple[str, str, Any, Call]]:
    return [
        ("HTTP GET", "req/s", _http_clients, _http_get),
        ("gRPC unary", "calls/s", _grpc_clients, _grpc_unary),
        ("JSON-RPC over stdio", "rt/s", _stdio_clients, _jsonrpc),
        ("WebSocket request()", "rt/s", _ws_clients, _ws_request),
        ("MQTT 5 publish QoS 1", "msg/s", _mqtt_clients, _mqtt_publish),
    ]


def sdk_floor(sdk: dict[str, Any], spans: int, histograms: int, counters: int) -> float:
    """CPU µs per operation of the SDK calls alone in a tight loop: spans, records, adds.

    Each span is started with five attributes (as ours are), gets one more
    (a status code) and is ended; each record or add has five attributes.
    The median of several runs, with the given providers.
    """
    tracer = sdk["tracer_provider"].get_tracer("floor")
    meter = sdk["meter_provider"].get_meter("floor")
    histogram = meter.create_histogram("floor.duration", unit="s")
    counter = meter.create_counter("floor.messages")
    attributes = dict(_FLOOR_ATTRIBUTES)
    client = SpanKind.CLIENT

    def one() -> None:
        for _ in range(spans):
            span = tracer.start_span("floor", kind=client, attributes=attributes)
            span.set_attribute("rpc.grpc.status_code", 0)
            span.end()
        for _ in range(histograms):
            histogram.record(0.001, attributes)
        for _ in range(counters):
            counter.add(1, attributes)

    n = 2_000
    for _ in range(n // 4):
        one()
    runs = []
    for _ in range(7):
        started = time.process_time()
        for _ in range(n):
            one()
        runs.append((time.process_time() - started) / n * 1e6)
    return statistics.median(runs)


async def run(quick: bool) -> list[Result]:
    """Per workload: API without an SDK vs off, SDK + dropping exporter vs off (and official)."""
    import opentelemetry.trace  # noqa: F401  (the API imported, no SDK configured)

    n = 300 if quick else 5_000
    rounds = 2 if quick else 20
    results: list[Result] = []
    _NOTES.clear()
    for label, unit, clients_of, call in _workloads():
        sdk, shutdown = _sdk()
        official_sdk, official_shutdown = _sdk()
        floor_sdk, floor_shutdown = _sdk()
        name, official = _OFFICIAL.get(label, ("", None))
        kw: list[dict[str, Any]] = [{"telemetry": False}, {}, sdk]
        if official is not None:
            kw.append({"telemetry": False, "official": official_sdk})
        try:
            async with clients_of(kw) as clients:
                off, api, traced = clients[:3]
                assert off._otel.enabled is False and api._otel.enabled is False
                assert traced._otel.tracing and traced._otel.metering
                baseline = _side(off, call)
                rows = [
                    (f"{label} ({n:,}), API without SDK vs off", _side(api, call), baseline),
                    (
                        f"{label} ({n:,}), SDK + dropping exporter vs off",
                        _side(traced, call),
                        baseline,
                    ),
                ]
                rows.append(
                    (
                        f"{label} ({n:,}), floor: bare SDK calls around it vs off",
                        _bare_side(off, call, floor_sdk, label),
                        baseline,
                    )
                )
                if official is not None:
                    rows.append(
                        (
                            f"{label} ({n:,}), official {name} + SDK vs off",
                            _side(clients[3], call),
                            baseline,
                        )
                    )
                results += await compare_rows(
                    rows, total=n, rounds=rounds, memory=not quick, unit=unit
                )
            floor = sdk_floor(sdk, *_SDK_CALLS[label])
            raw = results[-len(rows)].raw
            _NOTES.append(
                f"- {label}: {floor:,.0f} µs per operation = "
                f"{floor * raw / 1e6:.1%} of the operation ({1e6 / raw:,.0f} µs off)"
            )
        finally:
            shutdown()
            official_shutdown()
            floor_shutdown()
    return results


async def cpu_per_operation(quick: bool) -> list[str]:
    """This process's CPU time per operation for each variant (the server's CPU excluded).

    On a shared machine wall-clock rates drift with the neighbours' load;
    the client's own CPU time per operation is what telemetry adds to, and
    is much steadier. Rounds are interleaved; the medians are reported.
    """
    n = 200 if quick else 4_000
    rounds = 3 if quick else 20
    lines = [
        "| workload | off (µs CPU/op) | API, no SDK | SDK, dropping exporter | SDK overhead "
        "| floor: bare SDK calls around the call | SDK calls alone, tight loop "
        "| official + SDK |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, _unit, clients_of, call in _workloads():
        sdk, shutdown = _sdk()
        official_sdk, official_shutdown = _sdk()
        floor_sdk, floor_shutdown = _sdk()
        name, official = _OFFICIAL.get(label, ("", None))
        kw: list[dict[str, Any]] = [{"telemetry": False}, {}, sdk]
        if official is not None:
            kw.append({"telemetry": False, "official": official_sdk})
        try:
            async with clients_of(kw) as clients:
                sides = [_side(c, call) for c in clients]
                sides.insert(3, _bare_side(clients[0], call, floor_sdk, label))
                for side in sides:
                    await side(n // 10)  # warm-up
                cpu: list[list[float]] = [[] for _ in sides]
                order = list(range(len(sides)))
                for r in range(rounds):
                    for i in order if r % 2 == 0 else order[::-1]:
                        started = time.process_time()
                        await sides[i](n // rounds)
                        cpu[i].append((time.process_time() - started) / (n // rounds) * 1e6)
                medians = [statistics.median(c) for c in cpu]
            floor = sdk_floor(sdk, *_SDK_CALLS[label])
        finally:
            shutdown()
            official_shutdown()
            floor_shutdown()
        off, api, traced, bare = medians[:4]
        theirs = (
            f"{medians[4]:,.0f} ({medians[4] / off:.2f}x, {medians[4] - off:+,.0f} µs; {name})"
            if official is not None
            else f"{name}: not installed"
            if name
            else "none exists"
        )
        lines.append(
            f"| {label} | {off:,.0f} | {api:,.0f} ({api / off:.2f}x) | "
            f"{traced:,.0f} ({traced / off:.2f}x) | {traced - off:+,.0f} µs "
            f"({traced / off - 1:+.0%}) | {bare - off:+,.0f} µs ({bare / off - 1:+.0%}) | "
            f"{floor:,.0f} µs ({floor / off:.0%}) | {theirs} |"
        )
    return lines


def overhead_lines(results: list[Result]) -> list[str]:
    """Each instrumented row's overhead per operation (ratio, µs), then the SDK floors."""
    lines = []
    for r in results:
        if "SDK" in r.workload and "API without" not in r.workload and r.ours and r.raw:
            # From the paired per-round ratio (steadier than two medians) and the baseline.
            extra_us = (1 / r.ratio - 1) / r.raw * 1e6
            lines.append(
                f"- {r.workload}: {1 / r.ratio - 1:+.1%} time per operation "
                f"({1 / r.ratio:.2f}x, {extra_us:+,.0f} µs)"
            )
    if _NOTES:
        lines += [
            "",
            "SDK calls alone in a tight loop (CPU time per operation, share of the operation):",
            *_NOTES,
        ]
    return lines


if __name__ == "__main__":
    if "--cpu" in sys.argv:
        print("\n".join(asyncio.run(cpu_per_operation("--quick" in sys.argv))))
    else:
        rows = asyncio.run(run("--quick" in sys.argv))
        print(format_table("telemetry: variant vs telemetry=False", rows))
        print("\n".join(["", *overhead_lines(rows)]))
