"""Agent-level protocols: AID discovery (``discovery.py``)."""

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
    "AgentClient",
    "AgentRecord",
    "DiscoveryError",
    "DiscoverySecurityError",
    "LocalConsent",
    "connect_agent",
    "discover",
    "local_command",
    "parse_record",
]
