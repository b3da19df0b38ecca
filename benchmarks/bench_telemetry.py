"""Telemetry cost: each client with OpenTelemetry off, on without an SDK, and on with an SDK.

For each small-message workload, three clients of the same kind do the same
work against the same server:

- ``telemetry=False``: the baseline (stands in for "opentelemetry-api not
  installed": both resolve to the same disabled instrumentation, and the
  hot paths then do one attribute check);
- default, with ``opentelemetry-api`` imported and no SDK configured (the
  global provider is the API's proxy): must be >= 0.98x the baseline;
- an SDK ``TracerProvider`` (batch processor, an exporter that drops
  everything) and ``MeterProvider`` (an in-memory reader, never collected)
  given as ``tracer_provider=`` / ``meter_provider=``: the overhead of
  recording every span and metric, reported per operation (target <= 15%).

The table's "ours" is the variant, "raw" the ``telemetry=False`` baseline.
Run alone: ``python -m benchmarks.bench_telemetry [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

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
        yield [await stack.enter_async_context(HTTPClient(url, max_retries=0, **k)) for k in kw]


@contextlib.asynccontextmanager
async def _grpc_clients(kw: list[dict[str, Any]]) -> AsyncIterator[list[Any]]:
    port = free_port()
    async with (
        child_server(["-m", "benchmarks.bench_grpc", "--serve", str(port)], port),
        contextlib.AsyncExitStack() as stack,
    ):
        clients = []
        for k in kw:
            client = GRPCClient(f"127.0.0.1:{port}", proto_files=[str(PROTO_FILE)], **k)
            clients.append(await stack.enter_async_context(client))
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


async def run(quick: bool) -> list[Result]:
    """Per workload: API without an SDK vs off, and SDK with a dropping exporter vs off."""
    import opentelemetry.trace  # noqa: F401  (the API imported, no SDK configured)

    n = 300 if quick else 5_000
    rounds = 2 if quick else 20
    workloads: list[tuple[str, str, Any, Call]] = [
        ("HTTP GET", "req/s", _http_clients, _http_get),
        ("gRPC unary", "calls/s", _grpc_clients, _grpc_unary),
        ("JSON-RPC over stdio", "rt/s", _stdio_clients, _jsonrpc),
        ("WebSocket request()", "rt/s", _ws_clients, _ws_request),
        ("MQTT 5 publish QoS 1", "msg/s", _mqtt_clients, _mqtt_publish),
    ]
    results: list[Result] = []
    for label, unit, clients_of, call in workloads:
        sdk, shutdown = _sdk()
        try:
            async with clients_of([{"telemetry": False}, {}, sdk]) as (off, api, traced):
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
                results += await compare_rows(
                    rows, total=n, rounds=rounds, memory=not quick, unit=unit
                )
        finally:
            shutdown()
    return results


async def cpu_per_operation(quick: bool) -> list[str]:
    """This process's CPU time per operation for each variant (the server's CPU excluded).

    On a shared machine wall-clock rates drift with the neighbours' load;
    the client's own CPU time per operation is what telemetry adds to, and
    is much steadier. Rounds are interleaved; the medians are reported.
    """
    import statistics
    import time

    n = 200 if quick else 2_000
    rounds = 3 if quick else 10
    workloads: list[tuple[str, Any, Call]] = [
        ("HTTP GET", _http_clients, _http_get),
        ("gRPC unary", _grpc_clients, _grpc_unary),
        ("JSON-RPC over stdio", _stdio_clients, _jsonrpc),
        ("WebSocket request()", _ws_clients, _ws_request),
        ("MQTT 5 publish QoS 1", _mqtt_clients, _mqtt_publish),
    ]
    lines = ["| workload | off (µs CPU/op) | API, no SDK | SDK, dropping exporter | SDK overhead |"]
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    for label, clients_of, call in workloads:
        sdk, shutdown = _sdk()
        try:
            async with clients_of([{"telemetry": False}, {}, sdk]) as clients:
                sides = [_side(c, call) for c in clients]
                for side in sides:
                    await side(n // 10)  # warm-up
                cpu: list[list[float]] = [[], [], []]
                for r in range(rounds):
                    order = [0, 1, 2] if r % 2 == 0 else [2, 1, 0]
                    for i in order:
                        started = time.process_time()
                        await sides[i](n // rounds)
                        cpu[i].append((time.process_time() - started) / (n // rounds) * 1e6)
                off, api, traced = (statistics.median(c) for c in cpu)
                lines.append(
                    f"| {label} | {off:,.0f} | {api:,.0f} ({api / off:.2f}x) | "
                    f"{traced:,.0f} ({traced / off:.2f}x) | {traced - off:+,.0f} µs |"
                )
        finally:
            shutdown()
    return lines


def overhead_lines(results: list[Result]) -> list[str]:
    """The SDK rows' overhead per operation, in percent and microseconds."""
    lines = []
    for r in results:
        if "SDK +" in r.workload and r.ours and r.raw:
            extra_us = (1 / r.ours - 1 / r.raw) * 1e6
            lines.append(
                f"- {r.workload}: {1 / r.ratio - 1:+.1%} time per operation ({extra_us:+.0f} µs)"
            )
    return lines


if __name__ == "__main__":
    if "--cpu" in sys.argv:
        print("\n".join(asyncio.run(cpu_per_operation("--quick" in sys.argv))))
    else:
        rows = asyncio.run(run("--quick" in sys.argv))
        print(format_table("telemetry: variant vs telemetry=False", rows))
        print("\n".join(["", *overhead_lines(rows)]))
