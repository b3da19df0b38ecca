"""MCPClient against the official MCP TypeScript SDK's server (tests/node/mcp_server.mjs).

Over stdio and Streamable HTTP (express on 127.0.0.1; stateful and stateless,
SSE and JSON-response modes). The HTTP servers are shared by the tests of
this module (one per mode), except where a test needs its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agenticaiframework.communication.agents.mcp import MCPClient
from agenticaiframework.communication.core import errors
from agenticaiframework.communication.testing.proxy import FaultProxy
from tests.agents.mcp_checks import answers, exercise, server_requests, wait_for
from tests.servers.mcp_process import ServerProcess, node_server

NAME = "ts-sdk-test"
INSTRUCTIONS = "ts test server"
MODES = {
    "stateful-sse": (),
    "stateful-json": ("--json",),
    "stateless-sse": ("--stateless",),
    "stateless-json": ("--stateless", "--json"),
}

Servers = Callable[[str], str]


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """The TypeScript server in a mode (started on first use, shared by the module)."""
    started: dict[str, ServerProcess] = {}

    def get(mode: str) -> str:
        if mode not in started:
            server = ServerProcess(node_server("http", "{port}", *MODES[mode]))
            started[mode] = server
            server.start_sync()
        return started[mode].url

    yield get
    for server in started.values():
        server.stop_sync()


def stdio_client(**kwargs: Any) -> MCPClient:
    return MCPClient(command=node_server("stdio"), **kwargs)


async def open_sessions(url: str) -> int:
    async with httpx.AsyncClient() as client:
        response = await client.get(url.replace("/mcp", "/sessions"))
        count: int = response.json()["open"]
        return count


async def test_stdio_everything() -> None:
    async with stdio_client() as mcp:
        assert mcp.session_id is None
        await exercise(mcp, server_name=NAME, instructions=INSTRUCTIONS)


@pytest.mark.parametrize("mode", MODES)
async def test_streamable_http_everything(servers: Servers, mode: str) -> None:
    url = servers(mode)
    async with MCPClient(url) as mcp:
        assert (mcp.session_id is None) == mode.startswith("stateless")
        await exercise(
            mcp, server_name=NAME, instructions=INSTRUCTIONS, progress=not mode.endswith("json")
        )


async def test_stdio_server_requests() -> None:
    async with stdio_client(**answers()) as mcp:
        await server_requests(mcp)


@pytest.mark.parametrize("mode", ["stateful-sse", "stateful-json"])
async def test_streamable_http_server_requests(servers: Servers, mode: str) -> None:
    async with MCPClient(servers(mode), **answers()) as mcp:
        await server_requests(mcp)


async def test_session_id_on_every_request_and_deleted_on_close(servers: Servers) -> None:
    url = servers("stateful-sse")
    before = await open_sessions(url)
    async with MCPClient(url) as mcp:
        assert mcp.session_id
        # The TypeScript server refuses a request without its session (400) or
        # with a wrong version header: these calls pass only with both headers.
        await mcp.ping()
        await mcp.call_tool("echo", {"text": "x"})
        assert await open_sessions(url) == before + 1
    assert await open_sessions(url) == before  # DELETE ended it


async def test_session_ended_by_the_server_is_renewed_once(servers: Servers) -> None:
    url = servers("stateful-json")
    async with MCPClient(url) as mcp:
        first = mcp.session_id
        assert first
        async with httpx.AsyncClient() as client:
            response = await client.delete(
                url, headers={"mcp-session-id": first, "mcp-protocol-version": "2025-11-25"}
            )
        assert response.status_code == 200
        result = await mcp.call_tool("add", {"a": 2, "b": 3})  # 404, new session, sent again
        assert result["structuredContent"] == {"result": 5}
        assert mcp.session_id and mcp.session_id != first


async def _assert_cancelled(marker: Path) -> None:
    await wait_for(marker.exists)
    assert marker.read_text() == "cancelled"


async def test_stdio_call_timing_out_is_cancelled_on_the_server(tmp_path: Path) -> None:
    marker = tmp_path / "cancelled"
    async with stdio_client() as mcp:
        with pytest.raises(errors.TimeoutError) as info:
            await mcp.call_tool("slow", {"seconds": 30, "marker": str(marker)}, timeout=0.5)
        assert info.value.code == "ERR_TIMEOUT"
        await _assert_cancelled(marker)
        assert (await mcp.call_tool("echo", {"text": "x"}))["content"][0]["text"] == "x"


@pytest.mark.parametrize("mode", ["stateful-sse", "stateful-json"])
async def test_http_call_cancelled_by_the_caller_is_cancelled_on_the_server(
    servers: Servers, mode: str, tmp_path: Path
) -> None:
    marker = tmp_path / "cancelled"
    async with MCPClient(servers(mode)) as mcp:
        call = asyncio.create_task(mcp.call_tool("slow", {"seconds": 30, "marker": str(marker)}))
        await asyncio.sleep(0.3)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await _assert_cancelled(marker)
        assert (await mcp.call_tool("echo", {"text": "x"}))["content"][0]["text"] == "x"


async def test_stream_closed_by_the_server_is_resumed_with_last_event_id(
    servers: Servers, tmp_path: Path
) -> None:
    marker = tmp_path / "runs"
    async with MCPClient(servers("stateful-sse")) as mcp:
        logs: list[Any] = []
        mcp.on("log", lambda params: logs.append(params["data"]))
        result = await mcp.call_tool("cut", {"marker": str(marker)})
        assert result["content"][0]["text"] == "survived the cut"
        assert marker.read_text() == "run\n"  # sent once, run once
        await wait_for(lambda: len(logs) == 2)
        assert logs == ["before the cut", "after the cut"]


@pytest.mark.parametrize("fault", ["reset", "cut"])
async def test_connection_broken_mid_response_resumes_and_completes_once(
    servers: Servers, tmp_path: Path, fault: str
) -> None:
    marker = tmp_path / "runs"
    async with FaultProxy(servers("stateful-sse")) as proxy, MCPClient(proxy.url) as mcp:
        logs: list[Any] = []
        mcp.on("log", lambda params: logs.append(params["data"]))
        call = asyncio.create_task(mcp.call_tool("drip", {"count": 6, "marker": str(marker)}))
        await wait_for(lambda: "drip 1" in logs)
        accepted = proxy.accepted
        await (proxy.reset() if fault == "reset" else proxy.cut())
        result = await asyncio.wait_for(call, 30)
        assert result["content"][0]["text"] == "dripped"
        assert proxy.accepted > accepted  # reconnected (GET with Last-Event-ID)
        assert marker.read_text() == "run\n"  # the request was not sent again
        await wait_for(lambda: len(logs) == 6)
        assert logs == [f"drip {index}" for index in range(6)]  # none lost, none twice


def test_missing_node_modules_is_a_clear_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.servers import mcp_process

    monkeypatch.setattr(mcp_process, "NODE_DIR", Path("/nonexistent/tests/node"))
    with pytest.raises(pytest.fail.Exception, match="run scripts/setup"):
        node_server("stdio")


async def test_tool_schemas_come_from_the_typescript_server() -> None:
    async with stdio_client() as mcp:
        tools = {tool["name"]: tool for tool in await mcp.list_tools()}
    add = tools["add"]
    assert add["inputSchema"]["properties"].keys() == {"a", "b"}
    assert add["outputSchema"]["properties"]["result"]["type"] == "integer"
    assert json.dumps(tools["echo"]["inputSchema"]["required"]) == '["text"]'


# -- a stalled network: bounded waits ------------------------------------------------


async def test_server_stalling_at_connect_is_a_timeout(servers: Servers) -> None:
    # The proxy accepts the TCP connection and then forwards nothing: the
    # initialize POST gets no response headers. The call itself has no deadline.
    async with FaultProxy(servers("stateful-sse")) as proxy:
        proxy.stall()
        mcp = MCPClient(proxy.url, timeout=None, timeout_seconds=0.5)
        with pytest.raises(errors.TimeoutError, match="no response headers") as info:
            await asyncio.wait_for(mcp.connect(), 10)
        assert info.value.code == "ERR_TIMEOUT"
        await mcp.close()


async def test_server_stalling_later_is_a_timeout_for_notifications(servers: Servers) -> None:
    async with FaultProxy(servers("stateful-sse")) as proxy:
        async with MCPClient(proxy.url, timeout=None, timeout_seconds=0.5) as mcp:
            await mcp.ping()
            proxy.stall()
            with pytest.raises(errors.TimeoutError, match="no response headers"):
                await asyncio.wait_for(mcp.notify("notifications/roots/list_changed"), 10)
            proxy.resume()
            await mcp.ping()  # the session goes on once the network does


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A loopback port whose accept queue is full: a new connection is never established."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for sock in (*fillers, listener):
            sock.close()


async def test_connecting_is_bounded_even_without_a_deadline(full_backlog: int) -> None:
    # No call deadline and no bound on the response headers: only connect_timeout.
    url = f"http://127.0.0.1:{full_backlog}/mcp"
    mcp = MCPClient(url, timeout=None, timeout_seconds=0, connect_timeout=0.5, max_retries=0)
    with pytest.raises(errors.TimeoutError) as info:
        await asyncio.wait_for(mcp.connect(), 10)
    assert info.value.code == "ERR_TIMEOUT"
    await mcp.close()
