"""The official ``mcp`` package's server with every feature MCPClient uses, for the tests.

Run as a child process (the SDK warns about deprecated capabilities, which the
test run would turn into errors in-process)::

    python -m tests.servers.mcp_full_server stdio
    python -m tests.servers.mcp_full_server http PORT [--json] [--stateless] [--retry-ms N]
    python -m tests.servers.mcp_full_server sse PORT    # the 2024-11-05 HTTP+SSE transport
    python -m tests.servers.mcp_full_server http PORT --auth TOKEN   # an OAuth resource server

In HTTP modes it prints ``READY <port>`` once listening on 127.0.0.1 (the
HTTP+SSE stream is at ``/sse``).

Tools: ``add``, ``echo``, ``fail``, ``announce`` (shared with ``mcp_server.py``), ``slow(seconds, marker)`` (writes ``marker`` when
cancelled), ``progress(steps)``, ``ask()`` (elicitation; returns the raw
content the client sent), ``sample(prompt)`` (sampling), ``roots()``
(roots/list), ``touch(uri)`` (sends resources/updated), ``cut(marker)``
(in SSE mode with an event store: closes its response stream once, then
answers), ``drip(count, marker)`` (logs slowly, then answers). Resources ``test://greeting`` and ``test://items/{item}``; prompt
``review(code)`` with completion of ``language``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import warnings

warnings.simplefilter("ignore")

from mcp.server.mcpserver import Context, MCPServer  # noqa: E402
from mcp.types import (  # noqa: E402
    Completion,
    PromptReference,
    SamplingMessage,
    TextContent,
)

from tests.servers.mcp_server import add_basic_tools  # noqa: E402

server = MCPServer("mcp-full-test", instructions="test server")
add_basic_tools(server)


@server.tool()
async def slow(seconds: float, marker: str = "") -> str:
    """Sleep; write ``marker`` (a file path) when cancelled."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        if marker:
            with open(marker, "w") as fh:
                fh.write("cancelled")
        raise
    return "slept"


@server.tool()
async def progress(steps: int, ctx: Context) -> str:
    """Report ``steps`` progress notifications, then answer."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
    return "done"


@server.tool()
async def ask(ctx: Context) -> str:
    """Elicit a name (required) and an age (default 42); return what the client sent."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "default": 42},
        },
        "required": ["name"],
    }
    result = await ctx.session.elicit_form("who are you?", schema, ctx.request_context.request_id)
    return json.dumps({"action": result.action, "content": result.content})


