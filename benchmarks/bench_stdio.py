"""JSON-RPC over a child's stdin/stdout: STDIOClient vs a plain asyncio subprocess loop.

Both sides talk to the same child (tests/servers/jsonrpc_child.py, one
process per side, started once) and do N sequential ``echo`` round trips
(N = 20,000; quick 1,000). Ours: ``await stdio.request("echo", {...})``
with id correlation. Raw: ``create_subprocess_exec`` then, per call, write
a JSON line, ``await stdout.readline()``, ``json.loads`` and check the id.
A second workload does the same with ``send(dict)`` / ``receive()`` in json
mode against the line echo child.

Run alone: ``python -m benchmarks.bench_stdio [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from agenticaiframework.communication import STDIOClient
from benchmarks.harness import Result, Side, compare, format_table
from benchmarks.servers import pin_server

__all__ = ["run"]

_SERVERS = Path(__file__).resolve().parent.parent / "tests" / "servers"
_JSONRPC = [sys.executable, str(_SERVERS / "jsonrpc_child.py")]
_ECHO = [sys.executable, str(_SERVERS / "stdio_children.py"), "echo"]


def _ours_rpc(client: STDIOClient) -> Side:
    async def side(n: int) -> int:
        for i in range(n):
            result = await client.request("echo", {"i": i})
            assert result["i"] == i
        return n

    return side


def _ours_json(client: STDIOClient) -> Side:
    async def side(n: int) -> int:
        for i in range(n):
            await client.send({"i": i})
            message = await client.receive()
            assert message["i"] == i
        return n

    return side


def _raw_rpc(proc: asyncio.subprocess.Process) -> Side:
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    counter = iter(range(1, 1 << 62))

    async def side(n: int) -> int:
        for i in range(n):
            request_id = next(counter)
            line = json.dumps(
                {"jsonrpc": "2.0", "id": request_id, "method": "echo", "params": {"i": i}},
                separators=(",", ":"),
            )
            stdin.write(line.encode() + b"\n")
            await stdin.drain()
            reply = json.loads(await stdout.readline())
            assert reply["id"] == request_id and reply["result"]["i"] == i
        return n

    return side


def _raw_json(proc: asyncio.subprocess.Process) -> Side:
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    async def side(n: int) -> int:
        for i in range(n):
            stdin.write(json.dumps({"i": i}, separators=(",", ":")).encode() + b"\n")
            await stdin.drain()
            assert json.loads(await stdout.readline())["i"] == i
        return n

    return side


async def _spawn(command: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )


async def _stop(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def run(quick: bool) -> list[Result]:
    """Measure JSON-RPC and JSON-line round trips, ours vs raw.

    Args:
        quick: Small counts (checks that the benchmark works).

    Returns:
        One result row per workload.
    """
    n = 1_000 if quick else 20_000
    rounds = 2 if quick else 20  # short rounds, many: the median shrugs off the machine's drift
    workloads = [
        ("JSON-RPC request round trips", _JSONRPC, "jsonrpc", _ours_rpc, _raw_rpc),
        ("JSON line send/receive round trips", _ECHO, "json", _ours_json, _raw_json),
    ]
    results: list[Result] = []
    for label, command, message_format, ours, raw in workloads:
        async with STDIOClient(command, message_format=message_format) as client:
            proc = await _spawn(command)
            pin_server(client.pid)
            pin_server(proc.pid)
            try:
                results.append(
                    await compare(
                        f"{label} ({n:,})",
                        ours(client),
                        raw(proc),
                        total=n,
                        rounds=rounds,
                        memory=not quick,
                        unit="rt/s",
                    )
                )
            finally:
                await _stop(proc)
    return results


if __name__ == "__main__":
    rows = asyncio.run(run("--quick" in sys.argv))
    print(format_table("STDIO: STDIOClient vs plain asyncio subprocess", rows))
