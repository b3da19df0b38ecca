"""Every MQTT test runs on both engines: aiomqtt (the default) and gmqtt.

A test that must run on one engine only says so with
``@pytest.mark.parametrize("mqtt_engine", ["aiomqtt"], indirect=True)`` and a
comment saying why.
"""

from __future__ import annotations

import pytest

from agenticaiframework.communication.mqtt import engine


@pytest.fixture(params=["aiomqtt", "gmqtt"], autouse=True)
def mqtt_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine of clients built without ``engine=`` in this test."""
    monkeypatch.setattr(engine, "DEFAULT_ENGINE", request.param)
    return str(request.param)
