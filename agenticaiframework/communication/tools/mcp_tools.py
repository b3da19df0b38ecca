"""The ``mcp`` call template: MCP servers over STDIOClient (JSON-RPC on stdio).

Registering starts every server of ``config.mcpServers`` as a child process
(JSON-RPC over stdio), runs ``initialize`` / ``notifications/initialized`` and
reads ``tools/list`` (following ``nextCursor``); each MCP tool becomes
``<manual>.<server>.<tool>`` with the tool's ``inputSchema``/``outputSchema``.
A call is ``tools/call``: ``structuredContent`` is returned when present,
else the text of a single text item (JSON decoded when it is an object or
array), else the list of content items. ``isError: true`` raises
:class:`~agenticaiframework.communication.errors.RemoteError` with the
server's text and the whole result in ``data``. The processes live until the
manual is deregistered; one that died is started again on the next call.

Servers reached over Streamable HTTP (``{"url": ...}`` entries) are not
supported yet (they need an MCP client over HTTP): a manual that names one
fails to register, with ``success=False`` and the reason in ``errors``
(code ``ERR_NOT_SUPPORTED``), before any server is started or contacted; the
reference client likewise fails a manual whose server it cannot use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core import codecs, errors
from ..core.security import redact_url
from .base import Discovery, Transport
from .manual import Manual, Tool
from .templates import CallTemplate, McpCallTemplate, McpServer

if TYPE_CHECKING:
    from ..stdio.client import STDIOClient

__all__ = ["MCP_PROTOCOL_VERSION", "NOT_SUPPORTED", "McpTransport", "tool_result"]

MCP_PROTOCOL_VERSION = "2025-06-18"
_CLIENT_INFO = {"name": "agenticaiframework-tools", "version": "0.1.0"}
_MAX_PAGES = 100

NOT_SUPPORTED = "ERR_NOT_SUPPORTED"
"""The code of the error for an MCP server the tool client cannot use yet."""


def not_supported(servers: list[McpServer]) -> errors.CommunicationError:
    """The error for MCP servers reached at a URL (Streamable HTTP), not usable yet.

    Args:
        servers: The URL servers of a manual.

    Returns:
        A :class:`CommunicationError` with code ``ERR_NOT_SUPPORTED`` naming
        each server, its transport and (redacted) URL.
    """
    named = ", ".join(f"{s.name!r} ({s.transport} at {redact_url(s.url or '')})" for s in servers)
    return errors.CommunicationError(
        f"MCP server(s) {named}: MCP over Streamable HTTP is not supported by the tool "
        "client yet (it needs an MCP client over HTTP); only stdio servers "
        "({'command': ...}) can be used for now",
        code=NOT_SUPPORTED,
    )


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
    """``mcp`` manuals: one STDIOClient per server, kept until deregistration."""

    type_name = "mcp"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._servers: dict[str, dict[str, STDIOClient]] = {}
        self._specs: dict[str, McpCallTemplate] = {}

    async def _start(self, server: McpServer, timeout: float) -> STDIOClient:
        from ..stdio.client import STDIOClient

        client = STDIOClient(
            [server.command, *server.args],
            working_dir=server.cwd,
            env=server.env or None,
            message_format="jsonrpc",
            response_timeout=timeout,
            startup_timeout=timeout,
        )
        try:
            await client.connect()
            await client.request(
                "initialize",
                {
                    "protocolVersion": MCP_PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": _CLIENT_INFO,
                },
            )
            await client.notify("notifications/initialized")
        except BaseException:
            await client.close()
            raise
        return client

    async def _client(self, manual_name: str, server_name: str) -> STDIOClient:
        servers = self._servers.setdefault(manual_name, {})
        client = servers.get(server_name)
        if client is not None and not client.is_closed and client.is_running:
            return client
        template = self._specs.get(manual_name)
        spec = (
            next((s for s in template.servers if s.name == server_name), None) if template else None
        )
        if template is None or spec is None:
            raise errors.ConfigError(f"manual {manual_name!r} has no MCP server {server_name!r}")
        if client is not None:
            await client.close()
        client = await self._start(spec, template.timeout)
        servers[server_name] = client
        return client

    async def register_manual(self, manual_name: str, template: CallTemplate) -> Discovery:
        """Start each server and list its tools."""
        assert isinstance(template, McpCallTemplate)
        at_urls = [s for s in template.servers if s.url is not None]
        if at_urls:
            raise not_supported(at_urls)
        self._specs[manual_name] = template
        tools: list[Tool] = []
        problems: list[str] = []
        raw_template = template.to_dict()
        for server in template.servers:
            client = await self._client(manual_name, server.name)
            cursor: str | None = None
            for _ in range(_MAX_PAGES):
                params = {"cursor": cursor} if cursor else {}
                listing = await client.request("tools/list", params)
                if not isinstance(listing, Mapping):
                    raise errors.ProtocolError(
                        f"MCP server {server.name!r}: tools/list result is not an object"
                    )
                for entry in listing.get("tools") or []:
                    tool = _mcp_tool(server.name, entry, raw_template)
                    if isinstance(tool, str):
                        problems.append(tool)
                    else:
                        tools.append(tool)
                cursor = listing.get("nextCursor")
                if not cursor:
                    break
        return Discovery(
            manual=Manual(info={"servers": [s.name for s in template.servers]}, tools=tuple(tools)),
            problems=tuple(problems),
        )

    async def deregister_manual(self, manual_name: str) -> None:
        """Stop the manual's server processes."""
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
        result = await client.request("tools/call", {"name": mcp_name, "arguments": dict(args)})
        return tool_result(tool.name, result)

    async def close(self) -> None:
        """Stop every server still running."""
        for name in list(self._servers):
            await self.deregister_manual(name)
