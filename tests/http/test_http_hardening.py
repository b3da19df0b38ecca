"""HTTPClient against hostile input: secrets kept out of every output, bad input as our errors,
credentials dropped on a cross-origin redirect, JSON nested too deeply."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from agenticaiframework.communication import (
    CommunicationError,
    ConfigError,
    ConnectionError,
    ConnectionManager,
    HTTPClient,
    HTTPConfig,
    HTTPStatusError,
    ProtocolError,
)
from agenticaiframework.communication.core.health import HealthStatus, run_probe
from agenticaiframework.communication.core.lifecycle import ClientState
from agenticaiframework.communication.core.security import RedactingFilter
from tests.conftest import HTTPServer
from tests.servers.http_app import make_app
from tests.servers.ports import free_port
from tests.servers.uvicorn_server import serve_asgi

FAST = {"retry_delay": 0.01, "max_retry_delay": 0.05}
SECRETS = ("PW-SECRET", "KEY-SECRET", "TOK-SECRET", "SIG-SECRET")
QUERY = "api_key=KEY-SECRET&token=TOK-SECRET&sig=SIG-SECRET&page=2"


def with_secrets(url: str) -> str:
    """``url`` (``http://127.0.0.1:PORT``) with a password in it."""
    return url.replace("http://", "http://alice:PW-SECRET@")


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text), (secret, text)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger at DEBUG, and no redaction filter left over from an earlier test."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "httpcore.http11", "httpcore.connection"):
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, RedactingFilter)]:
            logger.removeFilter(f)
    return caplog


@pytest.fixture
async def other_origin() -> AsyncIterator[HTTPServer]:
    """A second test app on another loopback port: another origin."""
    app, state = make_app()
    async with serve_asgi(app) as url:
        yield HTTPServer(url, state)


# -- item 5: secrets from URLs never printed ---------------------------------------------------


