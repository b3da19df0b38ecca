"""An OAuth-protected MCP server of our own whose metadata and endpoints misbehave on request.

``make_app(state)`` serves ``/mcp`` (the MCP server of ``mcp_hostile.py``)
behind a bearer check: ``Authorization: Bearer <state.good_token>`` passes,
anything else gets ``state.status`` (401) with ``state.challenge`` as
``WWW-Authenticate`` and ``state.challenge_body``. Every other path answers
from ``state.responses[(method, path)]`` = (status, content type, body), else
404 (a 3xx redirects to the body). ``state.seen`` records (method, path, headers, body) of every request
outside ``/mcp``; ``state.mcp_auth`` the Authorization header of each /mcp one.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .mcp_hostile import HostileState
from .mcp_hostile import make_app as make_mcp_app

__all__ = ["AuthHostileState", "make_app", "metadata_documents"]


@dataclasses.dataclass
class AuthHostileState:
    """What the app answers and what it saw."""

    good_token: str = "good-token"
    status: int = 401
    challenge: str = ""
    challenge_body: bytes = b'{"error": "invalid_token"}'
    responses: dict[tuple[str, str], tuple[int, str, bytes]] = dataclasses.field(
        default_factory=dict
    )
    seen: list[tuple[str, str, dict[str, str], bytes]] = dataclasses.field(default_factory=list)
    mcp_auth: list[str | None] = dataclasses.field(default_factory=list)
    mcp: HostileState = dataclasses.field(default_factory=HostileState)

    def json(self, method: str, path: str, body: Any, status: int = 200) -> None:
        """Answer ``method path`` with a JSON body."""
        self.responses[(method, path)] = (status, "application/json", json.dumps(body).encode())

    def paths(self, method: str = "GET") -> list[str]:
        """The paths requested with ``method``, in order."""
        return [path for verb, path, _, _ in self.seen if verb == method]


def metadata_documents(state: AuthHostileState, base: str, **as_fields: Any) -> dict[str, Any]:
    """Serve sound metadata (PRM at /prm, RFC 8414 at the root), registration and token endpoints.

    Returns:
        The authorization server metadata served (``as_fields`` merged in).
    """
    state.challenge = f'Bearer error="invalid_token", resource_metadata="{base}/prm"'
    state.json(
        "GET",
        "/prm",
        {"resource": f"{base}/mcp", "authorization_servers": [base], "scopes_supported": ["mcp"]},
    )
    document = {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "registration_endpoint": f"{base}/register",
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        **as_fields,
    }
    state.json("GET", "/.well-known/oauth-authorization-server", document)
    state.json(
        "POST", "/register", {"client_id": "dynamic", "token_endpoint_auth_method": "none"}, 201
    )
    state.json(
        "POST",
        "/token",
        {"access_token": state.good_token, "token_type": "Bearer", "expires_in": 3600},
    )
    return document


def make_app(state: AuthHostileState) -> Any:
    """The app; see the module docstring."""
    mcp_app = make_mcp_app(state.mcp)

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        given = headers.get("authorization")
        state.mcp_auth.append(given)
        if given == f"Bearer {state.good_token}":
            await mcp_app(scope, receive, send)
            return
        response = Response(
            state.challenge_body,
            status_code=state.status,
            headers={"WWW-Authenticate": state.challenge} if state.challenge else {},
            media_type="application/json",
        )
        await response(scope, receive, send)

    async def other(request: Request) -> Response:
        body = await request.body()
        state.seen.append((request.method, request.url.path, dict(request.headers), body))
        answer = state.responses.get((request.method, request.url.path))
        if answer is None:
            return Response(b"not here", status_code=404)
        status, ctype, content = answer
        if 300 <= status < 400:  # a redirect: the body is where to
            return Response(status_code=status, headers={"Location": content.decode()})
        return Response(content, status_code=status, media_type=ctype)

    class Router:
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == "/mcp":
                await guarded(scope, receive, send)
            else:
                await app(scope, receive, send)

    app = Starlette(routes=[Route("/{path:path}", other, methods=["GET", "POST", "DELETE"])])
    return Router()
