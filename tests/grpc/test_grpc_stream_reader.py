"""ResponseStream reads through one reader task per call into a small buffer.

Counted, never timed: the tasks a stream creates do not grow with its replies,
a consumer that stops reading holds the server back (gRPC flow control), and
what the reader task must keep doing still works: a caller's timeout loses
nothing, a server stream refused with UNAVAILABLE is retried (with a new
reader), a failing request iterator is raised rather than CANCELLED, and an
``aclose()`` from another task ends a waiting ``__anext__``.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import grpc
import pytest

from agenticaiframework.communication import GRPCClient
from agenticaiframework.communication.grpc import client as grpc_client
from tests.servers.grpc_server import (
    PROTO_FILE,
    GRPCTestServer,
    generate_modules,
    serve_grpc,
    start_grpc_server,
)
from tests.servers.ports import free_port

PROTO = str(PROTO_FILE)
FAST: dict[str, Any] = {"retry_delay": 0.05, "max_retries": 0, "timeout_seconds": 10}


@contextmanager
def counting_tasks() -> Iterator[collections.Counter[str]]:
    """Count the tasks the running loop creates, by coroutine name (server's included)."""
    loop = asyncio.get_running_loop()
    made: collections.Counter[str] = collections.Counter()
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
        made[getattr(coro, "__qualname__", type(coro).__name__)] += 1
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        yield made
    finally:
        loop.set_task_factory(previous)


def _readers() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if "grpc-reader" in t.get_name()]


@pytest.fixture
async def server() -> AsyncIterator[GRPCTestServer]:
    async with serve_grpc() as srv:
        yield srv


# -- tasks do not grow with the replies ----------------------------------------------


async def test_a_server_stream_makes_a_few_tasks_whatever_its_length(
    server: GRPCTestServer,
) -> None:
    async with GRPCClient(server.target, proto_files=[PROTO], **FAST) as client:
        # Warm up (channel, descriptors) so that only the streams are counted.
        assert [r async for r in client.stream_call("AgentService", "StreamTokens", {"count": 2})]
        totals: dict[int, int] = {}
        for count in (10, 200):
            with counting_tasks() as made:
                got = [
                    r["index"]
                    async for r in client.stream_call(
                        "AgentService", "StreamTokens", {"count": count}
                    )
                ]
            assert got == list(range(count))
            totals[count] = sum(made.values())
            # Client and server side together: our reader, grpc.aio's own call
            # tasks and the server's handler, once per call.
            assert totals[count] <= 8, dict(made)
        assert totals[200] == totals[10]
        assert client.stats.received == 2 + 10 + 200


async def test_a_bidirectional_stream_makes_a_few_tasks_whatever_its_length(
    server: GRPCTestServer,
) -> None:
    async with GRPCClient(server.target, proto_files=[PROTO], **FAST) as client:
        with counting_tasks() as made:
            messages = [{"message": str(i)} for i in range(150)]
            echoes = [
                r["message"]
                async for r in client.bidirectional_stream("ChatService", "Chat", messages)
            ]
        assert echoes == [f"echo: {i}" for i in range(150)]
        # Our reader and request writer, grpc.aio's and the server's tasks.
        assert sum(made.values()) <= 10, dict(made)
        assert made["_read_replies"] == 1


# -- a consumer that stops reading holds the server back ------------------------------

BIG = 64 * 1024
SENT_MAX = 200


