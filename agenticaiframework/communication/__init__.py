"""agenticaiframework.communication: one async client per protocol.

HTTP, WebSocket, SSE, MQTT, gRPC and STDIO clients share one set of config,
retry, auth, security, event and health machinery. Protocol modules are
imported on first use, so ``import agenticaiframework.communication`` stays
cheap and a missing optional engine only matters to the client that needs it.
"""

from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

# Not lazy: importing the submodule ``connect`` would otherwise set the package's
# ``connect`` attribute to the module, hiding the function (connect.py is cheap to import).
from .connect import connect, connect_agent
from .core.auth import APIKeyAuth, BasicAuth, BearerAuth, OAuth2Auth
from .core.config import (
    GRPCConfig,
    HTTPConfig,
    MQTTConfig,
    MQTTWill,
    RetryConfig,
    SSEConfig,
    STDIOConfig,
    WebSocketConfig,
)
from .core.errors import (
    AuthenticationError,
    ClosedError,
    CommunicationError,
    ConfigError,
    ConnectionError,
    HTTPStatusError,
    MessageTooLargeError,
    PoolTimeoutError,
    ProcessExitedError,
    ProtocolError,
    QueueFullError,
    RemoteError,
    SecurityError,
    StdoutClosedError,
    TimeoutError,
)
from .core.health import HealthStatus
from .http.client import HTTPClient, HTTPResponse

if TYPE_CHECKING:
    from .agents.a2a import A2AClient
    from .agents.discovery import AgentRecord, DiscoveryError, discover, parse_record
    from .agents.mcp import MCPClient
    from .agents.mcp.auth import (
        FileTokenStore,
        LoopbackCallback,
        MCPOAuth,
        MemoryTokenStore,
        TokenStore,
    )
    from .grpc.client import GRPCClient, generate_grpc_client
    from .manager import ConnectionManager
    from .mqtt.client import MQTTClient, MQTTMessage
    from .pool import ConnectionPool
    from .sse.client import SSEClient, SSEEvent
    from .stdio.client import STDIOClient
    from .websocket.client import WebSocketClient

try:
    __version__: str = _metadata.version("agenticaiframework-communication")
except _metadata.PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "A2AClient",
    "APIKeyAuth",
    "AgentRecord",
    "AuthenticationError",
    "BasicAuth",
    "BearerAuth",
    "ClosedError",
    "CommunicationError",
    "ConfigError",
    "ConnectionError",
    "ConnectionManager",
    "ConnectionPool",
    "DiscoveryError",
    "FileTokenStore",
    "GRPCClient",
    "GRPCConfig",
    "HTTPClient",
    "HTTPConfig",
    "HTTPResponse",
    "HTTPStatusError",
    "HealthStatus",
    "LoopbackCallback",
    "MCPClient",
    "MCPOAuth",
    "MQTTClient",
    "MQTTConfig",
    "MQTTMessage",
    "MQTTWill",
    "MemoryTokenStore",
    "MessageTooLargeError",
    "OAuth2Auth",
    "PoolTimeoutError",
    "ProcessExitedError",
    "ProtocolError",
    "QueueFullError",
    "RemoteError",
    "RetryConfig",
    "SSEClient",
    "SSEConfig",
    "SSEEvent",
    "STDIOClient",
    "STDIOConfig",
    "SecurityError",
    "StdoutClosedError",
    "TimeoutError",
    "TokenStore",
    "WebSocketClient",
    "WebSocketConfig",
    "connect",
    "connect_agent",
    "discover",
    "generate_grpc_client",
    "parse_record",
]

_LAZY = {
    "WebSocketClient": "websocket",
    "SSEClient": "sse",
    "SSEEvent": "sse",
    "MQTTClient": "mqtt",
    "MQTTMessage": "mqtt",
    "GRPCClient": "grpc",
    "generate_grpc_client": "grpc",
    "STDIOClient": "stdio",
    "ConnectionPool": "pool",
    "ConnectionManager": "manager",
    "AgentRecord": "discovery",
    "DiscoveryError": "discovery",
    "discover": "discovery",
    "parse_record": "discovery",
    "MCPClient": "agents.mcp",
    "MCPOAuth": "agents.mcp.auth",
    "LoopbackCallback": "agents.mcp.auth",
    "TokenStore": "agents.mcp.auth",
    "MemoryTokenStore": "agents.mcp.auth",
    "FileTokenStore": "agents.mcp.auth",
    "A2AClient": "agents.a2a",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
