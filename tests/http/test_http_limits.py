"""HTTP response bodies are bounded by ``max_response_size``, counted after decompression."""

from __future__ import annotations

import tracemalloc

import pytest

from agenticaiframework.communication import (
    ConfigError,
    HTTPClient,
    HTTPConfig,
    MessageTooLargeError,
)
from tests.conftest import HTTPServer
from tests.servers.hostile_http import HostileHTTPServer

LIMIT = 1024 * 1024


async def test_gzip_bomb_refused_after_decompression_with_bounded_memory() -> None:
    async with HostileHTTPServer() as server:
        async with HTTPClient(server.url, max_response_size=LIMIT) as client:
            tracemalloc.start()
            try:
                with pytest.raises(MessageTooLargeError) as info:
                    await client.get("/bomb")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            # The client still works after refusing a body.
            assert (await client.get("/small")).content == b"ok"
    assert info.value.code == "ERR_MESSAGE_TOO_LARGE"
    assert f"max_response_size={LIMIT}" in str(info.value)
    # The 64 MiB the bomb inflates to were never held: a few MiB at most.
    assert peak < 16 * 1024 * 1024, peak
    assert client.stats.errors == 1


async def test_endless_chunked_body_stops_at_the_limit() -> None:
    async with HostileHTTPServer() as server:
        async with HTTPClient(server.url) as client:
            with pytest.raises(MessageTooLargeError, match="max_response_size=65536"):
                await client.get("/endless", max_response_size=64 * 1024)
        sent = server.sent_bytes
    # The server got at most a few socket buffers further before we hung up.
    assert sent < 64 * 1024 * 1024


async def test_stream_honours_the_limit_in_every_reader() -> None:
    async with HostileHTTPServer() as server:
        async with HTTPClient(server.url, max_response_size=LIMIT) as client:
            async with client.stream("GET", "/bomb") as response:
                with pytest.raises(MessageTooLargeError):
                    await response.aread()
            async with client.stream("GET", "/endless") as response:
                with pytest.raises(MessageTooLargeError):
                    async for _ in response.aiter_lines():
                        pass
            async with client.stream("GET", "/endless") as response:
                with pytest.raises(MessageTooLargeError):
                    async for _ in response.aiter_text():
                        pass
            async with client.stream("GET", "/endless", max_response_size=None) as response:
                total = 0
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > 2 * LIMIT:
                        break
            assert total > 2 * LIMIT


async def test_bodies_within_the_limit_and_no_limit_by_default(http_server: HTTPServer) -> None:
    assert HTTPConfig().max_response_size is None
    async with HTTPClient(http_server.url, max_response_size=1000) as client:
        assert len((await client.get("/big", params={"n": 1000})).content) == 1000
        with pytest.raises(MessageTooLargeError):
            await client.get("/big", params={"n": 1001})
        r = await client.get("/big", params={"n": 3_000_000}, max_response_size=None)
        assert len(r.content) == 3_000_000
    async with HTTPClient(http_server.url) as client:
        assert len((await client.get("/big", params={"n": 3_000_000})).content) == 3_000_000


async def test_bad_limit_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_response_size"):
        HTTPConfig(max_response_size=0)
    with pytest.raises(ConfigError, match="max_response_size"):
        HTTPConfig(max_response_size="1MB")
    async with HTTPClient() as client:
        with pytest.raises(ConfigError, match="max_response_size"):
            await client.get("http://127.0.0.1:1/", max_response_size=-5)
