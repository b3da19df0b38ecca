"""SSEClient: the I/O-free decoder on its own, then the client against a real server on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from agenticaiframework.communication import (
    ClosedError,
    ConfigError,
    ConnectionError,
    HTTPStatusError,
    MessageTooLargeError,
    ProtocolError,
    SecurityError,
    SSEClient,
    SSEConfig,
    SSEEvent,
    TimeoutError,
)
from agenticaiframework.communication.sse.client import (
    EventStreamDecoder,
    UnexpectedContentTypeError,
)
from tests.servers.ports import free_port
from tests.servers.proxy import FaultProxy
from tests.servers.sse_app import COMPLETION_TOKENS, SPEC_CHUNKS, AppState, make_app
from tests.servers.uvicorn_server import serve_asgi

FAST = {"reconnect_delay": 0.01, "max_reconnect_delay": 0.05}


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


async def eventually(check: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(check) or not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# -- the decoder, no I/O ------------------------------------------------------------


def decode_all(text: str, piece: int = 0) -> tuple[list[SSEEvent], EventStreamDecoder]:
    decoder = EventStreamDecoder()
    if not piece:
        return decoder.feed(text), decoder
    events: list[SSEEvent] = []
    for i in range(0, len(text), piece):
        events += decoder.feed(text[i : i + piece])
    return events, decoder


def test_decoder_whatwg_examples() -> None:
    events, _ = decode_all("data: YHOO\ndata: +2\ndata: 10\n\n")
    assert events == [SSEEvent("message", "YHOO\n+2\n10")]
    stream = (
        ": test stream\n\ndata: first event\nid: 1\n\n"
        "data:second event\nid\n\ndata:  third event\n\n"
    )
    events, _ = decode_all(stream)
    assert [(e.data, e.id) for e in events] == [
        ("first event", "1"),
        ("second event", ""),
        (" third event", ""),
    ]
    events, _ = decode_all("data\n\ndata\ndata\n\ndata:")
    assert [e.data for e in events] == ["", "\n"]  # the unterminated last event is not dispatched


@pytest.mark.parametrize("piece", [0, 1, 2, 3, 7])
def test_decoder_line_ends_and_splits(piece: int) -> None:
    text = b"".join(SPEC_CHUNKS).decode("utf-8")
    events, decoder = decode_all(text, piece)
    assert events == [
        SSEEvent("message", "first line\nsecond line", "", 1500),
        SSEEvent("custom", "no space", "7"),
        SSEEvent("message", "", "8"),
        SSEEvent("message", " two spaces", "8"),
        SSEEvent("message", "café", "8"),
        SSEEvent("done", "bye", "8"),
    ]
    assert decoder.last_event_id == "8" and decoder.retry == 1500


def test_decoder_event_without_data_is_not_dispatched_but_id_and_retry_stick() -> None:
    events, decoder = decode_all("event: ping\nid: 41\nretry: 250\n\n")
    assert events == [] and decoder.last_event_id == "41" and decoder.retry == 250
    assert decoder.feed("data: x\n\n") == [SSEEvent("message", "x", "41")]


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", " 5", "\uff15"])
def test_decoder_ignores_bad_retry(value: str) -> None:
    _, decoder = decode_all(f"retry: {value}\ndata: x\n\n")
    assert decoder.retry is None


def test_decoder_new_stream_drops_partial_event_keeps_id() -> None:
    decoder = EventStreamDecoder("3")
    assert decoder.feed("id: 4\ndata: whole\n\ndata: half") == [SSEEvent("message", "whole", "4")]
    decoder.new_stream()
    assert decoder.feed("data: next\n\n") == [SSEEvent("message", "next", "4")]


def test_decoder_limits_event_size() -> None:
    decoder = EventStreamDecoder(max_event_size=10)
    with pytest.raises(MessageTooLargeError):
        decoder.feed("data: 0123456789abc")
    decoder = EventStreamDecoder(max_event_size=10)
    with pytest.raises(MessageTooLargeError):
        decoder.feed("data: 012345\ndata: 6789ab\n")


def test_event_json() -> None:
    assert SSEEvent("message", '{"a": [1]}').json() == {"a": [1]}
    with pytest.raises(ProtocolError):
        SSEEvent("message", "not json").json()


# -- config and the URL policy ---------------------------------------------------------


def test_overrides_merge_over_config() -> None:
    base = SSEConfig(reconnect_delay=1.0, headers={"X-A": "1"})
    sse = SSEClient(
        "https://api.example.com/completions",
        config=base,
        method="post",
        json={"prompt": "hi"},
        params={"v": "2"},
    )
    assert sse.config.method == "POST" and sse.config.json == {"prompt": "hi"}
    assert sse.config.reconnect_delay == 1.0 and sse.config.headers == {"X-A": "1"}
    with pytest.raises(ConfigError, match="nope"):
        SSEClient("https://api.example.com/", nope=1)
    with pytest.raises(ConfigError, match="max_event_size"):
        SSEConfig(max_event_size=0)
    with pytest.raises(ConfigError, match="last_event_id"):
        SSEConfig(last_event_id="a\nb")


def test_plain_http_to_remote_host_is_refused() -> None:
    with pytest.raises(SecurityError) as info:
        SSEClient("http://api.example.com/events")
    assert info.value.code == "ERR_SECURITY"
    SSEClient("http://api.example.com/events", allow_insecure=True)
    with pytest.raises(SecurityError):
        SSEClient("ftp://127.0.0.1/events")


# -- against the server -----------------------------------------------------------------


async def test_get_stream_ends_on_204_after_resume(sse_server: SSEServer) -> None:
    async with SSEClient(f"{sse_server.url}/events?count=5", **FAST) as sse:
        events = [event async for event in sse]
    assert [e.json() for e in events] == [{"n": n} for n in range(1, 6)]
    assert [e.id for e in events] == ["1", "2", "3", "4", "5"]
    assert {e.event for e in events} == {"message"}
    # The server ended the stream; the client resumed after id 5 and got 204.
    assert sse_server.state.last_event_ids == [None, "5"]
    assert sse.stats.received == 5 and sse.stats.reconnects == 1


async def test_post_stream_with_terminal_event(sse_server: SSEServer) -> None:
    async with SSEClient(
        f"{sse_server.url}/completions",
        method="POST",
        json={"prompt": "Tell me a story", "stream": True},
        terminal_event="done",
    ) as sse:
        events = [event async for event in sse]
    assert [e.data for e in events[:-1]] == COMPLETION_TOKENS
    assert events[-1].event == "done"
    assert sse_server.state.bodies == [{"prompt": "Tell me a story", "stream": True}]
    assert sse_server.state.hits["completions"] == 1  # no reconnect after "done"


async def test_twenty_thousand_events_complete_and_in_order(sse_server: SSEServer) -> None:
    async with SSEClient(f"{sse_server.url}/fast?count=20000", **FAST) as sse:
        ns = [event.json()["n"] async for event in sse]
    assert ns == list(range(1, 20001))


async def test_spec_stream_over_the_network(sse_server: SSEServer) -> None:
    async with SSEClient(f"{sse_server.url}/spec", auto_reconnect=False) as sse:
        events = [event async for event in sse]
        assert sse.retry_ms == 1500 and sse.last_event_id == "8"
    assert [(e.event, e.data) for e in events] == [
        ("message", "first line\nsecond line"),
        ("custom", "no space"),
        ("message", ""),
        ("message", " two spaces"),
        ("message", "café"),
        ("done", "bye"),
    ]
    assert sse_server.state.hits["spec"] == 1


async def test_cut_streams_resume_with_last_event_id_exactly_once(sse_server: SSEServer) -> None:
    async with FaultProxy(sse_server.port) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/events?count=120&delay=0.002"
        ids: list[int] = []
        async with SSEClient(url, **FAST) as sse:
            async for event in sse:
                ids.append(event.json()["n"])
                if len(ids) % 30 == 0:
                    await proxy.cut()
    assert ids == list(range(1, 121))
    assert sse.stats.reconnects >= 4 and sse.stats.errors >= 4
    resumed = [int(x) for x in sse_server.state.last_event_ids if x is not None]
    assert resumed == sorted(resumed) and len(resumed) >= 4


async def test_clean_end_of_stream_resumes(sse_server: SSEServer) -> None:
    async with SSEClient(f"{sse_server.url}/events?count=6&close_after=2", **FAST) as sse:
        ids = [event.id async for event in sse]
    assert ids == ["1", "2", "3", "4", "5", "6"]
    assert sse_server.state.last_event_ids == [None, "2", "4", "6"]


async def test_server_retry_value_is_honoured(sse_server: SSEServer) -> None:
    url = f"{sse_server.url}/events?count=2&close_after=1&retry=300"
    async with SSEClient(url, reconnect_delay=10.0) as sse:
        ids = [event.id async for event in sse]
        assert sse.retry_ms == 300
    assert ids == ["1", "2"]
    times = sse_server.state.connect_times
    assert len(times) == 3
    for gap in (times[1] - times[0], times[2] - times[1]):
        assert 0.25 <= gap < 2.0  # about 300 ms each, never reconnect_delay (10 s)


async def test_204_at_start_ends_without_reconnect(sse_server: SSEServer) -> None:
    async with SSEClient(f"{sse_server.url}/nocontent", **FAST) as sse:
        assert [event async for event in sse] == []
    assert sse_server.state.hits["nocontent"] == 1


async def test_wrong_content_type_is_not_retried(sse_server: SSEServer) -> None:
    with pytest.raises(UnexpectedContentTypeError) as info:
        async with SSEClient(f"{sse_server.url}/wrongtype", **FAST):
            pass
    err = info.value
    assert err.code == "ERR_PROTOCOL" and isinstance(err, ProtocolError)
    assert err.status_code == 200 and err.content_type.startswith("text/html")
    assert "not an event stream" in err.body_preview and "text/html" in str(err)
    assert sse_server.state.hits["wrongtype"] == 1


async def test_4xx_is_not_retried(sse_server: SSEServer) -> None:
    client = SSEClient(f"{sse_server.url}/status/404", max_reconnect_attempts=3, **FAST)
    with pytest.raises(HTTPStatusError) as info:
        async for _ in client:
            pass
    assert info.value.status_code == 404 and info.value.code == "ERR_HTTP_STATUS"
    assert "failure 404" in info.value.body_preview and "404" in str(info.value)
    assert sse_server.state.hits["status/404"] == 1
    await client.close()


async def test_5xx_is_retried_then_raised(sse_server: SSEServer) -> None:
    with pytest.raises(HTTPStatusError) as info:
        async with SSEClient(f"{sse_server.url}/status/500", max_reconnect_attempts=2, **FAST):
            pass
    assert info.value.status_code == 500 and "failure 500" in info.value.body_preview
    assert sse_server.state.hits["status/500"] == 3


async def test_503_then_stream(sse_server: SSEServer) -> None:
    async with SSEClient(f"{sse_server.url}/flaky?fail=2&count=3", **FAST) as sse:
        ids = [event.id async for event in sse]
    assert ids == ["1", "2", "3"]


async def test_unreachable_server_is_retried_then_raised() -> None:
    async with FaultProxy(free_port()) as proxy:
        proxy.refuse = True
        with pytest.raises(ConnectionError) as info:
            async with SSEClient(
                f"http://127.0.0.1:{proxy.port}/e", max_reconnect_attempts=2, **FAST
            ):
                pass
        assert info.value.code == "ERR_CONNECTION"
        assert proxy.accepted == 3


async def test_drop_without_reconnect_raises(sse_server: SSEServer) -> None:
    async with FaultProxy(sse_server.port) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/forever"
        got: list[str] = []
        with pytest.raises(ConnectionError):
            async with SSEClient(url, auto_reconnect=False) as sse:
                async for event in sse:
                    got.append(event.data)
                    if len(got) == 3:
                        await proxy.cut()
        assert got[:3] == ["1", "2", "3"]


async def test_reconnect_attempts_run_out(sse_server: SSEServer) -> None:
    async with FaultProxy(sse_server.port) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/forever"
        with pytest.raises(ConnectionError):
            async with SSEClient(url, max_reconnect_attempts=3, **FAST) as sse:
                async for _ in sse:
                    proxy.refuse = True
                    await proxy.cut()
        assert proxy.accepted == 4  # the stream, then three refused attempts


async def test_read_timeout(sse_server: SSEServer) -> None:
    got: list[str] = []
    with pytest.raises(TimeoutError) as info:
        async with SSEClient(
            f"{sse_server.url}/typed", timeout_seconds=0.2, auto_reconnect=False
        ) as sse:
            async for event in sse:
                got.append(event.event)
    assert got == ["message", "error", "done"] and info.value.code == "ERR_TIMEOUT"


async def test_close_from_another_task_mid_stream(sse_server: SSEServer) -> None:
    async with FaultProxy(sse_server.port) as proxy:
        sse = SSEClient(f"http://127.0.0.1:{proxy.port}/forever", **FAST)
        got: list[SSEEvent] = []

        async def consume() -> None:
            async for event in sse:
                got.append(event)

        task = asyncio.create_task(consume())
        await eventually(lambda: len(got) >= 3)
        await sse.close()
        await asyncio.wait_for(task, 2)  # ends quietly
        assert task.exception() is None
        await eventually(lambda: proxy.connections == 0 and sse_server.state.open_streams == 0)
        assert len(sse._tasks) == 0 and sse.is_closed
        assert [event async for event in sse] == []
        with pytest.raises(ClosedError):
            await sse.connect()


async def test_break_then_exit_releases_the_connection(sse_server: SSEServer) -> None:
    async with FaultProxy(sse_server.port) as proxy:
        async with SSEClient(f"http://127.0.0.1:{proxy.port}/forever") as sse:
            async for event in sse:
                if event.data == "2":
                    break
        await eventually(lambda: proxy.connections == 0 and sse_server.state.open_streams == 0)


async def test_close_while_waiting_to_reconnect(sse_server: SSEServer) -> None:
    async with FaultProxy(sse_server.port) as proxy:
        sse = SSEClient(f"http://127.0.0.1:{proxy.port}/forever", reconnect_delay=30.0)

        async def consume() -> None:
            async for _ in sse:
                await proxy.cut()

        task = asyncio.create_task(consume())
        await eventually(lambda: sse.stats.errors >= 1)
        started = time.monotonic()
        await sse.close()
        await asyncio.wait_for(task, 2)
        assert time.monotonic() - started < 2.0  # not the 30 s reconnect delay


async def test_headers_params_auth_and_initial_last_event_id(sse_server: SSEServer) -> None:
    async with SSEClient(
        f"{sse_server.url}/headers",
        headers={"X-Trace": "abc"},
        params={"q": "1"},
        auth={"type": "bearer", "token": "tok-123"},
        last_event_id="41",
        terminal_event="done",
    ) as sse:
        first = await anext(sse)
        rest = [event async for event in sse]
    seen = first.json()
    assert seen["query"] == {"q": "1"}
    headers = seen["headers"]
    assert headers["x-trace"] == "abc" and headers["authorization"] == "Bearer tok-123"
    assert headers["accept"] == "text/event-stream" and headers["last-event-id"] == "41"
    assert [e.event for e in rest] == ["done"]
    assert "tok-123" not in repr(sse.config) and "tok-123" not in repr(sse)


async def test_iterating_without_async_with_connects(sse_server: SSEServer) -> None:
    sse = SSEClient(f"{sse_server.url}/events?count=2", **FAST)
    try:
        assert [event.id async for event in sse] == ["1", "2"]
    finally:
        await sse.close()


async def test_health_check(sse_server: SSEServer) -> None:
    status = await SSEClient(f"{sse_server.url}/events?count=1").health_check()
    assert status.is_healthy and "200" in status.detail
    status = await SSEClient(f"{sse_server.url}/status/503").health_check()
    assert not status.is_healthy and "503" in status.detail
    async with SSEClient(f"{sse_server.url}/forever") as sse:
        await anext(sse)
        status = await sse.health_check()
        assert status.is_healthy and "stream open" in status.detail
    status = await SSEClient(f"http://127.0.0.1:{free_port()}/x").health_check(timeout=1)
    assert not status.is_healthy