@asynccontextmanager
async def big_token_server(sent: list[int]) -> AsyncIterator[str]:
    """StreamTokens answering 200 replies of 64 KiB each, counting those it got out."""
    pb2, _ = generate_modules()

    async def stream_tokens(request: Any, context: Any) -> AsyncIterator[Any]:
        for i in range(SENT_MAX):
            yield pb2.TokenResponse(token="x" * BIG, index=i)
            sent[0] = i + 1

    handler = grpc.method_handlers_generic_handler(
        "agents.v1.AgentService",
        {
            "StreamTokens": grpc.unary_stream_rpc_method_handler(
                stream_tokens,
                request_deserializer=pb2.StreamRequest.FromString,
                response_serializer=pb2.TokenResponse.SerializeToString,
            )
        },
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


async def _until_still(value: Callable[[], int]) -> int:
    """Let the loop run until ``value()`` stops changing for a while."""
    last, still = -1, 0
    while still < 10:
        await asyncio.sleep(0.02)
        now = value()
        still = still + 1 if now == last else 0
        last = now
    return last


async def test_a_consumer_that_stops_reading_holds_the_server_back() -> None:
    sent = [0]
    async with big_token_server(sent) as target:
        # No BDP probing: the receive window stays at its default, so what the
        # server gets out is the window plus what the client took off the call.
        options = [("grpc.http2.bdp_probe", 0)]
        async with GRPCClient(target, proto_files=[PROTO], options=options, **FAST) as client:
            stream = client.stream_call("AgentService", "StreamTokens", {"count": 1})
            assert (await anext(stream))["index"] == 0
            stuck_at = await _until_still(lambda: sent[0])
            # Held back well before the end (13 MB), though nothing was read
            # for a while; all of it still arrives, in order, once read.
            assert stuck_at < SENT_MAX // 2
            rest = [r["index"] async for r in stream]
            assert rest == list(range(1, SENT_MAX))
            assert sent[0] == SENT_MAX


async def test_an_unbounded_buffer_would_not_hold_the_server_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The test above can fail: with a reader that reads ahead without bound,
    # the server gets everything out while nobody reads.
    monkeypatch.setattr(grpc_client, "_READ_AHEAD", 10**9)
    sent = [0]
    async with big_token_server(sent) as target:
        options = [("grpc.http2.bdp_probe", 0)]
        async with GRPCClient(target, proto_files=[PROTO], options=options, **FAST) as client:
            stream = client.stream_call("AgentService", "StreamTokens", {"count": 1})
            assert (await anext(stream))["index"] == 0
            assert await _until_still(lambda: sent[0]) == SENT_MAX
            await stream.aclose()


# -- what the reader task keeps doing ------------------------------------------------


async def test_a_timeout_in_anext_loses_no_reply_and_keeps_the_call() -> None:
    gate = asyncio.Semaphore(0)
    async with serve_grpc(token_gate=gate) as srv:
        async with GRPCClient(srv.target, proto_files=[PROTO], **FAST) as client:
            stream = client.stream_call("AgentService", "StreamTokens", {"count": 30})
            got = [(await anext(stream))["index"]]
            timeouts = 0
            while len(got) < 30:
                # Each wait times out once, then the server sends the next reply.
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.01):
                        await anext(stream)
                timeouts += 1
                assert stream.call is not None and not stream.call.done()
                gate.release()
                got.append((await anext(stream))["index"])
            assert got == list(range(30))
            assert timeouts == 29
            with pytest.raises(StopAsyncIteration):
                await anext(stream)
            assert client.stats.received == 30 and client.stats.errors == 0
        assert _readers() == []


async def test_a_server_stream_refused_at_first_is_retried_with_a_new_reader() -> None:
    port = free_port()
    srv: GRPCTestServer | None = None

    async def start_later() -> None:
        nonlocal srv
        await asyncio.sleep(0.3)
        srv = await start_grpc_server(port=port)

    starter = asyncio.create_task(start_later())
    try:
        async with GRPCClient(
            f"127.0.0.1:{port}",
            proto_files=[PROTO],
            retry_delay=0.1,
            max_retries=40,
            timeout_seconds=5,
        ) as client:
            with counting_tasks() as made:
                got = [
                    r["index"]
                    async for r in client.stream_call("AgentService", "StreamTokens", {"count": 50})
                ]
            assert got == list(range(50))
            assert client.stats.errors == 1 and client.stats.sent >= 2
            # One reader per call made: the refused ones and the one that worked.
            assert made["_read_replies"] == client.stats.sent
            assert _readers() == []
    finally:
        await starter
        assert srv is not None
        await srv.stop()


