"""Fixtures shared by the whole suite: the HTTP test server and a clean token cache."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from agenticaiframework.communication.core.auth import clear_token_cache
from agenticaiframework.communication.testing.http import serve_asgi
from tests.servers.http_app import AppState, make_app


@dataclass
class HTTPServer:
    """A running test app: its base URL and what it saw."""

    url: str
    state: AppState


@pytest.fixture
async def http_server() -> AsyncIterator[HTTPServer]:
    """The starlette test app on a free loopback port."""
    app, state = make_app()
    async with serve_asgi(app) as url:
        yield HTTPServer(url, state)


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()
