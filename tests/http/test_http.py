"""HTTPClient against a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import pytest

from agenticaiframework.communication import (
    ClosedError,
    ConfigError,
    ConnectionError,
    HTTPClient,
    HTTPConfig,
    HTTPStatusError,
    ProtocolError,
    SecurityError,
    TimeoutError,
)
from tests.conftest import HTTPServer
from tests.servers.ports import free_port
from tests.servers.proxy import FaultProxy

FAST = {"retry_delay": 0.01, "max_retry_delay": 0.2}


async def test_each_method_round_trips(http_server: HTTPServer) -> None:
    async with HTTPClient(http_server.url) as client:
        r = await client.get("/users", params={"limit": 10, "offset": 0})
        assert r.is_success and r.json()["params"] == {"limit": "10", "offset": "0"}
        r = await client.post("/users", json={"name": "Alice"})
        assert r.status_code == 201 and r.json()["json"] == {"name": "Alice"}
        r = await client.put("/users/123", json={"name": "Alice Updated"})
        assert r.json() == {
            "method": "PUT",
            "params": {},
            "json": {"name": "Alice Updated"},
            "id": "123",
        }
        r = await client.patch("/users/123", json={"status": "active"})
        assert r.json()["method"] == "PATCH"
        r = await client.delete("/users/123")
        assert r.json()["method"] == "DELETE"
        r = await client.head("/echo")
        assert r.status_code == 200 and r.content == b""
        r = await client.options("/echo")
        assert r.json()["method"] == "OPTIONS"
        r = await client.post("/echo", data={"a": "1"})
        assert r.json()["body"] == "a=1"
        r = await client.post("/echo", content=b"raw-bytes", headers={"X-Trace": "t1"})
        body = r.json()
        assert body["body"] == "raw-bytes" and body["headers"]["x-trace"] == "t1"
    assert client.stats.sent == 9 and client.stats.received == 9


async def test_response_fields(http_server: HTTPServer) -> None:
    async with HTTPClient() as client:
        r = await client.get(f"{http_server.url}/data")
        assert r.status_code == 200
        assert r.headers.get("content-type") == "application/json"
        assert r.json() == {"items": [1, 2, 3], "source": "local"}
        assert r.text.startswith("{") and isinstance(r.content, bytes)
        assert r.raw.http_version == "HTTP/1.1"
        missing = await client.get(f"{http_server.url}/nope")
        assert missing.status_code == 404 and not missing.is_success
        with pytest.raises(HTTPStatusError) as info:
            missing.raise_for_status()
        assert info.value.status_code == 404 and info.value.code == "ERR_HTTP_STATUS"
        text = await client.get(f"{http_server.url}/status/200")
        with pytest.raises(ProtocolError, match="not JSON"):
            text.json()


async def test_default_headers_sent(http_server: HTTPServer) -> None:
    async with HTTPClient(http_server.url, headers={"X-API-Key": "your-api-key"}) as client:
        r = await client.get("/echo")
    assert r.json()["headers"]["x-api-key"] == "your-api-key"


async def test_503_retried_with_backoff_until_success(http_server: HTTPServer) -> None:
    http_server.state.flaky_failures = 2
    async with HTTPClient(http_server.url, **FAST) as client:
        r = await client.get("/flaky")
    assert r.status_code == 200 and r.json()["attempts"] == 3


async def test_retries_stop_at_max_retries(http_server: HTTPServer) -> None:
    http_server.state.flaky_failures = 100
    async with HTTPClient(http_server.url, max_retries=2, **FAST) as client:
        r = await client.get("/flaky")
    assert r.status_code == 503
    assert http_server.state.hits["flaky:GET"] == 3


async def test_backoff_grows(http_server: HTTPServer) -> None:
    http_server.state.flaky_failures = 100
    config = HTTPConfig(max_retries=3, retry_delay=0.05, retry_backoff=2.0)
    start = time.monotonic()
    async with HTTPClient(http_server.url, config=config) as client:
        await client.get("/flaky")
    # 0.05 + 0.1 + 0.2 = 0.35 s (+/- 10% jitter each)
    assert 0.3 <= time.monotonic() - start < 1.5


async def test_retry_after_is_honoured(http_server: HTTPServer) -> None:
    http_server.state.flaky_failures = 1
    http_server.state.retry_after = "1"
    start = time.monotonic()
    async with HTTPClient(http_server.url, retry_delay=0.01) as client:
        r = await client.get("/flaky")
    assert r.status_code == 200
    assert time.monotonic() - start >= 0.95


async def test_post_not_retried_by_default(http_server: HTTPServer) -> None:
    http_server.state.flaky_failures = 1
    async with HTTPClient(http_server.url, **FAST) as client:
        r = await client.post("/flaky")
        assert r.status_code == 503
        assert http_server.state.hits["flaky:POST"] == 1
        r = await client.post("/flaky", retry=True)
        assert r.status_code == 200
    async with HTTPClient(http_server.url, retry_non_idempotent=True, **FAST) as client:
        http_server.state.hits.clear()
        r = await client.post("/flaky")
        assert r.status_code == 200 and http_server.state.hits["flaky:POST"] == 2


async def test_refused_connection_is_our_error_after_retries() -> None:
    port = free_port()
    async with HTTPClient(f"http://127.0.0.1:{port}", max_retries=2, **FAST) as client:
        with pytest.raises(ConnectionError) as info:
            await client.get("/data")
    assert info.value.code == "ERR_CONNECTION"
    assert isinstance(info.value.__cause__, Exception)
    assert client.stats.errors == 3


async def test_connection_refused_then_server_appears(http_server: HTTPServer) -> None:
    port = http_server.url.rsplit(":", 1)[1]
    async with FaultProxy(int(port)) as proxy:
        proxy.refuse = True

        async def heal() -> None:
            await asyncio.sleep(0.15)
            proxy.refuse = False

        healer = asyncio.create_task(heal())
        async with HTTPClient(
            f"http://127.0.0.1:{proxy.port}", max_retries=6, retry_delay=0.05, retry_backoff=1.5
        ) as client:
            r = await client.get("/data")
        await healer
    assert r.json()["source"] == "local"


async def test_timeout_is_our_error(http_server: HTTPServer) -> None:
    async with HTTPClient(http_server.url, timeout_seconds=0.2, max_retries=0) as client:
        with pytest.raises(TimeoutError) as info:
            await client.get("/slow", params={"s": 2})
        assert info.value.code == "ERR_TIMEOUT"
        assert isinstance(info.value, builtins_timeout())
        r = await client.get("/slow", params={"s": 0.01}, timeout=5)
        assert r.text == "late"


def builtins_timeout() -> type[BaseException]:
    import builtins

    return builtins.TimeoutError


async def test_stalled_peer_times_out_through_proxy(http_server: HTTPServer) -> None:
    port = int(http_server.url.rsplit(":", 1)[1])
    async with FaultProxy(port) as proxy:
        proxy.stall = True
        async with HTTPClient(
            f"http://127.0.0.1:{proxy.port}", timeout_seconds=0.2, max_retries=1, **FAST
        ) as client:
            with pytest.raises(TimeoutError):
                await client.get("/data")


async def test_plain_http_to_remote_host_refused_before_connecting() -> None:
    with pytest.raises(SecurityError) as info:
        HTTPClient("http://api.example.com")
    assert info.value.code == "ERR_SECURITY"
    async with HTTPClient() as client:
        with pytest.raises(SecurityError):
            await client.get("http://10.1.2.3/data")
        with pytest.raises(SecurityError):
            await client.get("http://localhost.evil.com/data")
    assert client.stats.sent == 0


async def test_allow_insecure_opt_out_lets_the_request_through(http_server: HTTPServer) -> None:
    # The policy is skipped; the request reaches our loopback server through 127.0.0.1.
    async with HTTPClient(allow_insecure=True) as client:
        r = await client.get(f"{http_server.url}/data")
    assert r.is_success


async def test_redirect_hops_are_checked(http_server: HTTPServer) -> None:
    http_server.state.redirect_target = "http://example.com/steal"
    async with HTTPClient(http_server.url) as client:
        with pytest.raises(SecurityError):
            await client.get("/redirect")
        r = await client.get("/redirect-local")
        assert r.json()["method"] == "GET"
        r = await client.get("/redirect", follow_redirects=False)
        assert r.status_code == 302


async def test_credentials_dropped_on_cross_origin_redirect(http_server: HTTPServer) -> None:
    other_origin = http_server.url.replace("127.0.0.1", "localhost")
    http_server.state.redirect_target = f"{other_origin}/echo"
    async with HTTPClient(
        http_server.url,
        headers={"X-API-Key": "k-123"},
        auth={"type": "bearer", "token": "jwt-abc"},
    ) as client:
        same = await client.get("/redirect-local")
        assert same.json()["headers"]["authorization"] == "Bearer jwt-abc"
        assert same.json()["headers"]["x-api-key"] == "k-123"
        r = await client.get("/redirect")
    seen = r.json()["headers"]
    assert "authorization" not in seen and "x-api-key" not in seen


async def test_too_many_redirects(http_server: HTTPServer) -> None:
    http_server.state.redirect_target = "/redirect"
    async with HTTPClient(http_server.url, max_redirects=3) as client:
        with pytest.raises(ProtocolError, match="too many redirects"):
            await client.get("/redirect")


async def test_stream_large_body(http_server: HTTPServer) -> None:
    async with HTTPClient(http_server.url) as client:
        total = 0
        async with client.stream("GET", "/big", params={"n": 3_000_000}) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                total += len(chunk)
    assert total == 3_000_000


async def test_explicit_connect_close_and_closed_state(http_server: HTTPServer) -> None:
    client = HTTPClient(config=HTTPConfig(base_url=http_server.url))
    await client.connect()
    await client.connect()
    assert (await client.get("/data")).is_success
    await client.close()
    await client.close()
    with pytest.raises(ClosedError) as info:
        await client.get("/data")
    assert info.value.code == "ERR_CLOSED"
    with pytest.raises(ClosedError):
        await client.connect()


async def test_lazy_connect_without_async_with(http_server: HTTPServer) -> None:
    client = HTTPClient(http_server.url)
    try:
        assert (await client.get("/data")).json()["items"] == [1, 2, 3]
    finally:
        await client.close()


async def test_close_leaves_no_open_connection(http_server: HTTPServer) -> None:
    port = int(http_server.url.rsplit(":", 1)[1])
    async with FaultProxy(port) as proxy:
        async with HTTPClient(f"http://127.0.0.1:{proxy.port}") as client:
            await asyncio.gather(*(client.get("/data") for _ in range(5)))
            assert proxy.connections >= 1
        for _ in range(50):
            if proxy.connections == 0:
                break
            await asyncio.sleep(0.01)
        assert proxy.connections == 0
    gc.collect()


async def test_health_check(http_server: HTTPServer) -> None:
    async with HTTPClient(http_server.url) as client:
        status = await client.health_check("/health")
        assert status.is_healthy and status.latency_ms > 0
        assert "200" in status.detail
    async with HTTPClient(f"http://127.0.0.1:{free_port()}") as dead:
        status = await dead.health_check(timeout=1)
    assert not status.is_healthy and "cannot reach" in status.detail


async def test_health_check_wants_a_2xx_or_3xx_from_the_health_path(
    http_server: HTTPServer,
) -> None:
    # A base URL answering 404 is not a healthy service: the probe says which status it got.
    async with HTTPClient(http_server.url + "/status/404") as missing:
        status = await missing.health_check()
    assert not status.is_healthy and "404" in status.detail
    async with HTTPClient(http_server.url, health_path="/status/401") as refused:
        status = await refused.health_check()
    assert not status.is_healthy and "401" in status.detail
    async with HTTPClient(http_server.url, health_path="/health") as client:
        status = await client.health_check()
    assert status.is_healthy and "/health" in status.detail, status


async def test_bad_config_values_name_the_field() -> None:
    with pytest.raises(ValueError, match="timeout_seconds"):
        HTTPConfig(timeout_seconds=-1)
    with pytest.raises(ConfigError, match="max_retries"):
        HTTPClient(max_retries="3")
    with pytest.raises(ConfigError, match="retry_on_status"):
        HTTPConfig(retry_on_status=[700])
    with pytest.raises(ConfigError, match="no_such_field"):
        HTTPClient(no_such_field=1)
    with pytest.raises(ConfigError, match=r"auth\.type"):
        HTTPClient(auth={"type": "magic"})


async def test_secrets_never_in_repr_or_logs(
    http_server: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agenticaiframework")
    http_server.state.flaky_failures = 1
    config = HTTPConfig(
        headers={"X-API-Key": "key-SECRET-1"},
        auth={"type": "basic", "username": "u", "password": "pw-SECRET-2"},
        **FAST,
    )
    client = HTTPClient(http_server.url, config=config)
    async with client:
        await client.get("/flaky")
    text = repr(config) + str(config) + repr(client) + caplog.text
    assert "SECRET" not in text
    assert "retrying GET" in caplog.text
