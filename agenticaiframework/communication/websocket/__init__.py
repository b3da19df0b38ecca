"""WebSocket: :class:`WebSocketClient` on websockets.

``client.py`` is the client; ``protocol.py`` its I/O-free parts (close codes,
auth replies, request ids, redirects); ``connection.py`` the websockets
connection subclasses it runs on.
"""

from .client import (
    EVENTS,
    WebSocketClient,
    translate_error,
)

__all__ = [
    "EVENTS",
    "WebSocketClient",
    "translate_error",
]
