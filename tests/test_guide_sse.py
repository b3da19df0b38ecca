"""Every SSE snippet of the guide, copied as written, run against the local SSE app.

Only the URLs changed (``https://api.example.com/...`` -> the local server), plus
one line the guide cannot run as written: ``stream_completion`` is an async
generator, and ``return full_response`` inside one is a SyntaxError ("'return'
with value in async generator"), so that line is a bare ``return`` here.

The guide logs with ``logger.info(token, end="", flush=True)``: ``logging``
has no ``end``/``flush`` arguments, so that call raises TypeError whenever INFO
is enabled for the logger. The Event Types test serves no ``token`` event, so
its line is never reached; the Streaming AI usage loop does reach it, so that
test pins the snippet's logger at WARNING, where ``logger.info`` returns
before looking at its arguments.
"""

from __future__ import annotations

import logging as _logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from tests.servers.sse_app import COMPLETION_TOKENS, AppState, make_app
from tests.servers.uvicorn_server import serve_asgi


@dataclass
class SSEServer:
    """The running test app: its base URL and what it saw."""

    url: str
    port: int
    state: AppState


@pytest.fixture
async def sse_server() -> AsyncIterator[SSEServer]:
    app, state = make_app()
    async with serve_asgi(app) as url:
        yield SSEServer(url, urlsplit(url).port or 0, state)


@pytest.fixture
def quiet_guide_logger() -> Iterator[None]:
    logger = _logging.getLogger(__name__)
    level = logger.level
    logger.setLevel(_logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


async def test_guide_sse_basic_usage(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(_logging.INFO, logger=__name__)
    # The server sends ``retry: 10``, so the resume after the stream ends (answered
    # 204: nothing left) comes after 10 ms rather than reconnect_delay.
    events_url = f"{sse_server.url}/events?count=3&retry=10"

    import logging

    logger = logging.getLogger(__name__)

    from agenticaiframework.communication import SSEClient

    async with SSEClient(events_url) as sse:
        async for event in sse:
            logger.info(f"Event: {event.event}")
            logger.info(f"Data: {event.data}")
            logger.info(f"ID: {event.id}")

    assert [r.getMessage() for r in caplog.records if r.name == __name__] == [
        line for n in (1, 2, 3) for line in ("Event: message", f'Data: {{"n": {n}}}', f"ID: {n}")
    ]
    assert sse_server.state.last_event_ids == [None, "3"]


async def test_guide_sse_configuration(sse_server: SSEServer) -> None:
    from agenticaiframework.communication import SSEClient, SSEConfig

    config = SSEConfig(
        # Connection settings
        timeout_seconds=0,  # No timeout (long-lived)
        # Reconnection
        auto_reconnect=True,
        reconnect_delay=3.0,
        # Headers
        headers={"Authorization": "Bearer token"},
    )

    sse = SSEClient(f"{sse_server.url}/headers", config=config)

    # Not in the guide: show the config at work against the server.
    async with sse:
        first = await anext(sse)
    assert first.json()["headers"]["authorization"] == "Bearer token"
    assert sse.config.timeout_seconds == 0 and sse.config.reconnect_delay == 3.0


async def test_guide_sse_event_types(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(_logging.INFO, logger=__name__)
    from agenticaiframework.communication import SSEClient

    events_url = f"{sse_server.url}/typed"  # message, error, done: no "token" event

    import logging

    logger = logging.getLogger(__name__)

    async with SSEClient(events_url) as sse:
        async for event in sse:
            if event.event == "message":
                logger.info(f"Message: {event.data}")
            elif event.event == "token":
                logger.info(event.data, end="", flush=True)
            elif event.event == "error":
                logger.info(f"Error: {event.data}")
            elif event.event == "done":
                logger.info("\nStream completed")
                break

    assert [r.getMessage() for r in caplog.records if r.name == __name__] == [
        "Message: hello agent",
        "Error: tool failed",
        "\nStream completed",
    ]
    assert sse_server.state.hits["typed"] == 1


async def test_guide_sse_streaming_ai_responses(
    sse_server: SSEServer, quiet_guide_logger: None
) -> None:
    completions_url = f"{sse_server.url}/completions"

    import logging

    logger = logging.getLogger(__name__)

    from agenticaiframework.communication import SSEClient

    async def stream_completion(prompt: str):  # type: ignore[no-untyped-def]
        """Stream AI completion tokens."""
        # fmt: off
        async with SSEClient(
            completions_url,
            method="POST",
            json={"prompt": prompt, "stream": True}
        ) as sse:
            full_response = ""
            async for event in sse:
                if event.event == "token":
                    token = event.data
                    full_response += token
                    yield token
                elif event.event == "done":
                    break

            return  # the guide has `return full_response`: a SyntaxError here
        # fmt: on

    # Usage
    async for token in stream_completion("Tell me a story"):
        logger.info(token, end="", flush=True)

    # Not in the guide: what the snippet produced.
    tokens = [token async for token in stream_completion("Again")]
    assert tokens == COMPLETION_TOKENS
    assert sse_server.state.bodies == [
        {"prompt": "Tell me a story", "stream": True},
        {"prompt": "Again", "stream": True},
    ]
