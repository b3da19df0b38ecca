"""MCP authorization (the 2025-11-25 specification's authorization section).

``flow.py``: :class:`MCPOAuth`, the auth flow for ``MCPClient(url, auth=...)``;
``core.py``: the documents, URLs and values of the flow, without I/O;
``store.py``: :class:`TokenStore` and the in-memory default;
``file_store.py``: :class:`FileTokenStore`, a private JSON file;
``loopback.py``: :class:`LoopbackCallback`, the user step of a CLI.
"""

from .core import ClientInfo, OAuthError, OAuthTokens
from .file_store import FileTokenStore
from .flow import AuthorizeHook, MCPOAuth
from .loopback import LoopbackCallback
from .store import MemoryTokenStore, TokenStore

__all__ = [
    "AuthorizeHook",
    "ClientInfo",
    "FileTokenStore",
    "LoopbackCallback",
    "MCPOAuth",
    "MemoryTokenStore",
    "OAuthError",
    "OAuthTokens",
    "TokenStore",
]
