"""MCP authorization against the official ``mcp`` SDK's authorization and resource server.

The server (tests/servers/mcp_auth_server.py) is the SDK's: its metadata
routes, ``/authorize``, ``/token``, ``/register`` and the bearer middleware
of its Streamable HTTP app; only the provider (storage and automatic consent)
is test code. The user step is followed headlessly: the hook GETs the
authorization URL and returns the redirect's ``Location``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from agenticaiframework.communication.agents.mcp import MCPAuthorizationError, MCPClient
from agenticaiframework.communication.agents.mcp.auth import (
    LoopbackCallback,
    MCPOAuth,
    MemoryTokenStore,
    OAuthError,
)
from agenticaiframework.communication.core import errors

ROOT = Path(__file__).resolve().parents[2]
CIMD_URL = "https://client.example/agentcomm.json"


class AuthServer:
    """The SDK server in a child process; ``base`` is its origin."""

    def __init__(self, *flags: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.servers.mcp_auth_server", "0", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith(b"READY "), line
        self.base = f"http://127.0.0.1:{int(line.split()[1])}"
        self.url = f"{self.base}/mcp"

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    async def stats(self) -> dict[str, list[dict[str, Any]]]:
        async with httpx.AsyncClient() as client:
            data: dict[str, list[dict[str, Any]]] = (
                await client.get(f"{self.base}/test/stats")
            ).json()
            return data

    async def post(self, path: str) -> None:
        async with httpx.AsyncClient() as client:
            (await client.post(f"{self.base}{path}")).raise_for_status()


# Servers shared by the module (each takes seconds to start): "plain" with
# three pre-registered clients and a machine client; "step-up" needing scopes
# "mcp extra" that the user grants only partly the first time, and accepting
# Client ID Metadata Document URLs; "legacy-sse" on the 2024-11-05 transport;
# "no-prm" without Protected Resource Metadata, as a 2025-03-26 server.
FLAGS = {
    "plain": (
        "--preregister",
        "basic-client:s3cret-basic:client_secret_basic",
        "--preregister",
        "post-client:s3cret-post:client_secret_post",
        "--preregister",
        "public-client::none",
        "--client-credentials",
        "machine:m4chine-secret",
    ),
    "step-up": ("--scopes", "mcp,extra", "--first-grant", "mcp", "--cimd"),
    "legacy-sse": ("--legacy-sse",),
    "no-prm": ("--no-prm",),
}


def _key_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


PRIVATE_KEY, PUBLIC_KEY = _key_pair()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The SDK servers of FLAGS, started on first use and shared by the module."""
    started: dict[str, AuthServer] = {}
    public = tmp_path_factory.mktemp("jwt") / "public.pem"
    public.write_text(PUBLIC_KEY)

    def get(name: str = "plain") -> AuthServer:
        if name not in started:
            started[name] = AuthServer(*FLAGS[name], "--jwt-public-key", str(public))
        return started[name]

    yield get
    for server in started.values():
        server.stop()


