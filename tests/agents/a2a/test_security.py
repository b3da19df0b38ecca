"""The URL policy on the card URL, every interface URL, the OAuth2 token URL and push URLs; redaction.

The rules about hosts that are not this machine run for real in a private
network namespace (``tests/servers/netns.py``): a public address on its
``lo``, names of the test's, nothing can leave.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from agenticaiframework.communication import A2AClient
from agenticaiframework.communication.core import errors
from agenticaiframework.communication.testing.http import serve_asgi
from tests.servers import netns
from tests.servers.netns import LOCAL_ALIAS, REMOTE_NAME, forward, run_in_netns

if TYPE_CHECKING:
    from .sdk_agent import RunningAgent

needs_netns = pytest.mark.skipif(
    not netns.available(), reason="needs unshare -rnm and ip (user and network namespaces)"
)


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[RunningAgent]:
    # Imported here: the namespace child imports this module and needs no a2a-sdk.
    from .sdk_agent import serve_agent

    async with serve_agent() as running:
        yield running


def card_app(card: dict[str, Any], seen: list[str]) -> Any:
    """An app serving ``card`` at the well-known path and recording every path asked for."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        body = json.dumps(card).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def a_card(*interfaces: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "name": "card",
        "supportedInterfaces": [
            {"url": url, "protocolBinding": binding, "protocolVersion": "1.0"}
            for url, binding in interfaces
        ],
        **extra,
    }


# -- on loopback -----------------------------------------------------------------------


def test_plain_http_card_to_a_remote_host_is_refused_at_construction() -> None:
    with pytest.raises(errors.SecurityError) as info:
        A2AClient("http://agent.example.com")
    assert info.value.code == "ERR_SECURITY"
    with pytest.raises(errors.SecurityError):
        A2AClient("ftp://127.0.0.1/agent")


async def test_plain_http_interface_to_a_remote_host_is_refused_before_use() -> None:
    seen: list[str] = []
    card = a_card(("http://agent.example.com/a2a", "JSONRPC"))
    async with serve_asgi(card_app(card, seen)) as url:
        client = A2AClient(url, card_cache=False)
        with pytest.raises(errors.SecurityError) as info:
            await client.connect()
        await client.close()
    assert "agent.example.com" in str(info.value)
    assert seen == ["/.well-known/agent-card.json"]


async def test_plain_http_push_url_is_refused_before_any_request(agent: RunningAgent) -> None:
    async with A2AClient(agent.url) as client:
        before = len(agent.state.headers)
        with pytest.raises(errors.SecurityError):
            await client.send("task", push_url="http://hooks.example.com/notify")
        with pytest.raises(errors.SecurityError):
            async for _ in client.stream("task", push_url="http://hooks.example.com/notify"):
                pass
        with pytest.raises(errors.SecurityError):
            await client.set_push_config("some-task", "http://hooks.example.com/notify")
    assert len(agent.state.headers) == before


async def test_secrets_are_redacted_in_repr_and_errors() -> None:
    seen: list[str] = []
    card = a_card(("http://127.0.0.1:9/a2a?api_key=interface-secret", "JSONRPC"))
    async with serve_asgi(card_app(card, seen)) as base:
        url = base.replace("http://", "http://user:card-password@") + "/?token=card-secret"
        client = A2AClient(url, card_cache=False, max_retries=0, auth="bearer-secret")
        assert "card-password" not in repr(client) and "card-secret" not in repr(client)
        async with client:
            assert "interface-secret" not in repr(client.interface)
            with pytest.raises(errors.ConnectionError) as info:
                await client.send("hello")
    text = str(info.value)
    for secret in ("card-password", "card-secret", "interface-secret", "bearer-secret"):
        assert secret not in text and secret not in repr(client)


async def test_card_given_as_dict_needs_no_request(agent: RunningAgent) -> None:
    async with A2AClient(agent.url, card_cache=False) as fetched:
        card = fetched.card
    before = len(agent.state.card_requests)
    async with A2AClient(card=card) as client:
        assert isinstance(await client.send("hello"), dict)
    assert len(agent.state.card_requests) == before


# -- a remote host, in a private network namespace ---------------------------------------


async def _remote_plain_card_refused() -> None:
    seen: list[str] = []
    async with serve_asgi(card_app(a_card(("https://x.test/a2a", "JSONRPC")), seen)) as url:
        port = int(url.rsplit(":", 1)[1])
        async with forward(port) as remote_port:
            with pytest.raises(errors.SecurityError) as info:
                A2AClient(f"http://{REMOTE_NAME}:{remote_port}")
            assert info.value.code == "ERR_SECURITY"
    assert seen == []


async def _remote_card_may_not_point_here() -> None:
    local_seen: list[str] = []
    # The local service a hostile card points at: it must see no request.
    async with serve_asgi(card_app(a_card(), local_seen)) as local:
        local_interface = f"{local}/a2a/jsonrpc"
        alias_interface = local_interface.replace("127.0.0.1", LOCAL_ALIAS)
        for target in (local_interface, alias_interface):
            seen: list[str] = []
            card = a_card((target, "JSONRPC"))
            async with serve_asgi(card_app(card, seen)) as url:
                port = int(url.rsplit(":", 1)[1])
                async with forward(port) as remote_port:
                    client = A2AClient(
                        f"http://{REMOTE_NAME}:{remote_port}",
                        allow_insecure=True,
                        card_cache=False,
                    )
                    with pytest.raises(errors.SecurityError) as info:
                        await client.connect()
                    await client.close()
            assert "this machine or a private network" in str(info.value)
            assert seen == ["/.well-known/agent-card.json"]
    assert local_seen == []


def redirect_app(location: str, seen: list[str]) -> Any:
    """An app answering every request with a redirect to ``location``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await send(
            {
                "type": "http.response.start",
                "status": 302,
                "headers": [(b"location", location.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


async def _remote_card_may_not_redirect_here() -> None:
    local_seen: list[str] = []
    async with serve_asgi(card_app(a_card(), local_seen)) as local:
        seen: list[str] = []
        local_card = f"{local}/.well-known/agent-card.json"
        async with serve_asgi(redirect_app(local_card, seen)) as url:
            port = int(url.rsplit(":", 1)[1])
            async with forward(port) as remote_port:
                client = A2AClient(
                    f"http://{REMOTE_NAME}:{remote_port}", allow_insecure=True, card_cache=False
                )
                with pytest.raises(errors.SecurityError) as info:
                    await client.connect()
                await client.close()
        assert "redirect" in str(info.value)
        assert seen == ["/.well-known/agent-card.json"]
    assert local_seen == []


async def _remote_scenarios() -> None:
    await _remote_plain_card_refused()
    await _remote_card_may_not_point_here()
    await _remote_card_may_not_redirect_here()


@needs_netns
async def test_remote_cards_plain_http_refused_and_may_not_point_or_redirect_here() -> None:
    """One namespace for both rules (starting one costs seconds)."""
    await run_in_netns(_remote_scenarios)
