"""Server-Sent Events: :class:`SSEClient` and its I/O-free event-stream decoder."""

from .client import (
    MAX_RETRY_MS,
    EventStreamDecoder,
    SSEClient,
    SSEEvent,
    UnexpectedContentTypeError,
    is_sendable_id,
)

__all__ = [
    "MAX_RETRY_MS",
    "EventStreamDecoder",
    "SSEClient",
    "SSEEvent",
    "UnexpectedContentTypeError",
    "is_sendable_id",
]
