"""What MCPClient must do the same against every conforming server (Python SDK, TypeScript SDK).

Both test servers (``tests/servers/mcp_full_server.py`` and
``tests/node/mcp_server.mjs``) offer the same tools, resources and prompt.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from agenticaiframework.communication.agents.mcp import MCPClient
from agenticaiframework.communication.core import errors

__all__ = ["answers", "exercise", "server_requests", "wait_for"]


async def wait_for(condition: Any, seconds: float = 10.0) -> None:
    """Poll ``condition()`` until it is true (events arrive through a task)."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)


async def exercise(
    mcp: MCPClient, *, server_name: str, instructions: str, progress: bool = True
) -> None:
    """Tools, progress, resources, templates, prompts, completion, ping and a remote error."""
    assert mcp.protocol_version == "2025-11-25"
    assert mcp.server_info["name"] == server_name
    assert "tools" in mcp.server_capabilities
    assert mcp.instructions == instructions
    names = {tool["name"] for tool in await mcp.list_tools()}
    assert {"add", "echo", "slow", "progress", "ask", "sample", "roots"} <= names
    result = await mcp.call_tool("add", {"a": 1, "b": 2})
    assert result["structuredContent"] == {"result": 3} and not result.get("isError")
    seen: list[dict[str, Any]] = []
    result = await mcp.call_tool("progress", {"steps": 3}, on_progress=seen.append)
    assert result["content"][0]["text"] == "done"
    if progress:  # a server answering with JSON bodies has nowhere to send progress
        await wait_for(lambda: len(seen) == 3)
        assert [p["progress"] for p in seen] == [1, 2, 3] and seen[0]["total"] == 3
    resources = await mcp.list_resources()
    assert [r["uri"] for r in resources] == ["test://greeting"]
    templates = await mcp.list_resource_templates()
    assert templates[0]["uriTemplate"] == "test://items/{item}"
    read = await mcp.read_resource("test://items/x")
    assert read["contents"][0]["text"] == "item x"
    prompts = await mcp.list_prompts()
    assert prompts[0]["name"] == "review"
    prompt = await mcp.get_prompt("review", {"code": "x = 1"})
    assert "Review this python code: x = 1" in json.dumps(prompt["messages"])
    completion = await mcp.complete(
        {"type": "ref/prompt", "name": "review"}, {"name": "language", "value": "p"}
    )
    assert set(completion["values"]) == {"python", "perl", "php"}
    await mcp.ping()
    with pytest.raises(errors.RemoteError) as info:
        await mcp.read_resource("test://nothing-here")
    assert isinstance(info.value.remote_code, int)


def answers(**mcp_kwargs: Any) -> dict[str, Any]:
    """MCPClient arguments answering sampling, elicitation and roots/list."""

    async def sampling(params: dict[str, Any]) -> dict[str, Any]:
        text = params["messages"][0]["content"]["text"]
        return {
            "role": "assistant",
            "content": {"type": "text", "text": f"model says {text}"},
            "model": "test-model",
        }

    def elicitation(params: dict[str, Any]) -> dict[str, Any]:
        assert params["requestedSchema"]["properties"]["age"]["default"] == 42
        return {"action": "accept", "content": {"name": "ada"}}

    return {
        "sampling_handler": sampling,
        "elicitation_handler": elicitation,
        "roots": [{"uri": "file:///work", "name": "work"}],
        **mcp_kwargs,
    }


async def server_requests(mcp: MCPClient) -> None:
    """The server's sampling, elicitation and roots/list requests, answered (see :func:`answers`)."""
    result = await mcp.call_tool("sample", {"prompt": "hi"})
    assert result["content"][0]["text"] == "model says hi"
    result = await mcp.call_tool("ask", {})
    # SEP-1034: the omitted field got its schema default before the answer went out.
    assert json.loads(result["content"][0]["text"]) == {
        "action": "accept",
        "content": {"name": "ada", "age": 42},
    }
    result = await mcp.call_tool("roots", {})
    assert result["structuredContent"] == {"result": ["file:///work"]}
