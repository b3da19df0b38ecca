"""MCPClient against MCP peers of our own that misbehave (garbage, oversized, endless data).

HTTP faults come from a starlette app (tests/servers/mcp_hostile.py) served on
loopback; stdio faults from a small child written here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from agenticaiframework.communication.agents.mcp import (
    MCPAuthorizationError,
    MCPClient,
    SessionExpiredError,
    legacy_sse,
)
from agenticaiframework.communication.core import errors
from tests.servers.mcp_hostile import HostileState, make_app
from tests.servers.uvicorn_server import serve_asgi


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[str, HostileState]]:
    state = HostileState()
    async with serve_asgi(make_app(state)) as base:
        yield f"{base}/mcp", state


def posts(state: HostileState, method: str) -> int:
    return sum(1 for verb, name, _ in state.seen if verb == "POST" and name == method)


async def test_headers_after_initialize_and_delete_on_close(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    async with MCPClient(url) as mcp:
        assert mcp.session_id == "hostile-session-1"
        await mcp.ping()
    first = state.seen[0]
    assert first[1] == "initialize"
    assert first[2]["accept"] == "application/json, text/event-stream"
    assert "mcp-session-id" not in first[2] and "mcp-protocol-version" not in first[2]
    for verb, _, headers in state.seen[1:]:
        assert headers["mcp-session-id"] == "hostile-session-1", verb
        assert headers["mcp-protocol-version"] == "2025-11-25", verb
    verbs = [verb for verb, _, _ in state.seen]
    assert verbs[-1] == "DELETE"
    assert "GET" in verbs  # the GET stream was tried (this server answers 405)


async def test_version_negotiated_down(hostile: tuple[str, HostileState]) -> None:
    url, state = hostile
    state.version = "2025-03-26"
    async with MCPClient(url) as mcp:
        assert mcp.protocol_version == "2025-03-26"
        await mcp.ping()
    assert state.seen[-2][2]["mcp-protocol-version"] == "2025-03-26"


async def test_every_page_of_tools_and_a_cursor_loop_is_an_error(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    state.pages = {
        None: ([{"name": "a"}], "p2"),
        "p2": ([{"name": "b"}], "p3"),
        "p3": ([{"name": "c"}], None),
    }
    async with MCPClient(url) as mcp:
        assert [tool["name"] for tool in await mcp.list_tools()] == ["a", "b", "c"]
        state.pages["p3"] = ([{"name": "c"}], "p2")  # back to an earlier page: endless
        with pytest.raises(errors.ProtocolError, match="cursor"):
            await mcp.list_tools()


async def test_garbage_event_is_skipped_and_the_call_completes(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    state.behaviour["tools/call"] = "garbage-sse"
    state.results["tools/call"] = {"content": [], "isError": False}
    async with MCPClient(url) as mcp:
        reported: list[Exception] = []
        logs: list[Any] = []
        mcp.on("error", reported.append)
        mcp.on("log", lambda params: logs.append(params["data"]))
        assert await mcp.call_tool("x") == {"content": [], "isError": False}
        for _ in range(500):
            if reported and logs:
                break
            await asyncio.sleep(0.02)
        assert isinstance(reported[0], errors.ProtocolError)
        assert logs == ["still here"]


async def test_endless_stream_times_out_and_stops_reading(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    state.behaviour["tools/call"] = "endless-sse"
    async with MCPClient(url) as mcp:
        with pytest.raises(errors.TimeoutError):
            await mcp.call_tool("x", timeout=0.5)
        await asyncio.sleep(1.0)  # time for the server to notice the closed connection
        before = state.sent_bytes
        await asyncio.sleep(0.5)
        # The stream was dropped: the server's writes stopped (not ~1 MB/s on).
        assert state.sent_bytes - before < 64 * 1024
        await mcp.ping()
        assert posts(state, "notifications/cancelled") == 1


async def test_stateless_server_gets_no_session_header(hostile: tuple[str, HostileState]) -> None:
    url, state = hostile
    state.stateless = True
    async with MCPClient(url) as mcp:
        assert mcp.session_id is None
        await mcp.ping()
    assert all("mcp-session-id" not in headers for _, _, headers in state.seen)
    assert not any(verb == "DELETE" for verb, _, _ in state.seen)


async def test_refused_url_makes_no_connection() -> None:
    # A listener that counts connections stands for the remote host: the
    # policy refuses plain HTTP to a non-loopback name before any socket opens.
    accepted = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(errors.SecurityError):
            MCPClient(f"http://remote.invalid:{port}/mcp")
        await asyncio.sleep(0.05)
        assert accepted == 0
    finally:
        server.close()
        await server.wait_closed()


STDIO_CHILD = textwrap.dedent(
    """
    import json, sys
    out = sys.stdout
    for line in sys.stdin:
        msg = json.loads(line)
        if "id" not in msg:
            continue
        if msg["method"] == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {},
                      "serverInfo": {"name": "hostile-stdio", "version": "0"}}
        else:
            out.write("this is not json\\n")
            out.write('{"no": "jsonrpc"}\\n')
            out.write('{"jsonrpc": "2.0", "data": "' + "x" * 200000 + '"}\\n')
            result = {"ok": True}
        out.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\\n")
        out.flush()
    """
)


async def test_stdio_garbage_and_oversized_lines_are_skipped() -> None:
    async with MCPClient(
        command=[sys.executable, "-c", STDIO_CHILD], max_line_length=64 * 1024
    ) as mcp:
        assert mcp.protocol_version == "2025-06-18"
        assert mcp.server_info["name"] == "hostile-stdio"
        reported: list[Exception] = []
        mcp.on("error", reported.append)
        assert await mcp.request("tools/call", {"name": "x"}) == {"ok": True}
        assert await mcp.request("tools/call", {"name": "y"}) == {"ok": True}
        for _ in range(500):
            if reported:
                break
            await asyncio.sleep(0.02)
        assert any(isinstance(exc, errors.ProtocolError) for exc in reported)


async def test_lost_session_is_renewed_once_for_concurrent_requests(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    async with MCPClient(url) as mcp:
        state.sessions.clear()  # the server forgets every session
        await asyncio.gather(mcp.ping(), mcp.ping(), mcp.ping())
        assert state.initialized == 2
        assert mcp.session_id == "hostile-session-2"
        await mcp.ping()
    assert [verb for verb, _, _ in state.seen].count("DELETE") == 1
    assert state.seen[-1][2]["mcp-session-id"] == "hostile-session-2"


async def test_a_session_lost_again_right_away_is_an_error_not_a_loop(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    async with MCPClient(url) as mcp:
        state.sessions.clear()
        state.forget_always = True
        with pytest.raises(SessionExpiredError):
            await mcp.ping()
        # One new session was tried (its notifications/initialized got 404 too), no more.
        assert state.initialized == 2
        assert posts(state, "ping") == 1


async def test_cancelling_a_call_sends_notifications_cancelled(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    state.behaviour["tools/call"] = "endless-sse"
    async with MCPClient(url) as mcp:
        task = asyncio.create_task(mcp.call_tool("x", timeout=None))
        for _ in range(500):
            if posts(state, "tools/call"):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(500):
            if posts(state, "notifications/cancelled"):
                break
            await asyncio.sleep(0.01)
        call_id = next(p for m, p in state.params if m == "notifications/cancelled")["requestId"]
        sent = [m for m, p in state.params if m == "tools/call"]
        assert sent and isinstance(call_id, int)


async def test_logging_level_and_subscriptions_are_sent(hostile: tuple[str, HostileState]) -> None:
    url, state = hostile
    async with MCPClient(url) as mcp:
        await mcp.set_logging_level("warning")
        await mcp.subscribe_resource("test://a")
        await mcp.unsubscribe_resource("test://a")
        with pytest.raises(errors.ConfigError, match="level"):
            await mcp.set_logging_level("loud")
    sent = [(m, p) for m, p in state.params if m and not m.startswith("notifications/")]
    assert ("logging/setLevel", {"level": "warning"}) in sent
    assert ("resources/subscribe", {"uri": "test://a"}) in sent
    assert ("resources/unsubscribe", {"uri": "test://a"}) in sent


async def test_get_stream_delivers_server_messages_and_resumes_from_last_event_id(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile

    def log(text: str, event_id: str) -> bytes:
        message = {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "info", "data": text},
        }
        return f"retry: 50\nid: {event_id}\ndata: {json.dumps(message)}\n\n".encode()

    changed = b"".join(
        b'data: {"jsonrpc": "2.0", "method": "notifications/%s/list_changed"}\n\n' % kind
        for kind in (b"tools", b"resources", b"prompts")
    )
    ask = b'data: {"jsonrpc": "2.0", "id": "g1", "method": "roots/list"}\n\n'
    state.get_events = [log("one", "e1"), log("two", "e2") + changed + ask]
    logs: list[Any] = []
    events: list[str] = []
    async with MCPClient(url, roots=[{"uri": "file:///r"}]) as mcp:
        mcp.on("log", lambda params: logs.append(params["data"]))
        for name in ("tools_list_changed", "resources_list_changed", "prompts_list_changed"):
            mcp.on(name, lambda params, name=name: events.append(name))
        for _ in range(300):
            if len(logs) == 2 and len(events) == 3 and "g1" in state.answers:
                break
            await asyncio.sleep(0.02)
    assert logs == ["one", "two"]
    assert events == ["tools_list_changed", "resources_list_changed", "prompts_list_changed"]
    # A request of the server on the GET stream is answered by a POST.
    assert state.answers["g1"]["result"] == {"roots": [{"uri": "file:///r"}]}
    gets = [headers for verb, _, headers in state.seen if verb == "GET"]
    assert "last-event-id" not in gets[0]
    assert gets[0]["accept"] == "text/event-stream"
    assert gets[1]["last-event-id"] == "e1"
    assert gets[1]["mcp-session-id"] == "hostile-session-1"


FLOOD_CHILD = textwrap.dedent(
    """
    import json, sys
    out = sys.stdout
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("method") == "initialize":
            result = {"protocolVersion": "2025-11-25", "capabilities": {},
                      "serverInfo": {"name": "flood", "version": "0"}}
            out.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\\n")
            out.flush()
        elif msg.get("method") == "tools/call":
            for n in range(50):
                req = {"jsonrpc": "2.0", "id": f"s{n}", "method": "sampling/createMessage",
                       "params": {}}
                out.write(json.dumps(req) + "\\n")
            out.flush()
            errors = 0
            for reply in sys.stdin:
                answer = json.loads(reply)
                if "error" in answer:
                    errors += 1
                if errors == 40:
                    break
            out.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"],
                                  "result": {"refused": errors}}) + "\\n")
            out.flush()
    """
)


async def test_server_request_flood_is_bounded() -> None:
    release = asyncio.Event()

    async def slow_model(params: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {"role": "assistant", "model": "m", "content": {"type": "text", "text": ""}}

    async with MCPClient(
        command=[sys.executable, "-c", FLOOD_CHILD],
        sampling_handler=slow_model,
        max_queued_events=10,
    ) as mcp:
        # 50 requests at once: 10 wait for the handler, 40 are refused at once.
        assert await mcp.request("tools/call", {"name": "x"}, timeout=20) == {"refused": 40}
        assert mcp.dropped_events == 40
        release.set()


# -- a bad reply fails that call only ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class BadReply:
    """A reply ``tools/call`` gets from the hostile server, and what the caller sees."""

    error: type[errors.CommunicationError]
    match: str
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    sessions: int = 1  # sessions started by the end (2: the next call renewed it)


BAD_REPLIES = {
    "oversized-sse": BadReply(
        errors.MessageTooLargeError,
        "exceeds max_event_size=262144",
        options={"max_message_size": 256 * 1024},
    ),
    "oversized-json": BadReply(
        errors.MessageTooLargeError,
        "exceeds max_message_size",
        options={"max_message_size": 256 * 1024},
    ),
    # A stream that ends with no event id: nothing to resume, never sent again.
    "cut-no-id": BadReply(errors.ConnectionError, "no event id to resume from"),
    "wrong-type": BadReply(errors.ProtocolError, "text/plain"),
    # JSON bodies that answer no request of ours fail the call at once, not at its deadline.
    "json-error-no-id": BadReply(errors.RemoteError, "bad request", {"remote_code": -32600}),
    "json-other-id": BadReply(errors.ProtocolError, "no reply"),
    "insufficient-scope": BadReply(
        MCPAuthorizationError,
        "files:write admin",
        {"status_code": 403, "error": "insufficient_scope", "scope": "files:write admin"},
    ),
    # The session is lost while resuming: the call fails (it may have run), the next renews it.
    "cut-then-forget": BadReply(errors.ConnectionError, "may have run", sessions=2),
}


@pytest.mark.parametrize("behaviour", BAD_REPLIES)
async def test_bad_reply_fails_that_call_only(
    hostile: tuple[str, HostileState], behaviour: str
) -> None:
    url, state = hostile
    case = BAD_REPLIES[behaviour]
    state.behaviour["tools/call"] = behaviour
    async with MCPClient(url, timeout=30, **case.options) as mcp:
        with pytest.raises(case.error, match=case.match) as info:
            await asyncio.wait_for(mcp.call_tool("x"), 10)
        for name, value in case.attrs.items():
            assert getattr(info.value, name) == value, name
        assert posts(state, "tools/call") == 1  # never sent again
        await mcp.ping()  # the session goes on (renewed when it was lost)
        await mcp.notify("notifications/roots/list_changed")
        assert state.initialized == case.sessions
        assert mcp.session_id == f"hostile-session-{case.sessions}"


# -- a bad server is refused at connect -------------------------------------------

Setup = Callable[[str, HostileState, int], MCPClient]


def _unknown_version(url: str, state: HostileState, port: int) -> MCPClient:
    state.version = "1999-01-01"
    return MCPClient(url)


def _endpoint_elsewhere(url: str, state: HostileState, port: int) -> MCPClient:
    state.legacy_events = f"event: endpoint\ndata: http://127.0.0.1:{port}/steal\n\n".encode()
    return MCPClient(url.replace("/mcp", "/old"), timeout=10)


def _no_endpoint_first(url: str, state: HostileState, port: int) -> MCPClient:
    state.legacy_events = b'data: {"jsonrpc": "2.0", "method": "x"}\n\n'
    return MCPClient(url.replace("/mcp", "/old"), timeout=10)


def _never_an_endpoint(url: str, state: HostileState, port: int) -> MCPClient:
    # The transport's own wait expires (shortened below), while the call has no
    # deadline: a transport timeout is not mistaken for the call's.
    state.legacy_events = b": nothing to see\n\n"
    return MCPClient(url.replace("/mcp", "/old"), timeout=None)


def _stdio_exits(url: str, state: HostileState, port: int) -> MCPClient:
    return MCPClient(command=[sys.executable, "-c", "import sys; sys.exit(3)"])


REFUSED: dict[str, tuple[Setup, type[errors.CommunicationError], str, dict[str, Any]]] = {
    "unknown-version": (_unknown_version, errors.ProtocolError, "1999-01-01", {}),
    "endpoint-on-another-origin": (_endpoint_elsewhere, errors.SecurityError, "another origin", {}),
    "stream-not-starting-with-endpoint": (
        _no_endpoint_first,
        errors.ProtocolError,
        "not 'endpoint'",
        {},
    ),
    "no-endpoint-in-time": (_never_an_endpoint, errors.TimeoutError, "no 'endpoint' event", {}),
    "stdio-server-exits": (
        _stdio_exits,
        errors.ProcessExitedError,
        "exited with code 3",
        {"returncode": 3},
    ),
}


@pytest.mark.parametrize("case", REFUSED)
async def test_bad_server_is_refused_at_connect(
    hostile: tuple[str, HostileState], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.setattr(legacy_sse, "_ENDPOINT_TIMEOUT", 0.3)
    setup, error, match, attrs = REFUSED[case]
    url, state = hostile
    accepted = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    other = await asyncio.start_server(count, "127.0.0.1", 0)
    try:
        mcp = setup(url, state, other.sockets[0].getsockname()[1])
        with pytest.raises(error, match=match) as info:
            await mcp.connect()
        await mcp.close()
    finally:
        other.close()
        await other.wait_closed()
    for name, value in attrs.items():
        assert getattr(info.value, name) == value, name
    assert accepted == 0  # nothing was sent anywhere else
    assert posts(state, "notifications/initialized") == 0


# -- the server's requests are answered ---------------------------------------------


def _refuse(params: dict[str, Any]) -> dict[str, Any]:
    raise errors.RemoteError("no model here", remote_code=-1, data={"why": "test"})


def _broken(params: dict[str, Any]) -> dict[str, Any]:
    raise KeyError("oops")


SAMPLING = {"method": "sampling/createMessage", "params": {}}
SERVER_ASKS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "ping": ({"method": "ping"}, {}, {"result": {}}),
    "no-handler": (
        SAMPLING,
        {},
        {"error": {"code": -32601, "message": "Method not found: sampling/createMessage"}},
    ),
    "handler-remote-error": (
        SAMPLING,
        {"sampling_handler": _refuse},
        {"error": {"code": -1, "message": "no model here", "data": {"why": "test"}}},
    ),
    "handler-raises": (
        SAMPLING,
        {"sampling_handler": _broken},
        {"error": {"code": -32603, "message": "KeyError: 'oops'"}},
    ),
}


@pytest.mark.parametrize("case", SERVER_ASKS)
async def test_server_request_is_answered(hostile: tuple[str, HostileState], case: str) -> None:
    request, options, expected = SERVER_ASKS[case]
    url, state = hostile
    state.behaviour["tools/call"] = "server-request"
    state.server_request = request
    async with MCPClient(url, **options) as mcp:
        result = await mcp.call_tool("x")
    assert result["answer"] == {"jsonrpc": "2.0", "id": "srv-1", **expected}


async def test_each_response_is_freed_at_once_not_left_to_the_collector(
    hostile: tuple[str, HostileState],
) -> None:
    # httpx ties a streamed response to its stream in a reference cycle: left
    # alone, every call's response (some 3 KiB) waits for a garbage collection.
    url, _ = hostile
    async with MCPClient(url) as mcp:
        await mcp.ping()
        gc.collect()
        gc.disable()
        try:
            for _ in range(20):
                await mcp.ping()
            alive = sum(isinstance(obj, httpx.Response) for obj in gc.get_objects())
        finally:
            gc.enable()
    assert alive <= 2, alive  # the GET stream's, at most one more being closed
