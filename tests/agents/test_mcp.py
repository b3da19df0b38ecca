"""MCPClient against the official ``mcp`` package's server, over stdio and Streamable HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agenticaiframework.communication.agents.mcp import (
    MCPAuthorizationError,
    MCPClient,
    StdioTransport,
    StreamableHTTPTransport,
)
from agenticaiframework.communication.core import errors
from agenticaiframework.communication.testing.proxy import FaultProxy
from tests.agents.mcp_checks import answers, exercise, server_requests
from tests.servers.mcp_process import (
    PYTHON_ENV,
    PYTHON_SERVER,
    ROOT,
    ServerProcess,
    python_server,
)

SERVER = PYTHON_SERVER
ENV = PYTHON_ENV
NAME = "mcp-full-test"
INSTRUCTIONS = "test server"


@pytest.fixture
async def http_server(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, ServerProcess]]:
    flags: tuple[str, ...] = getattr(request, "param", ())
    server = python_server(*flags)
    url = await server.start()
    try:
        yield url, server
    finally:
        await server.stop()


MODES = [(), ("--json",), ("--stateless",), ("--stateless", "--json")]
MODE_IDS = ["stateful-sse", "stateful-json", "stateless-sse", "stateless-json"]


def stdio_client(**kwargs: Any) -> MCPClient:
    return MCPClient(command=[*SERVER, "stdio"], env=ENV, working_dir=str(ROOT), **kwargs)


async def test_stdio_everything() -> None:
    async with stdio_client() as mcp:
        assert mcp.session_id is None
        await exercise(mcp, server_name=NAME, instructions=INSTRUCTIONS)


@pytest.mark.parametrize("http_server", MODES, ids=MODE_IDS, indirect=True)
async def test_streamable_http_everything(http_server: tuple[str, ServerProcess]) -> None:
    url, server = http_server
    async with MCPClient(url) as mcp:
        if "--stateless" in server.flags:
            assert mcp.session_id is None
        else:
            assert mcp.session_id
        await exercise(
            mcp,
            server_name=NAME,
            instructions=INSTRUCTIONS,
            progress="--json" not in server.flags,
        )
        assert repr(mcp).startswith(f"<MCPClient '{url}'")


async def test_stdio_server_requests() -> None:
    async with stdio_client(**answers()) as mcp:
        await server_requests(mcp)


# The SDK's server in JSON-response mode refuses to send requests of its own
# ("no back-channel"), so only its SSE mode can be tested here.
async def test_streamable_http_server_requests(
    http_server: tuple[str, ServerProcess],
) -> None:
    async with MCPClient(http_server[0], **answers()) as mcp:
        await server_requests(mcp)


async def test_server_request_without_handler_gets_method_not_found() -> None:
    async with stdio_client() as mcp:
        # The SDK server passes our -32601 on as the error of its tools/call.
        with pytest.raises(errors.RemoteError, match="Method not found: roots/list") as info:
            await mcp.call_tool("roots", {})
        assert info.value.remote_code == -32601


async def test_events_log_and_resource_updated() -> None:
    async with stdio_client() as mcp:
        logs: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        notifications: list[str] = []
        mcp.on("log", logs.append)
        mcp.on("resource_updated", updated.append)

        async def every(message: dict[str, Any]) -> None:
            notifications.append(message["method"])

        mcp.on("notification", every)

        await mcp.call_tool("touch", {"uri": "test://greeting"})
        for _ in range(500):
            if updated:
                break
            await asyncio.sleep(0.02)
        assert updated == [{"uri": "test://greeting"}]
        assert "notifications/resources/updated" in notifications


async def test_stalled_call_times_out_and_the_server_sees_the_cancellation(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "cancelled"
    async with stdio_client() as mcp:
        with pytest.raises(errors.TimeoutError) as info:
            await mcp.call_tool("slow", {"seconds": 30, "marker": str(marker)}, timeout=0.5)
        assert info.value.code == "ERR_TIMEOUT"
        for _ in range(200):
            if marker.exists():
                break
            await asyncio.sleep(0.05)
        assert marker.read_text() == "cancelled"
        # The session is still usable.
        assert (await mcp.call_tool("echo", {"text": "x"}))["content"][0]["text"] == "x"


@pytest.mark.parametrize("http_server", MODES[:2], ids=MODE_IDS[:2], indirect=True)
async def test_http_stalled_call_times_out_and_is_cancelled(
    http_server: tuple[str, ServerProcess], tmp_path: Path
) -> None:
    marker = tmp_path / "cancelled"
    async with MCPClient(http_server[0]) as mcp:
        with pytest.raises(errors.TimeoutError):
            await mcp.call_tool("slow", {"seconds": 30, "marker": str(marker)}, timeout=0.5)
        for _ in range(200):
            if marker.exists():
                break
            await asyncio.sleep(0.05)
        assert marker.read_text() == "cancelled"
        assert (await mcp.call_tool("echo", {"text": "x"}))["content"][0]["text"] == "x"


async def test_stdio_child_death_fails_pending_calls_at_once() -> None:
    async with stdio_client() as mcp:
        task = asyncio.create_task(mcp.call_tool("slow", {"seconds": 30}, timeout=None))
        await asyncio.sleep(0.3)
        transport = mcp._transport
        assert isinstance(transport, StdioTransport)
        pid = transport.client.pid
        assert pid is not None
        assert (await mcp.health_check()).is_healthy
        os.killpg(pid, signal.SIGKILL)
        with pytest.raises(errors.ProcessExitedError):
            await asyncio.wait_for(task, 10)
        with pytest.raises(errors.ProcessExitedError):
            await mcp.ping()
        status = await mcp.health_check()
        assert not status.is_healthy and "exited" in status.detail


@pytest.mark.parametrize("http_server", MODES[:2], ids=MODE_IDS[:2], indirect=True)
async def test_server_restart_loses_the_session_and_the_next_call_reinitializes(
    http_server: tuple[str, ServerProcess],
) -> None:
    url, server = http_server
    async with MCPClient(url) as mcp:
        first = mcp.session_id
        assert first
        await server.stop()
        await server.start()  # same port, new process: it knows no session
        result = await mcp.call_tool("add", {"a": 2, "b": 3})
        assert result["structuredContent"] == {"result": 5}
        assert mcp.session_id and mcp.session_id != first


async def test_cut_sse_stream_resumes_with_last_event_id(
    http_server: tuple[str, ServerProcess], tmp_path: Path
) -> None:
    marker = tmp_path / "runs"
    async with MCPClient(http_server[0]) as mcp:
        logs: list[Any] = []
        mcp.on("log", lambda params: logs.append(params["data"]))
        result = await mcp.call_tool("cut", {"marker": str(marker)})
        assert result["content"][0]["text"] == "survived the cut"
        # The request went out once: the tool ran once.
        assert marker.read_text() == "run\n"
        for _ in range(500):
            if len(logs) == 2:
                break
            await asyncio.sleep(0.02)
        assert logs == ["before the cut", "after the cut"]


def test_bad_configuration_is_a_config_error() -> None:
    with pytest.raises(errors.ConfigError, match="url= or command="):
        MCPClient()
    with pytest.raises(errors.ConfigError, match="url= or command="):
        MCPClient("http://127.0.0.1:1/mcp", command=["x"])
    with pytest.raises(errors.ConfigError, match="protocol_version"):
        MCPClient("http://127.0.0.1:1/mcp", protocol_version="2024-01-01")
    with pytest.raises(errors.ConfigError, match="command"):
        MCPClient(command="python server.py")  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigError, match="roots"):
        MCPClient(command=["x"], roots=[{"name": "no uri"}])


def test_plain_http_to_a_remote_host_is_refused_before_connecting() -> None:
    with pytest.raises(errors.SecurityError):
        MCPClient("http://mcp.example.com/mcp")
    with pytest.raises(errors.SecurityError):
        MCPClient("ftp://127.0.0.1/mcp")


async def test_url_credentials_are_redacted_in_repr_and_errors() -> None:
    mcp = MCPClient("http://user:s3cret@127.0.0.1:1/mcp?token=s3cret", timeout=5)
    assert "s3cret" not in repr(mcp)
    with pytest.raises(errors.ConnectionError) as info:
        await mcp.connect()
    assert "s3cret" not in str(info.value)
    await mcp.close()


@pytest.mark.parametrize("http_server", [("--legacy-sse",)], ids=["http+sse"], indirect=True)
async def test_falls_back_to_the_2024_11_05_http_sse_transport(
    http_server: tuple[str, ServerProcess],
) -> None:
    url, _ = http_server
    async with MCPClient(url, **answers()) as mcp:
        assert isinstance(mcp._transport, StreamableHTTPTransport) and mcp._transport.legacy
        assert mcp.session_id is None
        await exercise(mcp, server_name=NAME, instructions=INSTRUCTIONS)
        await server_requests(mcp)


@pytest.mark.parametrize("http_server", [("--legacy-sse",)], ids=["http+sse"], indirect=True)
async def test_no_fallback_when_turned_off(http_server: tuple[str, ServerProcess]) -> None:
    mcp = MCPClient(http_server[0], legacy_fallback=False)
    with pytest.raises(errors.HTTPStatusError) as info:
        await mcp.connect()
    assert info.value.status_code == 405
    await mcp.close()


@pytest.mark.parametrize("fault", ["reset", "cut"])
async def test_connection_broken_mid_response_resumes_and_completes_once(
    http_server: tuple[str, ServerProcess], tmp_path: Path, fault: str
) -> None:
    url, _ = http_server
    marker = tmp_path / "runs"
    async with FaultProxy(url) as proxy, MCPClient(proxy.url) as mcp:
        logs: list[Any] = []
        mcp.on("log", lambda params: logs.append(params["data"]))
        call = asyncio.create_task(mcp.call_tool("drip", {"count": 8, "marker": str(marker)}))
        for _ in range(500):
            if "drip 1" in logs:
                break
            await asyncio.sleep(0.01)
        accepted = proxy.accepted
        await (proxy.reset() if fault == "reset" else proxy.cut())
        result = await asyncio.wait_for(call, 30)
        assert result["content"][0]["text"] == "dripped"
        assert proxy.accepted > accepted  # reconnected (GET with Last-Event-ID)
        assert marker.read_text() == "run\n"  # the request was not sent again
        for _ in range(500):
            if len(logs) == 8:
                break
            await asyncio.sleep(0.02)
        assert logs == [f"drip {index}" for index in range(8)]  # none lost, none twice


def test_command_arguments_stay_out_of_repr() -> None:
    mcp = MCPClient(command=["python3", "server.py", "--token=s3cret"])
    assert "s3cret" not in repr(mcp) and "python3" in repr(mcp)
    with pytest.raises(errors.ConfigError, match="command"):
        MCPClient(command=[])


@pytest.mark.parametrize("http_server", [("--auth", "good-token")], ids=["oauth-rs"], indirect=True)
async def test_sdk_resource_server_with_a_bearer_token(
    http_server: tuple[str, ServerProcess],
) -> None:
    url, server = http_server
    async with MCPClient(url, auth={"type": "bearer", "token": "good-token"}) as mcp:
        await exercise(mcp, server_name=NAME, instructions=INSTRUCTIONS)
    for auth in (None, {"type": "bearer", "token": "wrong-token"}):
        mcp = MCPClient(url, auth=auth)
        with pytest.raises(MCPAuthorizationError) as info:
            await mcp.connect()
        await mcp.close()
        assert info.value.code == "ERR_AUTH" and info.value.status_code == 401
        assert info.value.error == "invalid_token"
        assert info.value.resource_metadata == (
            f"http://127.0.0.1:{server.port}/.well-known/oauth-protected-resource/mcp"
        )
        assert "wrong-token" not in str(info.value)
