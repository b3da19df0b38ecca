"""A2A: A2AClient vs the official a2a-sdk client, same a2a-sdk agent, same run.

The agent is the a2a-sdk's own server (JSON-RPC and HTTP+JSON routes under
uvicorn, and its gRPC handler, in a child process: :mod:`benchmarks.a2a_agent`).
Its executor answers ``hello`` with a direct message and ``events N`` with a
task that sends N working status updates (no message: the task stays
small), then completes. Both clients are created once per row and reused
(one keep-alive connection or channel each), and both decode every event:
ours into dicts (over gRPC: protobuf, then dicts), the SDK into protobuf
messages.

Rows: 1,000 ``SendMessage`` round trips (a message reply) over each binding,
and a streamed task of 1,000 events (``SendStreamingMessage``) per round over
JSON-RPC and gRPC (``--quick``: 2 calls and 5-event streams in 2 rounds,
a check that it runs).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
import tracemalloc
import uuid
from typing import Any

from agenticaiframework.communication import A2AClient

from .harness import Result, Side, compare_rows
from .servers import child_server, free_port

BINDINGS = {"jsonrpc": "JSONRPC", "rest": "HTTP+JSON", "grpc": "GRPC"}
"""Our ``binding=`` -> the SDK's binding name; a SendMessage row each."""
STREAM_BINDINGS = ("jsonrpc", "grpc")
"""The bindings with a stream row."""

_CPU: dict[str, tuple[list[float], list[float]]] = {}
"""Row -> ([CPU seconds, operations] ours, the same for the SDK), from the last :func:`run`."""


def _metered(side: Side, meter: list[float]) -> Side:
    """``side``, adding this process's CPU time and operations to ``meter``.

    The first run (the harness's warm-up: connection, lazy imports) and the
    traced runs (tracemalloc's cost is not the client's) are left out. The
    agent runs in another process: this is the client's own cost, which the
    throughput columns hide while the agent is the bottleneck.
    """
    warm = False

    async def metered(count: int) -> int:
        nonlocal warm
        counted = warm and not tracemalloc.is_tracing()
        warm = True
        start = time.process_time()
        ops = await side(count)
        if counted:
            meter[0] += time.process_time() - start
            meter[1] += ops
        return ops

    return metered


# -- the two sides ----------------------------------------------------------------------


def _ours_send(client: A2AClient) -> Side:
    async def side(count: int) -> int:
        for _ in range(count):
            await client.send("hello")
        return count

    return side


def _ours_stream(client: A2AClient) -> Side:
    async def side(count: int) -> int:
        got = 0
        async for _ in client.stream(f"events {count}"):
            got += 1
        return max(got - 2, 1)  # the task and its completion around the N updates

    return side


def _sdk_message(text: str) -> Any:
    from a2a.types import Message, Part, Role, SendMessageRequest

    return SendMessageRequest(
        message=Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)])
    )


def _sdk_send(client: Any) -> Side:
    async def side(count: int) -> int:
        for _ in range(count):
            async for _ in client.send_message(_sdk_message("hello")):
                pass
        return count

    return side


def _sdk_stream(client: Any) -> Side:
    async def side(count: int) -> int:
        got = 0
        async for _ in client.send_message(_sdk_message(f"events {count}")):
            got += 1
        return max(got - 2, 1)

    return side


async def _sdk_client(base: str, binding: str, *, streaming: bool) -> Any:
    import grpc
    from a2a.client import ClientConfig, create_client

    config = ClientConfig(
        streaming=streaming,
        supported_protocol_bindings=[binding],
        grpc_channel_factory=grpc.aio.insecure_channel,
    )
    return await create_client(base, config)


async def _rows(
    base: str, binding: str, wire: str, name: str, total: int, rounds: int, unit: str
) -> list[Result]:
    """One row: ours and the SDK's client over one binding, both created once."""
    stream = unit == "events/s"
    async with A2AClient(base, binding=binding) as ours:
        sdk = await _sdk_client(base, wire, streaming=stream)
        try:
            if stream:
                sides = _ours_stream(ours), _sdk_stream(sdk)
            else:
                sides = _ours_send(ours), _sdk_send(sdk)
            meters = _CPU[name] = ([0.0, 0], [0.0, 0])
            return await compare_rows(
                [(name, _metered(sides[0], meters[0]), _metered(sides[1], meters[1]))],
                total=total,
                rounds=rounds,
                memory_share=1 / rounds,
                unit=unit,
            )
        finally:
            await sdk.close()


async def run(quick: bool) -> list[Result]:
    """SendMessage round trips per second over each binding, and stream events per second.

    Every row has the same rounds and traced share, so the table's one footer
    holds for all: the send rows cut their calls into the rounds; a stream
    row does one whole stream per round (its workload is that many streams).
    """
    sends = 2 if quick else 1_000
    events = 5 if quick else 1_000
    rounds = 2 if quick else 5
    port, grpc_port = free_port(), free_port()
    results: list[Result] = []
    _CPU.clear()
    # The SDK client's import (~1 s) overlaps the agent's start-up in its child process.
    sdk_import = asyncio.ensure_future(asyncio.to_thread(importlib.import_module, "a2a.client"))
    agent = ["-m", "benchmarks.a2a_agent", str(port), str(grpc_port)]
    async with child_server(agent, port):
        await sdk_import
        base = f"http://127.0.0.1:{port}"
        for binding, wire in BINDINGS.items():
            results += await _rows(
                base, binding, wire, f"{sends:,} SendMessage, {binding}", sends, rounds, "calls/s"
            )
        for binding in STREAM_BINDINGS:
            name = f"{rounds} x {events:,}-event stream, {binding}"
            results += await _rows(
                base, binding, BINDINGS[binding], name, events * rounds, rounds, "events/s"
            )
    return results


def overhead_lines(results: list[Result]) -> list[str]:
    """The client's own CPU time per operation, ours and the SDK's, per row."""
    lines = []
    for r in results:
        meters = _CPU.get(r.workload)
        if meters is None or not meters[0][1] or not meters[1][1]:
            continue
        ours, sdk = (seconds / ops * 1e6 for seconds, ops in meters)
        lines.append(
            f"- {r.workload}: client CPU {ours:,.0f} µs/op ours, {sdk:,.0f} µs/op SDK "
            f"(ours/SDK {ours / sdk:.2f})"
        )
    if lines:
        lines[:0] = [
            "",
            "Client CPU time per operation (this process, all its threads; timed runs "
            "and the warm-up before the traced one; the agent runs in its own process):",
        ]
    return lines


if __name__ == "__main__":
    from .harness import format_table

    rows = asyncio.run(run("--quick" in sys.argv))
    print(format_table("a2a", rows))
    print("\n".join(overhead_lines(rows)))
