"""STDIO: :class:`STDIOClient` for child processes.

With its I/O-free framing (``framing.py``: newline and Content-Length) and
JSON-RPC (``jsonrpc.py``).
"""

from .client import (
    DEFAULT,
    STDIOClient,
)

__all__ = [
    "DEFAULT",
    "STDIOClient",
]
