"""The tools tests that call HTTP servers run on both HTTP engines: httpx's transport and aiohttp's.

Tests without I/O, those of the other protocols (WebSocket, MCP, gRPC) and
those run in a private network namespace (a child process of their own) run
once, on the default engine.
"""

from __future__ import annotations

import inspect

import pytest

from agenticaiframework.communication.http import engine

ENGINES = ["httpx", "aiohttp"]
_HTTP_SERVERS = frozenset({"tool_server", "tools_url", "server", "http_server"})
_OTHER_PROTOCOLS = ("websocket", "mcp", "grpc")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize async tests that use an HTTP server over both engines."""
    if (
        inspect.iscoroutinefunction(metafunc.function)
        and _HTTP_SERVERS & set(metafunc.fixturenames)
        and not any(word in metafunc.function.__name__ for word in _OTHER_PROTOCOLS)
    ):
        metafunc.parametrize("wire_engine", ENGINES, indirect=True)


@pytest.fixture(autouse=True)
def wire_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine of clients built with ``transport=None`` in this test."""
    name = str(getattr(request, "param", engine.DEFAULT_ENGINE))
    monkeypatch.setattr(engine, "DEFAULT_ENGINE", name)
    return name
