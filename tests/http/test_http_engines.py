"""Both wire engines (httpx's transport, aiohttp's) behave the same under HTTPClient.

Each test here runs on both engines (see conftest.py's ``wire_engine``); the
recording-server test compares the two engines' requests byte for byte.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agenticaiframework.communication import HTTPClient
from agenticaiframework.communication.core.errors import (
    ConfigError,
    ConnectionError,
    SecurityError,
    TimeoutError,
)
from agenticaiframework.communication.http.aiohttp_engine import AiohttpEngine
from tests.conftest import HTTPServer
from tests.servers.uvicorn_server import serve_asgi


def _transport(client: HTTPClient) -> object:
    inner = client._client
    assert inner is not None
    return inner._transport


async def test_the_engine_named_is_the_engine_used(wire_engine: str) -> None:
    async with HTTPClient() as client:
        expected = AiohttpEngine if wire_engine == "aiohttp" else httpx.AsyncHTTPTransport
        assert type(_transport(client)) is expected
    if importlib.util.find_spec("h2") is not None:
        # HTTP/2 needs httpx's transport: it picks it by itself.
        async with HTTPClient(transport="aiohttp", http2=True) as client:
            assert type(_transport(client)) is httpx.AsyncHTTPTransport
    custom = httpx.AsyncHTTPTransport()
    async with HTTPClient(transport=custom) as client:
        assert _transport(client) is custom
    with pytest.raises(ConfigError, match="transport: unknown engine 'curl'"):
        async with HTTPClient(transport="curl"):
            pass


# -- byte-identical requests ------------------------------------------------------


class RecordingServer:
    """Records every request (head bytes with the Host port blanked, and body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, bytes]] = []
        self.port = 0
        self._flaky = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = 0
                chunked = False
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    if name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
                        chunked = True
                body = b""
                if chunked:
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                        body += (await reader.readexactly(size + 2))[:-2]
                        if size == 0:
                            break
                elif length:
                    body = await reader.readexactly(length)
                self.requests.append((head.replace(str(self.port).encode(), b"PORT"), body))
                writer.write(self._answer(lines[0].split(b" ")[1]))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        finally:
            writer.close()

    def _answer(self, target: bytes) -> bytes:
        extra = b""
        status = b"200 OK"
        if target == b"/redirect":
            status, extra = b"302 Found", b"Location: /landed\r\n"
        elif target == b"/login":
            extra = b"Set-Cookie: session=abc; Path=/\r\n"
        elif target == b"/flaky":
            self._flaky += 1
            if self._flaky % 2:
                status = b"503 Service Unavailable"
        body = b'{"ok":true}'
        return (
            b"HTTP/1.1 " + status + b"\r\n" + extra + b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{self.port}"
        finally:
            server.close()
            await server.wait_closed()


async def _calls(engine: str, auth: dict[str, str] | None) -> list[tuple[bytes, bytes]]:
    recorder = RecordingServer()
    async with recorder.running() as url:
        async with HTTPClient(
            url,
            transport=engine,
            headers={"X-Agent": "a1"},
            auth=auth,
            retry_delay=0.01,
            max_retries=2,
        ) as client:
            await client.get("/items", params={"q": "é x", "n": 2}, headers={"X-Trace": "7"})
            await client.post("/items", json={"name": "Zürich", "tags": [1, None]})
            await client.put("/raw", content=b"\x00\x01bytes", headers={"Content-Type": "x/y"})
            await client.post("/form", data={"a": "1", "b": "two words"})
            await client.get("/redirect")  # followed to /landed
            await client.get("/login")  # sets a cookie, sent from now on
            await client.get("/flaky")  # 503, retried
            await client.delete("/items/1")

            async def body() -> AsyncIterator[bytes]:
                yield b"part-1,"
                yield b"part-2"

            await client.post("/stream", content=body())
    return recorder.requests


# With auth, requests go through httpx's send; without, the aiohttp engine's requests
# go straight to the transport (engine.direct_transport): both must match httpx's.
@pytest.mark.parametrize("auth", [{"type": "bearer", "token": "t-1"}, None], ids=["auth", "none"])
async def test_both_engines_send_byte_identical_requests(auth: dict[str, str] | None) -> None:
    httpx_requests = await _calls("httpx", auth)
    aiohttp_requests = await _calls("aiohttp", auth)
    assert len(httpx_requests) == 11  # 9 calls, one redirect hop, one retry
    assert sum(b"Authorization: Bearer t-1" in head for head, _ in aiohttp_requests) == (
        11 if auth else 0
    )
    for (head_a, body_a), (head_b, body_b) in zip(httpx_requests, aiohttp_requests, strict=True):
        assert head_b == head_a
        assert body_b == body_a
    heads = b"".join(head for head, _ in httpx_requests)
    assert heads.count(b"GET /landed ") == 1 and heads.count(b"GET /flaky ") == 2
    # Sent after /login only (2 /flaky, DELETE, the stream), once each: not by aiohttp too.
    assert heads.count(b"Cookie: session=abc") == 4


async def test_urls_go_out_as_httpx_spells_them() -> None:
    recorder = RecordingServer()
    async with recorder.running():
        for engine in ("httpx", "aiohttp"):
            async with HTTPClient(
                f"http://127.1:{recorder.port}", transport=engine, allow_insecure=True
            ) as client:
                await client.get("/a/%2E%2E/b/./c")
    (first, _), (second, _) = recorder.requests
    assert first == second
    assert first.startswith(b"GET /a/%2E%2E/b/c HTTP/1.1\r\nHost: 127.1:PORT\r\n")


async def test_each_attempt_is_one_connection(wire_engine: str) -> None:
    accepted = 0

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    listener = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        async with HTTPClient(
            f"http://127.0.0.1:{port}", max_retries=1, retry_delay=0.01
        ) as client:
            with pytest.raises(ConnectionError) as info:
                await client.get("/")
            assert info.value.code == "ERR_CONNECTION"
    # aiohttp on its own re-sends once more per attempt when a connection drops.
    assert accepted == 2


# -- TLS ------------------------------------------------------------------------------


async def _hello(request: Request) -> Response:
    return Response("hello")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("agent@example.test")
    out = tmp_path_factory.mktemp("tls")
    files = {
        "ca": out / "ca.pem",
        "server": out / "server.pem",
        "client_cert": out / "client-cert.pem",
        "client_key": out / "client-key.pem",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(files["server"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    return {name: str(path) for name, path in files.items()}


@asynccontextmanager
async def _tls_server(files: dict[str, str], client_cert_required: bool) -> AsyncIterator[str]:
    extra = (
        {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": files["ca"]}
        if client_cert_required
        else {}
    )
    app = Starlette(routes=[Route("/", _hello)])
    async with serve_asgi(app, ssl_certfile=files["server"], **extra) as url:
        yield url


async def test_tls_ca_bundle_verify_off_and_unknown_ca(tls_files: dict[str, str]) -> None:
    async with _tls_server(tls_files, client_cert_required=False) as url:
        async with HTTPClient(url, ca_certs=tls_files["ca"]) as client:
            assert (await client.get("/")).text == "hello"
        async with HTTPClient(url, verify_ssl=False) as client:
            assert (await client.get("/")).text == "hello"
        async with HTTPClient(url, max_retries=0) as client:
            with pytest.raises(SecurityError, match=r"TLS handshake with https://127\.0\.0\.1"):
                await client.get("/")


async def test_mutual_tls(tls_files: dict[str, str]) -> None:
    async with _tls_server(tls_files, client_cert_required=True) as url:
        async with HTTPClient(
            url,
            ca_certs=tls_files["ca"],
            client_cert=tls_files["client_cert"],
            client_key=tls_files["client_key"],
        ) as client:
            assert (await client.get("/")).text == "hello"
        async with HTTPClient(url, ca_certs=tls_files["ca"], max_retries=0) as client:
            with pytest.raises((ConnectionError, SecurityError)):
                await client.get("/")


# -- timeouts ---------------------------------------------------------------------------


async def test_timeouts_read_the_same_on_both_engines(http_server: HTTPServer) -> None:
    async with HTTPClient(http_server.url, timeout_seconds=0.3, max_retries=0) as client:
        with pytest.raises(TimeoutError) as info:
            await client.get("/slow", params={"s": 3})
    assert info.value.message == f"read timeout for {http_server.url}/slow?s=3: ReadTimeout"
    async with HTTPClient(
        http_server.url, timeout_seconds=0.3, max_retries=0, pool_maxsize=1, pool_connections=1
    ) as client:
        async with client.stream("GET", "/big"):
            with pytest.raises(TimeoutError) as info:
                await client.get("/data")
    assert info.value.message == f"pool timeout for {http_server.url}/data: PoolTimeout"


async def test_a_peer_that_takes_no_body_is_a_write_timeout() -> None:
    done = asyncio.Event()

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")  # then never reads the body
            await done.wait()
        finally:
            writer.close()

    listener = await asyncio.start_server(sink, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1000):
            yield b"y" * 65536

    try:
        async with HTTPClient(url, timeout_seconds=0.3, max_retries=0) as client:
            for body in (b"x" * 50_000_000, chunks()):
                with pytest.raises(TimeoutError) as info:
                    await client.post("/upload", content=body)  # type: ignore[arg-type]
                assert info.value.message == f"write timeout for {url}/upload: WriteTimeout"
    finally:
        done.set()
        listener.close()
        await listener.wait_closed()


async def test_responses_carry_what_httpx_gives_them(wire_engine: str) -> None:
    recorder = RecordingServer()
    async with recorder.running() as url, HTTPClient(url) as client:
        reply = await client.get("/items")
        assert reply.raw.request.url == httpx.URL(f"{url}/items")
        assert reply.raw.elapsed.total_seconds() > 0
        assert reply.raw.is_closed and reply.json() == {"ok": True}
        async with client.stream("GET", "/items") as streamed:
            assert [chunk async for chunk in streamed.aiter_bytes()] == [b'{"ok":true}']
        assert streamed.raw.elapsed.total_seconds() > 0
        hop = await client.get("/redirect", follow_redirects=False)
        assert hop.status_code == 302
        assert hop.raw.next_request is not None
        assert hop.raw.next_request.url == httpx.URL(f"{url}/landed")


async def test_repeated_urls_merge_with_the_base_path_each_time(wire_engine: str) -> None:
    recorder = RecordingServer()
    async with recorder.running() as url, HTTPClient(f"{url}/api/") as client:
        for _ in range(2):
            await client.get("items")
            await client.get("/items", params={"n": 1})
            await client.get("items", params={"n": 2})
    targets = [head.split(b" ")[1] for head, _ in recorder.requests]
    assert targets == [b"/api/items", b"/api/items?n=1", b"/api/items?n=2"] * 2


async def test_each_request_goes_out_with_its_own_headers(wire_engine: str) -> None:
    # The aiohttp engine keeps the first few distinct header sets converted: more
    # sets than it keeps, each asked twice, must each go out as given.
    recorder = RecordingServer()
    async with recorder.running() as url, HTTPClient(url) as client:
        for i in [*range(40), *range(40)]:
            await client.get("/h", headers={"X-N": str(i)})
    sent = [line for head, _ in recorder.requests for line in head.split(b"\r\n") if b"X-N" in line]
    assert sent == [f"X-N: {i}".encode() for i in [*range(40), *range(40)]]


async def test_no_cache_keeps_a_credential_or_a_query() -> None:
    # The aiohttp engine keeps converted header sets and URLs for speed; none of
    # them may hold a token, a password or a (maybe signed) query after use.
    from agenticaiframework.communication.http import aiohttp_engine

    urls = aiohttp_engine._cached_wire_url
    urls.cache_clear()  # other tests' URLs may have filled it: /d must not evict one
    recorder = RecordingServer()
    async with recorder.running() as url:
        async with HTTPClient(url, transport="aiohttp") as client:
            await client.get("/a", headers={"Authorization": "Bearer s3cret-token"})
            before = urls.cache_info().currsize
            await client.get("/b?sig=s3cret-sig")
            await client.get(url.replace("http://", "http://user:s3cret-pw@") + "/c")
            assert urls.cache_info().currsize == before
            await client.get("/d")
            assert urls.cache_info().currsize == before + 1  # a plain URL is kept
            inner = client._client
            assert inner is not None
            kept = repr(inner._transport._headers) + repr(inner._merged)
            assert "/d" in kept
    assert "s3cret" not in kept
    heads = b"".join(head for head, _ in recorder.requests)
    assert heads.count(b"s3cret") == 2  # the token and the query went out (the password as Basic)
