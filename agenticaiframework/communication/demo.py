"""The demo: embedded loopback servers for all six protocols, then a walk through the clients.

Run it with ``agentcomm demo`` or ``python -m agenticaiframework.communication demo``
(``scripts/demo`` installs the ``demo`` extra first). Every server binds
127.0.0.1 on a free port and is stopped before the demo returns, child
processes included; nothing outside this machine is contacted.

The walk: an HTTP request, an SSE stream that the server cuts and the client
resumes with ``Last-Event-ID``, a WebSocket exchange, an MQTT publish and
subscribe round trip (through Mosquitto; when Mosquitto is missing, through the
pure-Python amqtt broker, run from the environment of its own that
``scripts/setup`` creates; skipped, with the reason, when neither is there), a
gRPC call through server reflection, an MCP tool call over STDIO, and a
ConnectionManager health table over one client of each protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from .core import errors
from .grpc.client import GRPCClient
from .http.client import HTTPClient
from .manager import ConnectionManager
from .mqtt.client import MQTTClient
from .sse.client import SSEClient
from .stdio.client import STDIOClient
from .testing import servers as servers
from .testing.reaper import child_reaper
from .websocket.client import WebSocketClient

__all__ = ["DEMO_EXTRA_HINT", "STEPS", "run_demo"]

DEMO_EXTRA_HINT = "pip install 'agenticaiframework-communication[demo]'"

#: The step lines every complete run prints, in order (the tests look for them).
STEPS = (
    "http      POST /tasks -> 201",
    "sse       resumed after the drop",
    "websocket request/response",
    "mqtt      round trip",
    "grpc      reflection call",
    "stdio     MCP tools/call",
    "health    all healthy",
)

Report = Callable[[str, str], None]
_MCP_MODULE = "agenticaiframework.communication.testing.mcp_child"
_TIMEOUT = 10.0


class _Reporter:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.perf_counter()

    def step(self, protocol: str, text: str) -> None:
        elapsed = time.perf_counter() - self.start
        print(f"[{elapsed:5.2f}s] {protocol:<9} {text}", file=self.out, flush=True)


def _missing_demo_modules() -> list[str]:
    return [m for m in ("uvicorn", "starlette") if importlib.util.find_spec(m) is None]


async def _http(url: str, report: Report) -> None:
    async with HTTPClient(url, max_retries=0) as client:
        created = await client.post("/tasks", json={"title": "summarise the logs"})
        task = created.json()
        fetched = await client.get(f"/tasks/{task['id']}")
        missing = await client.get("/tasks/999")
    report(
        "http",
        f"POST /tasks -> {created.status_code} {task}; GET /tasks/{task['id']} -> "
        f"{fetched.status_code}; GET /tasks/999 -> {missing.status_code} "
        f"(is_success={missing.is_success})",
    )


async def _sse(url: str, state: servers.SSEState, report: Report) -> None:
    steps: list[int] = []
    async with SSEClient(f"{url}/events", terminal_event="done", reconnect_delay=0.1) as sse:
        async for event in sse:
            if event.event == "progress":
                steps.append(event.json()["step"])
        reconnects = sse.stats.reconnects
    resumed_from = state.last_event_ids[-1] if len(state.last_event_ids) > 1 else None
    if resumed_from is None or reconnects < 1:
        raise errors.ProtocolError("the SSE stream was not resumed after the drop")
    report(
        "sse",
        f"resumed after the drop: events {steps}, reconnected {reconnects}x with "
        f"Last-Event-ID: {resumed_from}",
    )


async def _websocket(url: str, report: Report) -> None:
    async with WebSocketClient(url, auto_reconnect=False) as ws:
        await ws.send({"type": "hello"})
        welcome = await ws.receive(timeout=_TIMEOUT)
        result = await ws.request({"method": "add", "params": [20, 22]}, timeout=_TIMEOUT)
    report("websocket", f"request/response: hello -> {welcome}; add(20, 22) -> {result['result']}")


async def _mqtt(url: str, broker: str, report: Report) -> None:
    # MQTT 3.1.1: what both brokers speak (amqtt refuses MQTT 5).
    async with MQTTClient(url, client_id="agentcomm-demo", protocol_version=4) as mqtt:
        await mqtt.subscribe("agents/+/status", qos=1)
        start = time.perf_counter()
        await mqtt.publish("agents/demo/status", {"state": "ready"}, qos=1)
        message = await _within(mqtt.receive(), "the MQTT message")
        elapsed_ms = (time.perf_counter() - start) * 1000
    report(
        "mqtt",
        f"round trip via {broker}: agents/+/status got {message.topic} {message.payload} "
        f"(QoS {message.qos}) in {elapsed_ms:.1f} ms",
    )


async def _grpc(target: str, report: Report) -> None:
    async with GRPCClient(target, timeout_seconds=_TIMEOUT) as client:
        services = await client.list_services()
        reply = await client.call(
            "AgentService", "ExecuteTask", {"task_id": "t-1", "input": "plan the agent run"}
        )
    shown = [s for s in services if not s.startswith("grpc.")]
    report("grpc", f"reflection call: services {shown}; ExecuteTask -> {reply}")


def _mcp_command() -> list[str]:
    return [sys.executable, "-m", _MCP_MODULE]


def _mcp_client() -> STDIOClient:
    # ping_method lets health_check() ask the server itself, not just the process.
    return STDIOClient(
        _mcp_command(), message_format="jsonrpc", response_timeout=_TIMEOUT, ping_method="ping"
    )


async def _mcp(mcp: STDIOClient, report: Report) -> None:
    init = await mcp.request(
        "initialize",
        {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "agentcomm-demo", "version": "1"},
        },
    )
    await mcp.notify("notifications/initialized")
    tools = await mcp.request("tools/list")
    called = await mcp.request("tools/call", {"name": "add", "arguments": {"a": 2, "b": 40}})
    names = [tool["name"] for tool in tools["tools"]]
    answer = called.get("structuredContent") or called.get("content")
    report(
        "stdio",
        f"MCP tools/call: server {init['serverInfo']['name']!r}, tools {names}, "
        f"add(2, 40) -> {answer}",
    )


async def _within(awaitable: Any, what: str) -> Any:
    try:
        async with asyncio.timeout(_TIMEOUT):
            return await awaitable
    except TimeoutError:
        raise errors.TimeoutError(f"{what} did not arrive in {_TIMEOUT:g} s") from None


async def _health_table(
    http_url: str,
    ws_url: str,
    mqtt_url: str | None,
    grpc_target: str,
    mcp: STDIOClient | None,
    report: Report,
) -> bool:
    manager = ConnectionManager()
    manager.register("http", HTTPClient(f"{http_url}/health", max_retries=0))
    manager.register("sse", SSEClient(f"{http_url}/events", auto_reconnect=False))
    manager.register("websocket", WebSocketClient(ws_url, auto_reconnect=False))
    if mqtt_url is not None:
        manager.register(
            "mqtt",
            MQTTClient(mqtt_url, client_id="agentcomm-demo-health", protocol_version=4),
        )
    manager.register("grpc", GRPCClient(grpc_target))
    if mcp is not None:
        manager.register("stdio", mcp)
    try:
        results = await manager.health_check(timeout=_TIMEOUT)
    finally:
        await manager.close()
    healthy = all(status.is_healthy for status in results.values())
    report("health", f"{'all healthy' if healthy else 'UNHEALTHY'}: ConnectionManager table")
    for name, status in results.items():
        verdict = "healthy" if status.is_healthy else "UNHEALTHY"
        report("", f"  {name:<10} {verdict:<9} {status.latency_ms:7.1f} ms  {status.detail}")
    return healthy


async def run_demo(out: TextIO = sys.stdout, *, trace: bool = False) -> int:
    """Start the embedded servers, walk through each client, and stop everything.

    Args:
        out: Where the walk-through is printed, one line per step.
        trace: Record the clients' OpenTelemetry spans (an SDK tracer
            provider is set up, as an application would) and print the span
            tree at the end; needs ``opentelemetry-sdk``.

    Returns:
        The process exit status: 0 when every step worked, 1 otherwise (the
        failing step is printed).
    """
    if trace:
        return await _traced_demo(out)
    reporter = _Reporter(out)
    report = reporter.step
    missing = _missing_demo_modules()
    if missing:
        report("demo", f"cannot start: {', '.join(missing)} missing; run {DEMO_EXTRA_HINT}")
        return 1
    report("demo", "starting embedded servers on 127.0.0.1 (free ports)")
    mosquitto = servers.find_mosquitto()
    # Mosquitto first; amqtt (from its own environment) only when Mosquitto is missing.
    amqtt = servers.find_amqtt() if mosquitto is None else None
    async with contextlib.AsyncExitStack() as stack:
        # Every child runs in a process group of its own (a Ctrl-C reaches only us,
        # and we stop them in order); the reaper ends them even if we are killed.
        reaper = await stack.enter_async_context(child_reaper())
        http_url, sse_state = await stack.enter_async_context(servers.serve_http())
        ws_url = await stack.enter_async_context(servers.serve_websocket())
        grpc_target = await stack.enter_async_context(servers.serve_grpc())
        mqtt_url: str | None = None
        broker = ""
        mqtt_shown = "not started"
        if mosquitto is not None:
            mqtt_url = await stack.enter_async_context(
                servers.serve_mosquitto(mosquitto, reaper=reaper)
            )
            broker = "mosquitto"
            mqtt_shown = f"{mqtt_url} (mosquitto)"
        elif amqtt is not None:
            mqtt_url = await stack.enter_async_context(servers.serve_amqtt(amqtt, reaper=reaper))
            broker = "amqtt"
            mqtt_shown = f"{mqtt_url} (amqtt, run by {amqtt})"
        mcp: STDIOClient | None = None
        if importlib.util.find_spec("mcp") is not None:
            # Started now so that its (slow) start overlaps the other steps.
            mcp = await stack.enter_async_context(_mcp_client())
            if mcp.pid is not None:
                reaper.watch_group(mcp.pid)
        report(
            "demo",
            f"http+sse {http_url}, websocket {ws_url}, grpc {grpc_target}, "
            f"mqtt {mqtt_shown}, mcp: {_MCP_MODULE} over stdio",
        )
        await _http(http_url, report)
        await _sse(http_url, sse_state, report)
        await _websocket(ws_url, report)
        if mqtt_url is not None:
            await _mqtt(mqtt_url, broker, report)
        else:
            report(
                "mqtt",
                "SKIPPED: the mosquitto broker is not installed and no amqtt broker "
                f"environment was found at {servers.amqtt_venv_dir()}, so the MQTT step is "
                f"skipped; to run it, {servers.MOSQUITTO_INSTALL_HINT}, or "
                f"{servers.AMQTT_INSTALL_HINT}",
            )
        await _grpc(grpc_target, report)
        if mcp is not None:
            await _mcp(mcp, report)
        else:
            report("stdio", f"SKIPPED: the mcp package is not installed; run {DEMO_EXTRA_HINT}")
        healthy = await _health_table(http_url, ws_url, mqtt_url, grpc_target, mcp, report)
    report("demo", "all servers stopped; done")
    return 0 if healthy else 1


async def _traced_demo(out: TextIO) -> int:
    """The demo under one root span, then its span tree (what an application's SDK saw)."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        print(
            "demo --trace needs the OpenTelemetry SDK: pip install opentelemetry-sdk",
            file=out,
            flush=True,
        )
        return 1
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("agentcomm.demo").start_as_current_span("agentcomm demo"):
        status = await run_demo(out)
    print("", file=out)
    print("span tree (OpenTelemetry):", file=out)
    for line in span_tree(exporter.get_finished_spans()):
        print(line, file=out)
    out.flush()
    return status


