"""The guide's "Connection Management" snippets, as written, pointed at local servers.

Only URLs changed: ``https://api.example.com`` is the local HTTP test app and
``mqtt://broker.example.com`` a local Mosquitto. Cleanup the snippets leave to
the reader (closing the pool and the manager) happens after each snippet.
"""

from __future__ import annotations

import pytest

from tests.conftest import HTTPServer
from tests.servers.mosquitto import Mosquitto


async def test_guide_connection_pooling(http_server: HTTPServer) -> None:
    base = http_server.url

    from agenticaiframework.communication import ConnectionPool

    # Create connection pool
    pool = ConnectionPool(
        protocol="http",
        max_connections=10,
        max_connections_per_host=5,
        connection_timeout=30,
        idle_timeout=300,
    )

    # Use pooled connections
    async with pool.get_connection(base) as conn:
        response = await conn.get("/data")

    assert response.json() == {"items": [1, 2, 3], "source": "local"}
    assert pool.stats.idle == 1 and pool.stats.created == 1
    await pool.close()
    assert conn.is_closed


async def test_guide_health_checks(
    http_server: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(20)  # INFO; the snippet imports logging itself
    from agenticaiframework.communication import HTTPClient, MQTTClient

    async with Mosquitto() as broker:
        import logging

        logger = logging.getLogger(__name__)

        from agenticaiframework.communication import ConnectionManager

        manager = ConnectionManager()

        # Register connections
        manager.register("api", HTTPClient(http_server.url))
        manager.register("broker", MQTTClient(broker.url))

        # Health check all connections
        health = await manager.health_check()
        for name, status in health.items():
            logger.info(f"{name}: {'healthy' if status.is_healthy else 'unhealthy'}")

        assert {name: s.is_healthy for name, s in health.items()} == {
            "api": True,
            "broker": True,
        }
        assert "api: healthy" in caplog.text and "broker: healthy" in caplog.text
        await manager.close()