@server.tool()
async def sample(prompt: str, ctx: Context) -> str:
    """Ask the client's model; return its text."""
    result = await ctx.session.create_message(
        [SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
        max_tokens=10,
        related_request_id=ctx.request_context.request_id,
    )
    content = result.content
    return content.text if isinstance(content, TextContent) else repr(content)


@server.tool()
async def roots(ctx: Context) -> list[str]:
    """The client's roots."""
    result = await ctx.session.list_roots()
    return [str(root.uri) for root in result.roots]


@server.tool()
async def touch(uri: str, ctx: Context) -> str:
    """Send notifications/resources/updated for ``uri``."""
    await ctx.session.send_resource_updated(uri)
    return "touched"


_cut_done: set[str] = set()


@server.tool()
async def cut(marker: str, ctx: Context) -> str:
    """Close this request's SSE stream once (the client resumes), then answer."""
    await ctx.info("before the cut")
    if marker not in _cut_done:
        _cut_done.add(marker)
        await ctx.close_sse_stream()
        await asyncio.sleep(0.3)
        await ctx.info("after the cut")
        with open(marker, "a") as fh:
            fh.write("run\n")
    return "survived the cut"


@server.tool()
async def drip(count: int, marker: str, ctx: Context) -> str:
    """Send ``count`` log messages 0.2 s apart, then answer (a stream to cut mid-way)."""
    for index in range(count):
        await ctx.info(f"drip {index}")
        await asyncio.sleep(0.2)
    with open(marker, "a") as fh:
        fh.write("run\n")
    return "dripped"


@server.resource("test://greeting")
def greeting() -> str:
    """A fixed text."""
    return "hello"


@server.resource("test://items/{item}")
def item(item: str) -> str:
    """An item by name."""
    return f"item {item}"


@server.prompt()
def review(code: str, language: str = "python") -> str:
    """Ask for a review."""
    return f"Review this {language} code: {code}"


@server.completion()
async def complete(ref: object, argument: object, context: object) -> Completion | None:
    """Complete the ``language`` argument of ``review``."""
    if isinstance(ref, PromptReference) and getattr(argument, "name", "") == "language":
        value = getattr(argument, "value", "")
        return Completion(values=[v for v in ("python", "perl", "php") if v.startswith(value)])
    return None


def _require_token(token: str, port: int) -> None:
    """Make the server an OAuth resource server accepting only ``token`` (scope ``mcp``)."""
    from mcp.server.auth.provider import AccessToken
    from mcp.server.auth.settings import AuthSettings

    class OneToken:
        async def verify_token(self, presented: str) -> AccessToken | None:
            if presented != token:
                return None
            return AccessToken(token=presented, client_id="tests", scopes=["mcp"])

    # The SDK takes these in its constructor only; the tools are registered on this one.
    server.settings.auth = AuthSettings(
        issuer_url="http://127.0.0.1:9/",  # type: ignore[arg-type]
        resource_server_url=f"http://127.0.0.1:{port}/mcp",  # type: ignore[arg-type]
        required_scopes=["mcp"],
    )
    server._token_verifier = OneToken()  # type: ignore[assignment]


async def _serve_http(
    port: int,
    *,
    json_response: bool,
    stateless: bool,
    retry_ms: int,
    legacy: bool = False,
    auth_token: str | None = None,
) -> None:
    import uvicorn
    from mcp.server.streamable_http import EventMessage, EventStore

    class MemoryEventStore(EventStore):
        """Keeps every event, so a cut stream can be resumed."""

        def __init__(self) -> None:
            self.events: list[tuple[str, str, object]] = []

        async def store_event(self, stream_id: str, message: object) -> str:
            event_id = str(len(self.events) + 1)
            self.events.append((event_id, stream_id, message))
            return event_id

        async def replay_events_after(self, last_event_id: str, send_callback: object) -> str:
            stream = next((s for e, s, _ in self.events if e == last_event_id), None)
            for event_id, stream_id, message in self.events:
                if stream_id == stream and int(event_id) > int(last_event_id) and message:
                    await send_callback(EventMessage(message, event_id))  # type: ignore[operator]
            return stream or ""

    # IPPROTO_TCP named: asyncio then sets TCP_NODELAY on each connection, as it
    # does when it binds the port itself (with proto 0 it does not, and Nagle
    # holds back the small writes of an event stream).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))  # bound first: the auth settings name the port
    port = sock.getsockname()[1]
    if auth_token is not None:
        _require_token(auth_token, port)
    if legacy:
        app = server.sse_app()
    else:
        app = server.streamable_http_app(
            json_response=json_response,
            stateless_http=stateless,
            event_store=None if stateless or json_response else MemoryEventStore(),
            retry_interval=retry_ms,
        )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="none"
    )
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    while not uv.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.01)
    bound = uv.servers[0].sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    await task


def main(argv: list[str]) -> None:
    """Entry point: ``stdio`` or ``http PORT [--json] [--stateless] [--retry-ms N]``."""
    if argv[:1] == ["sse"]:
        asyncio.run(
            _serve_http(int(argv[1]), json_response=False, stateless=False, retry_ms=0, legacy=True)
        )
    elif argv[:1] == ["http"]:
        retry_ms = int(argv[argv.index("--retry-ms") + 1]) if "--retry-ms" in argv else 200
        asyncio.run(
            _serve_http(
                int(argv[1]),
                json_response="--json" in argv,
                stateless="--stateless" in argv,
                retry_ms=retry_ms,
                auth_token=argv[argv.index("--auth") + 1] if "--auth" in argv else None,
            )
        )
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        server.run("stdio")


if __name__ == "__main__":
    main(sys.argv[1:])
