"""MCPClient against the Node reference server ``@modelcontextprotocol/server-everything``.

Over stdio (the package's own entry point), over Streamable HTTP and over the
2024-11-05 HTTP+SSE transport (``tests/node/everything_http.mjs``: the
package's transports with every ``listen()`` forced onto 127.0.0.1). One server per transport is shared by the
module; each test opens its own session.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from agenticaiframework.communication.agents.mcp import MCPClient
from agenticaiframework.communication.agents.mcp.streamable_http import StreamableHTTPTransport
from agenticaiframework.communication.core import errors
from tests.agents.mcp_checks import wait_for
from tests.servers.mcp_process import NODE_DIR, ServerProcess

PACKAGE = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-everything"
TEXT_TEMPLATE = "demo://resource/dynamic/text/{resourceId}"
ROOTS = [{"uri": "file:///work/project", "name": "project"}]


def _node() -> str:
    """Node, or a clear failure naming the fix (not an error deep in a child's stderr)."""
    if not (PACKAGE / "dist" / "index.js").is_file():
        pytest.fail(
            "tests/node/node_modules is missing @modelcontextprotocol/server-everything: "
            "run scripts/setup (or `cd tests/node && npm ci`)",
            pytrace=False,
        )
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js 20+ and run scripts/setup", pytrace=False)
    return node


def _http_server(transport: str, path: str) -> ServerProcess:
    command = [_node(), str(NODE_DIR / "everything_http.mjs"), "{port}", transport]
    return ServerProcess(command, path)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """The server's Streamable HTTP endpoint on 127.0.0.1 (shared by the module)."""
    server = _http_server("streamableHttp", "/mcp")
    yield server.start_sync()
    server.stop_sync()


def _stdio(**kwargs: Any) -> MCPClient:
    # The server can outlive the end of its stdin (its timers, e.g. the roots/list
    # request it sends 350 ms after initialize, keep Node running): a short
    # grace before SIGTERM keeps each close quick.
    command = [_node(), str(PACKAGE / "dist" / "index.js"), "stdio"]
    return MCPClient(command=command, terminate_timeout=0.5, **kwargs)


async def _sampling(params: dict[str, Any]) -> dict[str, Any]:
    text = params["messages"][0]["content"]["text"]
    return {
        "role": "assistant",
        "content": {"type": "text", "text": f"model says: {text}"},
        "model": "test-model",
        "stopReason": "endTurn",
    }


def _elicitation(params: dict[str, Any]) -> dict[str, Any]:
    assert params["requestedSchema"]["required"] == ["name"]
    return {"action": "accept", "content": {"name": "Ada Lovelace", "check": True}}


HANDLERS: dict[str, Any] = {
    "sampling_handler": _sampling,
    "elicitation_handler": _elicitation,
    "roots": ROOTS,
}


@pytest.fixture(params=["stdio", "http"])
async def mcp(request: pytest.FixtureRequest) -> AsyncIterator[MCPClient]:
    """A session with the server over each transport, with every client capability."""
    if request.param == "stdio":
        client = _stdio(**HANDLERS)
    else:
        client = MCPClient(request.getfixturevalue("http_url"), **HANDLERS)
    async with client:
        yield client


def _text(result: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in result["content"] if block["type"] == "text")


async def test_initialize_tools_prompts_and_completion(mcp: MCPClient) -> None:
    assert mcp.protocol_version == "2025-11-25"
    assert mcp.server_info["name"] == "mcp-servers/everything"
    caps = mcp.server_capabilities
    assert caps["resources"]["subscribe"] is True and "logging" in caps and "tools" in caps
    assert mcp.instructions and "everything" in mcp.instructions.lower()
    # The tools offered only to a client that declared sampling, elicitation and
    # roots are there: our capabilities reached the server.
    names = {tool["name"] for tool in await mcp.list_tools()}
    assert {
        "echo",
        "get-sum",
        "trigger-long-running-operation",
        "trigger-sampling-request",
        "trigger-elicitation-request",
        "get-roots-list",
    } <= names
    assert _text(await mcp.call_tool("echo", {"message": "héllo"})) == "Echo: héllo"
    result = await mcp.call_tool("get-sum", {"a": 2, "b": 40})
    assert _text(result) == "The sum of 2 and 40 is 42." and not result.get("isError")
    # A bad argument is a tool result with isError, as the spec says.
    bad = await mcp.call_tool("get-sum", {"a": "two", "b": 40})
    assert bad["isError"] is True

    prompts = {prompt["name"]: prompt for prompt in await mcp.list_prompts()}
    assert {"simple-prompt", "args-prompt", "completable-prompt"} <= set(prompts)
    assert {arg["name"] for arg in prompts["args-prompt"]["arguments"]} == {"city", "state"}
    prompt = await mcp.get_prompt("args-prompt", {"city": "Paris", "state": "Texas"})
    assert prompt["messages"][0]["content"]["text"] == "What's weather in Paris, Texas?"

    ref = {"type": "ref/prompt", "name": "completable-prompt"}
    completion = await mcp.complete(ref, {"name": "department", "value": "S"})
    assert completion["values"] == ["Sales", "Support"]
    completion = await mcp.complete(
        ref, {"name": "name", "value": ""}, {"arguments": {"department": "Engineering"}}
    )
    assert completion["values"] == ["Alice", "Bob", "Charlie"]
    completion = await mcp.complete(
        {"type": "ref/resource", "uri": TEXT_TEMPLATE}, {"name": "resourceId", "value": "7"}
    )
    assert completion["values"] == ["7"]
    await mcp.ping()


async def test_long_running_tool_reports_progress(mcp: MCPClient) -> None:
    seen: list[dict[str, Any]] = []
    result = await mcp.call_tool(
        "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, on_progress=seen.append
    )
    assert _text(result) == "Long running operation completed. Duration: 0.3 seconds, Steps: 3."
    await wait_for(lambda: len(seen) == 3)
    assert [(p["progress"], p["total"]) for p in seen] == [(1, 3), (2, 3), (3, 3)]


async def test_resources_subscription_and_logging_level(mcp: MCPClient) -> None:
    resources = {resource["uri"]: resource for resource in await mcp.list_resources()}
    doc = "demo://resource/static/document/instructions.md"
    assert doc in resources and resources[doc]["mimeType"] == "text/markdown"
    read = await mcp.read_resource(doc)
    assert read["contents"][0]["text"] == mcp.instructions
    templates = {t["uriTemplate"] for t in await mcp.list_resource_templates()}
    assert templates == {TEXT_TEMPLATE, "demo://resource/dynamic/blob/{resourceId}"}
    text = (await mcp.read_resource("demo://resource/dynamic/text/7"))["contents"][0]
    assert text["text"].startswith("Resource 7: This is a plaintext resource")
    blob = (await mcp.read_resource("demo://resource/dynamic/blob/8"))["contents"][0]
    assert base64.b64decode(blob["blob"]).startswith(b"Resource 8: This is a base64 blob")
    with pytest.raises(errors.RemoteError) as info:
        await mcp.read_resource("demo://resource/dynamic/text/0")
    assert "Unknown resource" in str(info.value)

    logs: list[str] = []
    updated: list[str] = []
    mcp.on("log", lambda params: logs.append(str(params["data"])))
    mcp.on("resource_updated", lambda params: updated.append(params["uri"]))
    # The server acknowledges a subscription with an info-level log message:
    # at "error" it is held back, at "info" it comes. Both go on one stream in
    # order, so the first acknowledgement we see must be the second one's.
    other = "demo://resource/static/document/architecture.md"
    await mcp.set_logging_level("error")
    await mcp.subscribe_resource(other)
    await mcp.set_logging_level("info")
    await mcp.subscribe_resource(doc)
    await wait_for(lambda: any("Subscribe" in line for line in logs))
    acks = [line for line in logs if "Subscribe" in line]
    assert acks[0].startswith(f"Received Subscribe Resource request for URI: {doc}")
    # The server then announces an update of every resource we subscribed to.
    result = await mcp.call_tool("toggle-subscriber-updates", {})
    assert _text(result).startswith("Started simulated resource updated notifications")
    await wait_for(lambda: {doc, other} <= set(updated))
    assert sorted(updated[:2]) == sorted([doc, other])
    await mcp.call_tool("toggle-subscriber-updates", {})  # stop the server's timer
    await mcp.unsubscribe_resource(doc)
    await mcp.unsubscribe_resource(other)


async def test_server_requests_answered_by_our_handlers(mcp: MCPClient) -> None:
    result = await mcp.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
    sampled = json.loads(_text(result).split("\n", 1)[1])
    assert sampled["content"]["text"] == "model says: Resource trigger-sampling-request context: hi"
    assert sampled["model"] == "test-model"

    result = await mcp.call_tool("trigger-elicitation-request", {})
    text = _text(result)
    assert "- Name: Ada Lovelace" in text and "- Agreed to terms: true" in text
    raw = json.loads(text.split("Raw result: ", 1)[1])
    # SEP-1034: each field our handler left out went back with its schema default.
    assert raw["action"] == "accept"
    assert raw["content"]["firstLine"] == "It was a dark and stormy night."
    assert raw["content"]["titledMultipleSelectEnum"] == ["fish-1"]
    assert "email" not in raw["content"]  # no default: still left out

    result = await mcp.call_tool("get-roots-list", {})
    assert "Current MCP Roots (1 total)" in _text(result)
    assert "1. project\n   URI: file:///work/project" in _text(result)


async def test_without_client_capabilities_those_tools_are_not_offered() -> None:
    async with _stdio() as mcp:
        names = {tool["name"] for tool in await mcp.list_tools()}
    assert "echo" in names
    assert not {"trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"} & names


async def test_http_server_listens_on_loopback_only(http_url: str) -> None:
    port = http_url.split(":")[2].split("/")[0]
    lines = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    local = [line.split()[3] for line in lines]
    assert local == [f"127.0.0.1:{port}"]
    async with MCPClient(http_url) as mcp:
        assert mcp.session_id  # the package's server is stateful
        await mcp.ping()


async def test_legacy_http_sse_transport_is_fallen_back_to() -> None:
    # The package's HTTP+SSE server answers our first POST to /sse with 404:
    # the client falls back to GET /sse + POST to the endpoint it announces.
    server = _http_server("sse", "/sse")
    url = await server.start()
    try:
        async with MCPClient(url, **HANDLERS) as mcp:
            assert isinstance(mcp._transport, StreamableHTTPTransport) and mcp._transport.legacy
            assert mcp.server_info["name"] == "mcp-servers/everything"
            assert _text(await mcp.call_tool("echo", {"message": "old"})) == "Echo: old"
            seen: list[dict[str, Any]] = []
            await mcp.call_tool(
                "trigger-long-running-operation",
                {"duration": 0.2, "steps": 2},
                on_progress=seen.append,
            )
            await wait_for(lambda: len(seen) == 2)
            assert [p["progress"] for p in seen] == [1, 2]
            result = await mcp.call_tool("trigger-sampling-request", {"prompt": "hi"})
            assert "model says: Resource trigger-sampling-request context: hi" in _text(result)
    finally:
        await server.stop()
