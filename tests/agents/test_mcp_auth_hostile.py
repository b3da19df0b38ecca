"""MCP authorization against hostile and broken peers of our own (tests/servers/mcp_auth_hostile.py).

Metadata that points somewhere forbidden, a server without PKCE S256,
garbage and oversized documents, token endpoints that refuse or answer
nonsense, forged callbacks: each gives a clear error with a stable code, and
nothing is sent where the policy forbids (a listener that counts connections
stands for the remote host; the policy must refuse before any socket opens).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from agenticaiframework.communication.agents.mcp import MCPAuthorizationError, MCPClient
from agenticaiframework.communication.agents.mcp.auth import (
    LoopbackCallback,
    MCPOAuth,
    MemoryTokenStore,
    OAuthError,
)
from agenticaiframework.communication.agents.mcp.auth.core import (
    PKCE,
    OAuthTokens,
    as_metadata_urls,
    canonical_resource,
    check_discovered_url,
    parse_callback,
    parse_token_response,
    resource_allowed,
    resource_metadata_urls,
    union_scopes,
)
from agenticaiframework.communication.core import errors
from tests.servers.mcp_auth_hostile import AuthHostileState, make_app, metadata_documents
from tests.servers.uvicorn_server import serve_asgi


class Peer:
    """The hostile app's state and origin."""

    def __init__(self, state: AuthHostileState, base: str) -> None:
        self.state = state
        self.base = base
        self.url = f"{base}/mcp"


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    state = AuthHostileState()
    async with serve_asgi(make_app(state)) as base:
        metadata_documents(state, base)
        yield Peer(state, base)


@pytest.fixture
async def counter() -> AsyncIterator[tuple[int, list[int]]]:
    """A listener standing for the remote host: (its port, [connections accepted])."""
    accepted = [0]

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        await server.wait_closed()


class Callback:
    """The user step without a server: answer with a code and the state sent."""

    def __init__(self, **extra: str) -> None:
        self.urls: list[str] = []
        self.extra = extra

    async def __call__(self, url: str) -> str:
        self.urls.append(url)
        state = parse_qs(urlsplit(url).query)["state"][0]
        params = {"code": "the-code", "state": state, **self.extra}
        return "http://127.0.0.1/callback?" + "&".join(f"{k}={v}" for k, v in params.items())


async def connect_fails(url: str, oauth: MCPOAuth) -> errors.CommunicationError:
    mcp = MCPClient(url, auth=oauth, timeout=10)
    try:
        await mcp.connect()
    except errors.CommunicationError as exc:
        return exc
    finally:
        await mcp.close()
    raise AssertionError("connect() succeeded")


async def test_sound_peer_works_and_sends_pkce_and_resource(peer: Peer) -> None:
    callback = Callback()
    oauth = MCPOAuth(authorize=callback, client_id="pre", client_secret="s3cret")
    async with MCPClient(peer.url, auth=oauth) as mcp:
        await mcp.ping()
    (_, _, headers, body) = next(s for s in peer.state.seen if s[1] == "/token")
    form = parse_qs(body.decode())
    assert form["grant_type"] == ["authorization_code"] and form["code"] == ["the-code"]
    assert form["resource"] == [peer.url] and len(form["code_verifier"][0]) >= 43
    assert headers["authorization"].startswith("Basic ")  # the default for a secret
    assert "client_secret" not in form
    assert set(peer.state.mcp_auth[1:]) == {"Bearer good-token"}  # every later request


@pytest.mark.parametrize(
    "field", ["token_endpoint", "authorization_endpoint", "registration_endpoint", "jwks_uri"]
)
async def test_metadata_url_at_a_forbidden_host_is_refused_before_connecting(
    peer: Peer, counter: tuple[int, list[int]], field: str
) -> None:
    port, accepted = counter
    metadata_documents(peer.state, peer.base, **{field: f"http://remote.invalid:{port}/x"})
    callback = Callback()
    exc = await connect_fails(peer.url, MCPOAuth(authorize=callback))
    assert isinstance(exc, errors.SecurityError) and exc.code == "ERR_SECURITY"
    assert field in str(exc)
    assert accepted[0] == 0 and callback.urls == []
    assert "/token" not in peer.state.paths("POST")


