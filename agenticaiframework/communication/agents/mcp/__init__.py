"""MCP: the Model Context Protocol client.

``client.py`` (MCPClient), its transport-free session (``session.py``) and its
transports (``stdio.py``, ``streamable_http.py``); MCP authorization in ``auth/``.
"""

from .auth import MCPOAuth
from .client import LOG_LEVELS, MCPClient
from .session import (
    LATEST_PROTOCOL_VERSION,
    SUPPORTED_PROTOCOL_VERSIONS,
    MCPAuthorizationError,
    MCPSession,
    SessionExpiredError,
)
from .stdio import StdioTransport
from .streamable_http import StreamableHTTPTransport
from .url_elicitation import URLElicitationRequiredError

__all__ = [
    "LATEST_PROTOCOL_VERSION",
    "LOG_LEVELS",
    "SUPPORTED_PROTOCOL_VERSIONS",
    "MCPAuthorizationError",
    "MCPClient",
    "MCPOAuth",
    "MCPSession",
    "SessionExpiredError",
    "StdioTransport",
    "StreamableHTTPTransport",
    "URLElicitationRequiredError",
]
