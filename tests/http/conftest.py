"""Every HTTP test runs on both wire engines: httpx's own transport and aiohttp's."""

from __future__ import annotations

import pytest

from agenticaiframework.communication.http import engine


@pytest.fixture(params=["httpx", "aiohttp"], autouse=True)
def wire_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine of clients built with ``transport=None`` in this test."""
    monkeypatch.setattr(engine, "DEFAULT_ENGINE", request.param)
    return str(request.param)
