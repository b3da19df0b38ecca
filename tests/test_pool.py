"""ConnectionPool against real uvicorn servers on loopback, and the fault proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from agenticaiframework.communication import (
    ClosedError,
    ConfigError,
    ConnectionError,
    ConnectionPool,
    HTTPClient,
    HTTPConfig,
    PoolTimeoutError,
    SecurityError,
    SSEConfig,
    TimeoutError,
)
from tests.servers.ports import free_port
from tests.servers.proxy import FaultProxy
from tests.servers.uvicorn_server import serve_asgi

FAST = HTTPConfig(max_retries=0, timeout_seconds=5, connect_timeout=2)


class CountingApp:
    """A raw ASGI app that measures how many requests it serves at once."""

    def __init__(self, shared: dict[str, int] | None = None) -> None:
        self.active = 0
        self.peak = 0
        self.requests = 0
        self.clients: set[Any] = set()
        self.headers: dict[str, str] = {}
        self.shared = shared if shared is not None else {"active": 0, "peak": 0}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.requests += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        self.shared["active"] += 1
        self.shared["peak"] = max(self.shared["peak"], self.shared["active"])
        self.clients.add(tuple(scope["client"]))
        self.headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            if scope["path"] == "/work":
                await asyncio.sleep(0.005)
            body = f'{{"path": "{scope["path"]}"}}'.encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            self.active -= 1
            self.shared["active"] -= 1


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, CountingApp]]:
    app = CountingApp()
    async with serve_asgi(app) as url:
        yield url, app


async def test_get_connection_binds_origin_and_reuses(server: tuple[str, CountingApp]) -> None:
    url, app = server
    async with ConnectionPool(protocol="http", config=FAST) as pool:
        async with pool.get_connection(url + "/ignored/path?q=1") as conn:
            assert isinstance(conn, HTTPClient)
            assert conn.base_url == url
            response = await conn.get("/data")
            assert response.json() == {"path": "/data"}
            first = conn
        async with pool.get_connection(url) as conn:
            assert conn is first
            await conn.get("/again")
        stats = pool.stats
        assert (stats.created, stats.idle, stats.in_use, stats.total) == (1, 1, 0, 1)
        assert len(app.clients) == 1  # one TCP connection served both requests
    assert first.is_closed
    assert pool.stats.total == 1 and pool.stats.idle == 0


async def test_config_is_passed_to_clients(server: tuple[str, CountingApp]) -> None:
    url, app = server
    config = HTTPConfig(headers={"X-Pool": "yes"}, max_retries=0)
    async with ConnectionPool(config=config) as pool, pool.get_connection(url) as conn:
        assert conn.config is config or conn.config.headers["X-Pool"] == "yes"
        await conn.get("/h")
    assert app.headers["x-pool"] == "yes"


async def test_limits_hold_for_200_concurrent_borrowers() -> None:
    shared = {"active": 0, "peak": 0}
    apps = [CountingApp(shared) for _ in range(3)]
    async with AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(serve_asgi(app)) for app in apps]
        pool = await stack.enter_async_context(
            ConnectionPool(
                max_connections=10,
                max_connections_per_host=4,
                connection_timeout=30,
                config=FAST,
            )
        )
        borrowed = {"all": 0, "peak": 0}
        per_host = dict.fromkeys(urls, 0)
        per_host_peak = dict.fromkeys(urls, 0)
        seen_clients: set[int] = set()

        async def borrower(i: int) -> int:
            url = urls[i % 3]
            async with pool.get_connection(url) as conn:
                borrowed["all"] += 1
                per_host[url] += 1
                borrowed["peak"] = max(borrowed["peak"], borrowed["all"])
                per_host_peak[url] = max(per_host_peak[url], per_host[url])
                seen_clients.add(id(conn))
                try:
                    response = await conn.get("/work")
                finally:
                    borrowed["all"] -= 1
                    per_host[url] -= 1
                return response.status_code

        statuses = await asyncio.gather(*(borrower(i) for i in range(200)))
        assert statuses == [200] * 200
        # Measured on our side and on the servers' side.
        assert borrowed["peak"] == 10
        assert max(per_host_peak.values()) == 4
        assert shared["peak"] <= 10
        assert all(app.peak <= 4 for app in apps)
        assert sum(app.requests for app in apps) == 200
        stats = pool.stats
        assert stats.peak_in_use == 10
        assert stats.in_use == 0 and stats.waiting == 0
        assert stats.total <= 10 and all(n <= 4 for n in stats.per_host.values())
        # Every client ever made used exactly one TCP connection.
        assert sum(len(app.clients) for app in apps) == stats.created


async def test_waiting_past_connection_timeout_raises_pool_timeout(
    server: tuple[str, CountingApp],
) -> None:
    url, _ = server
    async with ConnectionPool(max_connections=1, connection_timeout=0.3, config=FAST) as pool:
        async with pool.get_connection(url):
            start = time.perf_counter()
            with pytest.raises(PoolTimeoutError) as info:
                async with pool.get_connection(url):
                    pass
            elapsed = time.perf_counter() - start
        assert 0.28 <= elapsed < 2.0
        assert info.value.code == "ERR_TIMEOUT"
        assert isinstance(info.value, TimeoutError)
        assert pool.stats.timeouts == 1 and pool.stats.waiting == 0
        # The slot is still usable: nothing leaked.
        async with pool.get_connection(url) as conn:
            assert (await conn.get("/x")).status_code == 200


async def test_waiter_is_served_when_a_connection_comes_back(
    server: tuple[str, CountingApp],
) -> None:
    url, _ = server
    async with ConnectionPool(max_connections=1, connection_timeout=5, config=FAST) as pool:
        order: list[str] = []

        async def holder() -> None:
            async with pool.get_connection(url) as conn:
                order.append("holder")
                await asyncio.sleep(0.1)
                first.append(conn)

        first: list[Any] = []
        task = asyncio.create_task(holder())
        await asyncio.sleep(0.02)
        async with pool.get_connection(url) as conn:
            order.append("waiter")
            assert conn is first[0]  # the same client, handed over
        await task
        assert order == ["holder", "waiter"]
        assert pool.stats.created == 1


async def test_cancelled_waiter_leaves_nothing_behind(server: tuple[str, CountingApp]) -> None:
    url, _ = server
    async with ConnectionPool(max_connections=1, config=FAST) as pool:
        async with pool.get_connection(url):

            async def wait() -> None:
                async with pool.get_connection(url):
                    pass

            task = asyncio.create_task(wait())
            await asyncio.sleep(0.05)
            assert pool.stats.waiting == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert pool.stats.waiting == 0
        async with pool.get_connection(url) as conn:
            assert (await conn.get("/")).status_code == 200
        assert pool.stats.created == 1


async def test_idle_connections_are_evicted_in_the_background(
    server: tuple[str, CountingApp],
) -> None:
    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    async with FaultProxy(port) as proxy:
        target = f"http://127.0.0.1:{proxy.port}"
        async with ConnectionPool(idle_timeout=0.2, config=FAST) as pool:
            async with pool.get_connection(target) as conn:
                await conn.get("/")
            assert pool.stats.idle == 1 and proxy.connections == 1
            await asyncio.sleep(0.1)
            assert pool.stats.idle == 1  # not yet
            await asyncio.sleep(0.35)
            stats = pool.stats
            assert (stats.idle, stats.total, stats.evicted) == (0, 0, 1)
            assert conn.is_closed
            await asyncio.sleep(0.05)
            assert proxy.connections == 0  # the socket really went away
            async with pool.get_connection(target) as again:
                assert again is not conn
                assert (await again.get("/")).status_code == 200


async def test_connection_broken_while_borrowed_is_not_reused(
    server: tuple[str, CountingApp],
) -> None:
    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    async with FaultProxy(port) as proxy:
        target = f"http://127.0.0.1:{proxy.port}"
        async with ConnectionPool(config=FAST) as pool:
            # A real cut: the request fails and the error escapes the block.
            with pytest.raises(ConnectionError):
                async with pool.get_connection(target) as conn:
                    await conn.get("/")
                    proxy.latency = 0.2
                    request = asyncio.create_task(conn.get("/"))
                    await asyncio.sleep(0.05)
                    await proxy.cut()
                    await request
            proxy.latency = 0.0
            assert conn.is_closed
            assert pool.stats.discarded == 1 and pool.stats.total == 0
            async with pool.get_connection(target) as fresh:
                assert fresh is not conn
                assert (await fresh.get("/")).status_code == 200

            # Any exception escaping the block discards the client too.
            with pytest.raises(ValueError):
                async with pool.get_connection(target) as bad:
                    assert bad is fresh
                    raise ValueError("application error")
            assert bad.is_closed and pool.stats.discarded == 2

            # A client closed by its borrower is dropped, not parked.
            async with pool.get_connection(target) as closed:
                await closed.close()
            assert pool.stats.discarded == 3 and pool.stats.idle == 0

            # A client that died while idle is skipped on the next borrow.
            async with pool.get_connection(target) as idle_one:
                pass
            await idle_one.close()
            async with pool.get_connection(target) as next_one:
                assert next_one is not idle_one
                assert (await next_one.get("/")).status_code == 200
            assert pool.stats.total == 1


async def test_dead_and_hung_peers_free_their_slots() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with FaultProxy(free_port()) as proxy:
        proxy.stall = True
        hung = f"http://127.0.0.1:{proxy.port}"
        async with ConnectionPool(max_connections=2, connection_timeout=1, config=FAST) as pool:
            with pytest.raises(ConnectionError):
                async with pool.get_connection(dead) as conn:
                    await conn.get("/")
            start = time.perf_counter()
            with pytest.raises(TimeoutError):
                async with pool.get_connection(hung) as conn:
                    await conn.get("/", timeout=0.2)
            assert time.perf_counter() - start < 3  # the client's own timeout is 5 s
            stats = pool.stats
            assert (stats.total, stats.in_use, stats.discarded) == (0, 0, 2)


async def test_full_pool_evicts_an_idle_client_of_another_host() -> None:
    apps = [CountingApp(), CountingApp()]
    async with serve_asgi(apps[0]) as a, serve_asgi(apps[1]) as b:
        async with ConnectionPool(max_connections=1, connection_timeout=1, config=FAST) as pool:
            async with pool.get_connection(a) as first:
                await first.get("/")
            async with pool.get_connection(b) as second:
                assert (await second.get("/")).status_code == 200
            assert first.is_closed
            assert pool.stats.evicted == 1 and pool.stats.per_host == {b: 1}


async def test_close_fails_waiters_and_closes_borrowed(server: tuple[str, CountingApp]) -> None:
    url, _ = server
    pool = ConnectionPool(max_connections=1, config=FAST)
    ready = asyncio.Event()
    release = asyncio.Event()
    seen: list[Any] = []

    async def borrower() -> None:
        async with pool.get_connection(url) as conn:
            seen.append(conn)
            ready.set()
            await release.wait()
            with pytest.raises(ClosedError):
                await conn.get("/")

    async def waiter() -> None:
        async with pool.get_connection(url):
            pass

    holder = asyncio.create_task(borrower())
    await ready.wait()
    blocked = asyncio.create_task(waiter())
    await asyncio.sleep(0.02)
    await pool.close()
    with pytest.raises(ClosedError):
        await blocked
    assert seen[0].is_closed
    release.set()
    await holder
    with pytest.raises(ClosedError):
        async with pool.get_connection(url):
            pass
    await pool.close()  # idempotent
    assert pool.is_closed and pool.stats.in_use == 0
    assert len(pool._tasks) == 0 and not pool._closers


async def test_close_with_grace_waits_for_borrowers(server: tuple[str, CountingApp]) -> None:
    url, _ = server
    pool = ConnectionPool(config=FAST)
    got: list[int] = []

    async def borrower() -> None:
        async with pool.get_connection(url) as conn:
            await asyncio.sleep(0.1)
            got.append((await conn.get("/")).status_code)

    task = asyncio.create_task(borrower())
    await asyncio.sleep(0.02)
    start = time.perf_counter()
    await pool.close(grace=2)
    assert time.perf_counter() - start < 1.5  # the borrower's 0.1 s, not the 2 s grace
    await task
    assert got == [200]


async def test_bad_arguments_fail_fast(server: tuple[str, CountingApp]) -> None:
    with pytest.raises(ConfigError, match="protocol"):
        ConnectionPool(protocol="ftp")
    with pytest.raises(ConfigError, match="max_connections"):
        ConnectionPool(max_connections=0)
    with pytest.raises(ConfigError, match="max_connections_per_host"):
        ConnectionPool(max_connections_per_host=0)
    with pytest.raises(ConfigError, match="connection_timeout"):
        ConnectionPool(connection_timeout=-1)
    with pytest.raises(ConfigError, match="idle_timeout"):
        ConnectionPool(idle_timeout=0)
    with pytest.raises(ConfigError, match="config"):
        ConnectionPool(protocol="http", config=SSEConfig())
    async with ConnectionPool() as pool:
        with pytest.raises(SecurityError):
            async with pool.get_connection("http://example.com"):
                pass
        with pytest.raises(SecurityError):
            async with pool.get_connection("ws://127.0.0.1:1"):
                pass
        with pytest.raises(ConfigError, match="url"):
            async with pool.get_connection(123):  # type: ignore[arg-type]
                pass
        assert pool.stats.total == 0 and pool.stats.created == 0


async def test_factory_builds_custom_clients(server: tuple[str, CountingApp]) -> None:
    url, app = server
    made: list[str] = []

    def factory(origin: str) -> HTTPClient:
        made.append(origin)
        return HTTPClient(origin, headers={"X-Factory": "1"}, max_retries=0)

    async with ConnectionPool(factory=factory) as pool:
        for _ in range(3):
            async with pool.get_connection(url + "/a") as conn:
                await conn.get("/b")
    assert made == [url]
    assert app.headers["x-factory"] == "1"


async def test_pool_hands_out_every_client_type() -> None:
    from agenticaiframework.communication import (
        GRPCClient,
        MQTTClient,
        SSEClient,
        WebSocketClient,
    )
    from tests.servers.grpc_server import serve_grpc
    from tests.servers.mosquitto import Mosquitto
    from tests.servers.sse_app import make_app as make_sse_app
    from tests.servers.ws_server import WSServer

    sse_app, _ = make_sse_app()
    async with (
        Mosquitto() as broker,
        WSServer() as ws,
        serve_asgi(sse_app) as sse_url,
        serve_grpc() as grpc_srv,
    ):
        cases: list[tuple[str, str, type]] = [
            ("websocket", ws.url("/echo"), WebSocketClient),
            ("mqtt", broker.url, MQTTClient),
            ("grpc", grpc_srv.target, GRPCClient),
            ("sse", f"{sse_url}/events", SSEClient),
        ]
        for protocol, target, cls in cases:
            async with ConnectionPool(protocol=protocol, max_connections=2) as pool:
                async with pool.get_connection(target) as conn:
                    assert isinstance(conn, cls)
                    assert (await conn.health_check()).is_healthy, protocol
                    if protocol == "websocket":
                        await conn.send({"hello": "pool"})
                        assert await conn.receive(timeout=5) == {"hello": "pool"}
                    first = conn
                async with pool.get_connection(target) as conn:
                    assert conn is first, protocol
                assert pool.stats.created == 1
            assert first.is_closed, protocol
