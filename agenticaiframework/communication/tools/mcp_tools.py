"""The ``mcp`` call template: MCP servers through :class:`MCPClient`, over stdio or Streamable HTTP.

Registering connects to every server of ``config.mcpServers``: a stdio server
(``{"command": ..., "args": [...], "env": {...}, "cwd": ...}``) is started as
a child process, a server at a URL (``{"url": ...}``, ``transport`` one of
``http``, ``streamable-http``, ``sse``) is reached over Streamable HTTP (or
the 2024-11-05 HTTP+SSE transport it falls back to). Every URL is checked by
the security policy before any server is started or contacted: a manual
naming a URL the policy refuses fails whole. The session (``initialize``,
version negotiation, a new session when an HTTP server lost it) is
MCPClient's; ``tools/list`` is read in full (every page) and each MCP tool
becomes ``<manual>.<server>.<tool>`` with the tool's
``inputSchema``/``outputSchema``.

A call is ``tools/call``: ``structuredContent`` is returned when present,
else the text of a single text item (JSON decoded when it is an object or
array), else the list of content items. ``isError: true`` raises
:class:`~agenticaiframework.communication.errors.RemoteError` with the
server's text and the whole result in ``data``. The connections live until
the manual is deregistered; a stdio server that died is started again on
the next call (the call that was running when it died is not re-sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..agents.mcp.client import MCPClient
from ..core import codecs, errors
from ..core.config import merge_config
from ..core.security import check_url
from .base import Discovery, Transport, connect_cached
from .manual import Manual, Tool
from .templates import CallTemplate, McpCallTemplate, McpServer, auth_from_utcp

__all__ = ["McpTransport", "tool_result"]

_CLIENT_INFO = {"name": "agenticaiframework-tools", "version": "0.1.0"}
_HTTP_SCHEMES = frozenset({"http", "https"})


def tool_result(tool_name: str, result: Any) -> Any:
    """Turn a ``tools/call`` result into the tool's value (no I/O).

    Args:
        tool_name: For the error message.
        result: The JSON-RPC result.

    Returns:
        ``structuredContent``, the decoded single text, or the content list.

    Raises:
        RemoteError: ``isError`` is true (the server's text in the message).
        ProtocolError: The result is not an object.
    """
    if not isinstance(result, Mapping):
        raise errors.ProtocolError(f"tool {tool_name!r}: tools/call result is not an object")
    content = result.get("content") or []
    texts = [
        str(item.get("text", ""))
        for item in content
        if isinstance(item, Mapping) and item.get("type") == "text"
    ]
    if result.get("isError"):
        raise errors.RemoteError(
            f"tool {tool_name!r} failed: {' '.join(texts) or 'the MCP server reported an error'}",
            remote_code="isError",
            data=dict(result),
        )
    if result.get("structuredContent") is not None:
        return result["structuredContent"]
    if len(content) == 1 and len(texts) == 1:
        return codecs.decode(texts[0], "auto")
    return list(content)


def _mcp_tool(server_name: str, entry: Any, template: dict[str, Any]) -> Tool | str:
    """One ``tools/list`` entry as a tool, or why it cannot be one."""
    where = f"MCP server {server_name!r}: tools/list entry"
    if not isinstance(entry, Mapping):
        return f"{where} is not an object; left out"
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        return f"{where} has no name; left out"
    schemas = {}
    for field in ("inputSchema", "outputSchema"):
        value = entry.get(field) or {}
        if not isinstance(value, Mapping):
            return f"{where} {name!r}: {field} is not an object; left out"
        schemas[field] = dict(value)
    return Tool(
        name=f"{server_name}.{name}",
        description=str(entry.get("description") or ""),
        inputs=schemas["inputSchema"],
        outputs=schemas["outputSchema"],
        tags=("mcp", server_name),
        tool_call_template=template,
    )


class McpTransport(Transport):
    """``mcp`` manuals: one :class:`MCPClient` per server, kept until deregistration."""

    type_name = "mcp"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._servers: dict[str, dict[str, MCPClient]] = {}
        self._specs: dict[str, McpCallTemplate] = {}

    def _check(self, server: McpServer) -> None:
        if server.url is not None:
            check_url(server.url, allow_insecure=self.context.allow_insecure, schemes=_HTTP_SCHEMES)

    def _new_client(self, server: McpServer, template: McpCallTemplate) -> MCPClient:
        if server.url is None:
            return MCPClient(
                command=[server.command, *server.args],
                timeout=template.timeout,
                client_info=_CLIENT_INFO,
                working_dir=server.cwd,
                env=server.env or None,
                startup_timeout=template.timeout,
            )
        base = self.context.http_config
        allow = base.allow_insecure or self.context.allow_insecure
        config = merge_config(type(base), base, {"base_url": None})
        return MCPClient(
            server.url,
            timeout=template.timeout,
            client_info=_CLIENT_INFO,
            config=config,
            allow_insecure=allow,
            auth=auth_from_utcp(template.auth, allow_insecure=allow),
        )

    async def _client(self, manual_name: str, server_name: str) -> MCPClient:
        servers = self._servers.setdefault(manual_name, {})
        client = servers.get(server_name)
        if client is not None and client.failure is None:
            return client
        template = self._specs.get(manual_name)
        spec = (
            next((s for s in template.servers if s.name == server_name), None) if template else None
        )
        if template is None or spec is None:
            raise errors.ConfigError(f"manual {manual_name!r} has no MCP server {server_name!r}")
        if client is not None:  # its server exited: start it again
            del servers[server_name]
            await client.close()
        client = self._new_client(spec, template)
        return await connect_cached(servers, server_name, client, client)

    async def register_manual(self, manual_name: str, template: CallTemplate) -> Discovery:
        """Check every URL, connect to each server and list its tools."""
        assert isinstance(template, McpCallTemplate)
        for server in template.servers:  # before anything is started or contacted
            self._check(server)
        self._specs[manual_name] = template
        tools: list[Tool] = []
        problems: list[str] = []
        raw_template = template.to_dict()
        for server in template.servers:
            client = await self._client(manual_name, server.name)
            for entry in await client.list_tools():
                tool = _mcp_tool(server.name, entry, raw_template)
                if isinstance(tool, str):
                    problems.append(tool)
                else:
                    tools.append(tool)
        return Discovery(
            manual=Manual(info={"servers": [s.name for s in template.servers]}, tools=tuple(tools)),
            problems=tuple(problems),
        )

    async def deregister_manual(self, manual_name: str) -> None:
        """Close the manual's sessions (stdio servers end, HTTP sessions are deleted)."""
        self._specs.pop(manual_name, None)
        for client in self._servers.pop(manual_name, {}).values():
            await client.close()

    async def call_tool(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> Any:
        """``tools/call`` on the tool's server."""
        local = (
            tool.name[len(manual_name) + 1 :]
            if tool.name.startswith(manual_name + ".")
            else tool.name
        )
        server_name, _, mcp_name = local.partition(".")
        client = await self._client(manual_name, server_name)
        return tool_result(tool.name, await client.call_tool(mcp_name, args))

    async def close(self) -> None:
        """Close every session still open."""
        for name in list(self._servers):
            await self.deregister_manual(name)