async def test_connection_error_and_retry_log_hide_url_secrets(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    url = with_secrets(f"http://127.0.0.1:{free_port()}") + f"/data?{QUERY}"
    async with HTTPClient(max_retries=1, **FAST) as client:
        with pytest.raises(ConnectionError) as info:
            await client.get(url)
    assert "retrying GET" in debug_logs.text and "alice:***@" in debug_logs.text
    assert "alice:***@" in str(info.value) and "page=2" in str(info.value)
    assert_no_secret(str(info.value), repr(info.value), debug_logs.text)


async def test_httpx_request_log_line_is_redacted(
    http_server: HTTPServer, debug_logs: pytest.LogCaptureFixture
) -> None:
    async with HTTPClient() as client:
        await client.get(with_secrets(http_server.url) + f"/data?{QUERY}")
    assert "HTTP Request: GET" in debug_logs.text
    assert_no_secret(debug_logs.text)


async def test_status_error_and_response_repr_hide_url_secrets(http_server: HTTPServer) -> None:
    async with HTTPClient() as client:
        response = await client.get(with_secrets(http_server.url) + f"/status/404?{QUERY}")
        with pytest.raises(HTTPStatusError) as info:
            response.raise_for_status()
        text = await client.get(with_secrets(http_server.url) + f"/status/200?{QUERY}")
        with pytest.raises(ProtocolError) as not_json:
            text.json()
    assert "404" in str(info.value)
    assert_no_secret(str(info.value), repr(response), response, str(not_json.value))


async def test_too_many_redirects_error_hides_url_secrets(http_server: HTTPServer) -> None:
    http_server.state.redirect_target = f"/redirect?{QUERY}"
    async with HTTPClient(max_redirects=2) as client:
        with pytest.raises(ProtocolError, match="too many redirects") as info:
            await client.get(with_secrets(http_server.url) + f"/redirect?{QUERY}")
    assert_no_secret(str(info.value))


async def test_health_details_hide_url_secrets(
    http_server: HTTPServer, debug_logs: pytest.LogCaptureFixture
) -> None:
    async with HTTPClient(with_secrets(http_server.url) + f"/health?{QUERY}") as client:
        healthy = await client.health_check()
    async with HTTPClient(with_secrets(f"http://127.0.0.1:{free_port()}/?{QUERY}")) as dead:
        unhealthy = await dead.health_check(timeout=2)
    assert healthy.is_healthy and "200" in healthy.detail
    assert not unhealthy.is_healthy and "cannot reach" in unhealthy.detail
    assert_no_secret(healthy.detail, unhealthy.detail, healthy, unhealthy, debug_logs.text)


def test_config_and_client_repr_hide_secrets() -> None:
    config = HTTPConfig(
        base_url=f"https://alice:PW-SECRET@api.example.com/v1?{QUERY}",
        headers={"Private-Token": "TOK-SECRET", "X-Tenant-Pass": "KEY-SECRET", "X-Trace": "t1"},
        credential_headers=("X-Tenant-Pass",),
    )
    client = HTTPClient(config=config)
    text = repr(config) + str(config) + repr(client) + str(client)
    assert "api.example.com" in text and "X-Trace" in text and "t1" in text
    assert_no_secret(text)


# -- item 18: bad input gets our errors, naming the field ---------------------------------------


@pytest.mark.parametrize("url", ["http://[::1", "http://[::1]:1x"])
def test_unparsable_base_url_is_a_config_error_naming_base_url(url: str) -> None:
    with pytest.raises(ConfigError, match="base_url") as info:
        HTTPClient(url)
    assert info.value.code == "ERR_CONFIG"


def test_base_url_port_out_of_range_is_a_config_error_not_an_exception_group() -> None:
    with pytest.raises(ConfigError, match="base_url") as info:
        HTTPClient("http://127.0.0.1:99999")
    assert "65535" in str(info.value)


@pytest.mark.parametrize("char", ["\r", "\n", "\t"])
async def test_base_url_with_control_characters_is_a_config_error(char: str) -> None:
    hits = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hits
        hits += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConfigError, match="base_url") as info:
            async with HTTPClient(f"http://127.0.0.1:{port}/v1{char}x") as client:
                await client.get("/data")
        async with HTTPClient() as client:
            with pytest.raises(ConfigError, match="url"):
                await client.get(f"http://127.0.0.1:{port}/v1{char}x")
    finally:
        server.close()
        await server.wait_closed()
    assert hits == 0, "a connection was made"
    assert "control character" in str(info.value)


async def test_non_ascii_header_values_are_config_errors_naming_the_header(
    http_server: HTTPServer,
) -> None:
    with pytest.raises(ConfigError, match=r"headers: .*'X-Name'"):
        HTTPClient(http_server.url, headers={"X-Name": "Zoë"})
    async with HTTPClient(http_server.url) as client:
        with pytest.raises(ConfigError, match=r"headers: .*'X-Name'"):
            await client.get("/echo", headers={"X-Name": "Zoë"})
        with pytest.raises(ConfigError, match=r"headers: .*name"):
            await client.get("/echo", headers={"X-Zoë": "a"})
        # Still usable: nothing was sent for the refused requests.
        assert (await client.get("/echo", headers={"X-Name": "Zoe"})).is_success
    assert http_server.state.hits["echo"] == 1


@pytest.mark.parametrize("value", ["a\0b", "a\r\nInjected: 1", "a\nb", "a\x7fb"])
async def test_control_characters_in_header_values_are_config_errors(
    http_server: HTTPServer, value: str
) -> None:
    async with HTTPClient(http_server.url) as client:
        with pytest.raises(ConfigError, match=r"headers: .*'X-A'") as info:
            await client.get("/echo", headers={"X-A": value})
    assert type(info.value) is ConfigError and info.value.code == "ERR_CONFIG"
    assert http_server.state.hits.get("echo", 0) == 0
    with pytest.raises(ConfigError, match=r"headers: .*'X-A'"):
        HTTPConfig(headers={"X-A": value})


# -- item 15: JSON nested too deeply -------------------------------------------------------------


