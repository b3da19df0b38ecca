"""STDIOClient against real child processes (tests/servers/*.py), nothing mocked."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agenticaiframework.communication import STDIOClient, STDIOConfig
from agenticaiframework.communication.core import errors

SERVERS = Path(__file__).parent.parent / "servers"
CHILDREN = [sys.executable, str(SERVERS / "stdio_children.py")]
JSONRPC = [sys.executable, str(SERVERS / "jsonrpc_child.py")]
MCP = [sys.executable, str(SERVERS / "mcp_server.py")]


def rpc(**overrides: Any) -> STDIOClient:
    overrides.setdefault("response_timeout", 10)
    return STDIOClient(JSONRPC, message_format="jsonrpc", **overrides)


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie awaiting its reaper)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# ---------------------------------------------------------------- formats and framing


async def test_json_format_dict_str_bytes() -> None:
    async with STDIOClient([*CHILDREN, "echo"]) as stdio:
        await stdio.send({"task": "process", "data": [1, 2]})
        assert await stdio.receive() == {"task": "process", "data": [1, 2]}
        await stdio.send(["a", 1])
        assert await stdio.receive() == ["a", 1]
        await stdio.send("84")  # a JSON scalar stays text, as the guide shows
        assert await stdio.receive() == "84"
        await stdio.send("plain text\n")  # no extra empty line
        await stdio.send(b"raw bytes")
        assert await stdio.receive() == "plain text"
        assert await stdio.receive() == "raw bytes"
        await stdio.send({"unicode": "h\u00e9llo \u2603"})
        assert await stdio.receive() == {"unicode": "h\u00e9llo \u2603"}
    assert stdio.stats.sent == 6 and stdio.stats.received == 6


async def test_line_format_and_crlf_delimiter() -> None:
    async with STDIOClient([*CHILDREN, "echo"], message_format="line") as stdio:
        await stdio.send('{"stays": "text"}')
        assert await stdio.receive() == '{"stays": "text"}'
    cfg = STDIOConfig(command=[*CHILDREN, "echo"], message_format="line", delimiter="\r\n")
    async with STDIOClient(config=cfg) as stdio:
        await stdio.send("one")
        assert await stdio.receive() == "one"


async def test_raw_format_reads_bytes() -> None:
    async with STDIOClient([*CHILDREN, "echo"], message_format="raw") as stdio:
        await stdio.send(b"abc\n")
        assert await stdio.receive() == b"abc\n"
        await stdio.send("no framing added")
        await stdio.send("\n")
        received = b""
        while not received.endswith(b"\n"):
            received += await stdio.receive()
        assert received == b"no framing added\n"


@pytest.mark.parametrize("fmt", ["json", "line"])
async def test_content_length_framing(fmt: str) -> None:
    async with STDIOClient(
        [*CHILDREN, "content-length"], framing="content-length", message_format=fmt
    ) as stdio:
        body = {"multi": "line\nvalue", "n": 1}
        await stdio.send(body)
        got = await stdio.receive()
        assert got == (body if fmt == "json" else '{"multi":"line\\nvalue","n":1}')


async def test_jsonrpc_over_content_length() -> None:
    # The LSP-style echo child returns each request as is: it arrives as a request.
    async with STDIOClient(
        [*CHILDREN, "content-length"], framing="content-length", message_format="jsonrpc"
    ) as stdio:
        seen: list[dict[str, Any]] = []
        stdio.on("request", lambda message: seen.append(message) or {"answered": True})
        await stdio.send({"jsonrpc": "2.0", "id": 9, "method": "initialize", "params": {}})
        assert (await stdio.receive())["method"] == "initialize"
        # our handler's answer went back through the echo and is a stray reply now
        assert await stdio.receive() == {"jsonrpc": "2.0", "id": 9, "result": {"answered": True}}
        assert seen[0]["id"] == 9


async def test_env_working_dir_and_unbuffered_python(tmp_path: Path) -> None:
    code = "import os; print(os.environ['AGENT_MODE']); print(os.getcwd()); input()"
    async with STDIOClient(
        [sys.executable, "-c", code], working_dir=str(tmp_path), env={"AGENT_MODE": "test"}
    ) as stdio:
        # print() without flush arrives at once: line_buffered sets PYTHONUNBUFFERED
        assert await stdio.receive(timeout=5) == "test"
        assert await stdio.receive(timeout=5) == str(tmp_path)


async def test_ready_line_skips_banner_and_startup_timeout() -> None:
    async with STDIOClient([*CHILDREN, "banner"], ready_line="READY", message_format="line") as s:
        await s.send("after")
        assert await s.receive() == "after"
    slow = STDIOClient(
        [*CHILDREN, "slow-start", "30"],
        ready_line="READY",
        startup_timeout=0.5,
        terminate_timeout=0.2,
    )
    started = time.perf_counter()
    with pytest.raises(errors.TimeoutError, match="READY"):
        await slow.connect()
    assert time.perf_counter() - started < 3
    assert slow.pid is not None and gone(slow.pid)
    await slow.close()


async def test_ready_line_process_exits_first() -> None:
    client = STDIOClient([*CHILDREN, "exit", "4"], ready_line="never printed")
    with pytest.raises(errors.ProcessExitedError) as info:
        await client.connect()
    assert info.value.returncode == 4 and "dying" in info.value.stderr_tail
    await client.close()


async def test_start_failures_and_config_errors(tmp_path: Path) -> None:
    with pytest.raises(errors.ConnectionError, match="could not start"):
        async with STDIOClient(["/no/such/program"]):
            pass
    with pytest.raises(errors.ConnectionError):
        async with STDIOClient([sys.executable], working_dir=str(tmp_path / "missing")):
            pass
    with pytest.raises(errors.ConfigError, match="command"):
        STDIOClient()
    with pytest.raises(errors.ConfigError, match="framing"):
        STDIOClient(["x"], message_format="raw", framing="content-length")
    with pytest.raises(errors.ConfigError, match="max_queued_messages"):
        STDIOClient(["x"], max_queued_messages=0)
    cfg = STDIOConfig(command=["a"], response_timeout=5)
    assert STDIOClient(config=cfg, message_format="line").config.response_timeout == 5
    with pytest.raises(errors.ConfigError, match="request"):
        await STDIOClient(["x"]).request("m")


# ---------------------------------------------------------------- JSON-RPC


async def test_jsonrpc_10000_round_trips_in_order() -> None:
    async with rpc() as stdio:
        for i in range(10_000):
            assert await stdio.request("echo", {"i": i}) == {"i": i}
    assert stdio.stats.received == 10_000


async def test_jsonrpc_100_concurrent_requests_any_order() -> None:
    rng = random.Random(7)
    async with rpc() as stdio:
        delays = [rng.uniform(0, 0.2) for _ in range(100)]
        results = await asyncio.gather(
            *(stdio.request("sleep", {"seconds": d, "value": i}) for i, d in enumerate(delays))
        )
        assert results == list(range(100))
        assert await stdio.request("add", {"a": 2, "b": 3}) == 5


async def test_jsonrpc_error_response_raises_remote_error() -> None:
    async with rpc() as stdio:
        with pytest.raises(errors.RemoteError) as info:
            await stdio.request("fail")
        assert info.value.code == "ERR_REMOTE"
        assert (info.value.remote_code, info.value.data) == (-32000, {"why": "asked to"})
        assert "boom" in str(info.value)
        with pytest.raises(errors.RemoteError) as missing:
            await stdio.request("nope")
        assert missing.value.remote_code == -32601
        assert await stdio.request("ping") == {}


async def test_notifications_reach_handlers_and_iteration() -> None:
    async with rpc() as stdio:
        got: list[dict[str, Any]] = []
        arrived = asyncio.Event()

        @stdio.on("notification")
        async def on_note(message: dict[str, Any]) -> None:
            got.append(message)
            if len(got) == 4:
                arrived.set()

        assert await stdio.request("notify", {"count": 3}) == "done"
        await stdio.notify("hello", {"x": 1})  # the child answers with a notification
        await asyncio.wait_for(arrived.wait(), 5)
        assert [m["params"] for m in got] == [{"i": 0}, {"i": 1}, {"i": 2}, {"method": "hello"}]
        queued = [await stdio.receive() for _ in range(4)]
        assert queued == got


async def test_server_requests_are_answered_by_handlers() -> None:
    async with rpc() as stdio:

        @stdio.on("request")
        def roots(message: dict[str, Any]) -> Any:
            if message["method"] == "roots/list":
                return {"roots": [{"uri": "file:///tmp"}]}
            return None

        @stdio.on("request")
        async def boom(message: dict[str, Any]) -> Any:
            if message["method"] == "explode":
                raise errors.RemoteError("not allowed", remote_code=-32001, data="why")
            if message["method"] == "crash":
                raise RuntimeError("handler bug")
            return None

        errors_seen: list[BaseException] = []
        stdio.on("error", errors_seen.append)
        assert await stdio.request("ask", {"method": "roots/list"}) == {
            "roots": [{"uri": "file:///tmp"}]
        }
        with pytest.raises(errors.RemoteError) as info:
            await stdio.request("ask", {"method": "explode"})
        assert (info.value.remote_code, info.value.data) == (-32001, "why")
        with pytest.raises(errors.RemoteError) as bug:
            await stdio.request("ask", {"method": "crash"})
        assert bug.value.remote_code == -32603 and "handler bug" in str(bug.value)
        with pytest.raises(errors.RemoteError) as unknown:
            await stdio.request("ask", {"method": "sampling/createMessage"})
        assert unknown.value.remote_code == -32601
        assert any(isinstance(e, RuntimeError) for e in errors_seen)
        # the same requests were also delivered to iteration
        assert (await stdio.receive())["method"] == "roots/list"


async def test_server_request_answered_manually_with_respond() -> None:
    async with rpc() as stdio:
        pending = asyncio.ensure_future(stdio.request("ask", {"method": "confirm"}))
        incoming = await stdio.receive()
        assert incoming["method"] == "confirm"
        await stdio.respond(incoming["id"], {"ok": True})
        assert await pending == {"ok": True}
        second = asyncio.ensure_future(stdio.request("ask", {"method": "confirm"}))
        incoming = await stdio.receive()
        await stdio.respond(incoming["id"], error=errors.RemoteError("no", remote_code=7))
        with pytest.raises(errors.RemoteError) as info:
            await second
        assert info.value.remote_code == 7


async def test_raw_send_and_request_ids_do_not_collide() -> None:
    async with rpc() as stdio:
        await stdio.send(
            {
                "jsonrpc": "2.0",
                "method": "sleep",
                "params": {"seconds": 0.2, "value": "raw"},
                "id": 1,
            }
        )
        assert await stdio.request("echo", ["mine"]) == ["mine"]
        assert await stdio.receive() == {"jsonrpc": "2.0", "id": 1, "result": "raw"}


async def test_mcp_session_with_request() -> None:
    async with STDIOClient(MCP, message_format="jsonrpc", ping_method="ping") as mcp:
        notes: list[dict[str, Any]] = []
        mcp.on("notification", notes.append)
        init = await mcp.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "agenticaiframework-tests", "version": "1"},
            },
        )
        assert init["serverInfo"]["name"] == "agenticaiframework-test"
        await mcp.notify("notifications/initialized")
        tools = await mcp.request("tools/list")
        assert {t["name"] for t in tools["tools"]} >= {"add", "echo", "fail", "announce"}
        added = await mcp.request("tools/call", {"name": "add", "arguments": {"a": 2, "b": 40}})
        assert added["structuredContent"] == {"result": 42}
        echoed = await mcp.request("tools/call", {"name": "echo", "arguments": {"text": "hi"}})
        assert echoed["content"][0]["text"] == "hi"
        failed = await mcp.request("tools/call", {"name": "fail", "arguments": {"reason": "x"}})
        assert failed["isError"] is True
        bad = await mcp.request("tools/call", {"name": "add", "arguments": {"a": "x"}})
        assert bad["isError"] is True  # MCP reports tool failures inside the result
        with pytest.raises(errors.RemoteError) as info:
            await mcp.request("no/such/method")
        assert info.value.remote_code == -32601
        said = await mcp.request("tools/call", {"name": "announce", "arguments": {"text": "yo"}})
        assert said["content"][0]["text"] == "announced yo"
        status = await mcp.health_check()
        assert status.is_healthy and "'ping' answered" in status.detail
        await asyncio.sleep(0.05)
        assert any(n["method"] == "notifications/message" for n in notes)


# ---------------------------------------------------------------- robustness


async def test_crash_mid_request_fails_everything_at_once() -> None:
    async with rpc(response_timeout=60) as stdio:
        slow = asyncio.ensure_future(stdio.request("sleep", {"seconds": 30, "value": 1}))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        with pytest.raises(errors.ProcessExitedError) as info:
            await stdio.request("crash", {"code": 3})
        with pytest.raises(errors.ProcessExitedError):
            await slow
        assert time.perf_counter() - started < 2
        assert info.value.returncode == 3
        assert info.value.code == "ERR_PROCESS_EXITED"
        assert "fatal: crashing on purpose" in info.value.stderr_tail
        assert "crashing on purpose" in str(info.value)
        for later in (stdio.request("echo"), stdio.send({"x": 1}), stdio.receive()):
            with pytest.raises(errors.ProcessExitedError):
                await later
        assert stdio.returncode == 3 and not stdio.is_running
        assert not (await stdio.health_check()).is_healthy


async def test_output_before_exit_is_still_received() -> None:
    async with STDIOClient([*CHILDREN, "exit", "5"]) as stdio:
        assert await stdio.receive() == "bye"
        with pytest.raises(errors.ProcessExitedError) as info:
            await stdio.receive()
        assert info.value.returncode == 5 and info.value.stderr_tail == "dying\n"
    async with STDIOClient([*CHILDREN, "exit", "5"]) as stdio:
        with pytest.raises(errors.ProcessExitedError):
            async for message in stdio:
                assert message == "bye"
    async with STDIOClient([*CHILDREN, "exit", "0"]) as stdio:
        assert [m async for m in stdio] == ["bye"]  # status 0 ends iteration quietly


async def test_stderr_flood_never_deadlocks() -> None:
    async with rpc(stderr_tail_bytes=1000) as stdio:
        assert await stdio.request("stderr", {"mb": 8}, timeout=20) == "flooded"
        assert await stdio.request("echo", [1]) == [1]
        assert len(stdio.stderr_tail) == 1000 and set(stdio.stderr_tail) <= {"e", "\n"}


async def test_garbage_and_over_long_lines_in_json_mode() -> None:
    stdio = STDIOClient([*CHILDREN, "garbage"], max_line_length=1000)
    reported: list[BaseException] = []
    # Before connecting: the child writes its garbage as soon as it starts.
    stdio.on("error", reported.append)
    async with stdio:
        assert await stdio.receive() == "not json at all"
        with pytest.raises(errors.MessageTooLargeError, match="max_line_length"):
            await stdio.receive()
        assert await stdio.receive() == {"ok": True}
        await stdio.send({"still": "working"})
        assert await stdio.receive() == {"still": "working"}
        await asyncio.sleep(0.05)
        assert len(reported) == 3  # broken JSON, invalid UTF-8, over-long line
        assert all(isinstance(e, errors.ProtocolError) for e in reported)
        assert stdio.stats.errors == 3


async def test_garbage_and_over_long_replies_in_jsonrpc_mode() -> None:
    async with rpc(max_line_length=10_000) as stdio:
        reported: list[BaseException] = []
        stdio.on("error", reported.append)
        assert await stdio.request("garbage") == "ok"
        started = time.perf_counter()
        with pytest.raises(errors.MessageTooLargeError):
            await stdio.request("big", {"size": 50_000})
        assert time.perf_counter() - started < 2  # failed at once, no timeout
        assert await stdio.request("big", {"size": 100}) == "x" * 100
        await asyncio.sleep(0.05)
        assert len(reported) == 3
        assert stdio.stats.errors == 4


async def test_back_pressure_loses_nothing() -> None:
    async with STDIOClient([*CHILDREN, "echo"], max_queued_messages=8) as stdio:
        for i in range(300):
            await stdio.send({"i": i})
        received = [await stdio.receive() for _ in range(300)]
        assert received == [{"i": i} for i in range(300)]


async def test_jsonrpc_unread_messages_are_bounded() -> None:
    async with rpc(max_queued_messages=5) as stdio:
        dropped: list[BaseException] = []
        stdio.on("error", dropped.append)
        assert await stdio.request("notify", {"count": 20}) == "done"
        await asyncio.sleep(0.05)
        assert len(dropped) == 15 and isinstance(dropped[0], errors.QueueFullError)
        assert [(await stdio.receive())["params"]["i"] for _ in range(5)] == [15, 16, 17, 18, 19]


async def test_receive_timeout() -> None:
    async with STDIOClient([*CHILDREN, "echo"], response_timeout=0.1) as stdio:
        started = time.perf_counter()
        with pytest.raises(errors.TimeoutError) as info:
            await stdio.receive()
        assert info.value.code == "ERR_TIMEOUT"
        with pytest.raises(errors.TimeoutError):
            await stdio.receive(timeout=0.05)
        assert time.perf_counter() - started < 2
        await stdio.send("still fine")
        assert await stdio.receive() == "still fine"


async def test_sigterm_ignorer_is_killed_after_grace() -> None:
    stdio = STDIOClient([*CHILDREN, "ignore-term"], terminate_timeout=0.3)
    await stdio.connect()
    assert await stdio.receive() == "ready"
    started = time.perf_counter()
    await stdio.close()
    elapsed = time.perf_counter() - started
    assert 0.55 < elapsed < 3
    assert stdio.returncode == -9
    assert stdio.pid is not None and gone(stdio.pid)


async def test_grandchildren_do_not_survive_close() -> None:
    stdio = STDIOClient([*CHILDREN, "grandchild"], message_format="line", terminate_timeout=0.3)
    await stdio.connect()
    grandchild = int(await stdio.receive())
    assert not gone(grandchild)
    await stdio.close()
    assert stdio.returncode == 0  # the child left when stdin closed
    for _ in range(50):
        if gone(grandchild):
            break
        await asyncio.sleep(0.02)
    assert gone(grandchild)


async def test_close_semantics_and_health() -> None:
    stdio = rpc(ping_method="ping")
    status = await stdio.health_check()
    assert not status.is_healthy  # not started yet
    await stdio.connect()
    assert (await stdio.health_check()).is_healthy
    waiting = asyncio.ensure_future(stdio.receive(timeout=None))
    pending = asyncio.ensure_future(stdio.request("sleep", {"seconds": 10, "value": 1}))
    iterated: list[Any] = []

    async def consume() -> None:
        async for message in stdio:
            iterated.append(message)

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    pid = stdio.pid
    await stdio.close()
    await stdio.close()  # idempotent
    with pytest.raises(errors.ClosedError):
        await waiting
    with pytest.raises(errors.ClosedError):
        await pending
    await consumer  # iteration ends quietly on close
    assert iterated == []
    with pytest.raises(errors.ClosedError):
        await stdio.send("x")
    with pytest.raises(errors.ClosedError):
        await stdio.connect()
    assert pid is not None and gone(pid)
    assert stdio.returncode == 0  # it left when its stdin closed
    assert "STDIOClient" in repr(stdio)


async def test_exit_event_and_auto_connect() -> None:
    stdio = STDIOClient([*CHILDREN, "exit", "0"], message_format="line")
    codes: list[int] = []
    stdio.on("exit", codes.append)
    try:
        assert await stdio.receive() == "bye"  # receive() connects on first use
        with pytest.raises(errors.ProcessExitedError):
            await stdio.receive()
        await asyncio.sleep(0.05)
        assert codes == [0]
    finally:
        await stdio.close()


def test_ping_method_needs_jsonrpc() -> None:
    # A ping on a json-lines client was silently never sent (and reported healthy).
    with pytest.raises(errors.ConfigError, match=r"ping_method.*jsonrpc"):
        STDIOClient(["true"], ping_method="ping")
