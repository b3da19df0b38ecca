"""Every snippet of the guide, as written, with only URLs and commands pointed at local servers.

Snippets that are module-level code in the guide are wrapped in a test
function; names a snippet assumes (``broker_url``, ``target``...) are defined
right before it. Assertions after a snippet check what its user would see.
"""

from __future__ import annotations


import pytest

from tests.conftest import HTTPServer

# ---------------------------------------------------------------- HTTP


async def test_http_basic_usage(http_server: HTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(20)  # INFO; the snippet imports logging itself
    base = http_server.url

    import logging

    logger = logging.getLogger(__name__)

    from agenticaiframework.communication import HTTPClient

    # Simple request
    async with HTTPClient() as client:
        response = await client.get(f"{base}/data")
        data = response.json()
        logger.info(data)

    assert data == {"items": [1, 2, 3], "source": "local"}
    assert "'source': 'local'" in caplog.text


async def test_http_request_methods(http_server: HTTPServer) -> None:
    from agenticaiframework.communication import HTTPClient

    base = http_server.url
    async with HTTPClient() as client:
        # GET request
        response = await client.get(f"{base}/users", params={"limit": 10, "offset": 0})

        # POST request with JSON body
        response = await client.post(
            f"{base}/users", json={"name": "Alice", "email": "alice@example.com"}
        )

        # PUT request
        response = await client.put(f"{base}/users/123", json={"name": "Alice Updated"})

        # DELETE request
        response = await client.delete(f"{base}/users/123")

        # PATCH request
        response = await client.patch(f"{base}/users/123", json={"status": "active"})

    assert response.json() == {
        "method": "PATCH",
        "params": {},
        "json": {"status": "active"},
        "id": "123",
    }
    assert http_server.state.hits == {
        "users:GET": 1,
        "users:POST": 1,
        "users:PUT": 1,
        "users:DELETE": 1,
        "users:PATCH": 1,
    }


async def test_http_configuration() -> None:
    from agenticaiframework.communication import HTTPClient, HTTPConfig

    config = HTTPConfig(
        # Timeouts
        timeout_seconds=30,
        connect_timeout=10,
        # Retry settings
        max_retries=3,
        retry_delay=1.0,
        retry_backoff=2.0,
        retry_on_status=[429, 500, 502, 503, 504],
        # Connection pooling
        pool_connections=10,
        pool_maxsize=100,
        # SSL/TLS
        verify_ssl=True,
        cert_path="/path/to/cert.pem",
    )

    client = HTTPClient(config=config)

    assert client.config.retry_config().retry_on_status == (429, 500, 502, 503, 504)
    await client.close()


async def test_http_auth_api_key(http_server: HTTPServer) -> None:
    from agenticaiframework.communication import HTTPClient

    client = HTTPClient(headers={"X-API-Key": "your-api-key"})

    async with client:
        seen = (await client.get(f"{http_server.url}/echo")).json()["headers"]
    assert seen["x-api-key"] == "your-api-key"


async def test_http_auth_bearer(http_server: HTTPServer) -> None:
    from agenticaiframework.communication import HTTPClient

    client = HTTPClient(auth={"type": "bearer", "token": "your-jwt-token"})

    async with client:
        seen = (await client.get(f"{http_server.url}/echo")).json()["headers"]
    assert seen["authorization"] == "Bearer your-jwt-token"


async def test_http_auth_basic(http_server: HTTPServer) -> None:
    from agenticaiframework.communication import HTTPClient

    client = HTTPClient(auth={"type": "basic", "username": "user", "password": "pass"})

    async with client:
        seen = (await client.get(f"{http_server.url}/echo")).json()["headers"]
    assert seen["authorization"] == "Basic dXNlcjpwYXNz"


async def test_http_auth_oauth2(http_server: HTTPServer) -> None:
    http_server.state.client_id = "your-client-id"
    http_server.state.client_secret = "your-secret"
    token_url = f"{http_server.url}/token"

    from agenticaiframework.communication import HTTPClient, OAuth2Auth

    auth = OAuth2Auth(client_id="your-client-id", client_secret="your-secret", token_url=token_url)

    client = HTTPClient(auth=auth)

    async with client:
        response = await client.get(f"{http_server.url}/protected")
    assert response.json() == {"token": "tok-1"}


@pytest.mark.parametrize("path", ["/data", "/nope", "/status/500"])
async def test_http_response_handling(
    http_server: HTTPServer, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(20)  # INFO; the snippet imports logging itself
    from agenticaiframework.communication import HTTPClient

    url = f"{http_server.url}{path}"

    import logging

    logger = logging.getLogger(__name__)

    async with HTTPClient(max_retries=0) as client:
        response = await client.get(url)

        # Check status
        if response.is_success:
            data = response.json()
        elif response.status_code == 404:
            logger.info("Resource not found")
        else:
            logger.info(f"Error: {response.status_code}")

        # Access headers
        content_type = response.headers.get("content-type")

        # Get raw content
        text = response.text
        binary = response.content

    if path == "/data":
        assert data["items"] == [1, 2, 3] and content_type == "application/json"
    elif path == "/nope":
        assert "Resource not found" in caplog.text
    else:
        assert "Error: 500" in caplog.text and text == "status 500" and binary == b"status 500"
