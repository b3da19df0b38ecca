"""The demo's MCP server: a few tools served over stdio with the ``mcp`` package.

``agentcomm demo`` starts it as ``python -m agenticaiframework.communication.testing.mcp_child``
and talks to it through :class:`~agenticaiframework.communication.STDIOClient`
in JSON-RPC mode. It needs the ``mcp`` package (the ``demo`` extra).
"""

from __future__ import annotations

import warnings

__all__ = ["main"]


def main() -> None:
    """Serve the demo tools on stdin/stdout until stdin closes."""
    # The mcp package warns about its own deprecated logging capability on stderr.
    warnings.simplefilter("ignore")
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("agentcomm-demo")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def word_count(text: str) -> int:
        """Count the words of a text."""
        return len(text.split())

    server.run("stdio")


if __name__ == "__main__":
    main()
