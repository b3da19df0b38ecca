"""A tool provider for the ToolClient tests: UTCP manual, OpenAPI document, tools.

Serves, on whatever base URL it is reached at:

- ``GET /utcp``: a UTCP 1.x manual of the tools below (http tools, one sse
  tool, one websocket tool that a plain http manual must refuse);
- ``GET /openapi.json`` and ``GET /openapi.yaml``: the same API as OpenAPI 3,
  with an API-key, a basic, a bearer and an OAuth2 client-credentials scheme;
- ``/users/{user_id}`` (GET, path + query + header arguments), ``/users`` (POST
  body), ``/echo`` (any method: answers what it received), ``/fail/{code}``;
- ``/secure/header``, ``/secure/query``, ``/secure/cookie`` (API key ``k-123``),
  ``/secure/basic`` (``ada``/``lovelace``), ``/secure/oauth`` (token from
  ``POST /oauth/token`` for client ``cid``/``csecret``);
- ``GET /ticks`` (SSE): ``count`` events ``tick`` with JSON data, then ``done``;
- ``/hop``: redirects to ``?to=<url>`` (cross-origin credential test);
- ``GET /doc/{name}``: whatever the test put in ``state.documents[name]``: an
  object as JSON, or a :class:`Served` body sent as given (YAML, a gzip bomb);
- ``/v1/users/{user_id}/profile`` and ``/v1/profile`` (path-climbing test).

Every request is recorded in :class:`ToolsState` so tests can assert on it.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

API_KEY = "k-123"
BASIC_USER, BASIC_PASSWORD = "ada", "lovelace"
CLIENT_ID, CLIENT_SECRET = "cid", "csecret"

__all__ = [
    "API_KEY",
    "BASIC_PASSWORD",
    "BASIC_USER",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "Served",
    "ToolsState",
    "make_tools_app",
    "openapi_document",
    "utcp_manual",
]


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    raw_path: str = ""


@dataclass
class Served:
    """A body served as is by ``/doc/{name}``, with its headers."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ToolsState:
    """What the app saw, the tokens it issued, and the documents it serves."""

    requests: list[Recorded] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    documents: dict[str, Any] = field(default_factory=dict)

    def last(self, path: str) -> Recorded:
        """The last request to ``path``."""
        for rec in reversed(self.requests):
            if rec.path == path:
                return rec
        raise AssertionError(f"no request to {path}; saw {[r.path for r in self.requests]}")


def utcp_manual(base: str, ws_url: str = "ws://127.0.0.1:1/ws") -> dict[str, Any]:
    """The UTCP manual served at /utcp, its URLs pointing at ``base``."""

    def http(path: str, method: str = "GET", **extra: Any) -> dict[str, Any]:
        return {"call_template_type": "http", "url": base + path, "http_method": method, **extra}

    obj = {"type": "object"}
    return {
        "manual_version": "1.2.0",
        "utcp_version": "1.0.1",
        "info": {"title": "Test tools", "version": "1.2.0", "description": "tools for tests"},
        "tools": [
            {
                "name": "get_user",
                "description": "Fetch a user profile by id",
                "tags": ["users", "profile"],
                "inputs": {
                    "type": "object",
                    "properties": {
                        "user_id": {"type": "string"},
                        "verbose": {"type": "boolean"},
                        "X-Trace": {"type": "string"},
                    },
                    "required": ["user_id"],
                },
                "outputs": obj,
                "tool_call_template": http("/users/{user_id}", header_fields=["X-Trace"]),
            },
            {
                "name": "create_user",
                "description": "Create a new user account",
                "tags": ["users"],
                "inputs": {
                    "type": "object",
                    "properties": {"body": obj, "dry_run": {"type": "boolean"}},
                    "required": ["body"],
                },
                "outputs": obj,
                "tool_call_template": http("/users", "POST", body_field="body"),
            },
            {
                "name": "echo",
                "description": "Answer with the request it received",
                "tags": ["debug"],
                "inputs": {"type": "object", "properties": {"body": obj}},
                "tool_call_template": http(
                    "/echo", "PUT", headers={"X-Static": "yes"}, body_field="body"
                ),
            },
            {
                "name": "fail",
                "description": "Always fails with the given status",
                "tags": ["debug"],
                "inputs": {"type": "object", "properties": {"code": {"type": "integer"}}},
                "tool_call_template": http("/fail/{code}"),
            },
            {
                "name": "secure_header",
                "description": "Needs an API key header",
                "tags": ["auth"],
                "tool_call_template": http(
                    "/secure/header",
                    auth={
                        "auth_type": "api_key",
                        "api_key": "${API_KEY}",
                        "var_name": "X-Api-Key",
                        "location": "header",
                    },
                ),
            },
            {
                "name": "secure_query",
                "description": "Needs an API key query parameter",
                "tags": ["auth"],
                "tool_call_template": http(
                    "/secure/query",
                    auth={
                        "auth_type": "api_key",
                        "api_key": "${API_KEY}",
                        "var_name": "api_key",
                        "location": "query",
                    },
                ),
            },
            {
                "name": "secure_cookie",
                "description": "Needs an API key cookie",
                "tags": ["auth"],
                "tool_call_template": http(
                    "/secure/cookie",
                    auth={
                        "auth_type": "api_key",
                        "api_key": "${API_KEY}",
                        "var_name": "session",
                        "location": "cookie",
                    },
                ),
            },
            {
                "name": "secure_basic",
                "description": "Needs basic auth",
                "tags": ["auth"],
                "tool_call_template": http(
                    "/secure/basic",
                    auth={"auth_type": "basic", "username": "${USER}", "password": "${PASSWORD}"},
                ),
            },
            {
                "name": "secure_oauth",
                "description": "Needs an OAuth2 client-credentials token",
                "tags": ["auth"],
                "tool_call_template": http(
                    "/secure/oauth",
                    auth={
                        "auth_type": "oauth2",
                        "token_url": base + "/oauth/token",
                        "client_id": "${CLIENT_ID}",
                        "client_secret": "${CLIENT_SECRET}",
                        "scope": "read",
                    },
                ),
            },
            {
                "name": "ticks",
                "description": "Stream numbered tick events",
                "tags": ["stream"],
                "inputs": {"type": "object", "properties": {"count": {"type": "integer"}}},
                "tool_call_template": {
                    "call_template_type": "sse",
                    "url": base + "/ticks",
                    "event_type": "tick",
                },
            },
            {
                "name": "ws_only",
                "description": "A websocket tool an http manual may not register by default",
                "tool_call_template": {"call_template_type": "websocket", "url": ws_url},
            },
        ],
    }


