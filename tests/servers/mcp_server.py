"""A real MCP server (``mcp`` package server API) on stdio, for the tests.

Tools: ``add(a, b)``, ``echo(text)``, ``fail(reason)`` (always raises, so
the server answers with ``isError: true``) and ``announce(text)`` (sends a
log notification to the client before answering). The same tools are part
of ``mcp_full_server.py`` (:func:`add_basic_tools`).
"""

from __future__ import annotations

import warnings

from mcp.server.mcpserver import Context, MCPServer

warnings.simplefilter("ignore")  # deprecation notes of the logging capability


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


def fail(reason: str) -> str:
    """Always fail with the given reason."""
    raise ValueError(reason)


async def announce(text: str, ctx: Context) -> str:
    """Send ``text`` to the client as a log notification, then return it."""
    await ctx.info(text)
    return f"announced {text}"


def add_basic_tools(server: MCPServer) -> None:
    """Register ``add``, ``echo``, ``fail`` and ``announce`` on ``server``."""
    for tool in (add, echo, fail, announce):
        server.tool()(tool)


server = MCPServer("agenticaiframework-test")
add_basic_tools(server)


if __name__ == "__main__":
    server.run("stdio")
