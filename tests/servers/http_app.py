"""A starlette app for the HTTP tests: echo, statuses, flaky endpoints, redirects, OAuth2.

``make_app()`` returns ``(app, state)``; the state records what the server saw
so tests can assert on it (request counts, headers, tokens issued).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class AppState:
    """What the test server saw and how it should behave."""

    hits: dict[str, int] = field(default_factory=dict)
    flaky_failures: int = 2
    retry_after: str | None = None
    last_headers: dict[str, str] = field(default_factory=dict)
    token_requests: int = 0
    token_expires_in: Any = 3600
    token_forms: list[dict[str, str]] = field(default_factory=list)
    token_delay: float = 0.0
    revoked: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)
    redirect_target: str = ""
    client_id: str = "client-1"
    client_secret: str = "s3cret-value"

    def hit(self, name: str) -> int:
        self.hits[name] = self.hits.get(name, 0) + 1
        return self.hits[name]


def make_app() -> tuple[Starlette, AppState]:
    """Build the app and its state."""
    state = AppState()
    counter = itertools.count(1)

    async def data(request: Request) -> Response:
        state.hit("data")
        return JSONResponse({"items": [1, 2, 3], "source": "local"})

    async def users(request: Request) -> Response:
        state.hit(f"users:{request.method}")
        body = await request.json() if request.method in ("POST", "PUT", "PATCH") else None
        return JSONResponse(
            {
                "method": request.method,
                "params": dict(request.query_params),
                "json": body,
                "id": request.path_params.get("user_id"),
            },
            status_code=201 if request.method == "POST" else 200,
        )

    async def echo(request: Request) -> Response:
        state.hit("echo")
        state.last_headers = dict(request.headers)
        raw = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "headers": dict(request.headers),
                "params": dict(request.query_params),
                "body": raw.decode("utf-8", "replace"),
            }
        )

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        state.hit(f"status:{code}")
        headers = {"Retry-After": state.retry_after} if state.retry_after else None
        return PlainTextResponse(f"status {code}", status_code=code, headers=headers)

    async def flaky(request: Request) -> Response:
        n = state.hit(f"flaky:{request.method}")
        if n <= state.flaky_failures:
            headers = {"Retry-After": state.retry_after} if state.retry_after else None
            return PlainTextResponse("busy", status_code=503, headers=headers)
        return JSONResponse({"ok": True, "attempts": n})

    async def slow(request: Request) -> Response:
        await asyncio.sleep(float(request.query_params.get("s", "2")))
        return PlainTextResponse("late")

    async def redirect(request: Request) -> Response:
        state.hit("redirect")
        return RedirectResponse(state.redirect_target, status_code=302)

    async def redirect_local(request: Request) -> Response:
        return RedirectResponse("/echo", status_code=302)

    async def big(request: Request) -> Response:
        size = int(request.query_params.get("n", "1000000"))
        return Response(b"x" * size, media_type="application/octet-stream")

    async def token(request: Request) -> Response:
        state.token_requests += 1
        if state.token_delay:
            await asyncio.sleep(state.token_delay)
        form = await request.form()
        state.token_forms.append({k: str(v) for k, v in form.items()})
        auth = request.headers.get("authorization", "")
        expected = (
            "Basic "
            + base64.b64encode(f"{state.client_id}:{state.client_secret}".encode()).decode()
        )
        if form.get("grant_type") != "client_credentials" or auth != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        value = f"tok-{next(counter)}"
        state.issued.append(value)
        return JSONResponse(
            {"access_token": value, "token_type": "Bearer", "expires_in": state.token_expires_in}
        )

    async def protected(request: Request) -> Response:
        state.hit("protected")
        auth = request.headers.get("authorization", "")
        value = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or value not in state.issued or value in state.revoked:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"token": value})

    async def deep(request: Request) -> Response:
        depth = int(request.query_params.get("n", "100000"))
        return Response("[" * depth + "]" * depth, media_type="application/json")

    async def encoded(request: Request) -> Response:
        text = '{"name": "Zoë"}'
        return Response(text.encode(request.query_params["enc"]), media_type="application/json")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes: list[Any] = [
        # An API root that answers, as real ones do: health_check() of a bare base URL.
        Route("/", health),
        Route("/data", data),
        Route("/health", health),
        Route("/users", users, methods=["GET", "POST"]),
        Route("/users/{user_id}", users, methods=["GET", "PUT", "PATCH", "DELETE"]),
        Route("/echo", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        Route("/status/{code:int}", status, methods=["GET", "POST"]),
        Route("/flaky", flaky, methods=["GET", "POST", "PUT"]),
        Route("/slow", slow),
        Route("/redirect", redirect),
        Route("/redirect-local", redirect_local),
        Route("/big", big),
        Route("/token", token, methods=["POST"]),
        Route("/protected", protected),
        Route("/deep", deep),
        Route("/encoded", encoded),
    ]
    return Starlette(routes=routes), state