def openapi_document(base: str | None) -> dict[str, Any]:
    """The OpenAPI 3 document of the same API (``servers`` omitted when base is None)."""
    user = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
        "required": ["name"],
    }
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "Test API", "version": "2.0.0"},
        "components": {
            "schemas": {"User": user},
            "parameters": {
                "UserId": {
                    "name": "user_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
            "securitySchemes": {
                "keyAuth": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "basicAuth": {"type": "http", "scheme": "basic"},
                "oauth": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "/oauth/token",
                            "scopes": {"read": "read things"},
                        }
                    },
                },
            },
        },
        "paths": {
            "/users/{user_id}": {
                "parameters": [{"$ref": "#/components/parameters/UserId"}],
                "get": {
                    "operationId": "getUser",
                    "summary": "Fetch a user profile by id",
                    "tags": ["users"],
                    "parameters": [
                        {"name": "verbose", "in": "query", "schema": {"type": "boolean"}},
                        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/User"}
                                }
                            },
                        }
                    },
                },
            },
            "/users": {
                "post": {
                    "operationId": "createUser",
                    "summary": "Create a new user account",
                    "tags": ["users"],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/User"}}
                        },
                    },
                    "responses": {"201": {"description": "created"}},
                }
            },
            "/echo": {
                "delete": {"summary": "Echo a delete", "responses": {"200": {"description": "ok"}}}
            },
            "/secure/header": {
                "get": {
                    "operationId": "secureHeader",
                    "security": [{"keyAuth": []}],
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/secure/basic": {
                "get": {
                    "operationId": "secureBasic",
                    "security": [{"basicAuth": []}],
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/secure/oauth": {
                "get": {
                    "operationId": "secureOauth",
                    "security": [{"oauth": ["read"]}],
                    "responses": {"200": {"description": "ok"}},
                }
            },
        },
    }
    if base is not None:
        doc["servers"] = [{"url": base}]
    return doc


