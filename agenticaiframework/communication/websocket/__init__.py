"""WebSocket: :class:`WebSocketClient` on websockets or picows.

``client.py`` is the client; ``protocol.py`` its I/O-free parts (close codes,
auth replies, request ids, redirects); ``engine.py`` the seam to the wire
library, with one module per engine: ``connection.py`` (websockets, the
default) and ``picows_engine.py`` (picows, the ``picows`` extra).
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