_SHOWN_ATTRIBUTES = (
    "http.response.status_code",
    "rpc.grpc.status_code",
    "messaging.destination.name",
    "gen_ai.tool.name",
    "error.type",
)


def span_tree(spans: Any) -> list[str]:
    """Lines drawing finished SDK spans as trees: name, kind, duration, key attributes.

    Args:
        spans: ``ReadableSpan`` objects (from an in-memory exporter).

    Returns:
        One line per span, children indented under their parent, in start order.
    """
    by_parent: dict[int | None, list[Any]] = {}
    ids = {span.context.span_id for span in spans}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        by_parent.setdefault(parent if parent in ids else None, []).append(span)
    lines: list[str] = []

    def draw(span: Any, depth: int) -> None:
        took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        kind = span.kind.name.lower()
        attributes = span.attributes or {}
        shown = " ".join(f"{k}={attributes[k]}" for k in _SHOWN_ATTRIBUTES if k in attributes)
        lines.append(f"{'  ' * depth}{span.name} [{kind}] {took:.1f} ms {shown}".rstrip())
        for child in sorted(by_parent.get(span.context.span_id, []), key=lambda s: s.start_time):
            draw(child, depth + 1)

    for root in sorted(by_parent.get(None, []), key=lambda s: s.start_time):
        draw(root, 0)
    return lines
