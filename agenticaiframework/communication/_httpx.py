"""The one seam between our HTTP-based clients (HTTP, SSE) and httpx.

Builds the ``httpx.AsyncClient`` from config, and translates httpx exceptions
into our hierarchy at one boundary (chained with ``from``).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import httpx

from . import errors
from .security import redact_text, redact_url
from .tls import client_ssl_context

__all__ = ["build_client", "translate_error"]


def build_client(
    *,
    timeout: float,
    connect_timeout: float,
    verify_ssl: bool,
    ca_certs: str | None,
    client_cert: str | None,
    client_key: str | None,
    headers: Mapping[str, str] | None = None,
    max_keepalive: int = 10,
    max_connections: int = 100,
    http2: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """Create the httpx client behind one of our clients.

    Args:
        timeout: Read/write/pool timeout in seconds; 0 means none.
        connect_timeout: Connect timeout in seconds; 0 means none.
        verify_ssl: Verify server certificates.
        ca_certs: CA bundle path.
        client_cert: Client certificate path (mutual TLS).
        client_key: Client key path.
        headers: Default headers.
        max_keepalive: Keep-alive connections kept.
        max_connections: Open connections at most.
        http2: Negotiate HTTP/2.
        transport: A custom transport (the engine seam).

    Returns:
        An httpx client that never follows redirects itself (we do, checking
        each hop) and has no auth of its own (we pass it per request).
    """
    verify: ssl.SSLContext | bool = True
    if ca_certs or client_cert or not verify_ssl:
        verify = client_ssl_context(
            verify=verify_ssl, ca_certs=ca_certs, client_cert=client_cert, client_key=client_key
        )
    elif transport is None:
        verify = _default_ssl_context(http2)
    read = timeout or None
    kwargs: dict[str, Any] = {
        "timeout": httpx.Timeout(read, connect=connect_timeout or None),
        "headers": dict(headers or {}),
        "follow_redirects": False,
        "trust_env": False,
    }
    if transport is not None:
        kwargs["transport"] = transport
    else:
        kwargs["verify"] = verify
        kwargs["http2"] = http2
        kwargs["limits"] = httpx.Limits(
            max_keepalive_connections=max_keepalive, max_connections=max_connections
        )
    return httpx.AsyncClient(**kwargs)


@lru_cache(maxsize=2)
def _default_ssl_context(http2: bool) -> ssl.SSLContext:
    """The context httpx would build for ``verify=True`` (certifi CA bundle), built once.

    Loading the CA bundle costs tens of milliseconds per client; sharing one
    context makes opening a client cheap (pools, managers with many clients).
    One context per ``http2`` value, because httpcore sets ALPN on it.
    """
    return httpx.create_ssl_context(verify=True, trust_env=False)


def translate_error(
    exc: httpx.HTTPError | httpx.InvalidURL, url: object
) -> errors.CommunicationError:
    """Map an httpx exception onto our hierarchy.

    Args:
        exc: The httpx exception.
        url: The URL involved, for the message (printed redacted).

    Returns:
        The matching error, to be raised ``from exc``; its message carries no
        password or secret query value, from ``url`` or from httpx's text.
    """
    detail = redact_text(str(exc) or type(exc).__name__)
    url = redact_url(url)
    if isinstance(exc, httpx.TimeoutException):
        kind = {
            httpx.ConnectTimeout: "connect",
            httpx.ReadTimeout: "read",
            httpx.WriteTimeout: "write",
            httpx.PoolTimeout: "pool",
        }.get(type(exc), "request")
        return errors.TimeoutError(f"{kind} timeout for {url}: {detail}")
    if isinstance(exc, httpx.ConnectError) and ("SSL" in detail or "CERTIFICATE" in detail):
        return errors.SecurityError(f"TLS handshake with {url} failed: {detail}")
    if isinstance(
        exc,
        httpx.ConnectError
        | httpx.RemoteProtocolError
        | httpx.ReadError
        | httpx.WriteError
        | httpx.CloseError,
    ):
        if isinstance(exc, httpx.RemoteProtocolError):
            return errors.ConnectionError(f"connection to {url} broke: {detail}")
        return errors.ConnectionError(f"cannot reach {url}: {detail}")
    if isinstance(exc, httpx.NetworkError):
        return errors.ConnectionError(f"network error for {url}: {detail}")
    if isinstance(exc, httpx.TooManyRedirects):
        return errors.ProtocolError(f"too many redirects for {url}")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return errors.ConfigError(f"url: invalid URL {url}: {detail}")
    if isinstance(exc, httpx.DecodingError):
        return errors.ProtocolError(f"cannot decode response from {url}: {detail}")
    if isinstance(exc, httpx.LocalProtocolError):
        # The request could not be put on the wire (h11/h2 refused it).
        return errors.ProtocolError(f"cannot send the request to {url}: {detail}")
    return errors.CommunicationError(f"HTTP error for {url}: {detail}")