async def test_resource_metadata_at_a_forbidden_host_is_refused(
    peer: Peer, counter: tuple[int, list[int]]
) -> None:
    port, accepted = counter
    peer.state.challenge = f'Bearer resource_metadata="http://remote.invalid:{port}/prm"'
    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback()))
    assert isinstance(exc, errors.SecurityError)
    assert accepted[0] == 0


async def test_a_token_endpoint_redirect_is_not_followed(
    peer: Peer, counter: tuple[int, list[int]]
) -> None:
    port, accepted = counter
    where = f"http://127.0.0.1:{port}/token".encode()
    peer.state.responses[("POST", "/token")] = (307, "text/plain", where)
    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback()))
    assert isinstance(exc, OAuthError) and exc.status_code == 307
    assert accepted[0] == 0


@pytest.mark.parametrize("methods", [None, ["plain"]], ids=["absent", "plain-only"])
async def test_a_server_without_s256_is_refused(peer: Peer, methods: list[str] | None) -> None:
    metadata_documents(peer.state, peer.base, code_challenge_methods_supported=methods)
    callback = Callback()
    exc = await connect_fails(peer.url, MCPOAuth(authorize=callback))
    assert isinstance(exc, errors.SecurityError) and "S256" in str(exc)
    assert callback.urls == [] and peer.state.paths("POST") == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<html>not json</html>", errors.ProtocolError),
        (b'["a list"]', errors.ProtocolError),
        (b'{"resource": "x"}', errors.ProtocolError),  # no authorization_servers
        (json.dumps({"pad": "x" * 300_000}).encode(), errors.MessageTooLargeError),
    ],
    ids=["html", "list", "no-servers", "oversized"],
)
async def test_bad_resource_metadata_is_a_protocol_error(
    peer: Peer, body: bytes, error: type[Exception]
) -> None:
    for path in ("/prm", "/.well-known/oauth-protected-resource/mcp"):
        peer.state.responses[("GET", path)] = (200, "application/json", body)
    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback()))
    assert type(exc) is error


async def test_resource_metadata_for_another_server_is_refused(peer: Peer) -> None:
    peer.state.json(
        "GET",
        "/prm",
        {"resource": "https://other.example/mcp", "authorization_servers": [peer.base]},
    )
    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback()))
    assert isinstance(exc, errors.SecurityError) and "RFC 9728" in str(exc)


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (b"garbage", errors.ProtocolError),
        (
            b'{"issuer": "https://evil.example", "token_endpoint": "https://evil.example/t"}',
            errors.SecurityError,
        ),
        (b'{"issuer": 5}', errors.ProtocolError),
    ],
    ids=["garbage", "issuer-mismatch", "issuer-not-a-string"],
)
async def test_bad_authorization_server_metadata(
    peer: Peer, document: bytes, error: type[Exception]
) -> None:
    peer.state.responses[("GET", "/.well-known/oauth-authorization-server")] = (
        200,
        "application/json",
        document,
    )
    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback()))
    assert type(exc) is error


@pytest.mark.parametrize(
    ("status", "body", "error", "oauth_error"),
    [
        (
            400,
            {"error": "invalid_grant", "error_description": "code used"},
            OAuthError,
            "invalid_grant",
        ),
        (401, {"error": "invalid_client"}, OAuthError, "invalid_client"),
        (
            400,
            {"error": "invalid_grant", "error_description": "bad the-code"},
            OAuthError,
            "invalid_grant",
        ),
        (500, "boom", OAuthError, None),
        (200, "not json", errors.ProtocolError, None),
        (200, {"token_type": "Bearer"}, errors.ProtocolError, None),
        (200, {"access_token": "t", "token_type": "mac"}, errors.ProtocolError, None),
        (
            200,
            {"access_token": "t", "token_type": "Bearer", "expires_in": "soon"},
            errors.ProtocolError,
            None,
        ),
    ],
    ids=[
        "invalid-grant",
        "invalid-client",
        "echo",
        "500",
        "not-json",
        "no-token",
        "mac",
        "bad-expiry",
    ],
)
async def test_token_endpoint_errors_are_clear(
    peer: Peer, status: int, body: Any, error: type[Exception], oauth_error: str | None
) -> None:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    peer.state.responses[("POST", "/token")] = (status, "application/json", content)
    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback()))
    assert type(exc) is error
    if isinstance(exc, OAuthError):
        assert exc.code == "ERR_AUTH" and exc.status_code == status and exc.error == oauth_error
    assert "the-code" not in str(exc)