def _bad(message: str, status: int = 401) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def make_tools_app() -> tuple[Starlette, ToolsState]:
    """Build the app and the state it records into."""
    state = ToolsState()

    async def record(request: Request) -> Recorded:
        rec = Recorded(
            method=request.method,
            path=request.url.path,
            query=list(request.query_params.multi_items()),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            raw_path=request.scope.get("raw_path", b"").decode("latin-1"),
        )
        state.requests.append(rec)
        return rec

    def base_of(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def manual(request: Request) -> Response:
        await record(request)
        ws_url = request.query_params.get("ws", "ws://127.0.0.1:1/ws")
        body = utcp_manual(base_of(request), ws_url)
        if request.query_params.get("compat") == "1":
            # what the reference utcp 1.2 + utcp-http accept: no "info", no websocket tool
            del body["info"]
            body["tools"] = [t for t in body["tools"] if t["name"] != "ws_only"]
        return JSONResponse(body)

    async def openapi_json(request: Request) -> Response:
        await record(request)
        with_servers = request.query_params.get("servers", "1") == "1"
        return JSONResponse(openapi_document(base_of(request) if with_servers else None))

    async def openapi_yaml(request: Request) -> Response:
        import yaml

        await record(request)
        text = yaml.safe_dump(openapi_document(base_of(request)), sort_keys=False)
        return PlainTextResponse(text, media_type="application/yaml")

    async def user(request: Request) -> Response:
        rec = await record(request)
        return JSONResponse(
            {
                "id": request.path_params["user_id"],
                "verbose": request.query_params.get("verbose"),
                "trace": rec.headers.get("x-trace"),
            }
        )

    async def create_user(request: Request) -> Response:
        rec = await record(request)
        body = json.loads(rec.body or b"null")
        return JSONResponse({"created": body, "content_type": rec.headers.get("content-type")}, 201)

    async def echo(request: Request) -> Response:
        rec = await record(request)
        return JSONResponse(
            {
                "method": rec.method,
                "query": rec.query,
                "headers": rec.headers,
                "body": rec.body.decode("utf-8", "replace"),
            }
        )

    async def fail(request: Request) -> Response:
        await record(request)
        code = int(request.path_params["code"])
        return JSONResponse({"error": "tool failed", "code": code}, status_code=code)

    async def secure_header(request: Request) -> Response:
        rec = await record(request)
        if rec.headers.get("x-api-key") != API_KEY:
            return _bad("bad api key header")
        return JSONResponse({"ok": "header"})

    async def secure_query(request: Request) -> Response:
        await record(request)
        if request.query_params.get("api_key") != API_KEY:
            return _bad("bad api key query")
        return JSONResponse({"ok": "query"})

    async def secure_cookie(request: Request) -> Response:
        await record(request)
        if request.cookies.get("session") != API_KEY:
            return _bad("bad api key cookie")
        return JSONResponse({"ok": "cookie"})

    async def secure_basic(request: Request) -> Response:
        rec = await record(request)
        expected = "Basic " + base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
        if rec.headers.get("authorization") != expected:
            return _bad("bad basic credentials")
        return JSONResponse({"ok": "basic"})

    async def token(request: Request) -> Response:
        await record(request)
        state.token_requests += 1
        form = await request.form()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return _bad("invalid_client")
        value = secrets.token_hex(8)
        state.tokens.add(value)
        return JSONResponse({"access_token": value, "token_type": "Bearer", "expires_in": 3600})

    async def secure_oauth(request: Request) -> Response:
        rec = await record(request)
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in state.tokens:
            return _bad("bad token")
        return JSONResponse({"ok": "oauth"})

    async def ticks(request: Request) -> Response:
        await record(request)
        count = int(request.query_params.get("count", "3"))

        async def events() -> AsyncIterator[dict[str, Any]]:
            yield {"event": "hello", "data": "ignored by the event_type filter"}
            for i in range(count):
                yield {"event": "tick", "id": str(i), "data": json.dumps({"n": i})}
            yield {"event": "done", "data": "bye"}

        return EventSourceResponse(events(), ping=3600)

    async def hop(request: Request) -> Response:
        await record(request)
        return RedirectResponse(request.query_params["to"], status_code=307)

    async def document(request: Request) -> Response:
        await record(request)
        doc = state.documents.get(request.path_params["name"])
        if doc is None:
            return _bad("no such document", 404)
        if isinstance(doc, Served):
            return Response(doc.body, headers=doc.headers)
        return JSONResponse(doc)

    async def user_profile(request: Request) -> Response:
        await record(request)
        return JSONResponse({"profile_of": request.path_params["user_id"]})

    async def own_profile(request: Request) -> Response:
        await record(request)
        return JSONResponse({"profile_of": "the caller (the path climbed out)"})

    routes = [
        Route("/utcp", manual),
        Route("/openapi.json", openapi_json),
        Route("/openapi.yaml", openapi_yaml),
        Route("/users/{user_id}", user),
        Route("/users", create_user, methods=["POST"]),
        Route("/echo", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/fail/{code:int}", fail),
        Route("/secure/header", secure_header),
        Route("/secure/query", secure_query),
        Route("/secure/cookie", secure_cookie),
        Route("/secure/basic", secure_basic),
        Route("/secure/oauth", secure_oauth),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/ticks", ticks),
        Route("/hop", hop),
        Route("/doc/{name}", document),
        Route("/v1/users/{user_id}/profile", user_profile),
        Route("/v1/profile", own_profile),
    ]
    return Starlette(routes=routes), state


def app_factory() -> Starlette:
    """The app alone (``uvicorn --factory tests.servers.tools_app:app_factory``)."""
    return make_tools_app()[0]
