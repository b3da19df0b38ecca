"""MCP tasks (2025-11-25, SEP-1686) against the Node reference server and a hostile one.

``@modelcontextprotocol/server-everything`` offers ``simulate-research-query``
as a task-only tool (``execution.taskSupport: "required"``): four one-second
stages, then a report; with ``ambiguous`` it asks the client to clarify
(``input_required``, an elicitation delivered while ``tasks/result`` waits).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agenticaiframework.communication.agents.mcp import MCPClient
from agenticaiframework.communication.core import errors
from agenticaiframework.communication.testing import mcp_server_command
from tests.agents.mcp_checks import wait_for
from tests.agents.test_mcp_everything import _stdio, _text, http_url  # noqa: F401
from tests.servers.mcp_hostile import HostileState, make_app
from tests.servers.uvicorn_server import serve_asgi

TOOL = "simulate-research-query"
TASKS = {"tools": {}, "tasks": {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}}


def _clarify(params: dict[str, Any]) -> dict[str, Any]:
    """The user picks the second interpretation the server offers."""
    choices = params["requestedSchema"]["properties"]["interpretation"]["oneOf"]
    return {"action": "accept", "content": {"interpretation": choices[1]["const"]}}


@pytest.fixture(params=["stdio", "http"])
async def mcp(request: pytest.FixtureRequest) -> AsyncIterator[MCPClient]:
    """A session with the reference server over each transport, able to answer elicitation."""
    if request.param == "stdio":
        client = _stdio(elicitation_handler=_clarify)
    else:
        client = MCPClient(request.getfixturevalue("http_url"), elicitation_handler=_clarify)
    async with client:
        yield client


async def test_a_tool_that_needs_a_task_runs_as_one(mcp: MCPClient) -> None:
    assert mcp.server_capabilities["tasks"]["requests"]["tools"]["call"] == {}
    tools = {tool["name"]: tool for tool in await mcp.list_tools()}
    assert tools[TOOL]["execution"]["taskSupport"] == "required"
    # Listed as task-only: call_tool starts the task and waits for its result.
    result = await mcp.call_tool(TOOL, {"topic": "tides"}, timeout=30)
    text = _text(result)
    assert "# Research Report: tides" in text and "Stage 4: Generating report" in text
    assert not result.get("isError")


async def test_the_task_by_hand_and_an_ambiguous_one_that_asks_the_user() -> None:
    async with _stdio(elicitation_handler=_clarify) as mcp:
        updates: list[dict[str, Any]] = []
        mcp.on("task_status", updates.append)
        task = await mcp.start_tool_task(TOOL, {"topic": "moss"}, ttl=60)
        assert task["status"] == "working" and task["pollInterval"] == 1000
        task_id = task["taskId"]
        assert (await mcp.get_task(task_id))["status"] == "working"
        assert task_id in {listed["taskId"] for listed in await mcp.list_tasks()}
        result = await mcp.task_result(task_id, timeout=30)
        assert "# Research Report: moss" in _text(result)
        assert (await mcp.get_task(task_id))["status"] == "completed"
        # The server's notifications/tasks/status reached the task_status event.
        await wait_for(lambda: any(u["status"] == "completed" for u in updates))
        mine = [u for u in updates if u["taskId"] == task_id]
        assert mine[0]["status"] == "working" and mine[-1]["status"] == "completed"
        assert "Gathering sources..." in [u.get("statusMessage") for u in mine]

        # input_required: the server's elicitation reaches our handler while we wait.
        asked = await mcp.call_tool(TOOL, {"topic": "python", "ambiguous": True}, task=True)
        text = _text(asked)
        assert "**Clarification**: " in text and "After receiving clarification" in text


async def test_cancelling_a_task_and_giving_up_on_one() -> None:
    async with _stdio() as mcp:
        task = await mcp.start_tool_task(TOOL, {"topic": "rain"})
        cancelled = await mcp.cancel_task(task["taskId"])
        assert cancelled["taskId"] == task["taskId"] and cancelled["status"] == "cancelled"
        assert (await mcp.get_task(task["taskId"]))["status"] == "cancelled"
        # A caller who stops waiting stops the work too: the task is cancelled.
        with pytest.raises(errors.TimeoutError):
            await mcp.call_tool(TOOL, {"topic": "snow"}, task=True, timeout=2)
        statuses = [t["status"] for t in await mcp.list_tasks() if t["taskId"] != task["taskId"]]
        assert statuses == ["cancelled"]


async def test_a_server_without_tasks_refuses_a_task_call() -> None:
    async with MCPClient(command=mcp_server_command()) as mcp:
        assert "tasks" not in mcp.server_capabilities
        with pytest.raises(errors.ConfigError, match=r"tasks\.requests\.tools\.call"):
            await mcp.call_tool("add", {"a": 1, "b": 2}, task=True)
        assert (await mcp.call_tool("add", {"a": 1, "b": 2}))["structuredContent"] == {"result": 3}
        with pytest.raises(errors.ConfigError, match="task_ttl"):
            await mcp.start_tool_task("add", ttl=0)
        with pytest.raises(errors.ConfigError, match="task_id"):
            await mcp.get_task("")


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[str, HostileState]]:
    state = HostileState(capabilities=TASKS)
    async with serve_asgi(make_app(state)) as base:
        yield f"{base}/mcp", state


@pytest.mark.parametrize(
    ("method", "result", "words"),
    [
        ("tools/call", {"content": []}, "expected a task object"),  # task field ignored
        ("tools/call", {"task": {"status": "working"}}, "no taskId"),
        ("tools/call", {"task": {"taskId": "t", "status": "x" * 100_000}}, "unknown status"),
        ("tasks/get", ["not", "a", "task"], "expected a task object"),
        ("tasks/result", "done", "expected an object"),
    ],
)
async def test_what_a_hostile_server_says_of_tasks_is_checked(
    hostile: tuple[str, HostileState], method: str, result: Any, words: str
) -> None:
    url, state = hostile
    state.results["tools/call"] = {"task": {"taskId": "t-1", "status": "working"}}
    state.results[method] = result
    async with MCPClient(url) as mcp:
        with pytest.raises(errors.ProtocolError, match=words) as info:
            if method == "tasks/get":
                await mcp.get_task("t-1")
            else:
                await mcp.call_tool("slow", {}, task=True)
    assert info.value.code == "ERR_PROTOCOL" and len(str(info.value)) < 300


async def test_a_task_whose_result_never_comes_is_cancelled_on_timeout(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    state.results["tools/call"] = {"task": {"taskId": "t-1", "status": "working"}}
    state.results["tasks/cancel"] = {"taskId": "t-1", "status": "cancelled"}
    state.behaviour["tasks/result"] = "endless-sse"
    async with MCPClient(url) as mcp:
        with pytest.raises(errors.TimeoutError):
            await mcp.call_tool("slow", {}, task=True, timeout=2)
    sent = [(method, params) for method, params in state.params if method and "tasks" in method]
    assert sent[:2] == [("tasks/result", {"taskId": "t-1"}), ("tasks/cancel", {"taskId": "t-1"})]
    (call,) = [params for method, params in state.params if method == "tools/call"]
    assert call["task"] == {}  # no ttl asked: the server's default
