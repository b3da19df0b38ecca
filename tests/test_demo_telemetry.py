"""``agentcomm demo --trace`` prints the span tree of the demo's clients under one root."""

from __future__ import annotations

import subprocess
import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from agenticaiframework.communication.demo import span_tree

DEMO = [sys.executable, "-m", "agenticaiframework.communication", "demo", "--trace"]


def test_demo_trace_prints_one_tree_under_the_demo_span() -> None:
    proc = subprocess.run(DEMO, capture_output=True, text=True, timeout=55, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tree = proc.stdout.split("span tree (OpenTelemetry):\n", 1)[1].splitlines()
    roots = [line for line in tree if line and not line.startswith(" ")]
    assert roots[0].startswith("agentcomm demo [internal]")
    # The demo's MQTT step speaks 3.1.1: its consumer span is the one other root (a new trace).
    assert all(root.startswith("process agents/demo/status [consumer]") for root in roots[1:])
    assert len(roots) <= 2
    children = "\n".join(tree[1:])
    assert "  POST [client]" in children and "http.response.status_code=201" in children
    assert "AgentService/ExecuteTask [client]" in children and "rpc.grpc.status_code=0" in children
    assert "  websocket connect [client]" in children and "  request /agent [client]" in children
    if "mqtt      round trip" in proc.stdout:
        assert "  publish agents/demo/status [producer]" in children
    if "stdio     MCP tools/call" in proc.stdout:
        assert "  tools/call [client]" in children


def test_span_tree_indents_children_under_their_parent_in_start_order() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span(
            "a", kind=SpanKind.CLIENT, attributes={"error.type": "500"}
        ):
            with tracer.start_as_current_span("a1"):
                pass
        with tracer.start_as_current_span("b", kind=SpanKind.PRODUCER):
            pass
    lines = span_tree(exporter.get_finished_spans())
    assert [line.split(" [")[0] for line in lines] == ["root", "  a", "    a1", "  b"]
    assert lines[1].startswith("  a [client]") and lines[1].endswith("error.type=500")
    assert lines[3].startswith("  b [producer]")
