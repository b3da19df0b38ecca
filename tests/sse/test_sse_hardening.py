"""SSEClient against hostile servers: unbounded events, unsendable ids, absurd retry
values, cancelled waits, and secrets in URLs (issue 16, items 5, 11, 16 and 23)."""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest

from agenticaiframework.communication import (
    CommunicationError,
    ConfigError,
    MessageTooLargeError,
    SSEClient,
    SSEEvent,
)
from agenticaiframework.communication.sse.client import MAX_RETRY_MS, EventStreamDecoder
from tests.servers.ports import free_port
from tests.servers.proxy import FaultProxy
from tests.servers.sse_app import AppState, make_app
from tests.servers.uvicorn_server import serve_asgi

FAST = {"reconnect_delay": 0.01, "max_reconnect_delay": 0.05}
MIB = 1024 * 1024


@dataclass
class SSEServer:
    """The running test app: its base URL, port and what it saw."""

    url: str
    port: int
    state: AppState


@pytest.fixture
async def sse_server() -> AsyncIterator[SSEServer]:
    app, state = make_app()
    async with serve_asgi(app) as url:
        yield SSEServer(url, urlsplit(url).port or 0, state)


async def eventually(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(check) or not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def client_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("SSEClient:")]


# -- item 11: every byte of the event being built counts -------------------------------


def test_decoder_counts_empty_data_lines() -> None:
    decoder = EventStreamDecoder(max_event_size=60)
    with pytest.raises(MessageTooLargeError):
        decoder.feed("data:\n" * 11)  # 66 characters, no data in any of them
    decoder = EventStreamDecoder(max_event_size=60)
    with pytest.raises(MessageTooLargeError):
        decoder.feed("data\n" * 13)
    decoder = EventStreamDecoder(max_event_size=60)
    with pytest.raises(MessageTooLargeError):
        decoder.feed("event: x\n" * 7)


def test_decoder_counts_the_unterminated_line_with_the_event() -> None:
    decoder = EventStreamDecoder(max_event_size=100)
    assert decoder.feed("data: " + "x" * 54 + "\n") == []  # 61 characters so far
    with pytest.raises(MessageTooLargeError) as info:
        decoder.feed("data: " + "y" * 45)  # 51 more, no newline yet
    assert info.value.code == "ERR_MESSAGE_TOO_LARGE"


def test_decoder_limit_holds_for_an_event_completed_in_one_piece() -> None:
    decoder = EventStreamDecoder(max_event_size=30)
    out: list[SSEEvent] = []
    with pytest.raises(MessageTooLargeError):
        decoder.feed("data: ok\n\ndata: " + "x" * 40 + "\n\ndata: after\n\n", out)
    assert out == [SSEEvent("message", "ok")]  # the event before the big one is kept
    # The partial event was dropped with the error: the decoder goes on cleanly.
    assert decoder.feed("data: next\n\n") == [SSEEvent("message", "next")]


def test_decoder_limit_is_the_size_on_the_wire() -> None:
    # "data: " + 23 characters + LF = 30: exactly at the limit is fine.
    decoder = EventStreamDecoder(max_event_size=30)
    assert decoder.feed("data: " + "x" * 23 + "\n\n") == [SSEEvent("message", "x" * 23)]
    with pytest.raises(MessageTooLargeError):
        decoder.feed("data: " + "x" * 24 + "\n\n")


async def test_endless_empty_data_lines_fail_with_message_too_large(
    sse_server: SSEServer,
) -> None:
    url = f"{sse_server.url}/empty_data_lines?bytes={8 * MIB}"
    async with asyncio.timeout(30), SSEClient(url, max_event_size=MIB, **FAST) as sse:
        first = await anext(sse)
        assert first.data == "before"
        with pytest.raises(MessageTooLargeError) as info:
            await anext(sse)
        assert info.value.code == "ERR_MESSAGE_TOO_LARGE" and "max_event_size" in str(info.value)
        # The stream is released at once and not resumed (it would send the same again).
        await eventually(lambda: sse_server.state.open_streams == 0)
        assert [event async for event in sse] == []
    assert sse_server.state.hits["empty_data_lines"] == 1
    assert sse.stats.errors == 1


