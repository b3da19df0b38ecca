"""A2AClient against hostile peers of our own: garbage and oversized cards, endless and garbage streams.

Each scenario is an "agent" under its own path prefix of one raw ASGI app:
``/<name>/.well-known/agent-card.json`` is its card, ``/<name>/rpc`` its
JSON-RPC endpoint.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from agenticaiframework.communication import A2AClient
from agenticaiframework.communication.agents.a2a import (
    ArtifactUpdate,
    StatusUpdate,
    VersionNotSupportedError,
)
from agenticaiframework.communication.core import errors
from agenticaiframework.communication.testing.http import serve_asgi

pytestmark = pytest.mark.asyncio(loop_scope="module")

WELL_KNOWN = "/.well-known/agent-card.json"


def _card(base: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "supportedInterfaces": [
            {"url": f"{base}/{name}/rpc", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        **extra,
    }


async def _start(send: Any, ctype: bytes, status: int = 200) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype)]}
    )


async def _chunk(send: Any, data: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


def _event(result: dict[str, Any], request_id: Any) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})
    return f"data: {body}\n\n".encode()


class Hostile:
    """The hostile app; ``base`` is set once the port is known."""

    def __init__(self) -> None:
        self.base = ""
        self.stopped = asyncio.Event()
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.paths.append(scope["raw_path"].decode())
        name, _, rest = scope["path"].strip("/").partition("/")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body) if body else {}
        if "/" + rest == WELL_KNOWN:
            await self.card(name, send)
        else:
            await self.rpc(name, request, send)

    async def card(self, name: str, send: Any) -> None:
        if name == "garbage":
            await _start(send, b"application/json")
            await _chunk(send, b"<html>not a card</html>", more=False)
        elif name == "huge":
            await _start(send, b"application/json")
            await _chunk(send, b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}', more=False)
        elif name == "endless-card":
            await _start(send, b"application/json")
            await _chunk(send, b'{"name": "')
            while not self.stopped.is_set():
                await _chunk(send, b"x" * 65536)
                await asyncio.sleep(0)
        elif name == "no-interfaces":
            await _start(send, b"application/json")
            await _chunk(send, json.dumps({"name": "n"}).encode(), more=False)
        elif name == "v03":
            old_card: dict[str, Any] = {
                "name": "old",
                "url": f"{self.base}/v03/rpc",
                "protocolVersion": "0.3.0",
            }
            await _start(send, b"application/json")
            await _chunk(send, json.dumps(old_card).encode(), more=False)
        elif name == "v2":
            card2 = _card(self.base, name)
            card2["supportedInterfaces"][0]["protocolVersion"] = "2.0"
            await _start(send, b"application/json")
            await _chunk(send, json.dumps(card2).encode(), more=False)
        elif name == "bad-interface":
            bad = {"name": "b", "supportedInterfaces": [{"url": 42, "protocolBinding": "JSONRPC"}]}
            await _start(send, b"application/json")
            await _chunk(send, json.dumps(bad).encode(), more=False)
        elif name == "rest-tenant":
            card3 = _card(self.base, name)
            card3["supportedInterfaces"] = [
                {
                    "url": f"{self.base}/{name}/rest",
                    "protocolBinding": "HTTP+JSON",
                    "protocolVersion": "1.0",
                    "tenant": "acme corp",
                }
            ]
            await _start(send, b"application/json")
            await _chunk(send, json.dumps(card3).encode(), more=False)
        else:
            await _start(send, b"application/json")
            await _chunk(send, json.dumps(_card(self.base, name)).encode(), more=False)

    async def rpc(self, name: str, request: dict[str, Any], send: Any) -> None:
        request_id = request.get("id")
        task = {"taskId": "t1", "contextId": "c1"}
        if name == "endless-event":
            await _start(send, b"text/event-stream")
            await _chunk(send, b"data: ")
            while not self.stopped.is_set():
                await _chunk(send, b"y" * 65536)
                await asyncio.sleep(0)
        elif name == "garbage-events":
            await _start(send, b"text/event-stream")
            while not self.stopped.is_set():
                await _chunk(send, b"data: {not json\n\n")
                await asyncio.sleep(0)
        elif name == "some-garbage":
            await _start(send, b"text/event-stream")
            working = {**task, "status": {"state": "TASK_STATE_WORKING"}}
            artifact = {**task, "artifact": {"artifactId": "a", "parts": [{"text": "ok"}]}}
            done = {**task, "status": {"state": "TASK_STATE_COMPLETED"}}
            await _chunk(send, _event({"statusUpdate": working}, request_id))
            await _chunk(send, b"data: \xff\xfe garbage\n\n: a comment\n\ndata: [1,\n\n")
            await _chunk(send, _event({"artifactUpdate": artifact}, request_id))
            await _chunk(send, b"data: nope\n\n")
            await _chunk(send, _event({"statusUpdate": done}, request_id), more=False)
        elif name == "rest-tenant":
            await _start(send, b"application/json")
            hi = {"message": {"messageId": "m", "role": "ROLE_AGENT", "parts": [{"text": "hi"}]}}
            await _chunk(send, json.dumps(hi).encode(), more=False)
        elif name == "wrong-id":
            await _start(send, b"application/json")
            reply = {"jsonrpc": "2.0", "id": "someone-else", "result": {"message": {}}}
            await _chunk(send, json.dumps(reply).encode(), more=False)
        elif name == "html":
            await _start(send, b"text/html")
            await _chunk(send, b"<html>hello</html>", more=False)
        elif name == "not-a-result":
            await _start(send, b"application/json")
            odd = {"jsonrpc": "2.0", "id": request_id, "result": {"neither": 1}}
            await _chunk(send, json.dumps(odd).encode(), more=False)
        elif name == "huge-reply":
            await _start(send, b"application/json")
            await _chunk(send, b'{"jsonrpc": "2.0", "result": "' + b"z" * 300_000, more=False)
        else:
            await _start(send, b"application/json", 500)
            await _chunk(send, b"no", more=False)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def hostile() -> AsyncIterator[tuple[str, Hostile]]:
    app = Hostile()
    async with serve_asgi(app) as url:
        app.base = url
        yield url, app
        app.stopped.set()


def client(base: str, name: str, **options: Any) -> A2AClient:
    return A2AClient(f"{base}/{name}", card_cache=False, max_retries=0, **options)


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("garbage", errors.ProtocolError, "not JSON"),
        ("huge", errors.MessageTooLargeError, ""),
        ("endless-card", errors.MessageTooLargeError, ""),
        ("no-interfaces", errors.ProtocolError, "supportedInterfaces"),
        ("bad-interface", errors.ProtocolError, "supportedInterfaces[0].url"),
        ("v03", VersionNotSupportedError, "0.3.0"),
        ("v2", VersionNotSupportedError, "none at A2A 1.0"),
    ],
)
async def test_bad_cards_are_clear_errors(
    hostile: tuple[str, Hostile], name: str, error: type[Exception], words: str
) -> None:
    base, _ = hostile
    agent = client(base, name)
    with pytest.raises(error) as info:
        await agent.connect()
    await agent.close()
    assert words in str(info.value)


async def test_endless_event_is_bounded(hostile: tuple[str, Hostile]) -> None:
    base, _ = hostile
    async with client(base, "endless-event", max_message_size=256 * 1024) as agent:
        with pytest.raises(errors.MessageTooLargeError):
            async for _ in agent.stream("hi"):
                pass


async def test_garbage_only_stream_ends_with_protocol_error(hostile: tuple[str, Hostile]) -> None:
    base, _ = hostile
    async with client(base, "garbage-events") as agent:
        with pytest.raises(errors.ProtocolError) as info:
            async for _ in agent.stream("hi"):
                pass
    assert "not JSON" in str(info.value)


async def test_garbage_events_are_skipped_between_good_ones(hostile: tuple[str, Hostile]) -> None:
    base, _ = hostile
    async with client(base, "some-garbage") as agent:
        events = [event async for event in agent.stream("hi")]
    assert [e.kind for e in events] == ["statusUpdate", "artifactUpdate", "statusUpdate"]
    assert isinstance(events[1], ArtifactUpdate) and events[1].text == "ok"
    assert isinstance(events[-1], StatusUpdate) and events[-1].state == "completed"


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("wrong-id", errors.ProtocolError, "answers id"),
        ("html", errors.ProtocolError, "not JSON"),
        ("not-a-result", errors.ProtocolError, "neither a task nor a message"),
        ("huge-reply", errors.MessageTooLargeError, ""),
        ("broken", errors.HTTPStatusError, "500"),
    ],
)
async def test_malformed_replies_are_clear_errors(
    hostile: tuple[str, Hostile], name: str, error: type[Exception], words: str
) -> None:
    base, _ = hostile
    async with client(base, name, max_message_size=128 * 1024) as agent:
        with pytest.raises(error) as info:
            await agent.send("hi")
    assert words in str(info.value)


async def test_rest_puts_the_tenant_in_the_path(hostile: tuple[str, Hostile]) -> None:
    base, app = hostile
    async with client(base, "rest-tenant") as agent:
        assert agent.interface.tenant == "acme corp"
        reply = await agent.send("hi")
    assert reply.text == "hi"
    assert app.paths[-1] == "/rest-tenant/rest/acme%20corp/message:send"
