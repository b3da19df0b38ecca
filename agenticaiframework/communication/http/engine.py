"""The one seam between our HTTP-based clients (HTTP, SSE, OAuth2) and httpx.

Builds the ``httpx.AsyncClient`` from config, reads bodies within a size limit
counted after decompression, and translates httpx exceptions into our
hierarchy at one boundary (chained with ``from``).
"""

from __future__ import annotations

import datetime
import socket
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from functools import lru_cache
from typing import Any, cast

import httpx
from httpx._client import BoundAsyncStream

from ..core import errors
from ..core.security import redact_text, redact_url
from ..core.tls import client_ssl_context

__all__ = [
    "DEFAULT_ENGINE",
    "ack_promptly",
    "bind_response",
    "build_client",
    "direct_transport",
    "iter_limited",
    "limit_body",
    "read_limited",
    "translate_error",
    "unlink",
]


DEFAULT_ENGINE = "aiohttp"
"""The wire engine of clients whose ``transport`` is None: ``"aiohttp"`` or ``"httpx"``.

aiohttp under httpx's API, because it measured 1.4-2.2x (sequential) and
8.6-10x (100 in flight) raw httpx on loopback GETs, with every HTTP, SSE and
tools test passing on it (benchmarks/bench_http.py, docs/protocols/http.md).
"""

# Compressed bodies reach the decoder in pieces this small when a size limit is
# set: deflate inflates at most ~1032:1, so one decoding step holds at most a
# few MiB whatever the server sends.
_RAW_PIECE = 4096


class _SmallPieces(httpx.AsyncByteStream):
    """A response stream re-cut into pieces of at most ``_RAW_PIECE`` bytes."""

    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            if len(chunk) <= _RAW_PIECE:
                yield chunk
            else:
                for start in range(0, len(chunk), _RAW_PIECE):
                    yield chunk[start : start + _RAW_PIECE]

    async def aclose(self) -> None:
        await self._stream.aclose()


_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def ack_promptly(sock: Any) -> None:
    """Have the kernel acknowledge what ``sock`` receives at once, until our next send.

    On a kept-alive connection Linux delays each acknowledgement (up to 40 ms)
    to send it with the next request. A server that leaves Nagle on holds its
    next small write until the previous one is acknowledged, so a response
    written in pieces (headers, then body or events) would stall 40 ms after
    its first piece. Called once the response's headers are in; a no-op where
    the option does not exist.

    Args:
        sock: The connection's socket (or None: nothing to do).
    """
    if _QUICKACK is not None and sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        except OSError:
            return  # closed meanwhile: nothing left to acknowledge


async def _ack_response_promptly(response: httpx.Response) -> None:
    """The response hook of httpx clients: :func:`ack_promptly` on its connection."""
    stream = response.extensions.get("network_stream")
    if stream is not None:
        ack_promptly(stream.get_extra_info("socket"))


_CLOSED = httpx.ByteStream(b"")


def unlink(response: httpx.Response) -> None:
    """Cut the reference cycle httpx leaves between a closed response and its stream.

    httpx's client wraps each response's stream in one that points back at the
    response: left alone, every response (a few KiB with its connection's
    buffers) waits for the next garbage collection instead of being freed when
    its last user drops it. Call only once the response is closed (its body
    read or given up); ``.content`` stays readable.

    Args:
        response: A closed response.
    """
    response.stream = _CLOSED


def _too_large(
    response: httpx.Response, limit: int, field: str, declared: str = ""
) -> errors.MessageTooLargeError:
    seen = f" (Content-Length {declared[:20]})" if declared else ""
    return errors.MessageTooLargeError(
        f"response body of {response.request.method} {redact_url(response.request.url)} "
        f"exceeds {field}={limit} bytes{seen}, counted after decompression"
    )


def limit_body(
    response: httpx.Response, limit: int | None, field: str = "max_response_size"
) -> None:
    """Prepare a streamed response for :func:`iter_limited`.

    Refuses at once a ``Content-Length`` over the limit, and has a compressed
    body reach the decoder in small pieces so one decoding step stays small.

    Args:
        response: A response whose body is not read yet.
        limit: Largest body accepted, in bytes after decompression; None = any.
        field: The setting to name in the error.

    Raises:
        MessageTooLargeError: The declared length exceeds the limit.
    """
    if limit is None:
        return
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        declared = response.headers.get("content-length", "")
        # A length too long to be an int is surely over the limit.
        digits = declared.isascii() and declared.isdigit()
        if digits and (len(declared) > 18 or int(declared) > limit):
            raise _too_large(response, limit, field, declared)
    elif isinstance(response.stream, httpx.AsyncByteStream) and not isinstance(
        response.stream, _SmallPieces
    ):
        response.stream = _SmallPieces(response.stream)