async def test_well_known_fallbacks_in_the_specified_order(peer: Peer) -> None:
    base = peer.base
    peer.state.challenge = 'Bearer error="invalid_token"'  # no resource_metadata
    issuer = f"{base}/tenant1"
    peer.state.json(
        "GET",
        "/.well-known/oauth-protected-resource",
        {"resource": f"{base}/mcp", "authorization_servers": [issuer]},
    )
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "registration_endpoint": f"{base}/register",
        "code_challenge_methods_supported": ["S256"],
    }
    peer.state.json("GET", "/tenant1/.well-known/openid-configuration", document)
    async with MCPClient(peer.url, auth=MCPOAuth(authorize=Callback())) as mcp:
        await mcp.ping()
    assert peer.state.paths("GET") == [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-authorization-server/tenant1",
        "/.well-known/openid-configuration/tenant1",
        "/tenant1/.well-known/openid-configuration",
    ]


def without_resource_metadata(peer: Peer) -> None:
    """The peer as a 2025-03-26 server: no Protected Resource Metadata anywhere."""
    peer.state.challenge = 'Bearer error="invalid_token"'
    del peer.state.responses[("GET", "/prm")]


async def test_without_resource_metadata_the_origin_metadata_is_used(peer: Peer) -> None:
    without_resource_metadata(peer)
    callback = Callback()
    async with MCPClient(peer.url, auth=MCPOAuth(authorize=callback)) as mcp:
        await mcp.ping()
    assert peer.state.paths("GET") == [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-authorization-server",  # at the MCP server's origin
    ]
    assert callback.urls[0].startswith(f"{peer.base}/authorize?")


async def test_without_any_metadata_the_default_endpoints_are_used(peer: Peer) -> None:
    without_resource_metadata(peer)
    del peer.state.responses[("GET", "/.well-known/oauth-authorization-server")]
    callback = Callback()
    async with MCPClient(peer.url, auth=MCPOAuth(authorize=callback)) as mcp:
        await mcp.ping()
    assert peer.state.paths("POST") == ["/register", "/token"]
    query = parse_qs(urlsplit(callback.urls[0]).query)
    assert callback.urls[0].startswith(f"{peer.base}/authorize?")
    assert query["client_id"] == ["dynamic"] and query["code_challenge_method"] == ["S256"]
    (_, _, _, body) = next(s for s in peer.state.seen if s[1] == "/token")
    assert parse_qs(body.decode())["code_verifier"]


async def test_origin_metadata_naming_another_issuer_is_refused(peer: Peer) -> None:
    without_resource_metadata(peer)
    document = json.loads(
        peer.state.responses[("GET", "/.well-known/oauth-authorization-server")][2]
    )
    peer.state.json(
        "GET",
        "/.well-known/oauth-authorization-server",
        {**document, "issuer": "https://evil.test"},
    )
    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback()))
    assert isinstance(exc, errors.SecurityError) and "evil.test" in str(exc)
    assert not peer.state.paths("POST")  # nothing registered, no token asked


async def test_a_failing_resource_metadata_server_is_not_taken_for_an_old_one(
    peer: Peer,
) -> None:
    without_resource_metadata(peer)
    peer.state.json("GET", "/.well-known/oauth-protected-resource", {}, status=503)
    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback()))
    assert isinstance(exc, errors.AuthenticationError) and "503" in str(exc)
    assert "/.well-known/oauth-authorization-server" not in peer.state.paths("GET")


async def test_the_challenged_scope_comes_before_scopes_supported(peer: Peer) -> None:
    peer.state.challenge = f'Bearer resource_metadata="{peer.base}/prm", scope="files:read"'
    callback = Callback()
    async with MCPClient(peer.url, auth=MCPOAuth(authorize=callback)) as mcp:
        await mcp.ping()
    assert parse_qs(urlsplit(callback.urls[0]).query)["scope"] == ["files:read"]


