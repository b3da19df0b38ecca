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


# -- what is an error: the reference's view -------------------------------------------
#
# The reference reports in ``errors`` only what failed: an unreachable provider,
# a manual that does not validate (one bad tool fails its whole manual there),
# a security refusal. A tool left out by policy (its call template type is not in
# allowed_communication_protocols) is a logged warning, not an error. Ours lists
# such tools in ``skipped`` (name and reason) and logs them; documents we read
# but could not use a part of (a cookie parameter) go to ``warnings``.


def _compat_tools(url: str) -> list[dict[str, Any]]:
    from tests.servers.tools_app import utcp_manual

    return [t for t in utcp_manual(url)["tools"] if t["name"] != "ws_only"]


def _document(case: str, url: str) -> dict[str, Any]:
    base: dict[str, Any] = {"manual_version": "1.2.0", "utcp_version": "1.0.1"}
    tools = _compat_tools(url)
    if case in ("sse tool, default protocols", "sse tool, allowed"):
        return {**base, "tools": tools}
    if case == "duplicate tool name":
        return {**base, "tools": [*tools, tools[0]]}
    if case == "invalid tool":
        bad = {
            "name": "bad",
            "inputs": "not a schema",
            "tool_call_template": tools[0]["tool_call_template"],
        }
        return {**base, "tools": [*tools, bad]}
    if case == "unknown call template type":
        odd = {"name": "odd", "tool_call_template": {"call_template_type": "carrier-pigeon"}}
        return {**base, "tools": [*tools, odd]}
    if case == "openapi: cookie parameter, duplicate operationId":
        ok = {"responses": {"200": {"description": "ok"}}}
        cookie = {"name": "session", "in": "cookie", "schema": {"type": "string"}}
        return {
            "openapi": "3.0.3",
            "info": {"title": "t", "version": "1"},
            "servers": [{"url": url}],
            "paths": {
                "/echo": {"get": {"operationId": "echo", "parameters": [cookie], **ok}},
                "/users": {"get": {"operationId": "echo", **ok}},
            },
        }
    raise AssertionError(case)


# case -> (errors on both sides?, tools we leave out as skipped)
CASES: dict[str, tuple[bool, list[str]]] = {
    "sse tool, default protocols": (False, ["ticks"]),
    "sse tool, allowed": (False, []),
    "duplicate tool name": (False, ["get_user", "ticks"]),
    "openapi: cookie parameter, duplicate operationId": (False, ["echo"]),
    "invalid tool": (True, ["ticks"]),
    "unknown call template type": (True, ["ticks"]),
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning:aiohttp")
@pytest.mark.parametrize("case", list(CASES))
async def test_errors_hold_what_the_reference_holds(
    server: tuple[str, ToolsState], case: str, caplog: pytest.LogCaptureFixture
) -> None:
    from utcp.data.call_template import CallTemplateSerializer
    from utcp.utcp_client import UtcpClient

    url, state = server
    state.documents["m"] = _document(case, url)
    manual: dict[str, Any] = {
        "name": "api",
        "call_template_type": "http",
        "url": url + "/doc/m",
        "http_method": "GET",
    }
    if case == "sse tool, allowed":
        manual["allowed_communication_protocols"] = ["http", "sse"]
    has_errors, skipped = CASES[case]

    reference = await UtcpClient.create(config={"variables": {}})
    try:
        theirs = await reference.register_manual(CallTemplateSerializer().validate_dict(manual))
    finally:
        await reference.close()
    async with ToolClient(http_config=HTTPConfig(max_retries=0)) as ours:
        with caplog.at_level(logging.WARNING):
            mine = await ours.register_manual(manual)
        registered = [t.name for t in ours.list_tools()]

    assert bool(theirs.errors) is has_errors, theirs.errors
    assert bool(mine.errors) is has_errors, mine.errors
    assert [s.name for s in mine.skipped] == skipped
    for entry in mine.skipped:  # each one logged, with its reason
        assert any(
            entry.name in r.getMessage() and entry.reason in r.getMessage() for r in caplog.records
        )
    if not has_errors:
        # the reference registers a duplicate twice; the names are the same
        assert theirs.success and mine.success
        assert sorted(set(t.name for t in theirs.manual.tools)) == sorted(registered)
        assert [t.name for t in mine.manual.tools] == registered
    if case == "sse tool, default protocols":
        (entry,) = mine.skipped
        assert "'sse'" in entry.reason and "allowed_communication_protocols" in entry.reason
    if case.startswith("openapi"):
        (warning,) = mine.warnings
        assert "session" in warning and "cookie" in warning


def test_reference_refuses_a_remote_manual_with_a_loopback_tool() -> None:
    # What the reference does when a manual from another host points a tool at
    # this machine: its discovery raises, which it reports as a failed manual
    # (success False, the reason in errors). Ours leaves that tool out and
    # reports it in errors too (the netns test below); never in skipped.
    from utcp.data.utcp_manual import UtcpManualSerializer
    from utcp_http._security import reject_remote_loopback_tool_urls

    manual = UtcpManualSerializer().validate_dict(
        {
            "manual_version": "1",
            "utcp_version": "1.0.1",
            "tools": [
                {
                    "name": "local",
                    "tool_call_template": {
                        "call_template_type": "http",
                        "url": "http://127.0.0.1:9/echo",
                    },
                }
            ],
        }
    )
    with pytest.raises(ValueError, match="loopback"):
        reject_remote_loopback_tool_urls("https://tools.example.com/utcp", manual)


async def scenario_remote_refusal_is_an_error() -> None:
    from tests.servers.netns import REMOTE_NAME, forward

    app, state = make_tools_app()
    async with serve_asgi(app) as url, forward(int(url.rsplit(":", 1)[1])) as port:
        remote = f"http://{REMOTE_NAME}:{port}"
        state.documents["m"] = {
            "manual_version": "1",
            "utcp_version": "1.0.1",
            "tools": [
                {
                    "name": "local",
                    "tool_call_template": {"call_template_type": "http", "url": url + "/echo"},
                },
                {
                    "name": "fine",
                    "tool_call_template": {"call_template_type": "http", "url": remote + "/echo"},
                },
            ],
        }
        async with ToolClient(allow_insecure=True, http_config=HTTPConfig(max_retries=0)) as tools:
            result = await tools.register_manual(
                {"name": "m", "call_template_type": "http", "url": remote + "/doc/m"}
            )
            (error,) = result.errors
            assert "'local'" in error and "left out" in error, error
            assert result.skipped == ()
            assert [t.name for t in tools.list_tools()] == ["m.fine"]


async def test_remote_refusal_is_an_error_as_with_the_reference() -> None:
    from tests.servers import netns

    if not netns.available():
        pytest.skip("needs unshare -rnm and ip (user and network namespaces)")
    await netns.run_in_netns(scenario_remote_refusal_is_an_error)
