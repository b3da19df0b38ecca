"""MCP ``tools/call`` round trips: MCPClient vs the official ``mcp`` SDK's ClientSession.

Both clients call the ``add`` tool of the SDK's own server, N times in
sequence (N = 2,000; quick 200), same run, interleaved rounds:

* over stdio: tests/servers/mcp_server.py, one child per side (each client
  starts its own, as a user would);
* over Streamable HTTP: tests/servers/mcp_full_server.py (stateful,
  uvicorn), answering with SSE streams, then with JSON bodies; one process
  both clients talk to.

Ours: ``await mcp.call_tool("add", {...})`` (a dict). The SDK:
``await session.call_tool("add", {...})`` (a pydantic model) on
``stdio_client`` / ``streamable_http_client``. Targets (issue 22): ours at
least as fast on both transports, peak memory at most 1.1x.

Run alone: ``python -m benchmarks.bench_mcp [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from agenticaiframework.communication.agents.mcp import MCPClient, StdioTransport
from benchmarks.harness import Result, Side, compare, format_table
from benchmarks.servers import pin_server

__all__ = ["run"]

_ROOT = Path(__file__).resolve().parent.parent
_STDIO_SERVER = [sys.executable, str(_ROOT / "tests" / "servers" / "mcp_server.py")]
_HTTP_SERVER = [sys.executable, "-m", "tests.servers.mcp_full_server", "http", "0"]


def _ours(mcp: MCPClient) -> Side:
    async def side(n: int) -> int:
        for i in range(n):
            result = await mcp.call_tool("add", {"a": i, "b": 1})
            assert result["structuredContent"]["result"] == i + 1
        return n

    return side


def _sdk(session: Any) -> Side:
    async def side(n: int) -> int:
        for i in range(n):
            result = await session.call_tool("add", {"a": i, "b": 1})
            assert result.structured_content["result"] == i + 1
        return n

    return side


async def _sdk_session(stack: contextlib.AsyncExitStack, streams: Any) -> Any:
    from mcp import ClientSession

    read, write = await stack.enter_async_context(streams)
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    return session


async def _stdio(n: int, rounds: int, quick: bool) -> Result:
    from mcp.client.stdio import StdioServerParameters, stdio_client

    with open(os.devnull, "w") as devnull:  # the SDK server's stderr
        return await _stdio_with(
            n,
            rounds,
            quick,
            stdio_client(
                StdioServerParameters(command=_STDIO_SERVER[0], args=_STDIO_SERVER[1:]),
                errlog=devnull,
            ),
        )


async def _stdio_with(n: int, rounds: int, quick: bool, streams: Any) -> Result:
    async with contextlib.AsyncExitStack() as stack:
        session = await _sdk_session(stack, streams)
        mcp = await stack.enter_async_context(MCPClient(command=_STDIO_SERVER))
        transport = mcp._transport
        assert isinstance(transport, StdioTransport)
        pin_server(transport.client.pid)
        for child in _children():
            pin_server(child)
        return await compare(
            f"tools/call over stdio ({n:,})",
            _ours(mcp),
            _sdk(session),
            total=n,
            rounds=rounds,
            memory=not quick,
            unit="rt/s",
        )


def _children() -> list[int]:
    """This process's child processes (the SDK's server child has no public pid)."""
    try:
        text = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text()
    except OSError:
        return []
    return [int(pid) for pid in text.split()]


async def _http(n: int, rounds: int, quick: bool, *, json: bool) -> Result:
    from mcp.client.streamable_http import streamable_http_client

    proc = await asyncio.create_subprocess_exec(
        *_HTTP_SERVER,
        *(["--json"] if json else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=_ROOT,
        env={**os.environ, "PYTHONPATH": str(_ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line.startswith(b"READY "):
            raise RuntimeError(f"the MCP server did not start: {line!r}")
        pin_server(proc.pid)
        url = f"http://127.0.0.1:{int(line.split()[1])}/mcp"
        async with contextlib.AsyncExitStack() as stack:
            session = await _sdk_session(stack, streamable_http_client(url))
            mcp = await stack.enter_async_context(MCPClient(url))
            return await compare(
                f"tools/call over Streamable HTTP, {'JSON' if json else 'SSE'} responses ({n:,})",
                _ours(mcp),
                _sdk(session),
                total=n,
                rounds=rounds,
                memory=not quick,
                unit="rt/s",
            )
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def run(quick: bool) -> list[Result]:
    """Measure ``tools/call`` round trips over stdio and Streamable HTTP, ours vs the SDK.

    Args:
        quick: Small counts (checks that the benchmark works).

    Returns:
        One result row per transport.
    """
    # The table is the output: the SDK's own log lines are not.
    logging.getLogger("mcp").addHandler(logging.NullHandler())
    logging.getLogger("mcp").propagate = False
    n = 200 if quick else 2_000
    rounds = 2 if quick else 10
    return [
        await _stdio(n, rounds, quick),
        await _http(n, rounds, quick, json=False),
        await _http(n, rounds, quick, json=True),
    ]


if __name__ == "__main__":
    rows = asyncio.run(run("--quick" in sys.argv))
    print(format_table("MCP: MCPClient vs the official mcp SDK client", rows))
