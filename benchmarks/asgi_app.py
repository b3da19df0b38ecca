"""A minimal ASGI app for the HTTP benchmarks (served by uvicorn in a child process)."""

from __future__ import annotations

from typing import Any

BODY = b'{"status":"ok","items":[1,2,3]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every request with a small JSON body."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