async def test_json_nested_too_deeply_is_a_protocol_error(http_server: HTTPServer) -> None:
    async with HTTPClient(http_server.url) as client:
        response = await client.get("/deep", params={"n": 100_000})
        with pytest.raises(ProtocolError, match="not JSON") as info:
            response.json()
        assert (await client.get("/deep", params={"n": 3})).json() == [[[]]]
        for enc in ("utf-8", "utf-8-sig", "utf-16", "utf-32"):
            assert (await client.get("/encoded", params={"enc": enc})).json() == {"name": "Zoë"}
    assert isinstance(info.value, CommunicationError) and info.value.code == "ERR_PROTOCOL"


# -- item 21: credential-looking configured headers dropped cross-origin -----------------------


async def test_configured_credential_headers_dropped_on_cross_origin_redirect(
    http_server: HTTPServer, other_origin: HTTPServer
) -> None:
    assert other_origin.url != http_server.url
    headers = {
        "Private-Token": "pt-1",
        "X-Goog-Api-Key": "gk-1",
        "X-Auth-Token": "at-1",
        "X-Amz-Security-Token": "amz-1",
        "X-Tenant-Pass": "custom-1",
        "X-Trace": "trace-1",
    }
    http_server.state.redirect_target = f"{other_origin.url}/echo"
    async with HTTPClient(
        http_server.url, headers=headers, credential_headers=("x-tenant-pass",)
    ) as client:
        same = (await client.get("/redirect-local")).json()["headers"]
        moved = (await client.get("/redirect", headers={"X-Call-Token": "ct-1"})).json()["headers"]
    for name, value in headers.items():
        assert same[name.lower()] == value
    assert moved["x-trace"] == "trace-1"
    for name in [*headers, "X-Call-Token"]:
        if name != "X-Trace":
            assert name.lower() not in moved, name
    assert other_origin.state.hits["echo"] == 1


def test_credential_headers_must_be_names() -> None:
    with pytest.raises(ConfigError, match="credential_headers"):
        HTTPConfig(credential_headers="X-Tenant-Pass")
    with pytest.raises(ConfigError, match="credential_headers"):
        HTTPConfig(credential_headers=("X Bad",))
    assert HTTPConfig(credential_headers=["X-A"]).credential_headers == ("X-A",)


async def test_every_health_detail_is_redacted_whatever_the_probe_says() -> None:
    async def failing() -> str:
        raise RuntimeError("cannot reach mqtt://bob:PW-SECRET@broker.example/?token=TOK-SECRET")

    async def passing() -> str:
        return "GET https://x.example/?sig=SIG-SECRET: 200 (Bearer KEY-SECRET-123)"

    down = await run_probe(failing, timeout=1, what="mqtt")
    up = await run_probe(passing, timeout=1, what="http")
    assert not down.is_healthy and "broker.example" in down.detail
    assert up.is_healthy and "x.example" in up.detail
    assert_no_secret(down.detail, up.detail)


class _LeakyClient:
    """A client of the user's own whose errors and details quote a URL with secrets."""

    def __init__(self, fail_connect: bool) -> None:
        self.fail_connect = fail_connect
        self._state = ClientState.UNOPENED

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def is_closed(self) -> bool:
        return self._state is ClientState.CLOSED

    async def connect(self) -> None:
        if self.fail_connect:
            raise RuntimeError("cannot reach https://bob:PW-SECRET@x.example/?token=TOK-SECRET")
        self._state = ClientState.OPEN

    async def close(self) -> None:
        self._state = ClientState.CLOSED

    async def health_check(self) -> HealthStatus:
        return HealthStatus(True, 1.0, "GET https://x.example/?api_key=KEY-SECRET: 200")


async def test_manager_health_details_and_connect_logs_are_redacted(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    manager = ConnectionManager()
    manager.register("down", _LeakyClient(fail_connect=True))
    manager.register("up", _LeakyClient(fail_connect=False))
    async with manager:
        verdicts = await manager.health_check(timeout=2)
    assert "failed to connect" in debug_logs.text
    assert not verdicts["down"].is_healthy and "x.example" in verdicts["down"].detail
    assert verdicts["up"].is_healthy and "x.example" in verdicts["up"].detail
    assert_no_secret(verdicts["down"].detail, verdicts["up"].detail, debug_logs.text)
