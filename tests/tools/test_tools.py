"""ToolClient over HTTP: UTCP manuals, OpenAPI (JSON and YAML), auth kinds, security."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from agenticaiframework.communication import (
    ClosedError,
    ConfigError,
    HTTPConfig,
    HTTPStatusError,
    SecurityError,
)
from agenticaiframework.communication.tools import (
    ToolClient,
    ToolNotFoundError,
    convert_openapi,
    find_variables,
    parse_manual,
    parse_template,
    substitute,
)
from agenticaiframework.communication.tools.base import Discovery
from agenticaiframework.communication.tools.http_tools import build_request
from agenticaiframework.communication.tools.manual import Manual, Tool
from agenticaiframework.communication.tools.templates import HttpCallTemplate
from tests.servers.tools_app import (
    API_KEY,
    BASIC_PASSWORD,
    BASIC_USER,
    CLIENT_ID,
    CLIENT_SECRET,
    ToolsState,
    make_tools_app,
    openapi_document,
    utcp_manual,
)
from tests.servers.uvicorn_server import serve_asgi

FAST = HTTPConfig(max_retries=0, timeout_seconds=10)


@dataclass
class ToolServer:
    url: str
    state: ToolsState


@pytest.fixture
async def tool_server() -> AsyncIterator[ToolServer]:
    app, state = make_tools_app()
    async with serve_asgi(app) as url:
        yield ToolServer(url, state)


VARS = {
    "api_API_KEY": API_KEY,
    "api_USER": BASIC_USER,
    "api_PASSWORD": BASIC_PASSWORD,
    "api_CLIENT_ID": CLIENT_ID,
    "api_CLIENT_SECRET": CLIENT_SECRET,
}


def http_manual(url: str, **extra: object) -> dict[str, object]:
    return {"name": "api", "call_template_type": "http", "url": url + "/utcp", **extra}


# -- the UTCP manual over HTTP ---------------------------------------------------


async def test_register_list_search_and_call(tool_server: ToolServer) -> None:
    async with ToolClient(variables=VARS, http_config=FAST) as tools:
        result = await tools.register_manual(http_manual(tool_server.url))
        assert result.success
        assert result.manual.manual_version == "1.2.0"
        assert result.manual.info["title"] == "Test tools"
        names = [t.name for t in tools.list_tools()]
        assert "api.get_user" in names and "api.create_user" in names
        # the sse and websocket tools are other types: left out by policy, and
        # said so in skipped (not an error, as with the reference client)
        assert "api.ticks" not in names and "api.ws_only" not in names
        assert result.errors == ()
        assert [s.name for s in result.skipped] == ["ticks", "ws_only"]
        assert "'websocket'" in result.skipped[1].reason

        found = tools.search_tools("user profile", limit=2)
        assert found[0].name == "api.get_user"
        assert tools.search_tools("anything", tags=["auth"])[0].name.startswith("api.secure_")

        user = await tools.call_tool(
            "api.get_user", {"user_id": "a b?1", "verbose": True, "X-Trace": "t-9"}
        )
        assert user == {"id": "a b?1", "verbose": "true", "trace": "t-9"}
        rec = tool_server.state.requests[-1]
        assert rec.headers["x-trace"] == "t-9"
        assert rec.query == [("verbose", "true")]

        created = await tools.call_tool(
            "api.create_user", {"body": {"name": "Ada"}, "dry_run": False}
        )
        assert created == {"created": {"name": "Ada"}, "content_type": "application/json"}
        rec = tool_server.state.last("/users")
        assert rec.method == "POST" and rec.query == [("dry_run", "false")]

        echoed = await tools.call_tool("api.echo", {"body": [1, 2]})
        assert echoed["method"] == "PUT"
        assert echoed["headers"]["x-static"] == "yes"
        assert json.loads(echoed["body"]) == [1, 2]


async def test_each_auth_kind(tool_server: ToolServer) -> None:
    async with ToolClient(variables=VARS, http_config=FAST) as tools:
        await tools.register_manual(http_manual(tool_server.url))
        assert await tools.call_tool("api.secure_header") == {"ok": "header"}
        assert await tools.call_tool("api.secure_query") == {"ok": "query"}
        assert await tools.call_tool("api.secure_cookie") == {"ok": "cookie"}
        assert await tools.call_tool("api.secure_basic") == {"ok": "basic"}
        assert await tools.call_tool("api.secure_oauth") == {"ok": "oauth"}
        assert await tools.call_tool("api.secure_oauth") == {"ok": "oauth"}
        # one token for both calls (the shared cache), credentials in the form body as UTCP does
        assert tool_server.state.token_requests == 1
        token_req = tool_server.state.last("/oauth/token")
        assert b"client_id=cid" in token_req.body
        assert tool_server.state.last("/secure/query").query == [("api_key", API_KEY)]
        # no tool without auth got any credential
        await tools.call_tool("api.get_user", {"user_id": "1"})
        rec = tool_server.state.last("/users/1")
        assert not {"authorization", "x-api-key", "cookie"} & set(rec.headers)


async def test_variables_from_environment_and_plain_names(
    tool_server: ToolServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("api_API_KEY", API_KEY)
    monkeypatch.setenv("USER", "plain names are not used for tool templates")
    async with ToolClient(use_environment=True, http_config=FAST) as tools:
        await tools.register_manual(http_manual(tool_server.url))
        assert await tools.call_tool("api.secure_header") == {"ok": "header"}
        assert "api_USER" in tools.required_variables("api")
        with pytest.raises(ConfigError, match="variable 'USER' is not set") as info:
            await tools.call_tool("api.secure_basic")
        assert "'api_USER'" in str(info.value)


async def test_tool_failure_keeps_remote_details(tool_server: ToolServer) -> None:
    async with ToolClient(http_config=FAST) as tools:
        await tools.register_manual(http_manual(tool_server.url))
        with pytest.raises(HTTPStatusError) as info:
            await tools.call_tool("api.fail", {"code": 503})
        assert info.value.status_code == 503
        assert info.value.code == "ERR_HTTP_STATUS"
        assert "api.fail" in str(info.value)
        assert json.loads(info.value.body_preview) == {"error": "tool failed", "code": 503}
        assert tools.stats.sent == 1 and tools.stats.errors == 1 and tools.stats.received == 0
        # wrong credentials: the tool's 401 comes back as an error too
        with pytest.raises(HTTPStatusError, match="401"):
            async with ToolClient(variables={"api_API_KEY": "wrong"}, http_config=FAST) as other:
                await other.register_manual(http_manual(tool_server.url))
                await other.call_tool("api.secure_header")


async def test_unknown_tool_lists_close_matches(tool_server: ToolServer) -> None:
    async with ToolClient(http_config=FAST) as tools:
        await tools.register_manual(http_manual(tool_server.url))
        with pytest.raises(ToolNotFoundError) as info:
            await tools.call_tool("api.get_usr", {})
        assert "api.get_user" in info.value.suggestions
        assert "did you mean" in str(info.value)
        with pytest.raises(ToolNotFoundError) as info:
            await tools.call_tool("other.create_user", {})
        assert "api.create_user" in info.value.suggestions
        with pytest.raises(ConfigError, match=r"missing required argument.*'user_id'"):
            await tools.call_tool("api.get_user", {})


async def test_streaming_http_yields_one_result(tool_server: ToolServer) -> None:
    async with ToolClient(http_config=FAST) as tools:
        await tools.register_manual(http_manual(tool_server.url))
        chunks = [c async for c in tools.call_tool_streaming("api.get_user", {"user_id": "7"})]
        assert chunks == [{"id": "7", "verbose": None, "trace": None}]


async def test_deregister_and_close(tool_server: ToolServer) -> None:
    tools = ToolClient(http_config=FAST)
    async with tools:
        await tools.register_manual(http_manual(tool_server.url))
        with pytest.raises(ConfigError, match="registered already"):
            await tools.register_manual(http_manual(tool_server.url))
        transport = tools._transports["http"]
        clients = list(transport._clients["api"].values())  # type: ignore[attr-defined]
        assert await tools.deregister_manual("api") is True
        assert all(c.is_closed for c in clients)
        assert tools.list_tools() == []
        assert await tools.deregister_manual("api") is False
        with pytest.raises(ToolNotFoundError):
            await tools.call_tool("api.get_user", {"user_id": "1"})
        await tools.register_manual(http_manual(tool_server.url))
    with pytest.raises(ClosedError):
        await tools.call_tool("api.get_user", {"user_id": "1"})
    with pytest.raises(ClosedError):
        await tools.register_manual(http_manual(tool_server.url))


async def test_unreachable_manual_is_a_failed_result() -> None:
    from tests.servers.ports import free_port

    async with ToolClient(http_config=FAST) as tools:
        result = await tools.register_manual(
            {
                "name": "gone",
                "call_template_type": "http",
                "url": f"http://127.0.0.1:{free_port()}/utcp",
            }
        )
        assert not result.success
        assert "ERR_CONNECTION" in result.errors[0]
        assert tools.manuals() == []
        # the name is free again
        result = await tools.register_manual(
            {
                "name": "gone",
                "call_template_type": "http",
                "url": f"http://127.0.0.1:{free_port()}/x",
            }
        )
        assert not result.success


async def test_allowed_protocols_admit_other_types(tool_server: ToolServer) -> None:
    async with ToolClient(http_config=FAST) as tools:
        result = await tools.register_manual(
            http_manual(tool_server.url, allowed_communication_protocols=["http", "sse"])
        )
        names = {t.name for t in tools.list_tools()}
        assert "api.ticks" in names and "api.ws_only" not in names
        assert result.errors == ()
        assert [s.name for s in result.skipped] == ["ws_only"]


# -- OpenAPI ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/openapi.json", "/openapi.yaml"])
async def test_openapi_document_becomes_tools(tool_server: ToolServer, path: str) -> None:
    variables = {
        "petstore_KEYAUTH_API_KEY": API_KEY,
        "petstore_BASICAUTH_USERNAME": BASIC_USER,
        "petstore_BASICAUTH_PASSWORD": BASIC_PASSWORD,
        "petstore_OAUTH_CLIENT_ID": CLIENT_ID,
        "petstore_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
    }
    async with ToolClient(variables=variables, http_config=FAST) as tools:
        result = await tools.register_manual(
            {"name": "petstore", "call_template_type": "http", "url": tool_server.url + path}
        )
        assert result.success, result.errors
        assert result.manual.info["title"] == "Test API"
        tool = tools.get_tool("petstore.getUser")
        assert tool.inputs["required"] == ["user_id"]
        assert set(tool.inputs["properties"]) == {"user_id", "verbose", "X-Trace"}
        assert tool.outputs["required"] == ["name"]  # $ref resolved
        assert "petstore.delete_echo" in {t.name for t in tools.list_tools()}

        got = await tools.call_tool("petstore.getUser", {"user_id": "u1", "X-Trace": "x"})
        assert got == {"id": "u1", "verbose": None, "trace": "x"}
        created = await tools.call_tool("petstore.createUser", {"body": {"name": "Bo"}})
        assert created["created"] == {"name": "Bo"}
        assert await tools.call_tool("petstore.secureHeader") == {"ok": "header"}
        assert await tools.call_tool("petstore.secureBasic") == {"ok": "basic"}
        assert await tools.call_tool("petstore.secureOauth") == {"ok": "oauth"}
        assert tools.search_tools("create account")[0].name == "petstore.createUser"


async def test_openapi_auth_tools_override(tool_server: ToolServer) -> None:
    async with ToolClient(http_config=FAST) as tools:
        await tools.register_manual(
            {
                "name": "p",
                "call_template_type": "http",
                "url": tool_server.url + "/openapi.json",
                "auth_tools": {
                    "auth_type": "api_key",
                    "api_key": API_KEY,
                    "var_name": "X-Api-Key",
                    "location": "header",
                },
            }
        )
        assert await tools.call_tool("p.secureHeader") == {"ok": "header"}
        # the spec request itself carried no credentials
        assert "x-api-key" not in tool_server.state.last("/openapi.json").headers


def test_openapi_converter_without_servers_uses_document_origin() -> None:
    manual, problems = convert_openapi(
        openapi_document(None), spec_url="https://api.example.com/specs/openapi.json"
    )
    assert problems == []
    urls = {t.name: t.tool_call_template["url"] for t in manual.tools}
    assert urls["getUser"] == "https://api.example.com/users/{user_id}"
    oauth = next(t for t in manual.tools if t.name == "secureOauth").tool_call_template["auth"]
    assert oauth["token_url"] == "https://api.example.com/oauth/token"
    assert oauth["scope"] == "read"


@pytest.mark.parametrize(
    "server",
    [
        "http://127.0.0.1:9200",
        "http://127.1:9200",
        "http://0.0.0.0:9200",
        "http://2130706433:9200",
        "http://[::ffff:127.0.0.1]:9200",
        "http://0x7f.1:9200",
        "http://169.254.169.254",
        "http://10.1.2.3",
        "http://localhost:9200",
    ],
)
def test_remote_openapi_may_not_point_at_this_machine(server: str) -> None:
    with pytest.raises(SecurityError, match="this machine or a private network"):
        convert_openapi(openapi_document(server), spec_url="https://api.example.com/openapi.json")
    # from this machine (or when the caller says it is not remote) it may
    manual, _ = convert_openapi(openapi_document(server), spec_url="http://127.0.0.1:1/x")
    assert manual.tools
    manual, _ = convert_openapi(
        openapi_document(server), spec_url="https://api.example.com/x", source_is_remote=False
    )
    assert manual.tools


# -- security -------------------------------------------------------------------------


async def test_insecure_manual_url_refused_before_connecting() -> None:
    async with ToolClient() as tools:
        with pytest.raises(SecurityError) as info:
            await tools.register_manual(
                {"name": "x", "call_template_type": "http", "url": "http://tools.example.com/utcp"}
            )
        assert info.value.code == "ERR_SECURITY"
        assert tools.manuals() == []


async def test_credentials_not_sent_to_another_origin(tool_server: ToolServer) -> None:
    app2, state2 = make_tools_app()
    async with serve_asgi(app2) as other, ToolClient(variables=VARS, http_config=FAST) as tools:
        await tools.register_manual(http_manual(tool_server.url))
        manual = {
            "name": "hop",
            "call_template_type": "http",
            "url": tool_server.url + "/utcp",
        }
        await tools.register_manual(manual)
        # a tool with an API key whose endpoint redirects to another origin
        hop_tool = {
            "manual_version": "1",
            "utcp_version": "1.0.1",
            "tools": [
                {
                    "name": "jump",
                    "tool_call_template": {
                        "call_template_type": "http",
                        "url": tool_server.url + "/hop",
                        "auth": {
                            "auth_type": "api_key",
                            "api_key": API_KEY,
                            "var_name": "X-Api-Key",
                        },
                        "headers": {"Authorization": "Bearer static"},
                    },
                }
            ],
        }
        manual_obj, _ = parse_manual(hop_tool)
        transport = tools._transports["http"]
        template = parse_template(manual_obj.tools[0].tool_call_template)
        result = await transport.call_tool(
            "hop", manual_obj.tools[0], template, {"to": other + "/echo"}
        )
        assert result["method"] == "GET"
        first = tool_server.state.last("/hop")
        assert first.headers["x-api-key"] == API_KEY
        landed = state2.last("/echo")
        assert "x-api-key" not in landed.headers and "authorization" not in landed.headers


async def test_remote_manual_may_not_register_loopback_tools() -> None:
    tools = ToolClient()
    found = Discovery(
        manual=Manual(
            tools=(
                Tool(
                    name="inner",
                    tool_call_template={
                        "call_template_type": "http",
                        "url": "http://127.0.0.1:9200/x",
                    },
                ),
                Tool(
                    name="outer",
                    # a public address literal: classified without a DNS query
                    tool_call_template={"call_template_type": "http", "url": "https://1.2.3.4/x"},
                ),
            )
        ),
        source_url="https://api.example.com/utcp",
    )
    template = parse_template(
        {"name": "m", "call_template_type": "http", "url": "https://api.example.com/utcp"}
    )
    admitted, problems, skipped = await tools._admit("m", template, found, True)
    assert list(admitted) == ["m.outer"]
    # a security refusal is an error (the reference fails the whole manual)
    assert "this machine" in problems[0] and skipped == []


def test_placeholder_in_host_is_refused() -> None:
    template = HttpCallTemplate.from_dict(
        {"call_template_type": "http", "url": "https://{host}:7777/admin"}
    )
    with pytest.raises(SecurityError, match="host"):
        build_request(template, {"host": "127.0.0.1"}, "t")


# -- the I/O-free model -------------------------------------------------------------


def test_manual_validation_names_tool_and_field() -> None:
    manual, problems = parse_manual(
        {
            "utcp_version": "1.0.1",
            "manual_version": "1.0.0",
            "tools": [
                {
                    "name": "ok",
                    "tool_call_template": {
                        "call_template_type": "http",
                        "url": "https://a.example/x",
                    },
                },
                {"name": "no_url", "tool_call_template": {"call_template_type": "http"}},
                {
                    "name": "bad_inputs",
                    "inputs": [1],
                    "tool_call_template": {"call_template_type": "http", "url": "https://a"},
                },
                {
                    "name": "bad_type",
                    "tool_call_template": {"call_template_type": "carrier-pigeon"},
                },
                {"description": "no name"},
                {
                    "name": "bad_method",
                    "tool_call_template": {
                        "call_template_type": "http",
                        "url": "https://a",
                        "http_method": "FETCH",
                    },
                },
            ],
        }
    )
    assert [t.name for t in manual.tools] == ["ok"]
    assert problems[0] == "tools[1] ('no_url').tool_call_template.url: required"
    assert problems[1].startswith("tools[2] ('bad_inputs').inputs: must be an object")
    assert "call_template_type" in problems[2] and "carrier-pigeon" in problems[2]
    assert problems[3] == "tools[4].name: required (a non-empty string)"
    assert "http_method" in problems[4] and "FETCH" in problems[4]
    with pytest.raises(ConfigError, match=r"manual\.tools: required"):
        parse_manual({"utcp_version": "1.0.1"})


def test_substitution_rules() -> None:
    variables = {"my__api_KEY": "namespaced", "KEY": "plain", "HOST": "h.example"}
    value = {"url": "https://${HOST}/x", "k": "$KEY", "schema": {"$ref": "#/x/$KEY"}, "n": 3}
    out = substitute(value, variables, namespace="my_api")
    assert out == {
        "url": "https://h.example/x",
        "k": "namespaced",
        "schema": {"$ref": "#/x/$KEY"},
        "n": 3,
    }
    assert substitute("${KEY}", variables) == "plain"
    assert substitute("${HOST}", variables, namespace="my_api") == "h.example"
    with pytest.raises(ConfigError, match="'my__api_HOST'"):
        substitute("${HOST}", variables, namespace="my_api", plain_names=False)
    with pytest.raises(ConfigError, match="variable 'NOPE' is not set"):
        substitute("a ${NOPE} b", variables, namespace="my_api")
    assert find_variables(value, "my_api") == ["my__api_HOST", "my__api_KEY"]


def test_utcp_manual_round_trips() -> None:
    data = utcp_manual("https://tools.example.com")
    manual, problems = parse_manual(data)
    assert problems == []
    again, _ = parse_manual(manual.to_dict())
    assert again == manual


async def test_http_tool_survives_a_cut_connection(tool_server: ToolServer) -> None:
    from agenticaiframework.communication import ConnectionError
    from tests.servers.proxy import FaultProxy

    port = int(tool_server.url.rsplit(":", 1)[1])
    config = HTTPConfig(max_retries=1, retry_delay=0.01, timeout_seconds=5)
    async with FaultProxy(port) as proxy, ToolClient(http_config=config) as tools:
        base = f"http://127.0.0.1:{proxy.port}"
        await tools.register_manual(http_manual(base))
        assert tools.get_tool("api.get_user").tool_call_template["url"].startswith(base)
        assert (await tools.call_tool("api.get_user", {"user_id": "1"}))["id"] == "1"
        await proxy.cut()  # the kept-alive connection dies: the GET is retried on a new one
        assert (await tools.call_tool("api.get_user", {"user_id": "2"}))["id"] == "2"
        proxy.refuse = True
        await proxy.cut()
        with pytest.raises(ConnectionError):
            await tools.call_tool("api.get_user", {"user_id": "3"})
        proxy.refuse = False
        assert (await tools.call_tool("api.get_user", {"user_id": "4"}))["id"] == "4"
