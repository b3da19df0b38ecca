"""ConnectionManager against real loopback servers, the fault proxy for hung and dead peers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agenticaiframework.communication import (
    ClosedError,
    ConfigError,
    ConnectionManager,
    HealthStatus,
    HTTPClient,
    HTTPConfig,
)
from agenticaiframework.communication.core.lifecycle import ClientState
from tests.servers.ports import free_port
from tests.servers.proxy import FaultProxy
from tests.servers.uvicorn_server import serve_asgi

FAST = HTTPConfig(max_retries=0, connect_timeout=2, timeout_seconds=5)


async def ok_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with serve_asgi(ok_app) as base:
        yield base


class NoTimeoutParam:
    """Wraps a real client whose health_check takes no timeout and may hang for long."""

    def __init__(self, inner: HTTPClient) -> None:
        self.inner = inner

    @property
    def state(self) -> ClientState:
        return self.inner.state

    @property
    def is_closed(self) -> bool:
        return self.inner.is_closed

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    async def health_check(self) -> HealthStatus:
        return await self.inner.health_check(timeout=30)


async def test_registry() -> None:
    manager = ConnectionManager()
    api = HTTPClient("http://127.0.0.1:1")
    assert manager.register("api", api) is api
    manager.register("other", HTTPClient("http://127.0.0.1:2"))
    assert manager.names() == ["api", "other"]
    assert manager.get("api") is api and "api" in manager and len(manager) == 2
    with pytest.raises(ConfigError, match="already registered"):
        manager.register("api", HTTPClient("http://127.0.0.1:1"))
    with pytest.raises(ConfigError, match="name"):
        manager.register("", HTTPClient("http://127.0.0.1:1"))
    with pytest.raises(ConfigError, match="client"):
        manager.register("bad", object())
    with pytest.raises(KeyError):
        manager.get("nope")
    assert manager.unregister("api") is api
    assert manager.names() == ["other"] and not api.is_closed
    with pytest.raises(KeyError):
        manager.unregister("api")
    await manager.close()
    with pytest.raises(ClosedError):
        manager.register("late", HTTPClient("http://127.0.0.1:1"))
    await api.close()


async def test_async_with_connects_all_and_reports_failures(url: str) -> None:
    manager = ConnectionManager()
    good = manager.register("good", HTTPClient(url, config=FAST))
    bad = manager.register("bad", HTTPClient("https://127.0.0.1:1", ca_certs="/nonexistent.pem"))
    also = manager.register("also", HTTPClient(url, config=FAST))
    async with manager:
        assert good.state is ClientState.OPEN and also.state is ClientState.OPEN
        assert list(manager.connect_errors) == ["bad"]
        assert manager.connect_errors["bad"].code == "ERR_CONFIG"
        assert bad.state is ClientState.UNOPENED
        health = await manager.health_check(timeout=1)
        assert health["good"].is_healthy and health["also"].is_healthy
        assert not health["bad"].is_healthy and "connect failed" in health["bad"].detail
    assert good.is_closed and also.is_closed and bad.is_closed
    assert manager.is_closed
    with pytest.raises(ClosedError):
        await manager.health_check()


async def test_hung_and_dead_peers_take_about_one_timeout(url: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    async with FaultProxy(port) as hung_proxy, FaultProxy(port) as hung_proxy2:
        hung_proxy.stall = True
        hung_proxy2.stall = True
        manager = ConnectionManager()
        manager.register("healthy", HTTPClient(url, config=FAST))
        manager.register("hung", HTTPClient(f"http://127.0.0.1:{hung_proxy.port}", config=FAST))
        manager.register(
            "hung-ignores-timeout",
            NoTimeoutParam(HTTPClient(f"http://127.0.0.1:{hung_proxy2.port}", config=FAST)),
        )
        manager.register("dead", HTTPClient(f"http://127.0.0.1:{free_port()}", config=FAST))
        async with manager:
            start = time.perf_counter()
            health = await manager.health_check(timeout=0.5)
            elapsed = time.perf_counter() - start
        # Well under the clients' own 5 s timeout: the 0.5 s budget cut them off.
        assert 0.45 <= elapsed < 2.0, elapsed
        assert list(health) == ["healthy", "hung", "hung-ignores-timeout", "dead"]
        assert health["healthy"].is_healthy and health["healthy"].latency_ms < 450
        assert not health["hung"].is_healthy and "0.5" in health["hung"].detail
        assert not health["hung-ignores-timeout"].is_healthy
        assert "no answer within 0.5s" in health["hung-ignores-timeout"].detail
        assert not health["dead"].is_healthy and health["dead"].latency_ms < 450
        assert all(isinstance(s, HealthStatus) for s in health.values())
        assert manager.last_health == health


async def test_never_connected_and_closed_clients(url: str) -> None:
    manager = ConnectionManager()
    lazy = manager.register("lazy", HTTPClient(url, config=FAST))
    gone = manager.register("gone", HTTPClient(url, config=FAST))
    await gone.close()
    health = await manager.health_check()
    assert health["lazy"].is_healthy and lazy.state is ClientState.OPEN
    assert not health["gone"].is_healthy and "closed" in health["gone"].detail
    await manager.close()
    assert lazy.is_closed


async def test_monitoring_reports_down_and_back_up(url: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    async with FaultProxy(port) as proxy:
        changes: list[tuple[str, bool | None, bool]] = []
        sync_calls: list[str] = []
        changed = asyncio.Event()

        async def on_change(name: str, old: HealthStatus | None, new: HealthStatus) -> None:
            changes.append((name, None if old is None else old.is_healthy, new.is_healthy))
            changed.set()

        async def wait_for(count: int) -> None:
            async with asyncio.timeout(5):
                while len(changes) < count:
                    changed.clear()
                    await changed.wait()

        manager = ConnectionManager()
        manager.register("api", HTTPClient(f"http://127.0.0.1:{proxy.port}", config=FAST))
        manager.register("steady", HTTPClient(url, config=FAST))
        async with manager:
            manager.start_monitoring(0.05, on_change, timeout=0.3)
            assert manager.is_monitoring
            with pytest.raises(RuntimeError):
                manager.start_monitoring(0.05, on_change)
            await wait_for(2)
            assert sorted(changes) == [("api", None, True), ("steady", None, True)]
            proxy.refuse = True
            await proxy.cut()
            await wait_for(3)
            assert changes[2] == ("api", True, False)
            proxy.refuse = False
            await wait_for(4)
            assert changes[3] == ("api", False, True)
            await manager.stop_monitoring()
            assert not manager.is_monitoring

            # A sync callback that raises is logged and never stops monitoring.
            def flaky(name: str, old: HealthStatus | None, new: HealthStatus) -> None:
                sync_calls.append(name)
                raise RuntimeError("callback bug")

            manager.start_monitoring(0.05, flaky, timeout=0.3)
            async with asyncio.timeout(5):
                while len(sync_calls) < 2:
                    await asyncio.sleep(0.01)
            proxy.refuse = True
            await proxy.cut()
            async with asyncio.timeout(5):
                while len(sync_calls) < 3:
                    await asyncio.sleep(0.01)
            assert manager.is_monitoring
        assert not manager.is_monitoring
        assert len(manager._tasks) == 0


async def test_health_check_over_many_clients_is_concurrent() -> None:
    # Each probe takes 0.25 s at the server: one after another, 200 would take 50 s.
    # The server counts how many are in flight at once; no wall-clock bound that a
    # loaded machine could break.
    in_flight = peak = 0

    async def slow_ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal in_flight, peak
        if scope["type"] != "http":
            return
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.25)
        finally:
            in_flight -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async with serve_asgi(slow_ok) as base:
        manager = ConnectionManager()
        for i in range(200):
            manager.register(f"c{i}", HTTPClient(base, config=FAST))
        async with manager:
            start = time.perf_counter()
            health = await manager.health_check(timeout=30)
            elapsed = time.perf_counter() - start
    assert len(health) == 200 and all(s.is_healthy for s in health.values())
    assert peak >= 50, peak
    assert elapsed < 25, elapsed  # half of the sequential 50 s, however loaded the machine


async def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="health_timeout"):
        ConnectionManager(health_timeout=0)
    manager = ConnectionManager()
    with pytest.raises(ConfigError, match="timeout"):
        await manager.health_check(timeout=-1)
    with pytest.raises(ConfigError, match="interval"):
        manager.start_monitoring(0)
    await manager.close()


async def test_one_client_of_each_protocol_plus_hung_and_dead(url: str) -> None:
    import sys
    from pathlib import Path

    from agenticaiframework.communication import (
        GRPCClient,
        MQTTClient,
        SSEClient,
        STDIOClient,
        WebSocketClient,
    )
    from tests.servers.grpc_server import serve_grpc
    from tests.servers.mosquitto import Mosquitto
    from tests.servers.sse_app import make_app as make_sse_app
    from tests.servers.ws_server import WSServer

    child = [sys.executable, str(Path(__file__).parent / "servers" / "stdio_children.py"), "echo"]
    sse_app, _ = make_sse_app()
    port = int(url.rsplit(":", 1)[1])
    async with (
        Mosquitto() as broker,
        WSServer() as ws,
        serve_asgi(sse_app) as sse_url,
        serve_grpc() as grpc_srv,
        FaultProxy(port) as stalled,
    ):
        stalled.stall = True
        manager = ConnectionManager(connect_timeout=3)
        manager.register("http", HTTPClient(url, config=FAST))
        manager.register("websocket", WebSocketClient(ws.url("/echo")))
        manager.register("sse", SSEClient(f"{sse_url}/events"))
        manager.register("mqtt", MQTTClient(broker.url))
        manager.register("grpc", GRPCClient(grpc_srv.target))
        manager.register("stdio", STDIOClient(command=child))
        manager.register("hung", HTTPClient(f"http://127.0.0.1:{stalled.port}", config=FAST))
        manager.register("dead", MQTTClient(f"mqtt://127.0.0.1:{free_port()}"))
        async with manager:
            assert set(manager.connect_errors) <= {"dead"}
            start = time.perf_counter()
            health = await manager.health_check(timeout=1.0)
            elapsed = time.perf_counter() - start
        verdicts = {name: status.is_healthy for name, status in health.items()}
        assert verdicts == {
            "http": True,
            "websocket": True,
            "sse": True,
            "mqtt": True,
            "grpc": True,
            "stdio": True,
            "hung": False,
            "dead": False,
        }, {n: s.detail for n, s in health.items()}
        assert 0.9 <= elapsed < 3.0, elapsed  # the hung client's own timeout is 5 s
        assert all(manager.get(name).is_closed for name in manager.names())
