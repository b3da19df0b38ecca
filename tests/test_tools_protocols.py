"""ToolClient over SSE, WebSocket, MCP (stdio) and gRPC, against real local servers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agenticaiframework.communication import (
    ConfigError,
    ConnectionError,
    HTTPConfig,
    HTTPStatusError,
    RemoteError,
    SecurityError,
)
from agenticaiframework.communication.tools import ToolClient
from agenticaiframework.communication.tools.templates import WebSocketCallTemplate
from agenticaiframework.communication.tools.ws_tools import format_message, shape_response
from tests.servers.tools_app import make_tools_app
from tests.servers.uvicorn_server import serve_asgi
from tests.servers.ws_tool_server import WS_API_KEY, WSToolServer

FAST = HTTPConfig(max_retries=0, timeout_seconds=10)
MCP_SERVER = str(Path(__file__).parent / "servers" / "mcp_server.py")


@pytest.fixture
async def tools_url() -> AsyncIterator[str]:
    app, _ = make_tools_app()
    async with serve_asgi(app) as url:
        yield url


# -- SSE --------------------------------------------------------------------------


async def test_sse_tool_streams_events(tools_url: str) -> None:
    async with ToolClient(http_config=FAST) as tools:
        await tools.register_manual(
            {
                "name": "api",
                "call_template_type": "http",
                "url": tools_url + "/utcp",
                "allowed_communication_protocols": ["http", "sse"],
            }
        )
        chunks = [c async for c in tools.call_tool_streaming("api.ticks", {"count": 3})]
        assert chunks == [{"n": 0}, {"n": 1}, {"n": 2}]
        # call_tool collects the stream
        assert await tools.call_tool("api.ticks", {"count": 2}) == [{"n": 0}, {"n": 1}]
        # leaving early closes the stream
        async for chunk in tools.call_tool_streaming("api.ticks", {"count": 50}):
            assert chunk == {"n": 0}
            break


async def test_sse_terminal_event_and_errors(tools_url: str) -> None:
    manual = {
        "manual_version": "1",
        "utcp_version": "1.0.1",
        "tools": [
            {
                "name": "all_events",
                "tool_call_template": {
                    "call_template_type": "sse",
                    "url": tools_url + "/ticks",
                    "terminal_event": "done",
                },
            },
            {
                "name": "missing",
                "tool_call_template": {"call_template_type": "sse", "url": tools_url + "/nope"},
            },
        ],
    }
    from agenticaiframework.communication.tools.manual import parse_manual
    from agenticaiframework.communication.tools.templates import parse_template

    parsed, _ = parse_manual(manual)
    async with ToolClient(http_config=FAST) as tools:
        transport = tools._transport("sse")
        tool = parsed.tools[0]
        got = [
            c
            async for c in transport.call_tool_streaming(
                "m", tool, parse_template(tool.tool_call_template), {"count": 1}
            )
        ]
        assert got == ["ignored by the event_type filter", {"n": 0}, "bye"]
        missing = parsed.tools[1]
        with pytest.raises(HTTPStatusError) as info:
            await transport.call_tool("m", missing, parse_template(missing.tool_call_template), {})
        assert info.value.status_code == 404
        with pytest.raises(ConfigError, match="cannot serve a manual"):
            await tools.register_manual(
                {"name": "s", "call_template_type": "sse", "url": tools_url + "/ticks"}
            )


# -- WebSocket ------------------------------------------------------------------------


async def test_websocket_discovery_calls_and_one_connection() -> None:
    async with WSToolServer() as server:
        tools = ToolClient(variables={"ws_WS_KEY": WS_API_KEY})
        async with tools:
            result = await tools.register_manual(
                {
                    "name": "ws",
                    "call_template_type": "websocket",
                    "url": server.url,
                    "auth": {
                        "auth_type": "api_key",
                        "api_key": "${WS_KEY}",
                        "var_name": "X-Api-Key",
                    },
                }
            )
            assert result.success, result.errors
            assert result.manual.manual_version == "0.3.0"
            assert {t.name for t in tools.list_tools()} == {
                "ws.echo",
                "ws.greet",
                "ws.count",
                "ws.explode",
                "ws.hangup",
            }
            assert tools.search_tools("greet someone")[0].name == "ws.greet"
            assert await tools.call_tool("ws.echo", {"tool": "x", "n": 1}) == {
                "echo": {"tool": "x", "n": 1}
            }
            assert await tools.call_tool("ws.greet", {"name": "Ada"}) == "hello Ada"
            assert [c async for c in tools.call_tool_streaming("ws.count", {"n": 3})] == [0, 1, 2]
            assert await tools.call_tool("ws.greet", {"name": "Bo"}) == "hello Bo"
            chunks = []
            with pytest.raises(RemoteError) as info:
                async for chunk in tools.call_tool_streaming("ws.explode", {}):
                    chunks.append(chunk)
            assert chunks == ["first"]
            assert info.value.remote_code == 7 and "kaboom" in str(info.value)
            # one connection for discovery and the calls; the failed stream dropped it
            assert server.connections == 1
            assert await tools.call_tool("ws.greet", {"name": "Cy"}) == "hello Cy"
            assert server.connections == 2
            # the server hangs up: that call fails, the next one reconnects
            with pytest.raises(ConnectionError):
                await tools.call_tool("ws.hangup", {})
            assert await tools.call_tool("ws.greet", {"name": "Di"}) == "hello Di"
            assert server.connections == 3
            transport = tools._transports["websocket"]
            clients = [c.client for c in transport._conns["ws"].values()]  # type: ignore[attr-defined]
            assert await tools.deregister_manual("ws")
            assert all(c.is_closed for c in clients)
        assert server.received[0] == '{"type":"utcp"}'
        assert "GREET Ada" in server.received


async def test_websocket_bad_key_and_insecure_url() -> None:
    async with WSToolServer() as server, ToolClient() as tools:
        result = await tools.register_manual(
            {"name": "ws", "call_template_type": "websocket", "url": server.url}
        )
        assert not result.success
        assert "401" in result.errors[0]
        with pytest.raises(SecurityError):
            await tools.register_manual(
                {"name": "w2", "call_template_type": "websocket", "url": "ws://tools.example.com/x"}
            )


def test_websocket_message_templates() -> None:
    template = WebSocketCallTemplate.from_dict(
        {
            "call_template_type": "websocket",
            "url": "wss://x.example",
            "message": {
                "cmd": "UTCP_ARG_cmd_UTCP_ARG",
                "n": "UTCP_ARG_n_UTCP_ARG",
                "k": ["UTCP_ARG_cmd_UTCP_ARG"],
            },
        }
    )
    assert format_message(template, {"cmd": "go", "n": 5}) == '{"cmd":"go","n":"5","k":["go"]}'
    plain = WebSocketCallTemplate.from_dict({"call_template_type": "websocket", "url": "wss://x"})
    assert format_message(plain, {"a": [1]}) == '{"a":[1]}'
    assert shape_response('{"a":1}', "json") == {"a": 1}
    assert shape_response("not json", "json") == "not json"
    assert shape_response({"a": 1}, "text") == '{"a":1}'
    assert shape_response(b"\x00", None) == b"\x00"


# -- MCP --------------------------------------------------------------------------


def mcp_manual(name: str = "mcp") -> dict[str, object]:
    return {
        "name": name,
        "call_template_type": "mcp",
        "timeout": 20,
        "config": {"mcpServers": {"local": {"command": sys.executable, "args": [MCP_SERVER]}}},
    }


async def test_mcp_tools_list_and_call() -> None:
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
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        for _ in range(500):
            if not first.is_running:
                break
            await asyncio.sleep(0.01)
        assert await tools.call_tool("mcp.local.add", {"a": 1, "b": 1}) in (2, {"result": 2})
        clients = list(transport._servers["mcp"].values())  # type: ignore[attr-defined]
        assert clients[0] is not first and first.is_closed
        assert all(c.is_running for c in clients)
        assert await tools.deregister_manual("mcp")
        assert all(not c.is_running for c in clients)


async def test_mcp_bad_command_is_a_failed_result() -> None:
    async with ToolClient() as tools:
        manual = mcp_manual("broken")
        manual["config"] = {
            "mcpServers": {"x": {"command": sys.executable, "args": ["-c", "pass"]}}
        }
        result = await tools.register_manual(manual)
        assert not result.success
        assert tools.manuals() == []


# -- gRPC ------------------------------------------------------------------------


async def test_grpc_tools_by_reflection() -> None:
    from tests.servers.grpc_server import serve_grpc

    async with serve_grpc() as server, ToolClient() as tools:
        result = await tools.register_manual(
            {"name": "agents", "call_template_type": "grpc", "target": server.target, "timeout": 10}
        )
        assert result.success, result.errors
        names = {t.name for t in tools.list_tools()}
        assert "agents.AgentService.ExecuteTask" in names
        assert "agents.AgentService.StreamTokens" in names
        assert not any("Reflection" in n or "Health" in n for n in names)
        assert any("UploadData" in e for e in result.errors)  # client streaming left out
        execute = tools.get_tool("agents.AgentService.ExecuteTask")
        assert "task_id" in execute.inputs["properties"]
        reply = await tools.call_tool(
            "agents.AgentService.ExecuteTask", {"task_id": "t1", "input": "go"}
        )
        assert reply["result"] == "processed: go" and reply["status"] == "completed"
        tokens = [
            c["token"]
            async for c in tools.call_tool_streaming(
                "agents.AgentService.StreamTokens", {"count": 3}
            )
        ]
        assert tokens == ["t0", "t1", "t2"]
        collected = await tools.call_tool("agents.AgentService.StreamTokens", {"count": 2})
        assert [c["index"] for c in collected] == [0, 1]
        with pytest.raises(RemoteError) as info:
            await tools.call_tool(
                "agents.AgentService.ExecuteTask", {"task_id": "t2", "fail_code": 9}
            )
        assert info.value.remote_code == "FAILED_PRECONDITION"
        assert await tools.deregister_manual("agents")