async def test_an_oversized_401_body_is_refused(peer: Peer) -> None:
    peer.state.challenge_body = b"x" * (1024 * 1024)
    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback()))
    assert isinstance(exc, errors.MessageTooLargeError)


async def test_a_token_the_server_still_refuses_ends_in_an_authorization_error(
    peer: Peer,
) -> None:
    peer.state.good_token = "never-issued"
    callback = Callback()
    exc = await connect_fails(peer.url, MCPOAuth(authorize=callback))
    assert isinstance(exc, MCPAuthorizationError) and exc.status_code == 401
    assert len(callback.urls) == 1  # no endless loop of user steps


async def test_a_callback_from_another_issuer_is_refused(peer: Peer) -> None:
    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback(iss="https://evil.example")))
    assert isinstance(exc, errors.SecurityError) and "iss" in str(exc)
    assert "/token" not in peer.state.paths("POST")


async def test_a_hook_that_never_answers_times_out(peer: Peer) -> None:
    async def never(url: str) -> str:
        await asyncio.Event().wait()
        return ""

    exc = await connect_fails(peer.url, MCPOAuth(authorize=never, authorize_timeout=0.2))
    assert isinstance(exc, errors.TimeoutError) and exc.code == "ERR_TIMEOUT"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"error": "invalid_client_metadata"}, OAuthError),
        (201, {"client_secret": "x"}, errors.ProtocolError),  # no client_id
        (
            201,
            {"client_id": "c", "token_endpoint_auth_method": "tls_client_auth"},
            errors.ProtocolError,
        ),
        (
            201,
            {"client_id": "c", "token_endpoint_auth_method": "client_secret_post"},
            errors.ProtocolError,
        ),
    ],
    ids=["refused", "no-client-id", "unusable-method", "secret-method-without-secret"],
)
async def test_bad_registration_answers(
    peer: Peer, status: int, body: dict[str, Any], error: type[Exception]
) -> None:
    peer.state.json("POST", "/register", body, status)
    callback = Callback()
    exc = await connect_fails(peer.url, MCPOAuth(authorize=callback))
    assert type(exc) is error
    if isinstance(exc, OAuthError):
        assert exc.error == "invalid_client_metadata" and exc.status_code == 400
    assert callback.urls == []


async def test_step_up_asks_for_the_challenged_scope_too_and_stops_at_the_limit(
    peer: Peer,
) -> None:
    peer.state.mcp.behaviour["tools/call"] = "insufficient-scope"  # always 403
    callback = Callback()
    async with MCPClient(peer.url, auth=MCPOAuth(authorize=callback)) as mcp:
        with pytest.raises(MCPAuthorizationError) as info:
            await mcp.call_tool("x")
        await mcp.ping()  # the session is still usable
    assert info.value.status_code == 403 and info.value.error == "insufficient_scope"
    scopes = [parse_qs(urlsplit(url).query)["scope"][0] for url in callback.urls]
    assert scopes == ["mcp", "mcp files:write admin", "mcp files:write admin"]


async def test_a_hook_that_raises_is_an_oauth_error_with_the_cause(peer: Peer) -> None:
    def no_browser(url: str) -> str:
        raise RuntimeError("no browser here")

    exc = await connect_fails(peer.url, MCPOAuth(authorize=no_browser))
    assert isinstance(exc, OAuthError) and "RuntimeError: no browser here" in str(exc)
    assert isinstance(exc.__cause__, RuntimeError)

    async def broken(audience: str) -> str:
        raise KeyError("kms")

    exc = await connect_fails(peer.url, MCPOAuth(client_id="w", client_assertion=broken))
    assert isinstance(exc, OAuthError) and isinstance(exc.__cause__, KeyError)


async def test_a_token_store_that_fails_is_an_authentication_error(peer: Peer) -> None:
    class BrokenStore(MemoryTokenStore):
        async def get_tokens(self, resource: str) -> None:
            raise OSError("disk gone")

    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback(), store=BrokenStore()))
    assert type(exc) is errors.AuthenticationError and "OSError: disk gone" in str(exc)
    assert isinstance(exc.__cause__, OSError)


