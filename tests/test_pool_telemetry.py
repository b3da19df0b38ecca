"""Pool and manager state as OpenTelemetry metrics (gauges per host / per client)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from agenticaiframework.communication import ConnectionManager, ConnectionPool, HTTPClient
from agenticaiframework.communication.core.config import HTTPConfig
from agenticaiframework.communication.testing.http import EchoServer, serve_echo_app
from tests.telemetry_support import OTel, otel

__all__ = ["otel"]


@pytest.fixture
async def server() -> AsyncIterator[EchoServer]:
    async with serve_echo_app() as srv:
        yield srv


def _gauge(otel: OTel, name: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(str(v) for _, v in sorted(p.attributes.items())): p.value
        for p in otel.metrics().get(name, [])
    }


async def test_pool_gauges_count_in_use_idle_and_waiting_per_host(
    server: EchoServer, otel: OTel
) -> None:
    config = HTTPConfig(meter_provider=otel.meter_provider)
    host = server.url  # the origin the pool counts against
    async with ConnectionPool("http", max_connections=1, config=config) as pool:
        async with pool.get_connection(server.url) as client:
            await client.get(f"{server.url}/x")
            waiter = asyncio.create_task(_borrow(pool, server.url))
            while pool.stats.waiting == 0:
                await asyncio.sleep(0.01)
            gauge = _gauge(otel, "agentcomm.pool.connections")
            assert gauge[(host, "http", "in_use")] == 1
            assert gauge[(host, "http", "waiting")] == 1
            assert gauge[(host, "http", "idle")] == 0
        await waiter
        gauge = _gauge(otel, "agentcomm.pool.connections")
        assert gauge[(host, "http", "idle")] == 1
        assert gauge[(host, "http", "in_use")] == 0
        assert gauge[(host, "http", "waiting")] == 0


async def _borrow(pool: ConnectionPool, url: str) -> None:
    async with pool.get_connection(url):
        pass


async def test_manager_reports_health_per_client_and_check_latency(
    server: EchoServer, otel: OTel
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with ConnectionManager(meter_provider=otel.meter_provider) as manager:
        manager.register("up", HTTPClient(server.url, max_retries=0))
        manager.register("down", HTTPClient(dead, max_retries=0))
        verdicts = await manager.health_check(timeout=5)
    assert verdicts["up"].is_healthy and not verdicts["down"].is_healthy
    assert _gauge(otel, "agentcomm.manager.health") == {("up",): 1, ("down",): 0}
    points = otel.metrics()["agentcomm.manager.health_check.duration"]
    assert {p.attributes["agentcomm.client.name"]: p.count for p in points} == {"up": 1, "down": 1}


async def test_manager_telemetry_false_reports_nothing(server: EchoServer, otel: OTel) -> None:
    async with ConnectionManager(meter_provider=otel.meter_provider, telemetry=False) as manager:
        manager.register("up", HTTPClient(server.url, max_retries=0))
        await manager.health_check(timeout=5)
    assert otel.metrics() == {}
