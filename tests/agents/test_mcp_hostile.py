"""MCPClient against MCP peers of our own that misbehave (garbage, oversized, endless data).

HTTP faults come from a starlette app (tests/servers/mcp_hostile.py) served on
loopback; stdio faults from a small child written here.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

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


async def test_unknown_server_version_is_refused(hostile: tuple[str, HostileState]) -> None:
    url, state = hostile
    state.version = "1999-01-01"
    mcp = MCPClient(url)
    with pytest.raises(errors.ProtocolError, match="1999-01-01"):
        await mcp.connect()
    await mcp.close()
    assert posts(state, "notifications/initialized") == 0


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


@pytest.mark.parametrize("behaviour", ["oversized-sse", "oversized-json"])
async def test_oversized_reply_fails_that_call_only(
    hostile: tuple[str, HostileState], behaviour: str
) -> None:
    url, state = hostile
    state.behaviour["tools/call"] = behaviour
    async with MCPClient(url, max_message_size=256 * 1024) as mcp:
        with pytest.raises(errors.MessageTooLargeError):
            await mcp.call_tool("x")
        await mcp.ping()  # the session is still fine


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


async def test_stream_ending_without_event_id_fails_the_call_without_resending(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    state.behaviour["tools/call"] = "cut-no-id"
    async with MCPClient(url) as mcp:
        with pytest.raises(errors.ConnectionError, match="no event id to resume from"):
            await mcp.call_tool("x", timeout=10)
    assert posts(state, "tools/call") == 1


async def test_wrong_content_type_is_a_protocol_error(hostile: tuple[str, HostileState]) -> None:
    url, state = hostile
    state.behaviour["tools/call"] = "wrong-type"
    async with MCPClient(url) as mcp:
        with pytest.raises(errors.ProtocolError, match="text/plain"):
            await mcp.call_tool("x")


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


async def _server_asks(url: str, state: HostileState, request: dict[str, Any], **kw: Any) -> Any:
    state.behaviour["tools/call"] = "server-request"
    state.server_request = request
    async with MCPClient(url, **kw) as mcp:
        result = await mcp.call_tool("x")
    return result["answer"]


async def test_unknown_server_request_gets_method_not_found(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    answer = await _server_asks(url, state, {"method": "sampling/createMessage", "params": {}})
    assert answer["id"] == "srv-1"
    assert answer["error"]["code"] == -32601
    assert "sampling/createMessage" in answer["error"]["message"]


async def test_handler_errors_answer_with_their_code(hostile: tuple[str, HostileState]) -> None:
    url, state = hostile

    def refuse(params: dict[str, Any]) -> dict[str, Any]:
        raise errors.RemoteError("no model here", remote_code=-1, data={"why": "test"})

    answer = await _server_asks(
        url, state, {"method": "sampling/createMessage", "params": {}}, sampling_handler=refuse
    )
    assert answer["error"] == {"code": -1, "message": "no model here", "data": {"why": "test"}}

    def broken(params: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("oops")

    answer = await _server_asks(
        url, state, {"method": "sampling/createMessage", "params": {}}, sampling_handler=broken
    )
    assert answer["error"]["code"] == -32603


async def test_server_ping_is_answered(hostile: tuple[str, HostileState]) -> None:
    url, state = hostile
    answer = await _server_asks(url, state, {"method": "ping"})
    assert answer == {"jsonrpc": "2.0", "id": "srv-1", "result": {}}


async def test_legacy_endpoint_on_another_origin_is_refused(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    accepted = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    other = await asyncio.start_server(count, "127.0.0.1", 0)
    port = other.sockets[0].getsockname()[1]
    state.legacy_events = f"event: endpoint\ndata: http://127.0.0.1:{port}/steal\n\n".encode()
    try:
        mcp = MCPClient(url.replace("/mcp", "/old"), timeout=10)
        with pytest.raises(errors.SecurityError, match="another origin"):
            await mcp.connect()
        await mcp.close()
        assert accepted == 0
    finally:
        other.close()
        await other.wait_closed()


async def test_legacy_stream_must_start_with_endpoint(hostile: tuple[str, HostileState]) -> None:
    url, state = hostile
    state.legacy_events = b'data: {"jsonrpc": "2.0", "method": "x"}\n\n'
    mcp = MCPClient(url.replace("/mcp", "/old"), timeout=10)
    with pytest.raises(errors.ProtocolError, match="not 'endpoint'"):
        await mcp.connect()
    await mcp.close()


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


async def test_stdio_server_that_dies_at_start_is_a_process_exited_error() -> None:
    mcp = MCPClient(command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(errors.ProcessExitedError) as info:
        await mcp.connect()
    assert info.value.returncode == 3
    await mcp.close()


async def test_session_lost_while_resuming_fails_the_call_and_the_next_renews(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    state.behaviour["tools/call"] = "cut-then-forget"
    async with MCPClient(url) as mcp:
        with pytest.raises(errors.ConnectionError, match="may have run"):
            await mcp.call_tool("x", timeout=10)
        assert posts(state, "tools/call") == 1  # never sent again
        await mcp.ping()  # a new session, started by itself
        assert state.initialized == 2
        assert mcp.session_id == "hostile-session-2"
        await mcp.notify("notifications/roots/list_changed")


async def test_a_transport_timeout_is_not_mistaken_for_the_call_deadline(
    hostile: tuple[str, HostileState], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An HTTP+SSE server that never names its endpoint: the transport's own wait
    # expires (shortened here), while the call itself has no deadline.
    monkeypatch.setattr(legacy_sse, "_ENDPOINT_TIMEOUT", 0.3)
    url, state = hostile
    state.legacy_events = b": nothing to see\n\n"
    mcp = MCPClient(url.replace("/mcp", "/old"), timeout=None)
    with pytest.raises(errors.TimeoutError, match="no 'endpoint' event"):
        await mcp.connect()
    await mcp.close()


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


async def test_json_body_that_answers_nothing_fails_the_call_at_once(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    async with MCPClient(url, timeout=30) as mcp:
        state.behaviour["tools/call"] = "json-error-no-id"
        with pytest.raises(errors.RemoteError) as info:
            await asyncio.wait_for(mcp.call_tool("x"), 5)
        assert info.value.remote_code == -32600
        state.behaviour["tools/call"] = "json-other-id"
        with pytest.raises(errors.ProtocolError, match="no reply"):
            await asyncio.wait_for(mcp.call_tool("x"), 5)
        await mcp.ping()


async def test_insufficient_scope_is_an_authorization_error_naming_the_scope(
    hostile: tuple[str, HostileState],
) -> None:
    url, state = hostile
    state.behaviour["tools/call"] = "insufficient-scope"
    async with MCPClient(url) as mcp:
        with pytest.raises(MCPAuthorizationError) as info:
            await mcp.call_tool("x")
        assert info.value.status_code == 403
        assert info.value.error == "insufficient_scope"
        assert info.value.scope == "files:write admin"
        assert "files:write admin" in str(info.value)
        await mcp.ping()