@pytest.mark.parametrize("read_late", [False, True])
async def test_a_failing_request_iterator_is_raised_not_cancelled(
    server: GRPCTestServer, read_late: bool
) -> None:
    first_echo = asyncio.Event()
    wrote_all = asyncio.Event()

    async def requests() -> AsyncIterator[dict[str, str]]:
        yield {"message": "0"}
        await first_echo.wait()
        for i in range(1, 20):
            yield {"message": str(i)}
        wrote_all.set()
        raise ValueError("no more requests")

    async with GRPCClient(server.target, proto_files=[PROTO], **FAST) as client:
        stream = client.bidirectional_stream("ChatService", "Chat", requests())
        echoes = [(await anext(stream))["message"]]
        first_echo.set()
        if read_late:
            # The reader's buffer fills while nobody reads; the writer fails meanwhile.
            await wrote_all.wait()
            await asyncio.sleep(0.1)
        with pytest.raises(ValueError, match="no more requests"):
            async for reply in stream:
                echoes.append(reply["message"])
        # What came back before the call ended comes in order, nothing else.
        assert echoes == [f"echo: {i}" for i in range(len(echoes))]
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        assert _readers() == []


async def test_aclose_from_another_task_ends_a_waiting_anext() -> None:
    gate = asyncio.Semaphore(0)
    async with serve_grpc(token_gate=gate) as srv:
        async with GRPCClient(srv.target, proto_files=[PROTO], **FAST) as client:
            stream = client.stream_call("AgentService", "StreamTokens", {"count": 5})
            await anext(stream)
            waiting = asyncio.create_task(anext(stream))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            await stream.aclose()
            assert stream.call is not None and stream.call.cancelled()
            assert _readers() == []
            # It ends (as the cancelled call it waited on), it does not hang.
            async with asyncio.timeout(5):
                await asyncio.wait([waiting])
            assert waiting.cancelled() or isinstance(waiting.exception(), StopAsyncIteration)
            with pytest.raises(StopAsyncIteration):
                await anext(stream)


async def test_a_slow_consumer_closing_the_client_ends_its_reader() -> None:
    async with serve_grpc() as srv:
        client = GRPCClient(srv.target, proto_files=[PROTO], **FAST)
        await client.connect()
        stream = client.stream_call("AgentService", "StreamTokens", {"count": 10_000})
        assert (await anext(stream))["index"] == 0
        await asyncio.sleep(0.05)  # the reader fills its buffer and waits
        assert len(_readers()) == 1
        await client.close()
        assert _readers() == []
        assert [r async for r in stream] == []


async def test_a_stream_dropped_with_replies_unread_ends_its_call(server: GRPCTestServer) -> None:
    async with GRPCClient(server.target, proto_files=[PROTO], **FAST) as client:
        stream = client.stream_call("AgentService", "StreamTokens", {"count": 100_000})
        assert (await anext(stream))["index"] == 0
        await asyncio.sleep(0.05)  # the reader fills its buffer and waits for room
        call = stream.call
        assert call is not None and not call.done()
        # The reader refers to the call and its buffer, not to the stream: once
        # nothing refers to the stream, it is collected and its call cancelled.
        del stream
        await asyncio.sleep(0.05)
        assert call.cancelled()
        assert _readers() == []


async def test_the_buffer_keeps_a_reply_whose_waiter_was_cancelled_in_between() -> None:
    # The race behind "a timeout loses nothing": the reply arrives and the
    # waiting caller is cancelled before it runs again. The reply stays.
    replies = grpc_client._Replies(2)
    waiting = asyncio.create_task(replies.get())
    await asyncio.sleep(0)
    replies.put_nowait("r0")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert len(replies) == 1
    # A full buffer holds the reader back until a reply is taken out.
    replies.put_nowait("r1")
    assert replies.full()
    putting = asyncio.create_task(replies.put("r2"))
    await asyncio.sleep(0)
    assert not putting.done()
    assert await replies.get() == "r0"
    await putting
    assert [replies.get_nowait(), replies.get_nowait()] == ["r1", "r2"]
