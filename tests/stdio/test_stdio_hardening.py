"""STDIOClient against hostile child processes (issue 16: items 13, 14, 15, 20, 22, 23).

Every fault is caused for real by a child of our own (tests/servers/*.py):
bad Content-Length headers, a notification flood, JSON nested too deeply,
late replies, a closed stdout, and reads cancelled by short timeouts.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agenticaiframework.communication import STDIOClient
from agenticaiframework.communication.core import errors
from agenticaiframework.communication.core.lifecycle import ClientState

SERVERS = Path(__file__).parent.parent / "servers"
CHILDREN = [sys.executable, str(SERVERS / "stdio_children.py")]
JSONRPC = [sys.executable, str(SERVERS / "jsonrpc_child.py")]


def rpc(**overrides: Any) -> STDIOClient:
    overrides.setdefault("response_timeout", 10)
    return STDIOClient(JSONRPC, message_format="jsonrpc", **overrides)


async def wait_until(condition: Any, seconds: float = 10.0) -> None:
    """Poll ``condition()`` until true; fail after ``seconds``."""
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


# ---------------------------------------------------------------- 13: bad Content-Length


HOSTILE_KINDS = [
    "digits",
    "negative",
    "letters",
    "huge",
    "conflicting",
    "long-header",
    "no-length",
]


async def test_bad_content_length_headers_are_skipped_and_the_reply_arrives() -> None:
    # Each reply comes right after a bad frame in the same write: a header of
    # 5,000 digits, a negative, non-numeric, absurd or conflicting length, an
    # over-long header block, a block without a length (some with a smuggled
    # body carrying the request's id). Every request still gets its own reply.
    async with STDIOClient(
        [*CHILDREN, "hostile-lsp"],
        framing="content-length",
        message_format="jsonrpc",
        response_timeout=10,
    ) as stdio:
        reported: list[BaseException] = []
        stdio.on("error", reported.append)
        for kind in HOSTILE_KINDS:
            assert await stdio.request(kind) == kind
        await wait_until(lambda: len(reported) == len(HOSTILE_KINDS))
        assert all(type(e) is errors.ProtocolError for e in reported)
        assert "5000 digits" in str(reported[0])
        assert stdio.stats.errors == len(HOSTILE_KINDS)
        # nothing smuggled reached iteration either
        with pytest.raises(errors.TimeoutError):
            await stdio.receive(timeout=0.2)


# ---------------------------------------------------------------- 14: notification flood


async def test_notification_flood_with_slow_handler_is_bounded_and_lossless() -> None:
    bound = 10
    count = 400
    handled: list[int] = []
    ahead: list[int] = []
    async with rpc(max_queued_messages=bound, response_timeout=40) as stdio:

        @stdio.on("notification")
        async def slow(message: dict[str, Any]) -> None:
            if message["method"] != "flood":
                return
            handled.append(message["params"]["i"])
            # The child writes each number to stderr once its notification is
            # in the pipe: how far ahead of the handler it got is what we hold.
            tail = stdio.stderr_tail.split()
            if tail:
                ahead.append(int(tail[-1]) + 1 - len(handled))
            await asyncio.sleep(0.005)

        assert await stdio.request("flood", {"count": count, "pad": 2000}) == "flooded"
        await wait_until(lambda: len(handled) == count, 30)
    assert handled == list(range(count))  # every notification, in order
    # Unbounded, the child writes all 400 at once. Bounded, it stays within the
    # queue bound plus what the pipe and one read hold (2 KB lines: ~70).
    assert max(ahead) < 200, max(ahead)


async def test_flood_then_exit_still_delivers_every_notification_and_the_reply() -> None:
    # The reply and the exit come while back-pressure holds the pipe for far
    # longer than the exit grace: the client must read on before failing
    # anything, so the request gets its reply, not ProcessExitedError.
    count = 80
    handled: list[int] = []
    async with rpc(max_queued_messages=10, response_timeout=40) as stdio:

        @stdio.on("notification")
        async def slow(message: dict[str, Any]) -> None:
            handled.append(message["params"]["i"])
            # The 20-odd events still held at the exit take over 1 s.
            await asyncio.sleep(0.05)

        params = {"count": count, "pad": 2000, "then_exit": True}
        assert await stdio.request("flood", params) == "flooded"
        await wait_until(lambda: len(handled) == count, 30)
        assert handled == list(range(count))
        await wait_until(lambda: stdio.returncode == 0)


# ---------------------------------------------------------------- 15: JSON nested too deeply


async def test_deeply_nested_json_is_skipped_and_the_reply_in_the_same_chunk_arrives() -> None:
    async with rpc() as stdio:
        reported: list[BaseException] = []
        stdio.on("error", reported.append)
        assert await stdio.request("deep", {"depth": 100_000}) == "ok"
        assert await stdio.request("echo", [1]) == [1]
        await wait_until(lambda: len(reported) == 1)
        assert isinstance(reported[0], errors.ProtocolError)
        assert "nested too deeply" in str(reported[0])
        assert stdio.stats.errors == 1


async def test_deeply_nested_json_line_is_skipped_in_json_mode() -> None:
    async with STDIOClient([*CHILDREN, "deep", "100000"], response_timeout=10) as stdio:
        reported: list[BaseException] = []
        stdio.on("error", reported.append)
        assert await stdio.receive() == {"ok": True}
        await stdio.send({"still": "working"})
        assert await stdio.receive() == {"still": "working"}
        await wait_until(lambda: len(reported) == 1)
        assert isinstance(reported[0], errors.ProtocolError)
        assert stdio.stats.errors == 1


# ---------------------------------------------------------------- 20: late replies


async def test_late_replies_to_timed_out_and_cancelled_requests_are_dropped() -> None:
    async with rpc() as stdio:
        with pytest.raises(errors.TimeoutError):
            await stdio.request("sleep", {"seconds": 0.2, "value": "late"}, timeout=0.05)
        cancelled = asyncio.ensure_future(
            stdio.request("sleep", {"seconds": 0.2, "value": "cancelled"})
        )
        await asyncio.sleep(0.05)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await stdio.request("sleep", {"seconds": 0.2, "value": "scoped"})
        # A raw request whose reply comes well after the three late ones.
        await stdio.send(
            {"jsonrpc": "2.0", "id": "raw", "method": "sleep", "params": {"seconds": 1.5}}
        )
        assert await stdio.receive() == {"jsonrpc": "2.0", "id": "raw", "result": None}
        assert stdio.late_replies == 3
        assert await stdio.request("echo", ["fine"]) == ["fine"]


# ---------------------------------------------------------------- 22: stdout closed, child alive


async def test_closed_stdout_fails_pending_and_new_requests_at_once() -> None:
    async with rpc(response_timeout=60) as stdio:
        waiting = asyncio.ensure_future(
            stdio.request("sleep", {"seconds": 30, "value": 1}, timeout=None)
        )
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        async with asyncio.timeout(10):
            with pytest.raises(errors.ConnectionError) as info:
                await stdio.request("close_stdout", timeout=None)
            with pytest.raises(errors.ConnectionError):
                await waiting
        assert time.perf_counter() - started < 5
        assert isinstance(info.value, errors.StdoutClosedError)
        assert info.value.code == "ERR_STDOUT_CLOSED"
        assert "closed its stdout" in str(info.value)
        assert stdio.is_running  # alive: not a ProcessExitedError
        started = time.perf_counter()
        with pytest.raises(errors.StdoutClosedError):
            await stdio.request("echo", timeout=None)
        with pytest.raises(errors.StdoutClosedError):
            await stdio.receive(timeout=None)
        assert time.perf_counter() - started < 3  # no timeout: failed at once
        status = await stdio.health_check()
        assert not status.is_healthy and "stdout" in status.detail


async def test_closed_stdout_ends_receive_after_the_last_message() -> None:
    async with STDIOClient([*CHILDREN, "close-stdout"], response_timeout=60) as stdio:
        reported: list[BaseException] = []
        stdio.on("error", reported.append)
        async with asyncio.timeout(10):
            assert await stdio.receive(timeout=None) == "last words"
            with pytest.raises(errors.StdoutClosedError):
                await stdio.receive(timeout=None)
            with pytest.raises(errors.StdoutClosedError):
                async for _ in stdio:
                    pass
        assert stdio.is_running
        await wait_until(lambda: len(reported) == 1)
        assert isinstance(reported[0], errors.StdoutClosedError)


# ---------------------------------------------------------------- 23: cancelled reads


@pytest.mark.parametrize("how", ["receive", "anext"])
async def test_reads_cancelled_by_short_timeouts_lose_nothing(how: str) -> None:
    count = 3000
    async with STDIOClient([*CHILDREN, "count", str(count)], message_format="line") as stdio:
        got: list[str] = []
        timeouts = 0
        async with asyncio.timeout(40):
            while len(got) < count:
                try:
                    async with asyncio.timeout(0.001):
                        if how == "receive":
                            got.append(await stdio.receive(timeout=None))
                        else:
                            got.append(await anext(stdio))
                except TimeoutError:
                    timeouts += 1
        assert got == [str(i) for i in range(count)]  # each once, in order
        assert timeouts > 0  # the timeouts did cut reads short
        assert stdio.is_running and stdio.state is ClientState.OPEN
