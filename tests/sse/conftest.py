"""The SSE tests that touch the wire run on both HTTP engines: httpx's transport and aiohttp's.

The decoder's tests (no I/O, plain functions) run once.
"""

from __future__ import annotations

import inspect

import pytest

from agenticaiframework.communication.http import engine

ENGINES = ["httpx", "aiohttp"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every async test (they all talk to a server) over both engines."""
    if inspect.iscoroutinefunction(metafunc.function):
        metafunc.parametrize("wire_engine", ENGINES, indirect=True)


@pytest.fixture(autouse=True)
def wire_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine of clients built with ``transport=None`` in this test."""
    name = str(getattr(request, "param", engine.DEFAULT_ENGINE))
    monkeypatch.setattr(engine, "DEFAULT_ENGINE", name)
    return name