async def iter_limited(
    response: httpx.Response,
    limit: int | None,
    chunk_size: int | None = None,
    field: str = "max_response_size",
) -> AsyncGenerator[bytes, None]:
    """The decoded body in chunks, failing once more than ``limit`` bytes came.

    Args:
        response: A streamed response (see :func:`limit_body`).
        limit: Largest body accepted, in bytes after decompression; None = any.
        chunk_size: Re-chunk the decoded body to this size.
        field: The setting to name in the error.

    Yields:
        Decoded body chunks.

    Raises:
        MessageTooLargeError: More than ``limit`` bytes came; the response is closed.
        httpx.HTTPError: Reading failed (translate with :func:`translate_error`).
    """
    total = 0
    # httpx's reader is an async generator: closed here, not left to the GC.
    body = cast(AsyncGenerator[bytes, None], response.aiter_bytes(chunk_size))
    async with aclosing(body) as chunks:
        async for chunk in chunks:
            total += len(chunk)
            if limit is not None and total > limit:
                await response.aclose()
                raise _too_large(response, limit, field)
            yield chunk


async def read_limited(
    response: httpx.Response, limit: int | None, field: str = "max_response_size"
) -> bytes:
    """Read a streamed response's whole body within ``limit`` (see :func:`iter_limited`).

    The body is also stored on the response, so ``.content``, ``.text`` and
    ``.json()`` work afterwards.

    Args:
        response: A streamed response whose body is not read yet.
        limit: Largest body accepted, in bytes after decompression; None = any.
        field: The setting to name in the error.

    Returns:
        The decoded body.
    """
    if limit is None:
        return await response.aread()
    limit_body(response, limit, field)
    parts = [chunk async for chunk in iter_limited(response, limit, field=field)]
    # What httpx's own aread() stores.
    response._content = b"".join(parts)
    return response._content


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
    transport: httpx.AsyncBaseTransport | str | None = None,
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
        transport: The wire engine: None (``DEFAULT_ENGINE``), ``"httpx"`` (httpx's own transport),
            ``"aiohttp"`` (aiohttp under the same httpx API; HTTP/2 needs
            httpx's transport, so ``http2=True`` picks it), or any httpx
            transport object.

    Returns:
        An httpx client that never follows redirects itself (we do, checking
        each hop) and has no auth of its own (we pass it per request).

    Raises:
        ConfigError: ``transport`` is a name other than ``"httpx"`` or ``"aiohttp"``.
    """
    if transport is None:
        transport = DEFAULT_ENGINE
    if isinstance(transport, str):
        if transport not in ("httpx", "aiohttp"):
            raise errors.ConfigError(
                f"transport: unknown engine {transport[:40]!r}: use 'httpx', 'aiohttp' "
                "or an httpx transport object"
            )
        engine = transport
        transport = None
    else:
        engine = "httpx"
    verify: ssl.SSLContext | bool = True
    if ca_certs or client_cert or not verify_ssl:
        verify = client_ssl_context(
            verify=verify_ssl, ca_certs=ca_certs, client_cert=client_cert, client_key=client_key
        )
    elif transport is None:
        verify = _default_ssl_context(http2)
    if engine == "aiohttp" and not http2:
        # Imported here: aiohttp costs import time only to those who use it.
        from .aiohttp_engine import AiohttpEngine

        transport = AiohttpEngine(
            verify if isinstance(verify, ssl.SSLContext) else _default_ssl_context(False),
            max_connections=max_connections,
        )
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
        kwargs["event_hooks"] = {"response": [_ack_response_promptly]}
    return _AsyncClient(**kwargs)


def direct_transport(
    client: httpx.AsyncClient, request: httpx.Request, auth: httpx.Auth | None
) -> httpx.AsyncBaseTransport | None:
    """The transport to hand ``request`` to directly, or None when ``client.send`` must send it.

    A request with no auth on a client of ours without event hooks (the
    aiohttp engine's) needs none of httpx's auth-flow generators, redirect
    loop (our clients follow redirects themselves) or per-request contexts:
    the caller awaits the transport's ``handle_async_request(request)`` and
    passes the response through :func:`bind_response`, which adds what
    ``send`` would (done in the caller's frame: one coroutine less per request).

    Args:
        client: A client made by :func:`build_client`.
        request: A request built by ``client``.
        auth: The request's auth, or None.

    Returns:
        The transport (or proxy mount) for the request's URL, or None.
    """
    if (
        auth is not None
        or not isinstance(client, _AsyncClient)
        or client.has_event_hooks
        or request.url.userinfo
    ):
        return None
    return client.transport_for(request.url)


def bind_response(
    client: httpx.AsyncClient, request: httpx.Request, response: httpx.Response, start: float
) -> httpx.Response:
    """Give a transport's response what ``client.send(request, stream=True)`` would.

    Its request, the elapsed time once closed, the client's cookies and
    default encoding, and the ``next_request`` of a redirect.

    Args:
        client: The client whose :func:`direct_transport` sent ``request``.
        request: The request sent.
        response: What the transport returned.
        start: ``time.perf_counter()`` when the request was handed over.

    Returns:
        ``response``, its body not read yet (unless it already came whole).
    """
    assert isinstance(client, _AsyncClient)
    response.request = request
    stream = response.stream
    if type(stream) is httpx.ByteStream and "content-encoding" not in response.headers:
        # The whole body is here and needs no decoding (the aiohttp engine's small
        # replies): the response is as httpx's aread() would leave it.
        response._content = b"".join(stream)
        response.is_stream_consumed = True
        response.is_closed = True
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - start)
    else:
        response.stream = BoundAsyncStream(stream, response=response, start=start)  # type: ignore[arg-type]
    client.cookies.extract_cookies(response)
    response.default_encoding = client.default_encoding
    if response.has_redirect_location:
        response.next_request = client.redirect_request(request, response)
    return response


# Distinct URL strings whose merge with the base URL one client remembers.
_MERGED_URLS = 256


class _Cookies(httpx.Cookies):
    """httpx's cookie store, which skips the cookie jar for responses that set none.

    httpx hands every response to the standard library's cookie jar, which
    builds a ``urllib`` request for it first: about a fifth of the client's
    own work per small request, for nothing when there is no ``Set-Cookie``.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        """Store the cookies ``response`` sets, if it sets any."""
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _AsyncClient(httpx.AsyncClient):
    """httpx's client, which remembers the merge of each URL string with the base URL.

    httpx parses and merges the request's URL string anew for every request;
    the same few URLs are asked again and again by agent workloads, and an
    ``httpx.URL`` is immutable, so one parse serves them all.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._merged: dict[str, httpx.URL] = {}
        super().__init__(**kwargs)
        self._cookies = _Cookies(self._cookies)

    @property  # type: ignore[override]
    def base_url(self) -> httpx.URL:
        """The base URL relative request URLs are merged with."""
        return self._base_url

    @base_url.setter
    def base_url(self, url: httpx.URL | str) -> None:
        self._base_url = self._enforce_trailing_slash(httpx.URL(url))
        self._merged.clear()

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        """The cookies sent with every request and updated from every response."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._cookies = _Cookies(cookies)

    @property
    def has_event_hooks(self) -> bool:
        """Whether request or response hooks are set (:func:`direct_transport` then says None)."""
        hooks = self._event_hooks
        return bool(hooks["request"] or hooks["response"])

    @property
    def default_encoding(self) -> Any:
        """The text encoding of responses that name none (httpx's ``default_encoding``)."""
        return self._default_encoding

    def redirect_request(self, request: httpx.Request, response: httpx.Response) -> httpx.Request:
        """The request ``send`` would make to follow ``response``'s redirect."""
        return self._build_redirect_request(request, response)

    def transport_for(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        """The transport (or proxy mount) ``send`` would use for ``url``."""
        return self._transport_for_url(url)

    def _merge_url(self, url: httpx.URL | str) -> httpx.URL:
        if not isinstance(url, str) or "@" in url or "?" in url:
            # Only plain URLs are kept: never userinfo or a (maybe signed) query.
            return super()._merge_url(url)
        merged = self._merged.get(url)
        if merged is None:
            merged = super()._merge_url(url)
            if len(self._merged) >= _MERGED_URLS:
                del self._merged[next(iter(self._merged))]
            self._merged[url] = merged
        return merged


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