class Browser:
    """The user step, headless: open the authorization URL, return where it redirects."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    async def __call__(self, url: str) -> str:
        self.urls.append(url)
        async with httpx.AsyncClient() as client:
            response = await client.get(url)
        assert response.status_code == 302, response.text
        return response.headers["location"]

    def param(self, name: str, index: int = -1) -> str:
        return parse_qs(urlsplit(self.urls[index]).query)[name][0]


def mine(stats: dict[str, list[dict[str, Any]]], kind: str, client_id: str) -> list[dict[str, Any]]:
    return [entry for entry in stats[kind] if entry["client_id"] == client_id]


async def test_dynamic_registration_and_authorization_code_with_pkce_and_resource(
    servers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = servers()
    browser = Browser()
    oauth = MCPOAuth(authorize=browser)
    async with MCPClient(server.url, auth=oauth) as mcp:
        result = await mcp.call_tool("add", {"a": 1, "b": 2})
        assert result["structuredContent"] == {"result": 3}
        shown = repr(mcp) + repr(oauth) + repr(oauth.tokens)
    assert len(browser.urls) == 1
    assert browser.param("code_challenge_method") == "S256"
    assert browser.param("resource") == server.url
    assert browser.param("scope") == "mcp"  # the PRM's scopes_supported (no scope challenged)
    assert oauth.authorization_server == server.base
    tokens = oauth.tokens
    assert tokens is not None and tokens.scope == "mcp" and tokens.refresh_token
    client_id = browser.param("client_id")
    stats = await server.stats()
    # The SDK's server offers only secret methods: the registration asked for basic.
    assert mine(stats, "registered", client_id)[0]["method"] == "client_secret_basic"
    (token,) = mine(stats, "token", client_id)
    assert token["grant"] == "authorization_code" and token["resource"] == server.url
    for secret in (tokens.access_token, tokens.refresh_token):
        assert secret not in shown
        assert secret not in caplog.text


async def test_a_2025_03_26_server_without_resource_metadata_uses_its_origin(
    servers: Any,
) -> None:
    server = servers("no-prm")
    browser = Browser()
    oauth = MCPOAuth(authorize=browser)
    async with MCPClient(server.url, auth=oauth) as mcp:
        result = await mcp.call_tool("add", {"a": 2, "b": 3})
        assert result["structuredContent"] == {"result": 5}
    # The SDK's own metadata at the origin named the endpoints; DCR, PKCE as ever.
    assert oauth.authorization_server == server.base
    assert browser.urls[0].startswith(f"{server.base}/authorize?")
    assert browser.param("code_challenge_method", 0) == "S256"
    client_id = browser.param("client_id", 0)
    stats = await server.stats()
    assert mine(stats, "registered", client_id)
    assert mine(stats, "token", client_id)[0]["grant"] == "authorization_code"


async def test_the_2024_11_05_http_sse_transport_is_authorized_too(servers: Any) -> None:
    server = servers("legacy-sse")
    browser = Browser()
    url = f"{server.base}/sse"
    async with MCPClient(url, auth=MCPOAuth(authorize=browser)) as mcp:
        result = await mcp.call_tool("add", {"a": 20, "b": 22})
        assert result["structuredContent"] == {"result": 42}
    assert browser.param("resource") == url and len(browser.urls) == 1


async def test_a_cli_catches_the_redirect_on_a_loopback_listener(servers: Any) -> None:
    server = servers()
    pages: list[bytes] = []

    async def browser(url: str) -> None:  # the user's browser: follows every redirect
        async with httpx.AsyncClient(follow_redirects=True) as client:
            response = await client.get(url)
        pages.append(response.content)

    async with LoopbackCallback(open_browser=browser) as callback:
        oauth = MCPOAuth(authorize=callback, redirect_uri=callback.redirect_uri)
        async with MCPClient(server.url, auth=oauth) as mcp:
            await mcp.ping()
    assert len(pages) == 1 and b"You can close this window" in pages[0]
    assert oauth.tokens is not None


async def test_tokens_in_the_store_are_reused_without_the_user(servers: Any) -> None:
    server = servers()
    store = MemoryTokenStore()
    browser = Browser()
    async with MCPClient(server.url, auth=MCPOAuth(authorize=browser, store=store)) as mcp:
        await mcp.ping()
    async with MCPClient(server.url, auth=MCPOAuth(authorize=browser, store=store)) as mcp:
        await mcp.ping()
    assert len(browser.urls) == 1


async def test_a_refused_token_is_refreshed_once_for_concurrent_calls(servers: Any) -> None:
    import asyncio

    server = servers()
    browser = Browser()
    oauth = MCPOAuth(authorize=browser)
    async with MCPClient(server.url, auth=oauth) as mcp:
        await mcp.ping()
        before = oauth.tokens
        await server.post("/test/revoke-access")  # every access token now gets 401
        results = await asyncio.gather(*(mcp.call_tool("add", {"a": i, "b": 1}) for i in range(5)))
        assert [r["structuredContent"]["result"] for r in results] == [1, 2, 3, 4, 5]
        assert oauth.tokens is not None and before is not None
        assert oauth.tokens.access_token != before.access_token
    assert len(browser.urls) == 1  # no second user step
    grants = [t["grant"] for t in mine(await server.stats(), "token", browser.param("client_id"))]
    assert grants == ["authorization_code", "refresh_token"]


async def test_a_refused_refresh_token_means_a_new_authorization(servers: Any) -> None:
    server = servers()
    browser = Browser()
    async with MCPClient(server.url, auth=MCPOAuth(authorize=browser)) as mcp:
        await mcp.ping()
        await server.post("/test/revoke-all")
        await mcp.ping()
    assert len(browser.urls) == 2
    grants = [t["grant"] for t in mine(await server.stats(), "token", browser.param("client_id"))]
    assert grants == ["authorization_code", "authorization_code"]


async def test_closing_never_asks_the_user_again(servers: Any) -> None:
    server = servers()
    browser = Browser()
    async with MCPClient(server.url, auth=MCPOAuth(authorize=browser)) as mcp:
        await mcp.ping()
        await server.post("/test/revoke-all")  # the DELETE of close() will get 401
    assert len(browser.urls) == 1


async def test_a_token_near_expiry_is_refreshed_before_sending(servers: Any) -> None:
    server = servers()
    browser = Browser()
    # Tokens live an hour; a margin of two hours makes every one due at once.
    oauth = MCPOAuth(authorize=browser, refresh_margin=7200)
    async with MCPClient(server.url, auth=oauth) as mcp:
        await mcp.ping()
    grants = [t["grant"] for t in mine(await server.stats(), "token", browser.param("client_id"))]
    assert grants[0] == "authorization_code" and "refresh_token" in grants
    assert len(browser.urls) == 1


@pytest.mark.parametrize(
    ("client_id", "secret", "method", "expected"),
    [
        ("basic-client", "s3cret-basic", None, "client_secret_basic"),  # the default for a secret
        ("post-client", "s3cret-post", "client_secret_post", "client_secret_post"),
        ("public-client", None, None, "none"),
    ],
)
async def test_pre_registered_clients_authenticate_by_their_method(
    servers: Any, client_id: str, secret: str | None, method: str | None, expected: str
) -> None:
    server = servers()
    browser = Browser()
    oauth = MCPOAuth(
        authorize=browser,
        client_id=client_id,
        client_secret=secret,
        token_endpoint_auth_method=method,
    )
    async with MCPClient(server.url, auth=oauth) as mcp:
        await mcp.ping()
        if secret:
            assert secret not in repr(oauth)
    stats = await server.stats()
    assert mine(stats, "registered", client_id) == []
    assert mine(stats, "token", client_id)[0]["method"] == expected


async def test_client_id_metadata_document_when_the_server_supports_it(servers: Any) -> None:
    server = servers("step-up")
    registrations = len((await server.stats())["registered"])
    browser = Browser()
    oauth = MCPOAuth(authorize=browser, client_metadata_url=CIMD_URL)
    async with MCPClient(server.url, auth=oauth) as mcp:
        await mcp.ping()
    assert {parse_qs(urlsplit(url).query)["client_id"][0] for url in browser.urls} == {CIMD_URL}
    stats = await server.stats()
    assert len(stats["registered"]) == registrations
    assert {entry["method"] for entry in mine(stats, "token", CIMD_URL)} == {"none"}


async def test_dynamic_registration_when_metadata_documents_are_not_supported(
    servers: Any,
) -> None:
    server = servers()
    browser = Browser()
    async with MCPClient(
        server.url, auth=MCPOAuth(authorize=browser, client_metadata_url=CIMD_URL)
    ) as mcp:
        await mcp.ping()
    assert browser.param("client_id") != CIMD_URL
    assert mine(await server.stats(), "registered", browser.param("client_id"))


async def test_step_up_on_insufficient_scope_asks_for_the_union(servers: Any) -> None:
    # The user consents to "mcp" only the first time; the server needs "mcp extra".
    server = servers("step-up")
    browser = Browser()
    oauth = MCPOAuth(authorize=browser)
    async with MCPClient(server.url, auth=oauth) as mcp:
        await mcp.ping()
    assert len(browser.urls) == 2
    assert browser.param("scope", 0) == "mcp extra"
    assert browser.param("scope", 1) == "mcp extra"
    assert oauth.tokens is not None and oauth.tokens.scope == "mcp extra"


async def test_step_up_stops_at_the_limit(servers: Any) -> None:
    server = servers("step-up")
    browser = Browser()
    mcp = MCPClient(server.url, auth=MCPOAuth(authorize=browser, max_step_ups=0))
    with pytest.raises(MCPAuthorizationError) as info:
        await mcp.connect()
    await mcp.close()
    assert info.value.status_code == 403 and info.value.error == "insufficient_scope"
    assert len(browser.urls) == 1


async def test_a_callback_with_another_state_is_refused(servers: Any) -> None:
    server = servers()
    browser = Browser()

    async def forged(url: str) -> str:
        location = await browser(url)
        return location.replace("state=", "state=forged")

    mcp = MCPClient(server.url, auth=MCPOAuth(authorize=forged))
    with pytest.raises(errors.SecurityError, match="state"):
        await mcp.connect()
    await mcp.close()
    assert mine(await server.stats(), "token", browser.param("client_id")) == []


async def test_the_user_refusing_is_an_oauth_error(servers: Any) -> None:
    server = servers()

    async def deny(url: str) -> str:
        state = parse_qs(urlsplit(url).query)["state"][0]
        return f"http://127.0.0.1/callback?error=access_denied&state={state}"

    mcp = MCPClient(server.url, auth=MCPOAuth(authorize=deny))
    with pytest.raises(OAuthError) as info:
        await mcp.connect()
    await mcp.close()
    assert info.value.code == "ERR_AUTH" and info.value.error == "access_denied"


def test_configuration_errors_are_named() -> None:
    with pytest.raises(errors.ConfigError, match="authorize"):
        MCPOAuth()
    with pytest.raises(errors.ConfigError, match="client_metadata_url"):
        MCPOAuth(authorize=Browser(), client_metadata_url="http://client.example/x.json")
    with pytest.raises(errors.ConfigError, match="redirect_uri"):
        MCPOAuth(authorize=Browser(), redirect_uri="http://evil.example/cb")
    with pytest.raises(errors.ConfigError, match="client_secret"):
        MCPOAuth(authorize=Browser(), token_endpoint_auth_method="client_secret_post")
    oauth = MCPOAuth(authorize=Browser())
    MCPClient("http://127.0.0.1:9/mcp", auth=oauth)
    with pytest.raises(errors.ConfigError, match="one per MCP server"):
        MCPClient("http://127.0.0.1:9/other", auth=oauth)


@pytest.mark.parametrize("method", [None, "client_secret_post"])
async def test_client_credentials_for_a_machine_client(servers: Any, method: str | None) -> None:
    server = servers()
    oauth = MCPOAuth(
        client_id="machine", client_secret="m4chine-secret", token_endpoint_auth_method=method
    )
    async with MCPClient(server.url, auth=oauth) as mcp:
        await mcp.ping()
        await server.post("/test/revoke-access")  # refused now: a new token, no user
        result = await mcp.call_tool("add", {"a": 2, "b": 2})
        assert result["structuredContent"] == {"result": 4}
        assert "m4chine-secret" not in repr(oauth) + repr(mcp)
    grants = mine(await server.stats(), "token", "machine")[-2:]
    assert [g["grant"] for g in grants] == ["client_credentials"] * 2
    assert {g["method"] for g in grants} == {method or "client_secret_basic"}
    assert {g["resource"] for g in grants} == {server.url}


async def test_client_credentials_with_a_private_key_jwt(servers: Any) -> None:
    server = servers()
    oauth = MCPOAuth(client_id="machine", private_key=PRIVATE_KEY, private_key_algorithm="ES256")
    async with MCPClient(server.url, auth=oauth) as mcp:
        await mcp.ping()
        await server.post("/test/revoke-access")  # a new assertion (a new jti) for a new token
        await mcp.ping()
        assert "PRIVATE KEY" not in repr(oauth)
    grants = mine(await server.stats(), "token", "machine")[-2:]
    assert [(g["grant"], g["method"]) for g in grants] == [
        ("client_credentials", "private_key_jwt")
    ] * 2


async def test_client_credentials_with_a_key_the_server_does_not_know(servers: Any) -> None:
    server = servers()
    other, _ = _key_pair()
    oauth = MCPOAuth(client_id="machine", private_key=other, private_key_algorithm="ES256")
    mcp = MCPClient(server.url, auth=oauth)
    with pytest.raises(OAuthError) as info:
        await mcp.connect()
    await mcp.close()
    assert info.value.error == "invalid_client" and info.value.status_code == 401


async def test_client_credentials_with_a_wrong_secret(servers: Any) -> None:
    server = servers()
    mcp = MCPClient(server.url, auth=MCPOAuth(client_id="machine", client_secret="wrong"))
    with pytest.raises(errors.AuthenticationError) as info:
        await mcp.connect()
    await mcp.close()
    assert info.value.code == "ERR_AUTH" and "wrong" not in str(info.value)
