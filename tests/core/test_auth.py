"""Auth objects and OAuth2 client credentials against a real token endpoint."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agenticaiframework.communication import (
    APIKeyAuth,
    AuthenticationError,
    BasicAuth,
    BearerAuth,
    ConfigError,
    HTTPClient,
    OAuth2Auth,
    ProtocolError,
    SecurityError,
)
from agenticaiframework.communication.core.security import RedactingFilter
from tests.conftest import HTTPServer
from tests.servers.ports import free_port


def oauth(server: HTTPServer, **kwargs: object) -> OAuth2Auth:
    return OAuth2Auth(
        client_id="client-1",
        client_secret="s3cret-value",
        token_url=f"{server.url}/token",
        **kwargs,  # type: ignore[arg-type]
    )


async def test_bearer_basic_and_api_key_dicts(http_server: HTTPServer) -> None:
    async with HTTPClient(http_server.url, auth={"type": "bearer", "token": "your-jwt-token"}) as c:
        assert (await c.get("/echo")).json()["headers"]["authorization"] == "Bearer your-jwt-token"
    async with HTTPClient(
        http_server.url, auth={"type": "basic", "username": "user", "password": "pass"}
    ) as c:
        assert (await c.get("/echo")).json()["headers"]["authorization"] == "Basic dXNlcjpwYXNz"
    async with HTTPClient(http_server.url, auth=APIKeyAuth("k1", name="X-Key")) as c:
        assert (await c.get("/echo")).json()["headers"]["x-key"] == "k1"
    async with HTTPClient(
        http_server.url, auth=APIKeyAuth("k2", name="api_key", location="query")
    ) as c:
        assert (await c.get("/echo", params={"a": 1})).json()["params"] == {
            "a": "1",
            "api_key": "k2",
        }


async def test_auth_headers_for_other_transports() -> None:
    assert await BearerAuth("t").headers() == {"Authorization": "Bearer t"}
    assert await BasicAuth("user", "pass").headers() == {"Authorization": "Basic dXNlcjpwYXNz"}
    assert await APIKeyAuth("k").headers() == {"X-API-Key": "k"}


async def test_oauth2_one_token_for_50_concurrent_requests(http_server: HTTPServer) -> None:
    http_server.state.token_delay = 0.05
    async with HTTPClient(http_server.url, auth=oauth(http_server)) as client:
        responses = await asyncio.gather(*(client.get("/protected") for _ in range(50)))
    assert all(r.status_code == 200 for r in responses)
    assert http_server.state.token_requests == 1
    assert {r.json()["token"] for r in responses} == {"tok-1"}


async def test_oauth2_token_shared_between_clients(http_server: HTTPServer) -> None:
    async with (
        HTTPClient(http_server.url, auth=oauth(http_server)) as a,
        HTTPClient(http_server.url, auth=oauth(http_server)) as b,
    ):
        await a.get("/protected")
        await b.get("/protected")
    assert http_server.state.token_requests == 1


async def test_oauth2_refetched_after_expiry(http_server: HTTPServer) -> None:
    http_server.state.token_expires_in = 0.3
    async with HTTPClient(http_server.url, auth=oauth(http_server, refresh_margin=0.1)) as client:
        first = (await client.get("/protected")).json()["token"]
        await asyncio.sleep(0.35)
        second = (await client.get("/protected")).json()["token"]
    assert first != second and http_server.state.token_requests == 2


async def test_oauth2_refreshed_once_after_401(http_server: HTTPServer) -> None:
    async with HTTPClient(http_server.url, auth=oauth(http_server)) as client:
        assert (await client.get("/protected")).json()["token"] == "tok-1"
        http_server.state.revoked.add("tok-1")
        r = await client.get("/protected")
        assert r.status_code == 200 and r.json()["token"] == "tok-2"
        assert http_server.state.token_requests == 2
        # A server that refuses every token: exactly one refresh, then the 401 is returned.
        http_server.state.revoked.add("tok-2")
        http_server.state.revoked.add("tok-3")
        before = http_server.state.hits["protected"]
        r = await client.get("/protected")
        assert r.status_code == 401
        assert http_server.state.hits["protected"] - before == 2


async def test_oauth2_bad_credentials(http_server: HTTPServer) -> None:
    auth = OAuth2Auth(
        client_id="client-1", client_secret="wrong", token_url=f"{http_server.url}/token"
    )
    async with HTTPClient(http_server.url, auth=auth) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get("/protected")
    assert info.value.code == "ERR_AUTH" and "401" in str(info.value)
    assert "wrong" not in str(info.value)


def test_oauth2_token_url_checked_by_policy() -> None:
    with pytest.raises(SecurityError):
        OAuth2Auth(client_id="a", client_secret="b", token_url="http://auth.example.com/token")
    OAuth2Auth(client_id="a", client_secret="b", token_url="https://auth.example.com/token")


async def test_token_never_in_repr_or_logs(
    http_server: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = oauth(http_server)
    async with HTTPClient(http_server.url, auth=auth) as client:
        await client.get("/protected")
        http_server.state.revoked.add("tok-1")
        await client.get("/protected")
    text = (
        repr(auth)
        + str(auth)
        + repr(BearerAuth("tok-1"))
        + repr(BasicAuth("u", "pw-x"))
        + caplog.text
    )
    text += repr(APIKeyAuth("apikey-x"))
    for secret in ("tok-1", "tok-2", "s3cret-value", "pw-x", "apikey-x"):
        assert secret not in text


# -- item 7: the token cache keys on everything that changes the token ------------------------


async def test_oauth2_cache_never_serves_another_secret_or_audience(
    http_server: HTTPServer,
) -> None:
    state = http_server.state
    async with HTTPClient(http_server.url, auth=oauth(http_server, audience="api-a")) as right:
        assert (await right.get("/protected")).json()["token"] == "tok-1"
    assert state.token_requests == 1
    wrong = OAuth2Auth(
        client_id="client-1",
        client_secret="wrong-secret",
        token_url=f"{http_server.url}/token",
        audience="api-b",
    )
    async with HTTPClient(http_server.url, auth=wrong) as client:
        with pytest.raises(AuthenticationError, match="401"):
            await client.get("/protected")
    assert state.token_requests == 2  # the endpoint was asked, and refused
    # Same secret, same audience: still shared. Same secret, another audience: a new token.
    assert await oauth(http_server, audience="api-a").token() == "tok-1"
    assert state.token_requests == 2
    assert await oauth(http_server, audience="api-b").token() == "tok-2"
    assert await oauth(http_server, audience="api-a", resource="https://r.example").token() == (
        "tok-3"
    )
    assert await oauth(http_server, audience="api-a", extra_params={"tenant": "t2"}).token() == (
        "tok-4"
    )
    assert state.token_requests == 5
    assert state.token_forms[-2]["resource"] == "https://r.example"
    assert state.token_forms[-1]["tenant"] == "t2"
    # The cache holds a keyed fingerprint of the secret, never the secret itself.
    from agenticaiframework.communication.core import auth as auth_module

    assert "s3cret-value" not in repr(list(auth_module._CACHE.tokens))
    assert "wrong-secret" not in repr(list(auth_module._CACHE.tokens))


def test_oauth2_extra_params_cannot_override_the_grant() -> None:
    with pytest.raises(ConfigError, match="extra_params"):
        OAuth2Auth("a", "b", "https://auth.example.com/t", extra_params={"grant_type": "password"})
    with pytest.raises(ConfigError, match="extra_params"):
        OAuth2Auth("a", "b", "https://auth.example.com/t", extra_params={"x": 1})  # type: ignore[dict-item]


# -- item 18: a bad expires_in is our error, naming the field ----------------------------------


@pytest.mark.parametrize("expires_in", ["soon", [3600], {"s": 1}, True, -5, "nan"])
async def test_oauth2_bad_expires_in_is_a_protocol_error(
    http_server: HTTPServer, expires_in: object
) -> None:
    http_server.state.token_expires_in = expires_in
    with pytest.raises(ProtocolError, match="expires_in") as info:
        await oauth(http_server).token()
    assert info.value.code == "ERR_PROTOCOL"


async def test_oauth2_numeric_string_expires_in_is_accepted(http_server: HTTPServer) -> None:
    http_server.state.token_expires_in = "120"
    assert await oauth(http_server).token() == "tok-1"
    http_server.state.token_expires_in = None  # absent: the documented default of one hour
    assert await oauth(http_server, audience="x").token() == "tok-2"


# -- item 5: the token URL's secrets never printed ----------------------------------------------


async def test_oauth2_repr_errors_and_logs_hide_token_url_secrets(
    http_server: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, RedactingFilter)]:
            logger.removeFilter(f)
    secret_url = http_server.url.replace("http://", "http://alice:PW-SECRET@")
    refused = OAuth2Auth(
        client_id="client-1",
        client_secret="s3cret-value",
        token_url=f"http://bob:PW-SECRET@127.0.0.1:{free_port()}/token?api_key=KEY-SECRET",
    )
    with pytest.raises(AuthenticationError) as unreachable:
        await refused.token()
    denied = OAuth2Auth(
        client_id="client-1",
        client_secret="wrong",
        token_url=f"{secret_url}/token?api_key=KEY-SECRET&sig=SIG-SECRET",
        client_auth="body",
    )
    with pytest.raises(AuthenticationError) as refusal:
        await denied.token()
    assert "fetching OAuth2 token from" in caplog.text and "HTTP Request: POST" in caplog.text
    text = " ".join(
        [repr(refused), str(refused), repr(denied), str(unreachable.value), str(refusal.value)]
    )
    assert "401" in text and "127.0.0.1" in text
    for secret in ("PW-SECRET", "KEY-SECRET", "SIG-SECRET", "s3cret-value"):
        assert secret not in text and secret not in caplog.text, secret
