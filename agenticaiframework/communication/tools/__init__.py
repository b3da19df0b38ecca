"""UTCP-style tool calling over every protocol: ``agenticaiframework.communication.tools``.

:class:`ToolClient` registers *manuals* (UTCP manuals, OpenAPI documents, MCP
servers' ``tools/list``, gRPC services by reflection or .proto files) and calls
their tools by ``<manual>.<tool>`` name over the tool's own protocol, on the
package's clients (HTTPClient, SSEClient, WebSocketClient, STDIOClient,
GRPCClient). The manual model, variable substitution, search and the OpenAPI
converter do no I/O and can be used on their own.
"""

from __future__ import annotations

from .base import ToolNotFoundError
from .client import ToolClient
from .manual import (
    Manual,
    RegisterManualResult,
    SkippedTool,
    Tool,
    find_variables,
    parse_manual,
    search,
    substitute,
)
from .openapi import convert_openapi
from .templates import (
    CallTemplate,
    GrpcCallTemplate,
    HttpCallTemplate,
    McpCallTemplate,
    SseCallTemplate,
    WebSocketCallTemplate,
    parse_template,
)

__all__ = [
    "CallTemplate",
    "GrpcCallTemplate",
    "HttpCallTemplate",
    "Manual",
    "McpCallTemplate",
    "RegisterManualResult",
    "SkippedTool",
    "SseCallTemplate",
    "Tool",
    "ToolClient",
    "ToolNotFoundError",
    "WebSocketCallTemplate",
    "convert_openapi",
    "find_variables",
    "parse_manual",
    "parse_template",
    "search",
    "substitute",
]
