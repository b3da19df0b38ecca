"""Every WebSocket test runs on both engines: websockets and picows."""

from __future__ import annotations

import pytest

from agenticaiframework.communication.websocket import engine


@pytest.fixture(params=["websockets", "picows"], autouse=True)
def ws_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine of clients built with ``engine=None`` in this test."""
    monkeypatch.setattr(engine, "DEFAULT_ENGINE", request.param)
    return str(request.param)
