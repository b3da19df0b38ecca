"""ToolClient's ``mcp`` manuals: MCP servers over stdio and Streamable HTTP, through MCPClient.

The servers are the official SDKs' (Python ``mcp`` and the TypeScript SDK),
started by the tests on loopback.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from agenticaiframework.communication import ConfigError, RemoteError, SecurityError
from agenticaiframework.communication.agents.mcp import MCPClient, StdioTransport
from agenticaiframework.communication.tools import ToolClient
from tests.servers.mcp_process import ServerProcess, node_server, python_server

MCP_SERVER = str(Path(__file__).parent.parent / "servers" / "mcp_server.py")


def mcp_manual(name: str = "mcp", **servers: Mapping[str, object]) -> dict[str, object]:
    return {
        "name": name,
        "call_template_type": "mcp",
        "timeout": 20,
        "config": {
            "mcpServers": servers or {"local": {"command": sys.executable, "args": [MCP_SERVER]}}
        },
    }


def pid_of(client: MCPClient) -> int:
    transport = client._transport
    assert isinstance(transport, StdioTransport)
    pid = transport.client.pid
    assert pid is not None
    return pid


async def test_stdio_tools_list_and_call() -> None:
    async with ToolClient() as tools:
        result = await tools.register_manual(mcp_manual())
        assert result.success, result.errors
        names = {t.name for t in tools.list_tools()}
        assert {"mcp.local.add", "mcp.local.echo", "mcp.local.fail"} <= names
        add = tools.get_tool("mcp.local.add")
        assert add.inputs["required"] == ["a", "b"]
        assert tools.search_tools("add two integers")[0].name == "mcp.local.add"
        assert await tools.call_tool("mcp.local.add", {"a": 2, "b": 3}) in (5, {"result": 5})
        assert await tools.call_tool("mcp.local.echo", {"text": "hi"}) in ("hi", {"result": "hi"})
        assert await tools.call_tool("mcp.local.announce", {"text": "x"}) in (
            "announced x",
            {"result": "announced x"},
        )
        chunks = [c async for c in tools.call_tool_streaming("mcp.local.echo", {"text": "s"})]
        assert len(chunks) == 1
        with pytest.raises(RemoteError) as info:
            await tools.call_tool("mcp.local.fail", {"reason": "nope"})
        assert info.value.remote_code == "isError"
        assert info.value.data["isError"] is True and "fail" in str(info.value)
        transport = tools._transports["mcp"]
        first = transport._servers["mcp"]["local"]  # type: ignore[attr-defined]
        # the server dies: the next call starts it again
        os.killpg(pid_of(first), signal.SIGKILL)
        for _ in range(500):
            if first.failure is not None:
                break
            await asyncio.sleep(0.01)
        assert await tools.call_tool("mcp.local.add", {"a": 1, "b": 1}) in (2, {"result": 2})
        second = transport._servers["mcp"]["local"]  # type: ignore[attr-defined]
        assert second is not first and first.is_closed and second.failure is None
        pid = pid_of(second)
        assert await tools.deregister_manual("mcp")
        assert second.is_closed
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # ended and reaped


async def test_bad_command_is_a_failed_result() -> None:
    async with ToolClient() as tools:
        manual = mcp_manual("broken", x={"command": sys.executable, "args": ["-c", "pass"]})
        result = await tools.register_manual(manual)
        assert not result.success
        assert "exited" in result.errors[0], result.errors
        assert tools.manuals() == []


@pytest.fixture(scope="module")
def http_servers() -> Iterator[dict[str, ServerProcess]]:
    """The Python SDK's server (JSON responses) and the TypeScript SDK's (SSE), over HTTP."""
    servers = {
        "python": python_server("--json"),
        "typescript": ServerProcess(node_server("http", "{port}")),
    }
    try:
        for server in servers.values():
            server.start_sync()
        yield servers
    finally:
        for server in servers.values():
            server.stop_sync()


async def open_sessions(server: ServerProcess) -> int:
    async with httpx.AsyncClient() as client:
        response = await client.get(server.url.replace("/mcp", "/sessions"))
        count: int = response.json()["open"]
        return count


async def test_streamable_http_servers(http_servers: dict[str, ServerProcess]) -> None:
    python, typescript = http_servers["python"], http_servers["typescript"]
    before = await open_sessions(typescript)
    async with ToolClient() as tools:
        result = await tools.register_manual(
            mcp_manual(
                "remote",
                py={"url": python.url},
                ts={"transport": "streamable-http", "url": typescript.url},
                local={"command": sys.executable, "args": [MCP_SERVER]},
            )
        )
        assert result.success, result.errors
        names = {t.name for t in tools.list_tools()}
        assert {"remote.py.add", "remote.ts.add", "remote.ts.progress", "remote.local.add"} <= names
        assert tools.get_tool("remote.ts.add").outputs["properties"]["result"]["type"] == "integer"
        assert await tools.call_tool("remote.py.add", {"a": 2, "b": 3}) == {"result": 5}
        assert await tools.call_tool("remote.ts.add", {"a": 4, "b": 5}) == {"result": 9}
        assert await tools.call_tool("remote.ts.echo", {"text": "hi"}) == "hi"
        with pytest.raises(RemoteError) as info:
            await tools.call_tool("remote.py.fail", {"reason": "nope"})
        assert info.value.remote_code == "isError" and "fail" in str(info.value)
        assert await open_sessions(typescript) == before + 1
        assert await tools.deregister_manual("remote")
        assert await open_sessions(typescript) == before  # the session was DELETEd


async def test_http_server_with_the_manual_auth() -> None:
    server = python_server("--auth", "good-token")
    await server.start()
    try:
        async with ToolClient() as tools:
            bearer = {
                "auth_type": "api_key",
                "api_key": "Bearer good-token",
                "var_name": "Authorization",
            }
            result = await tools.register_manual(
                {**mcp_manual("authed", s={"url": server.url}), "auth": bearer}
            )
            assert result.success, result.errors
            assert await tools.call_tool("authed.s.add", {"a": 1, "b": 2}) == {"result": 3}
            result = await tools.register_manual(mcp_manual("anonymous", s={"url": server.url}))
            assert not result.success
            assert "401" in result.errors[0] and "good-token" not in result.errors[0]
    finally:
        await server.stop()


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, list[int]]]:
    """A loopback port that counts the connections made to it (none expected)."""
    accepted: list[int] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "url",
    [
        "http://remote.invalid:{port}/mcp?token=s3cret",  # plain HTTP to another host
        "ftp://127.0.0.1:{port}/mcp?token=s3cret",  # not HTTP at all
    ],
)
async def test_url_refused_by_the_policy_before_anything_starts(
    listener: tuple[int, list[int]], tmp_path: Path, url: str
) -> None:
    port, accepted = listener
    marker = tmp_path / "started"
    starts = {"command": sys.executable, "args": ["-c", f"open({str(marker)!r}, 'w')"]}
    async with ToolClient() as tools:
        with pytest.raises(SecurityError) as info:
            await tools.register_manual(
                mcp_manual("mixed", local=starts, remote={"url": url.format(port=port)})
            )
        assert "s3cret" not in str(info.value)
        assert tools.manuals() == [] and tools.list_tools() == []
        # an entry with neither a command nor a url is an invalid template
        with pytest.raises(ConfigError, match=r"mcpServers\.odd\.command: required"):
            await tools.register_manual(mcp_manual("odd", odd={}))
    # nothing was started, nothing was contacted
    assert not marker.exists()
    assert accepted == []


async def test_unreachable_http_server_is_a_failed_result(listener: tuple[int, list[int]]) -> None:
    port, _ = listener  # accepts, then closes at once: no MCP server there
    async with ToolClient() as tools:
        result = await tools.register_manual(
            mcp_manual("gone", s={"url": f"http://127.0.0.1:{port}/mcp?token=s3cret"})
        )
        assert not result.success and tools.manuals() == []
        assert "s3cret" not in result.errors[0]


# A stdio MCP server whose tools/list holds entries that cannot be tools.
HOSTILE_MCP = """
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    if msg["method"] == "initialize":
        result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                  "serverInfo": {"name": "hostile", "version": "1"}}
    elif msg["method"] == "tools/list":
        result = {"tools": [{"name": "fine"}, "a string", {"description": "no name"},
                            {"name": "bad_schema", "inputSchema": "not an object"}]}
    else:
        result = {"content": [{"type": "text", "text": "ok"}]}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\\n")
    sys.stdout.flush()
"""


async def test_entries_that_are_not_tools_are_errors() -> None:
    async with ToolClient() as tools:
        result = await tools.register_manual(
            mcp_manual("h", s={"command": sys.executable, "args": ["-c", HOSTILE_MCP]})
        )
        assert result.success
        assert [t.name for t in tools.list_tools()] == ["h.s.fine"]
        assert len(result.errors) == 3, result.errors
        assert "not an object" in result.errors[0] and "no name" in result.errors[1]
        assert "'bad_schema': inputSchema" in result.errors[2]
        assert await tools.call_tool("h.s.fine") == "ok"
