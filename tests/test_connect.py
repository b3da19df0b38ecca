"""connect(): one entry point that picks the client for a URL, a domain or a command.

Every client is used against a real loopback server (HTTP, WebSocket, SSE,
MCP over Streamable HTTP and stdio, a STDIO child); AID discovery runs
against a real DNS server on loopback.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import agenticaiframework.communication as comm
from agenticaiframework.communication import (
    ConfigError,
    GRPCClient,
    HTTPClient,
    MCPClient,
    MQTTClient,
    SecurityError,
    SSEClient,
    STDIOClient,
    WebSocketClient,
    connect,
    connect_agent,
)
from agenticaiframework.communication.agents.discovery import AgentRecord, DiscoveryError
from agenticaiframework.communication.connect import SCHEMES, Endpoint, resolve
from agenticaiframework.communication.core.lifecycle import ClientState
from agenticaiframework.communication.testing.http import EchoServer
from agenticaiframework.communication.testing.websocket import WebSocketServer
from tests.servers.dns_server import DNSServer, serve_dns

ROOT = Path(__file__).resolve().parent.parent
MCP_SERVER = [sys.executable, "-m", "tests.servers.mcp_full_server"]


@pytest.fixture
async def dns_server() -> AsyncIterator[DNSServer]:
    async with serve_dns() as server:
        yield server


def dns_options(server: DNSServer) -> dict[str, Any]:
    return {"nameservers": ["127.0.0.1"], "port": server.port, "timeout": 2.0}


@pytest.fixture
async def mcp_http_url() -> AsyncIterator[str]:
    """The official mcp SDK's Streamable HTTP server, in a child process."""
    proc = await asyncio.create_subprocess_exec(
        *MCP_SERVER,
        "http",
        "0",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.startswith(b"READY "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}/mcp"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


# ------------------------------------------------------------------ which client


@pytest.mark.parametrize(
    ("address", "kind", "protocol"),
    [
        ("https://api.example.com/v1", HTTPClient, "http"),
        ("http://127.0.0.1:9/v1", HTTPClient, "http"),
        ("wss://feed.example.com/stream", WebSocketClient, "websocket"),
        ("ws://127.0.0.1:9/stream", WebSocketClient, "websocket"),
        ("mqtts://broker.example.com", MQTTClient, "mqtt"),
        ("mqtt://127.0.0.1:9", MQTTClient, "mqtt"),
        ("grpcs://rpc.example.com:443", GRPCClient, "grpc"),
        ("grpc://127.0.0.1:9", GRPCClient, "grpc"),
        ("sse+https://events.example.com/stream", SSEClient, "sse"),
        ("SSE+HTTP://127.0.0.1:9/events", SSEClient, "sse"),
        ("mcp+https://mcp.example.com/mcp", MCPClient, "mcp"),
        ("mcp+http://127.0.0.1:9/mcp", MCPClient, "mcp"),
    ],
)
async def test_each_scheme_gives_its_client_not_connected(
    address: str, kind: type[Any], protocol: str
) -> None:
    endpoint = await resolve(address)
    assert endpoint.protocol == protocol and endpoint.client == kind.__name__
    client = await connect(address)
    try:
        assert type(client) is kind
        assert client.state is ClientState.UNOPENED
    finally:
        await client.close()


async def test_the_prefix_is_removed_and_protocol_picks_the_client_for_https() -> None:
    sse = await connect("sse+https://events.example.com/stream?x=1")
    assert isinstance(sse, SSEClient) and sse.url == "https://events.example.com/stream?x=1"
    mcp = await connect("https://mcp.example.com/mcp", protocol="mcp")
    assert isinstance(mcp, MCPClient) and "https://mcp.example.com/mcp" in repr(mcp)
    grpc_client = await connect("grpcs://rpc.example.com:8443")
    assert (
        isinstance(grpc_client, GRPCClient) and grpc_client.target == "grpcs://rpc.example.com:8443"
    )
    http = await connect("https://api.example.com/v1", timeout_seconds=3.0)
    assert isinstance(http, HTTPClient) and http.config.timeout_seconds == 3.0
    assert http.base_url == "https://api.example.com/v1"
    for client in (sse, mcp, grpc_client, http):
        await client.close()


# ------------------------------------------------------------------ real servers


async def test_connected_clients_talk_to_real_servers(
    agentcomm_http_server: EchoServer, agentcomm_ws_server: WebSocketServer
) -> None:
    base = agentcomm_http_server.url
    async with connect(base) as http:
        assert isinstance(http, HTTPClient)
        response = await http.post("/echo", json={"task": "x"})
    assert response.json()["path"] == "/echo" and http.state is ClientState.CLOSED

    async with connect(agentcomm_ws_server.url) as ws:
        assert isinstance(ws, WebSocketClient)
        await ws.send({"hello": "agent"})
        assert await ws.receive(timeout=10) == {"hello": "agent"}
    assert ws.state is ClientState.CLOSED

    names = []
    async with connect(f"sse+{base}/events", auto_reconnect=False) as sse:
        assert isinstance(sse, SSEClient)
        async for event in sse:
            names.append(event.event)
    assert names == ["message"] * 5 + ["done"]


async def test_a_command_list_gives_a_stdio_client(agentcomm_stdio_echo_command: list[str]) -> None:
    async with connect(agentcomm_stdio_echo_command) as child:
        assert isinstance(child, STDIOClient)
        await child.send({"ping": 1})
        assert await child.receive(timeout=10) == {"ping": 1}


async def test_mcp_over_streamable_http_and_over_stdio(
    mcp_http_url: str, agentcomm_mcp_server_command: list[str]
) -> None:
    async with connect(f"mcp+{mcp_http_url}") as remote:
        assert isinstance(remote, MCPClient)
        result = await remote.call_tool("add", {"a": 1, "b": 2})
        assert result["structuredContent"] == {"result": 3}
    async with connect(agentcomm_mcp_server_command, protocol="mcp") as local:
        assert isinstance(local, MCPClient)
        result = await local.call_tool("add", {"a": 2, "b": 3})
        assert result["content"][0]["text"] == "5"


async def test_a_failed_connect_inside_async_with_leaves_nothing_open() -> None:
    # Nothing listens on a port taken from a socket we close at once.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(comm.ConnectionError):
        async with connect(f"ws://127.0.0.1:{port}/x", auto_reconnect=False):
            raise AssertionError("connected to a closed port")


# ------------------------------------------------------------------ refused addresses


async def test_unknown_scheme_is_a_config_error_naming_the_schemes_accepted() -> None:
    for address in ("ftp://files.example.com/x", "redis://127.0.0.1:6379", "file:///etc/passwd"):
        with pytest.raises(ConfigError) as info:
            await connect(address)
        assert info.value.code == "ERR_CONFIG"
        message = str(info.value)
        assert address.split("://")[0] + "://" in message
        for scheme in SCHEMES:
            assert f"{scheme}://" in message
        assert "bare domain" in message and "command" in message


async def test_plain_text_to_a_remote_host_is_refused_before_any_client_exists() -> None:
    for address in (
        "http://agents.example.com/v1",
        "ws://agents.example.com/feed",
        "mqtt://agents.example.com",
        "grpc://agents.example.com:50051",
        "sse+http://agents.example.com/events",
        "mcp+http://agents.example.com/mcp",
    ):
        with pytest.raises(SecurityError) as info:
            await connect(address)
        assert info.value.code == "ERR_SECURITY", address
        with pytest.raises(SecurityError):
            async with connect(address):
                raise AssertionError("opened a plain-text client to a remote host")
    # The explicit opt-out still works, as for each client.
    client = await connect("http://agents.example.com/v1", allow_insecure=True)
    assert isinstance(client, HTTPClient)
    await client.close()


@pytest.mark.parametrize(
    ("address", "options", "needle"),
    [
        ("127.0.0.1", {}, "IP address"),
        ("localhost:8080", {}, "neither a URL"),
        ("python server.py", {}, "neither a URL"),
        ("", {}, "neither a URL"),
        ([], {}, "empty"),
        (["python", 3], {}, "str"),
        (b"https://x.example", {}, "str"),
        ("wss://feed.example.com", {"protocol": "mcp"}, "does not match"),
        ("https://x.example", {"protocol": "websocket"}, "cannot be spoken"),
        (["python", "x.py"], {"protocol": "a2a"}, "cannot be spoken"),
        ("https://x.example", {"no_such_option": 1}, "no_such_option"),
    ],
)
async def test_addresses_and_options_that_make_no_sense(
    address: Any, options: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle):
        await connect(address, **options)


async def test_nothing_happens_until_awaited() -> None:
    pending = connect("ftp://never.example")  # not awaited: no error, no warning
    del pending


# ------------------------------------------------------------------ AID discovery


async def test_a_bare_domain_is_discovered_and_gives_the_agent_client(
    dns_server: DNSServer,
) -> None:
    dns_server.set_txt("_agent.tools.test", "v=aid1;p=mcp;u=https://mcp.tools.test/mcp;s=Tools")
    dns_server.set_txt("_agent.feed.test", "v=aid1;p=websocket;u=wss://feed.test/stream")
    dns_server.set_txt("_agent.api.test", "v=aid1;p=openapi;u=https://api.test/openapi.json")
    options = dns_options(dns_server)

    endpoint = await resolve("tools.test", **options)
    assert (endpoint.protocol, endpoint.client, endpoint.url) == (
        "mcp",
        "MCPClient",
        "https://mcp.tools.test/mcp",
    )
    assert endpoint.record is not None and endpoint.record.desc == "Tools"

    mcp = await connect("tools.test", **options)
    assert isinstance(mcp, MCPClient) and mcp.state is ClientState.UNOPENED
    assert "https://mcp.tools.test/mcp" in repr(mcp)
    feed = await connect("feed.test", **options)
    assert isinstance(feed, WebSocketClient) and feed.url == "wss://feed.test/stream"
    api = await connect("api.test", **options)
    assert isinstance(api, HTTPClient) and api.base_url == "https://api.test/openapi.json"
    raw = await connect("tools.test", raw=True, **options)
    assert isinstance(raw, HTTPClient) and raw.base_url == "https://mcp.tools.test/mcp"
    for client in (mcp, feed, api, raw):
        await client.close()

    with pytest.raises(DiscoveryError) as info:
        await connect("nothing.test", **options)
    assert info.value.code == "ERR_NO_RECORD"


async def test_connect_agent_gives_mcp_client_and_keeps_the_old_plain_client() -> None:
    record = AgentRecord(v="aid1", proto="mcp", uri="https://mcp.example.com/mcp")
    mcp = await connect_agent(record, timeout=5.0)
    assert isinstance(mcp, MCPClient)
    assert isinstance(await connect_agent(record, raw=True), HTTPClient)
    from agenticaiframework.communication.agents.discovery import (
        connect_agent as plain_connect_agent,
    )

    # The discovery module's function is unchanged: the plain transport client.
    assert isinstance(await plain_connect_agent(record), HTTPClient)
    assert isinstance(await connect_agent("v=aid1;p=mcp;u=https://m.example/mcp"), MCPClient)
    await mcp.close()


async def test_connect_agent_refuses_an_agent_record_that_is_not_https() -> None:
    for proto in ("mcp", "a2a"):
        record = AgentRecord(v="aid1", proto=proto, uri="http://127.0.0.1:1/agent")
        with pytest.raises(DiscoveryError) as info:
            await connect_agent(record)
        assert info.value.code == "ERR_INVALID_TXT" and "https://" in str(info.value)
        with pytest.raises(DiscoveryError, match="Port out of range"):
            await connect_agent(AgentRecord(v="aid1", proto=proto, uri="https://a.example:99999"))


# ------------------------------------------------------------------ the package surface


def test_the_package_exports_the_functions_even_after_the_module_is_imported() -> None:
    # ``import ...communication.connect as m`` would give the function: the name is the package's.
    module = sys.modules["agenticaiframework.communication.connect"]
    assert comm.connect is module.connect and callable(comm.connect)
    assert comm.connect_agent is module.connect_agent
    assert "connect" in comm.__all__


async def test_endpoint_repr_redacts_credentials() -> None:
    endpoint = await resolve("https://bob:PW-SECRET@api.example.com/x?token=TOK-SECRET&page=2")
    text = repr(endpoint)
    assert "PW-SECRET" not in text and "TOK-SECRET" not in text and "page=2" in text
    command = Endpoint(protocol="stdio", client="STDIOClient", command=("tool", "--key=SECRET"))
    assert "SECRET" not in repr(command) and "tool" in repr(command)


# ------------------------------------------------------------------ A2A


async def test_a2a_addresses_give_an_a2a_client() -> None:
    from agenticaiframework.communication.agents.a2a.client import A2AClient

    for address in (
        "a2a+https://agent.example.com",
        "https://agent.example.com/.well-known/agent-card.json",
        "https://agent.example.com/.well-known/agent.json",
    ):
        client = await connect(address)
        assert isinstance(client, A2AClient) and client.state is ClientState.UNOPENED
        assert "https://agent.example.com/.well-known/agent" in repr(client)
        await client.close()
    forced = await connect("https://agent.example.com", protocol="a2a")
    assert isinstance(forced, A2AClient)
    await forced.close()
    record = await connect_agent(AgentRecord(v="aid1", proto="a2a", uri="https://a.example/a2a"))
    assert isinstance(record, A2AClient)
    await record.close()
    with pytest.raises(SecurityError):  # the card over plain text to a remote host
        await connect("a2a+http://agents.example.com")


async def test_a2a_agent_from_connect_and_from_its_aid_record(dns_server: DNSServer) -> None:
    from agenticaiframework.communication.agents.a2a.client import A2AClient
    from tests.agents.a2a.sdk_agent import serve_agent

    async with serve_agent() as agent:
        async with connect(f"a2a+{agent.url}") as a2a:
            assert isinstance(a2a, A2AClient)
            reply = await a2a.send("hello")
            assert reply.text == "Hello! You said: hello"  # type: ignore[union-attr]
        # An AID record must be https://; an Endpoint from resolve() builds the same client.
        dns_server.set_txt("_agent.team.test", "v=aid1;p=a2a;u=https://agents.team.test/a2a")
        endpoint = await resolve("team.test", **dns_options(dns_server))
        assert (endpoint.client, endpoint.url) == ("A2AClient", "https://agents.team.test/a2a")
        built = await connect(endpoint)
        assert isinstance(built, A2AClient) and "agents.team.test" in repr(built)
        await built.close()
        local = await connect(await resolve(f"a2a+{agent.url}"))
        async with local:
            assert (await local.send("hello")).kind == "message"  # type: ignore[union-attr]