@pytest.mark.parametrize(
    ("lines", "line"),
    [(0, 8 * MIB), (768 * 1024, 384 * 1024)],
    ids=["endless-line", "event-plus-unterminated-line"],
)
async def test_line_that_never_ends_fails_with_message_too_large(
    sse_server: SSEServer, lines: int, line: int
) -> None:
    url = f"{sse_server.url}/unterminated_line?lines={lines}&line={line}"
    async with asyncio.timeout(30), SSEClient(url, max_event_size=MIB, **FAST) as sse:
        assert (await anext(sse)).data == "before"
        with pytest.raises(MessageTooLargeError):
            await anext(sse)
        await eventually(lambda: sse_server.state.open_streams == 0)
    assert sse_server.state.hits["unterminated_line"] == 1


# -- item 16: ids that cannot be sent back, retry values that are not numbers -----------


@pytest.mark.parametrize("bad_id", ["ünï-2", "a\x01b", " 2 ", "2\t"])
async def test_unsendable_id_is_not_used_for_resume(
    sse_server: SSEServer, bad_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agenticaiframework.communication.sse")
    url = f"{sse_server.url}/bad_id?id={quote(bad_id)}"
    async with asyncio.timeout(20), SSEClient(url, terminal_event="done", **FAST) as sse:
        events = [event async for event in sse]
    assert [e.data for e in events] == ["one", "two", "three", "bye"]
    assert events[1].id == bad_id  # the event still carries the id it came with
    # The resume sent the last id that can travel as a header: a server that
    # honours it repeats rather than skips.
    assert sse_server.state.last_event_ids == [None, "1"]
    assert "cannot be sent as a Last-Event-ID header" in caplog.text


def test_decoder_keeps_the_last_sendable_id_for_resume() -> None:
    decoder = EventStreamDecoder("0")
    decoder.feed("id: 1\ndata: a\n\nid: é\ndata: b\n\n")
    assert decoder.last_event_id == "é" and decoder.resume_id == "1"
    decoder.feed("id: 3\ndata: c\n\n")
    assert decoder.resume_id == "3"
    decoder.feed("id\ndata: d\n\n")  # an empty id resets both: no header at all
    assert decoder.last_event_id == decoder.resume_id == ""
    # Several ids in one piece, the last ones unsendable: the last sendable wins.
    decoder.feed("id: 4\ndata: e\n\nid:5\ndata: f\n\nid: é\n\nid: 6 \ndata: g\n\n")
    assert decoder.last_event_id == "6 " and decoder.resume_id == "5"
    # A piece whose only id cannot be sent keeps the one of an earlier piece.
    decoder.feed("id: ü\ndata: h\n\n")
    assert decoder.resume_id == "5"
    # Split anywhere, the result is the same.
    text = "id: 7\ndata: i\n\nid: 8\ndata: j\n\nid: ñ\ndata: k\n\n"
    for piece in (1, 2, 3, 5):
        split = EventStreamDecoder()
        for start in range(0, len(text), piece):
            split.feed(text[start : start + piece])
        assert (split.last_event_id, split.resume_id) == ("ñ", "8")


def test_initial_last_event_id_that_cannot_be_sent_is_refused() -> None:
    with pytest.raises(ConfigError, match="last_event_id"):
        SSEClient("http://127.0.0.1:1/events", last_event_id="ünï")


async def test_retry_of_five_thousand_digits_loses_no_event(sse_server: SSEServer) -> None:
    url = f"{sse_server.url}/bad_retry?value={'9' * 5000}"
    async with asyncio.timeout(20), SSEClient(url, terminal_event="done", **FAST) as sse:
        events = [event.data async for event in sse]
        assert sse.retry_ms == MAX_RETRY_MS
    assert events == ["first", "second", "bye"]


async def test_retry_beyond_float_range_is_capped(sse_server: SSEServer) -> None:
    url = f"{sse_server.url}/bad_retry?value=1{'0' * 400}&then=close"
    async with SSEClient(url, **FAST) as sse:
        assert [(await anext(sse)).data, (await anext(sse)).data] == ["first", "second"]
        assert sse.retry_ms == MAX_RETRY_MS
        # The stream ended: the client now waits the (capped) reconnection time.
        with pytest.raises(builtins.TimeoutError):
            async with asyncio.timeout(0.5):
                await anext(sse)
        started = time.monotonic()
    assert time.monotonic() - started < 2.0  # close() does not wait it out
    assert sse_server.state.hits["bad_retry"] == 1


@pytest.mark.parametrize("value", ["1e400", "", "12a", "0x10"])
def test_decoder_ignores_retry_that_is_not_digits(value: str) -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(f"retry: 5\nretry: {value}\ndata: x\n\n") == [
        SSEEvent("message", "x", "", 5)
    ]
    assert decoder.retry == 5


# -- item 23: a cancelled wait never closes the stream nor loses an event ----------------


async def test_idle_stream_read_under_short_timeouts_does_not_reconnect(
    sse_server: SSEServer,
) -> None:
    async with SSEClient(f"{sse_server.url}/typed", **FAST) as sse:
        assert [(await anext(sse)).event for _ in range(3)] == ["message", "error", "done"]
        for _ in range(5):
            with pytest.raises(builtins.TimeoutError):
                async with asyncio.timeout(0.1):
                    await anext(sse)
        assert sse_server.state.open_streams == 1
    assert sse_server.state.hits["typed"] == 1
    assert sse.stats.reconnects == 0 and sse.stats.errors == 0


async def test_short_timeouts_over_a_stream_lose_and_repeat_nothing(
    sse_server: SSEServer,
) -> None:
    ids: list[int] = []
    timeouts = 0
    async with asyncio.timeout(50):
        async with SSEClient(f"{sse_server.url}/events?count=60&delay=0.004", **FAST) as sse:
            while True:
                try:
                    async with asyncio.timeout(0.003):
                        event = await anext(sse)
                except builtins.TimeoutError:
                    timeouts += 1
                    continue
                except StopAsyncIteration:
                    break
                ids.append(int(event.id))
    assert ids == list(range(1, 61))
    assert timeouts > 0
    # One stream, then the resume after the server ended it (answered 204).
    assert sse_server.state.last_event_ids == [None, "60"]


async def test_reader_stops_reading_when_nobody_consumes(sse_server: SSEServer) -> None:
    count = 2_000_000  # 4,000 writes of 500 events: far more than is ever read ahead
    async with SSEClient(f"{sse_server.url}/fast?count={count}", **FAST) as sse:
        state = sse_server.state
        seen = -1
        stable_since = time.monotonic()
        deadline = stable_since + 30
        while time.monotonic() - stable_since < 0.5:
            assert time.monotonic() < deadline, "the server never stopped writing"
            if state.fast_writes != seen:
                seen, stable_since = state.fast_writes, time.monotonic()
            await asyncio.sleep(0.05)
        assert 0 < seen < 1000
        assert [(await anext(sse)).json()["n"] for _ in range(1000)] == list(range(1, 1001))
    assert client_tasks() == []


async def test_close_mid_stream_leaves_no_task(sse_server: SSEServer) -> None:
    async with FaultProxy(sse_server.port) as proxy:
        sse = SSEClient(f"http://127.0.0.1:{proxy.port}/forever", **FAST)
        got: list[SSEEvent] = []

        async def consume() -> None:
            async for event in sse:
                got.append(event)

        task = asyncio.create_task(consume())
        await eventually(lambda: len(got) >= 3)
        assert len(client_tasks()) == 1  # the reader
        await sse.close()
        await asyncio.wait_for(task, 5)
        assert task.exception() is None
        assert client_tasks() == []
        await eventually(lambda: proxy.connections == 0)
        assert [int(e.id) for e in got] == list(range(1, len(got) + 1))


async def test_reader_errors_surface_once_from_the_next_anext(sse_server: SSEServer) -> None:
    async with FaultProxy(sse_server.port) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/forever"
        async with SSEClient(url, auto_reconnect=False) as sse:
            assert (await anext(sse)).data == "1"
            await proxy.cut()
            with pytest.raises(CommunicationError) as info:
                while True:
                    await anext(sse)
            assert info.value.code == "ERR_CONNECTION"
            assert [event async for event in sse] == []  # then it ends quietly
        assert client_tasks() == []


# -- item 5: no password or token in repr, url, errors or logs --------------------------

SECRETS = ("s3cr3t-pw", "k3y-v4lue", "s1gn-v4lue", "t0ken-v4lue")


def secret_url(base: str, path: str) -> str:
    parts = urlsplit(base)
    return (
        f"{parts.scheme}://alice:s3cr3t-pw@{parts.netloc}{path}"
        f"{'&' if '?' in path else '?'}api_key=k3y-v4lue&sig=s1gn-v4lue"
    )


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked in: {text[:300]}"


async def test_secrets_never_printed(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    params = {"token": "t0ken-v4lue"}
    printed: list[str] = []

    sse = SSEClient(secret_url(sse_server.url, "/events?count=3&close_after=1"), params=params)
    printed += [repr(sse), sse.url]
    assert "alice" in sse.url and "/events" in sse.url
    async with sse:
        assert [e.id async for e in sse] == ["1", "2", "3"]  # resumed twice, logged
        printed.append(repr(sse))
    assert sse_server.state.hits["events"] == 4

    for path in ("/status/404", "/wrongtype", "/status/503"):
        client = SSEClient(
            secret_url(sse_server.url, path), params=params, max_reconnect_attempts=1, **FAST
        )
        with pytest.raises(CommunicationError) as info:
            await client.connect()
        printed += [str(info.value), repr(info.value.args)]
        status = await client.health_check()
        printed.append(status.detail)
        await client.close()

    refused = f"http://alice:s3cr3t-pw@127.0.0.1:{free_port()}/e?api_key=k3y-v4lue"
    with pytest.raises(CommunicationError) as info:
        await SSEClient(refused, params=params, max_reconnect_attempts=1, **FAST).connect()
    printed.append(str(info.value))

    url = secret_url(sse_server.url, "/typed")
    with pytest.raises(CommunicationError) as info:
        async with SSEClient(url, params=params, timeout_seconds=0.2, auto_reconnect=False) as sse:
            async for _ in sse:
                pass
    assert info.value.code == "ERR_TIMEOUT"
    printed.append(str(info.value))

    assert any("***" in text for text in printed)
    for text in printed:
        assert_clean(text)
    assert "resuming" in caplog.text  # the reconnect lines were logged, redacted
    assert_clean(caplog.text)


async def test_a_second_concurrent_wait_is_refused(sse_server: SSEServer) -> None:
    async with SSEClient(f"{sse_server.url}/typed", **FAST) as sse:
        for _ in range(3):
            await anext(sse)
        first = asyncio.create_task(anext(sse))
        await asyncio.sleep(0.05)
        with pytest.raises(RuntimeError, match="already waiting"):
            await anext(sse)
        await sse.close()
        with pytest.raises(StopAsyncIteration):
            await first  # close() ends the pending wait quietly


async def test_params_add_to_the_query_of_the_url(sse_server: SSEServer) -> None:
    url = f"{sse_server.url}/headers?a=1&api_key=k3y-v4lue"
    async with SSEClient(url, params={"q": "2"}, terminal_event="done") as sse:
        seen = (await anext(sse)).json()
    assert seen["query"] == {"a": "1", "api_key": "k3y-v4lue", "q": "2"}
    assert_clean(repr(sse) + sse.url)


@pytest.mark.parametrize("value", ["caf\u00e9", "a\r\nX-Injected: 1", "nul\x00"])
def test_header_values_that_cannot_be_sent_are_config_errors(value: str) -> None:
    with pytest.raises(ConfigError, match="'X-Tenant'") as info:
        SSEClient("http://127.0.0.1:1/events", headers={"X-Tenant": value})
    assert info.value.code == "ERR_CONFIG"
