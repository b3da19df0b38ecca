"""HTTP: :class:`HTTPClient` on httpx.

``client.py`` is the client; ``engine.py`` is the one seam to httpx (transport,
error translation, size-limited body reading).
"""

from .client import (
    HTTPClient,
    HTTPResponse,
)

__all__ = [
    "HTTPClient",
    "HTTPResponse",
]
