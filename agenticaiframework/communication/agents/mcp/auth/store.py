"""Where MCP authorization keeps tokens and client registrations.

:class:`TokenStore` is the protocol; :class:`MemoryTokenStore` (the default)
keeps them for the life of the process. A store of your own (a keyring, an
encrypted file, a database) implements the four methods; the values are
:class:`OAuthTokens` and :class:`ClientInfo`, which never print their secrets.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .core import ClientInfo, OAuthTokens

__all__ = ["MemoryTokenStore", "TokenStore"]


@runtime_checkable
class TokenStore(Protocol):
    """Keeps tokens per resource (the MCP server's canonical URI) and clients per issuer."""

    async def get_tokens(self, resource: str) -> OAuthTokens | None:
        """The tokens for an MCP server, or None."""
        ...

    async def set_tokens(self, resource: str, tokens: OAuthTokens | None) -> None:
        """Keep (or, with None, forget) the tokens for an MCP server."""
        ...

    async def get_client(self, issuer: str) -> ClientInfo | None:
        """The registration with an authorization server, or None."""
        ...

    async def set_client(self, issuer: str, client: ClientInfo | None) -> None:
        """Keep (or, with None, forget) the registration with an authorization server."""
        ...


class MemoryTokenStore:
    """A :class:`TokenStore` in memory, for the life of the process."""

    def __init__(self) -> None:
        self._tokens: dict[str, OAuthTokens] = {}
        self._clients: dict[str, ClientInfo] = {}

    async def get_tokens(self, resource: str) -> OAuthTokens | None:
        """The tokens for an MCP server, or None."""
        return self._tokens.get(resource)

    async def set_tokens(self, resource: str, tokens: OAuthTokens | None) -> None:
        """Keep (or, with None, forget) the tokens for an MCP server."""
        if tokens is None:
            self._tokens.pop(resource, None)
        else:
            self._tokens[resource] = tokens

    async def get_client(self, issuer: str) -> ClientInfo | None:
        """The registration with an authorization server, or None."""
        return self._clients.get(issuer)

    async def set_client(self, issuer: str, client: ClientInfo | None) -> None:
        """Keep (or, with None, forget) the registration with an authorization server."""
        if client is None:
            self._clients.pop(issuer, None)
        else:
            self._clients[issuer] = client

    def __repr__(self) -> str:
        return f"<MemoryTokenStore resources={len(self._tokens)} clients={len(self._clients)}>"