async def test_no_way_to_register_is_a_config_error(peer: Peer) -> None:
    metadata_documents(peer.state, peer.base, registration_endpoint=None)
    exc = await connect_fails(peer.url, MCPOAuth(authorize=Callback()))
    assert isinstance(exc, errors.ConfigError) and "client_id=" in str(exc)


# -- the I/O-free parts ---------------------------------------------------------------


def test_discovery_urls_follow_the_specification() -> None:
    assert resource_metadata_urls("https://ex.com/public/mcp", None) == [
        "https://ex.com/.well-known/oauth-protected-resource/public/mcp",
        "https://ex.com/.well-known/oauth-protected-resource",
    ]
    assert resource_metadata_urls("https://ex.com", "https://ex.com/prm") == [
        "https://ex.com/prm",
        "https://ex.com/.well-known/oauth-protected-resource",
    ]
    assert as_metadata_urls("https://auth.ex.com") == [
        "https://auth.ex.com/.well-known/oauth-authorization-server",
        "https://auth.ex.com/.well-known/openid-configuration",
    ]


def test_resource_scope_pkce_and_token_values() -> None:
    import base64
    import hashlib

    assert canonical_resource("HTTPS://MCP.Example.com/Mcp#frag") == "https://mcp.example.com/Mcp"
    assert resource_allowed("https://ex.com/a/mcp", "https://ex.com/a")
    assert resource_allowed("https://ex.com/mcp", "https://ex.com")
    assert not resource_allowed("https://ex.com/ab", "https://ex.com/a")
    assert not resource_allowed("https://ex.com/mcp", "https://ex.com:8443/mcp")
    assert union_scopes("a b", None, "b c") == "a b c" and union_scopes(None, "") is None
    pkce = PKCE.generate()
    digest = hashlib.sha256(pkce.verifier.encode()).digest()
    assert pkce.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert 43 <= len(pkce.verifier) <= 128 and pkce.verifier not in repr(pkce)
    old = OAuthTokens("at-1", refresh_token="rt-1", scope="a b", issuer="https://as")
    # A refresh answer may leave out the refresh token and the scope: both are kept.
    new = parse_token_response(
        {"access_token": "at-2", "token_type": "bearer"},
        what="t",
        requested_scope=None,
        issuer="https://as",
        previous=old,
    )
    assert (new.access_token, new.refresh_token, new.scope) == ("at-2", "rt-1", "a b")
    assert "at-2" not in repr(new) and "rt-1" not in repr(new)


def test_callback_forms() -> None:
    kwargs: dict[str, Any] = {"state": "s1", "issuer": "https://as", "iss_required": False}
    assert parse_callback("https://app/cb?code=c&state=s1", **kwargs) == "c"
    assert parse_callback("?code=c&state=s1", **kwargs) == "c"
    assert parse_callback(("c", "s1"), **kwargs) == "c"
    assert parse_callback({"code": "c", "state": "s1", "iss": "https://as/"}, **kwargs) == "c"
    with pytest.raises(errors.SecurityError):
        parse_callback("?code=c", **kwargs)  # no state at all
    with pytest.raises(errors.SecurityError):
        parse_callback("?code=c&state=s1", **{**kwargs, "iss_required": True})
    with pytest.raises(errors.ConfigError):
        parse_callback(42, **kwargs)


async def test_a_remote_servers_documents_may_not_point_at_this_machine() -> None:
    # A remote MCP server's metadata naming a loopback or private token endpoint
    # (SSRF): refused, though the same URL is fine for a server on this machine.
    for url in ("https://127.0.0.1/token", "https://10.0.0.5/token", "https://[::1]/t"):
        with pytest.raises(errors.SecurityError):
            await check_discovered_url(
                url, what="token_endpoint", allow_insecure=False, server_is_local=False
            )
        await check_discovered_url(
            url, what="token_endpoint", allow_insecure=False, server_is_local=True
        )
    with pytest.raises(errors.ProtocolError):
        await check_discovered_url(
            "https://x:99999/", what="token_endpoint", allow_insecure=False, server_is_local=True
        )


