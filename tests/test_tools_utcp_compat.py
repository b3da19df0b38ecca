"""The same manual and call through the reference ``utcp``/``utcp-http`` packages and ours.

Skipped when the reference packages are not installed (they are in the
``dev`` extra). Both clients call the same loopback server; the requests it
records must match: method, path, query, argument headers, auth and body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from agenticaiframework.communication import HTTPConfig
from agenticaiframework.communication.tools import ToolClient
from tests.servers.tools_app import (
    API_KEY,
    BASIC_PASSWORD,
    BASIC_USER,
    Recorded,
    ToolsState,
    make_tools_app,
)
from tests.servers.uvicorn_server import serve_asgi

pytest.importorskip("utcp")
pytest.importorskip("utcp_http")

VARS = {"api_API_KEY": API_KEY, "api_USER": BASIC_USER, "api_PASSWORD": BASIC_PASSWORD}
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("api.get_user", {"user_id": "u 1", "verbose": "yes", "X-Trace": "t-1"}),
    ("api.create_user", {"body": {"name": "Ada", "tags": ["x"]}, "dry_run": "no"}),
    ("api.echo", {"body": {"k": 1}}),
    ("api.secure_header", {}),
    ("api.secure_query", {}),
    ("api.secure_cookie", {}),
    ("api.secure_basic", {}),
]
COMPARED_HEADERS = ("x-trace", "x-static", "x-api-key", "authorization", "cookie", "content-type")


@pytest.fixture(autouse=True)
def _keep_root_logging() -> Iterator[None]:
    # utcp_http calls logging.basicConfig(INFO) when its plugin loads: undo that.
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, ToolsState]]:
    app, state = make_tools_app()
    async with serve_asgi(app) as url:
        yield url, state


def shape(rec: Recorded) -> dict[str, Any]:
    ctype = rec.headers.get("content-type", "")
    return {
        "method": rec.method,
        "path": rec.path,
        "query": sorted(rec.query),
        "headers": {h: rec.headers.get(h) for h in COMPARED_HEADERS if h != "content-type"},
        "content_type": ctype.split(";")[0] or None,
        "body": json.loads(rec.body) if rec.body else None,
    }


# aiohttp (under the reference client) deprecates its BasicAuth helper
@pytest.mark.filterwarnings("ignore::DeprecationWarning:aiohttp")
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .auth. parameter is deprecated:DeprecationWarning")
async def test_same_requests_as_the_reference_client(server: tuple[str, ToolsState]) -> None:
    from utcp.utcp_client import UtcpClient

    url, state = server
    manual = {
        "name": "api",
        "call_template_type": "http",
        "url": url + "/utcp?compat=1",
        "http_method": "GET",
    }

    reference = await UtcpClient.create(
        config={"variables": VARS, "manual_call_templates": [manual]}
    )
    try:
        state.requests.clear()
        for name, args in CALLS:
            await reference.call_tool(name, dict(args))
        theirs = [shape(r) for r in state.requests]
    finally:
        close = getattr(reference, "close", None)
        if close is not None:
            await close()

    async with ToolClient(variables=VARS, http_config=HTTPConfig(max_retries=0)) as ours:
        await ours.register_manual(manual)
        state.requests.clear()
        for name, args in CALLS:
            await ours.call_tool(name, dict(args))
        mine = [shape(r) for r in state.requests]

    assert len(mine) == len(theirs) == len(CALLS)
    for (name, _), a, b in zip(CALLS, mine, theirs, strict=True):
        assert a == b, name
