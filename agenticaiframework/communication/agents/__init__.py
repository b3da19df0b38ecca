"""Agent-level protocols: AID discovery, MCPClient (``mcp/``), A2AClient (``a2a/``)."""

from typing import Any

from .discovery import (
    AID_ERROR_CODES,
    AUTH_TOKENS,
    DNS_SUBDOMAIN,
    LOCAL_URI_SCHEMES,
    PROTOCOL_TOKENS,
    SUPPORTED_VERSIONS,
    AgentClient,
    AgentRecord,
    DiscoveryError,
    DiscoverySecurityError,
    LocalConsent,
    connect_agent,
    discover,
    local_command,
    parse_record,
)

__all__ = [
    "AID_ERROR_CODES",
    "AUTH_TOKENS",
    "DNS_SUBDOMAIN",
    "LOCAL_URI_SCHEMES",
    "PROTOCOL_TOKENS",
    "SUPPORTED_VERSIONS",
    "A2AClient",
    "AgentClient",
    "AgentRecord",
    "DiscoveryError",
    "DiscoverySecurityError",
    "LocalConsent",
    "MCPClient",
    "connect_agent",
    "discover",
    "local_command",
    "parse_record",
]


def __getattr__(name: str) -> Any:
    # MCPClient pulls in the stdio and SSE clients: imported on first use only.
    if name == "MCPClient":
        from .mcp import MCPClient

        return MCPClient
    if name == "A2AClient":
        from .a2a import A2AClient

        return A2AClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
