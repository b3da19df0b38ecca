"""ToolClient over SSE, WebSocket and gRPC, against real local servers (MCP: test_tools_mcp.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
        assert result.errors == () and result.skipped == ()
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


async def test_grpc_every_method_shape_is_a_tool() -> None:
    import base64

    from tests.servers.grpc_server import serve_grpc

    async with serve_grpc() as server, ToolClient() as tools:
        result = await tools.register_manual(
            {"name": "g", "call_template_type": "grpc", "target": server.target, "timeout": 10}
        )
        assert result.success and result.errors == () and result.skipped == ()
        assert {t.name for t in tools.list_tools()} == {
            "g.AgentService.ExecuteTask",  # unary
            "g.AgentService.StreamTokens",  # server streaming
            "g.DataService.UploadData",  # client streaming
            "g.ChatService.Chat",  # bidirectional
        }
        # client streaming: the request messages as a list, the one response back
        upload = tools.get_tool("g.DataService.UploadData")
        requests_schema = upload.inputs["properties"]["requests"]
        assert requests_schema["type"] == "array"
        assert "chunk" in requests_schema["items"]["properties"]
        assert "total_bytes" in upload.outputs["properties"]
        chunks = [{"chunk": base64.b64encode(b"x" * n).decode()} for n in (1, 2, 3)]
        reply = await tools.call_tool("g.DataService.UploadData", {"requests": chunks})
        assert reply["chunks"] == 3 and int(reply["total_bytes"]) == 6
        # one message on its own is a one-item list
        reply = await tools.call_tool("g.DataService.UploadData", chunks[2])
        assert reply["chunks"] == 1 and int(reply["total_bytes"]) == 3
        # not a streaming response: call_tool_streaming yields the one response
        streamed = [c async for c in tools.call_tool_streaming("g.DataService.UploadData", {})]
        assert [s["chunks"] for s in streamed] == [1]
        with pytest.raises(ConfigError, match="requests"):
            await tools.call_tool("g.DataService.UploadData", {"requests": "not a list"})

        # bidirectional: each response yielded as it arrives; call_tool collects them
        chat = tools.get_tool("g.ChatService.Chat")
        assert "message" in chat.inputs["properties"]["requests"]["items"]["properties"]
        said = [{"message": m} for m in ("a", "b", "c")]
        echoes = [
            c["message"]
            async for c in tools.call_tool_streaming("g.ChatService.Chat", {"requests": said})
        ]
        assert echoes == ["echo: a", "echo: b", "echo: c"]
        collected = await tools.call_tool("g.ChatService.Chat", {"requests": said[:2]})
        assert collected == [{"message": "echo: a"}, {"message": "echo: b"}]
        assert await tools.call_tool("g.ChatService.Chat", {"message": "solo"}) == [
            {"message": "echo: solo"}
        ]
        # leaving the stream early ends the call; the client goes on working
        async for chunk in tools.call_tool_streaming("g.ChatService.Chat", {"requests": said}):
            assert chunk == {"message": "echo: a"}
            break
        # the other two shapes, through the same registration
        reply = await tools.call_tool("g.AgentService.ExecuteTask", {"task_id": "t", "input": "x"})
        assert reply["result"] == "processed: x"
        tokens = await tools.call_tool("g.AgentService.StreamTokens", {"count": 2})
        assert [t["token"] for t in tokens] == ["t0", "t1"]
        assert server.stats["/agents.v1.DataService/UploadData"] == 3
        assert server.stats["/agents.v1.ChatService/Chat"] == 4
        # a bad request message: a clear error for both streaming shapes
        for name in ("g.DataService.UploadData", "g.ChatService.Chat"):
            with pytest.raises(ConfigError, match="has no field 'nope'"):
                await tools.call_tool(name, {"requests": [{"nope": 1}]})


async def test_grpc_tool_template_without_shape_flags() -> None:
    # a hand-written manual names service and method only: the shape comes from the server
    from agenticaiframework.communication.tools.manual import parse_manual
    from agenticaiframework.communication.tools.templates import parse_template
    from tests.servers.grpc_server import serve_grpc

    async with serve_grpc() as server, ToolClient() as tools:

        def tool(name: str, service: str, method: str) -> dict[str, object]:
            template = {
                "call_template_type": "grpc",
                "target": server.target,
                "service": service,
                "method": method,
            }
            return {"name": name, "tool_call_template": template}

        manual, problems = parse_manual(
            {
                "utcp_version": "1.0.1",
                "tools": [
                    tool("chat", "ChatService", "Chat"),
                    tool("upload", "agents.v1.DataService", "UploadData"),
                    tool("execute", "AgentService", "ExecuteTask"),
                ],
            }
        )
        assert problems == []
        transport = tools._transport("grpc")
        chat, upload, execute = manual.tools

        async def call(t: object, args: dict[str, object]) -> object:
            assert isinstance(t, type(chat))
            return await transport.call_tool("m", t, parse_template(t.tool_call_template), args)

        assert await call(chat, {"requests": [{"message": "hi"}]}) == [{"message": "echo: hi"}]
        assert (await call(upload, {"requests": [{}, {}]}))["chunks"] == 2  # type: ignore[index]
        assert (await call(execute, {"input": "y"}))["result"] == "processed: y"  # type: ignore[index]
        await transport.deregister_manual("m")
