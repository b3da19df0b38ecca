"""URL-mode elicitation (MCP 2025-11-25) against the Node reference server and a hostile one.

``@modelcontextprotocol/server-everything`` registers ``trigger-url-elicitation``
only for a client that declares URL mode: it sends ``elicitation/create`` with
``mode: "url"`` (the request path) or refuses with -32042 naming a URL to open
first (``errorPath``), and proceeds when the call is retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agenticaiframework.communication.agents.mcp import MCPClient, URLElicitationRequiredError
from tests.agents.test_mcp_everything import _stdio, _text
from tests.servers.mcp_hostile import HostileState, make_app
from tests.servers.uvicorn_server import serve_asgi

TOOL = "trigger-url-elicitation"


class User:
    """Shown each URL elicitation; answers with ``action``."""

    def __init__(self, action: str = "accept") -> None:
        self.action = action
        self.shown: list[dict[str, Any]] = []

    async def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        self.shown.append(params)
        return {"action": self.action}


async def test_the_server_asks_the_user_to_open_a_url() -> None:
    user = User()
    async with _stdio(url_elicitation_handler=user) as mcp:
        assert TOOL in {tool["name"] for tool in await mcp.list_tools()}  # capability seen
        url = "https://auth.example.com/connect?state=abc"
        result = await mcp.call_tool(TOOL, {"url": url, "message": "Connect your calendar"})
        (shown,) = user.shown
        assert shown["mode"] == "url" and shown["url"] == url
        assert shown["message"] == "Connect your calendar" and shown["elicitationId"]
        assert "User completed the URL elicitation flow" in _text(result)
        assert shown["elicitationId"] in _text(result)

        user.action = "decline"
        declined = await mcp.call_tool(TOOL, {"url": url})
        assert "User declined to open the URL" in _text(declined)


async def test_a_url_outside_the_policy_is_declined_without_asking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = User()
    async with _stdio(url_elicitation_handler=user) as mcp:
        await mcp.list_tools()
        for url in (
            "http://auth.example.com/connect?sig=s3cret-sig",
            "javascript:alert(1)",
            "file:///etc/passwd",
        ):
            result = await mcp.call_tool(TOOL, {"url": url})
            assert "User declined to open the URL" in _text(result), url
    assert user.shown == []
    assert caplog.text.count("declined a URL elicitation without asking") == 3
    assert "auth.example.com/connect" in caplog.text and "s3cret-sig" not in caplog.text


async def test_a_request_refused_until_a_url_is_opened_says_which() -> None:
    user = User()
    async with _stdio(url_elicitation_handler=user) as mcp:
        await mcp.list_tools()
        arguments = {"url": "https://pay.example.com/checkout", "errorPath": True}
        with pytest.raises(URLElicitationRequiredError) as info:
            await mcp.call_tool(TOOL, arguments)
        assert info.value.code == "ERR_URL_ELICITATION_REQUIRED"
        assert info.value.remote_code == -32042
        (needed,) = info.value.elicitations
        assert needed["mode"] == "url" and needed["url"] == "https://modelcontextprotocol.io"
        assert user.shown == []
        # Done what was asked: the same call goes through.
        retried = await mcp.call_tool(TOOL, arguments)
        assert "User completed the URL elicitation flow" in _text(retried)
        assert [shown["url"] for shown in user.shown] == ["https://pay.example.com/checkout"]


async def test_without_the_handler_the_tool_is_not_offered() -> None:
    async with _stdio(elicitation_handler=lambda params: {"action": "decline"}) as mcp:
        assert TOOL not in {tool["name"] for tool in await mcp.list_tools()}


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[str, HostileState]]:
    state = HostileState()
    async with serve_asgi(make_app(state)) as base:
        yield f"{base}/mcp", state


URL_ASK = {"method": "elicitation/create", "params": {"mode": "url", "message": "hi"}}


@pytest.mark.parametrize(
    ("params", "options", "code"),
    [
        # A URL elicitation to a client that did not declare URL mode.
        ({"url": "https://a.test", "elicitationId": "e1"}, {}, -32602),
        # ... and a form handler never sees it.
        (
            {"url": "https://a.test", "elicitationId": "e1"},
            {"elicitation_handler": lambda params: {"action": "accept", "content": {}}},
            -32602,
        ),
        # No elicitationId, or a URL that is not a string.
        ({"url": "https://a.test"}, {"url_elicitation_handler": User()}, -32602),
        ({"url": 42, "elicitationId": "e1"}, {"url_elicitation_handler": User()}, -32602),
        # A handler that answers something else than an action.
        (
            {"url": "https://a.test", "elicitationId": "e1"},
            {"url_elicitation_handler": lambda params: {"action": "open it"}},
            -32603,
        ),
    ],
)
async def test_bad_url_elicitations_get_errors(
    hostile: tuple[str, HostileState], params: dict[str, Any], options: Any, code: int
) -> None:
    url, state = hostile
    state.behaviour["tools/call"] = "server-request"
    state.server_request = {**URL_ASK, "params": {**URL_ASK["params"], **params}}
    async with MCPClient(url, **options) as mcp:
        result = await mcp.call_tool("x")
    assert result["answer"]["error"]["code"] == code


async def test_completion_notices_arrive_as_an_event(hostile: tuple[str, HostileState]) -> None:
    url, state = hostile
    state.get_events = [
        b'data: {"jsonrpc": "2.0", "method": "notifications/elicitation/complete",'
        b' "params": {"elicitationId": "e-7"}}\n\n'
    ]
    done: list[str] = []
    async with MCPClient(url, url_elicitation_handler=User()) as mcp:
        mcp.on("elicitation_complete", lambda params: done.append(params["elicitationId"]))
        for _ in range(300):
            if done:
                break
            await asyncio.sleep(0.02)
    assert done == ["e-7"]
    (initialize,) = [p for method, p in state.params if method == "initialize"]
    assert initialize["capabilities"]["elicitation"] == {"url": {}}