async def test_private_key_jwt_with_the_authorization_code(peer: Peer) -> None:
    import jwt

    from tests.agents.test_mcp_auth import PRIVATE_KEY, PUBLIC_KEY

    oauth = MCPOAuth(
        authorize=Callback(),
        client_id="signed",
        private_key=PRIVATE_KEY,
        private_key_algorithm="ES256",
        private_key_id="k1",
    )
    async with MCPClient(peer.url, auth=oauth) as mcp:
        await mcp.ping()
    (_, _, headers, body) = next(s for s in peer.state.seen if s[1] == "/token")
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert "authorization" not in headers and "client_secret" not in form
    claims = jwt.decode(
        form["client_assertion"], PUBLIC_KEY, algorithms=["ES256"], audience=peer.base
    )
    assert claims["iss"] == claims["sub"] == "signed" and claims["exp"] > claims["iat"]
    assert jwt.get_unverified_header(form["client_assertion"])["kid"] == "k1"


async def test_a_client_assertion_hook_gets_the_issuer_as_audience(peer: Peer) -> None:
    audiences: list[str] = []

    async def assertion(audience: str) -> str:
        audiences.append(audience)
        return "a.signed.jwt"

    oauth = MCPOAuth(client_id="workload", client_assertion=assertion)
    async with MCPClient(peer.url, auth=oauth) as mcp:
        await mcp.ping()
    assert audiences == [peer.base]
    (_, _, _, body) = next(s for s in peer.state.seen if s[1] == "/token")
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert form["grant_type"] == "client_credentials" and form["client_assertion"] == "a.signed.jwt"
    assert form["resource"] == peer.url


def test_a_key_that_does_not_fit_the_algorithm_is_a_config_error() -> None:
    from agenticaiframework.communication.agents.mcp.auth.core import sign_assertion
    from tests.agents.test_mcp_auth import PRIVATE_KEY  # an EC key

    with pytest.raises(errors.ConfigError, match="RS256") as info:
        sign_assertion("c", "https://as", PRIVATE_KEY, algorithm="RS256", kid=None)
    assert "PRIVATE KEY" not in str(info.value)


def test_private_key_jwt_configuration_errors() -> None:
    with pytest.raises(errors.ConfigError, match="private_key"):
        MCPOAuth(authorize=Callback(), client_id="x", token_endpoint_auth_method="private_key_jwt")
    with pytest.raises(errors.ConfigError, match="not both"):
        MCPOAuth(client_id="x", private_key="k", client_assertion=lambda aud: "j")


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_the_loopback_listener_answers_only_the_callback() -> None:
    async def browser(url: str) -> None:
        state = parse_qs(urlsplit(url).query)["state"][0]
        request = f"GET /callback?code=c1&state={state} HTTP/1.1\r\n\r\n".encode()
        assert (await _raw(callback.port, request)).startswith(b"HTTP/1.1 200")

    async with LoopbackCallback(max_request=2048, open_browser=browser) as callback:
        port = callback.port
        ok = b"GET /callback?code=c&state=s HTTP/1.1\r\nHost: x\r\n\r\n"
        assert (await _raw(port, ok)).startswith(b"HTTP/1.1 409")  # nobody waiting
        assert (await _raw(port, b"GET /favicon.ico HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404")
        assert (await _raw(port, b"GET /callback?code=c HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 400"
        )
        assert (await _raw(port, ok.replace(b"GET", b"POST"))).startswith(b"HTTP/1.1 405")
        assert (await _raw(port, b"GET /" + b"x" * 4096)).startswith(b"HTTP/1.1 431")
        assert (await _raw(port, b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400")
        got = await callback("https://as.example/authorize?state=s9")
        assert got == f"http://127.0.0.1:{port}/callback?code=c1&state=s9"
    assert "listening" not in repr(callback)


async def test_closing_the_listener_fails_a_waiting_call() -> None:
    opened = asyncio.Event()
    callback = LoopbackCallback(open_browser=lambda url: opened.set())
    waiting = asyncio.ensure_future(callback("https://as.example/authorize"))
    await opened.wait()
    await callback.close()
    with pytest.raises(errors.ClosedError):
        await waiting
