"""The aiohttp wire engine behind the httpx API (``HTTPConfig.transport="aiohttp"``).

httpx keeps building requests and reading responses (redirect checks, cookies,
auth, decompression and size limits stay ours and httpx's); aiohttp only moves
bytes, through httpx-aiohttp's transport. This module adds what our clients
need on top of it: one aiohttp session without a cookie jar of its own (httpx
keeps the cookies, or every cookie would be sent twice), the pool limit and TLS
context of the config, and every aiohttp exception turned into the httpx
exception httpx's own transport raises for the same fault, so
:func:`~agenticaiframework.communication.http.engine.translate_error` maps
both engines onto the same errors of ours.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterable, AsyncIterator
from functools import lru_cache
from typing import Any

import aiohttp
import httpx
import yarl
from httpx_aiohttp.transport import AiohttpResponseStream, AiohttpTransport
from multidict import CIMultiDict, CIMultiDictProxy

from ..core.security import is_credential_header, parse_ip
from .engine import ack_promptly

__all__ = ["AiohttpEngine", "to_httpx_error"]


def to_httpx_error(exc: BaseException) -> httpx.TransportError:
    """The httpx exception httpx's own transport raises for the fault ``exc``.

    Args:
        exc: An aiohttp, asyncio or OS exception raised while sending or reading.

    Returns:
        The matching httpx exception (raise it ``from exc``).
    """
    text = str(exc) or type(exc).__name__
    # Timeouts without text, as httpx's own: the errors then read the same.
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        if _waited_for_pool(exc):
            return httpx.PoolTimeout("")
        return httpx.ConnectTimeout("")
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout("")
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(text)
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Refused, unreachable, or TLS handshake/certificate failures ("SSL" in text).
        return httpx.ConnectError(text)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(text)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(text)
    if isinstance(exc, aiohttp.ClientResponseError):
        # The server's bytes were not HTTP (bad status line, oversized header...).
        return httpx.RemoteProtocolError(text)
    if isinstance(exc, aiohttp.ClientOSError | OSError):
        return httpx.ReadError(text)
    return httpx.TransportError(text)


def _waited_for_pool(exc: BaseException) -> bool:
    """Whether a connection timeout ran out waiting for a free pool slot.

    aiohttp raises the same exception for both; the frames where the timeout
    cancelled the wait tell them apart (if aiohttp renames its private
    ``_wait_for_available_connection``, a pool timeout reads "connect timeout").
    """
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 5:
        frame = cause.__traceback__
        while frame is not None:
            if frame.tb_frame.f_code.co_name == "_wait_for_available_connection":
                return True
            frame = frame.tb_next
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return False


def _wire_url(url: httpx.URL) -> yarl.URL:
    """The URL aiohttp is given for a request to ``url``.

    Cached for URLs without userinfo or query (the same few repeat; a query
    may carry a signature, which no cache here keeps).
    """
    if url.userinfo or url.query:
        return _to_wire_url(url)
    return _cached_wire_url(url)


def _to_wire_url(url: httpx.URL) -> yarl.URL:
    """``url`` for aiohttp, as httpx encoded it, without userinfo.

    yarl would re-normalise dot segments and refuse spellings such as 127.1
    that httpx sends as they are. httpx has turned URL credentials into the
    Authorization header (or the auth object set one): aiohttp would refuse
    both, and neither goes on the wire with httpx's transport.
    """
    if url.userinfo:
        url = url.copy_with(username=None, password=None)
    canonical = _canonical_address(url.host)
    if canonical is not None:
        url = url.copy_with(host=canonical)
    return yarl.URL(str(url), encoded=True)


_cached_wire_url = lru_cache(maxsize=256)(_to_wire_url)


@lru_cache(maxsize=64)
def _client_timeout(
    connect: float | None, read: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    """The aiohttp timeouts for httpx's connect, read and pool timeouts (cached: they repeat)."""
    return aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)


@lru_cache(maxsize=256)
def _canonical_address(host: str) -> str | None:
    """The address to connect to when ``host`` spells an IP the way aiohttp refuses.

    aiohttp refuses spellings such as ``127.1`` or ``2130706433`` that httpx
    connects to as they are; the Host header keeps the spelling either way.
    Cached: parsing every spelling costs more than the rest of a request's setup.
    """
    address = parse_ip(host)
    if address is None or str(address) == host.strip("[]"):
        return None
    return str(address)


_FAULTS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def _unwrap(exc: BaseException) -> BaseException:
    """The aiohttp exception under httpx-aiohttp's own (coarser) mapping, if any."""
    cause = exc.__cause__
    return cause if isinstance(exc, httpx.HTTPError) and isinstance(cause, _FAULTS) else exc


# Distinct header sets one engine keeps converted for aiohttp.
_HEADER_SETS = 32

# asyncio transports buffer up to 64 KiB before a write waits: smaller bodies
# never stall in aiohttp's writer, so they skip the per-piece deadline.
_BUFFERED = 64 * 1024


def _pieces(body: bytes) -> AsyncIterator[bytes]:
    async def pieces() -> AsyncIterator[bytes]:
        view = memoryview(body)
        for start in range(0, len(body), _BUFFERED):
            yield bytes(view[start : start + _BUFFERED])

    return pieces()


async def _timed_body(
    body: AsyncIterable[bytes], deadline: asyncio.Timeout, seconds: float
) -> AsyncIterator[bytes]:
    """``body``, with aiohttp's writing of each piece bounded by ``seconds``.

    The deadline runs only while aiohttp holds a piece (writes and waits for the
    peer to take it), not while the body's own source produces the next one, as
    httpx's write timeout counts socket writes only.
    """
    loop = asyncio.get_running_loop()
    async for piece in body:
        deadline.reschedule(loop.time() + seconds)
        yield piece
        deadline.reschedule(None)


class _MappedStream(httpx.AsyncByteStream):
    """A response body whose read errors are httpx's, as with httpx's transport."""

    __slots__ = ("_stream",)

    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except (httpx.HTTPError, *_FAULTS) as exc:
            cause = _unwrap(exc)
            if cause is exc and isinstance(exc, httpx.HTTPError):
                raise
            raise to_httpx_error(cause) from cause

    async def aclose(self) -> None:
        await self._stream.aclose()


class _AsSent(aiohttp.ClientRequest):
    """aiohttp's request with the headers httpx built, as httpx's transport sends them.

    aiohttp would add ``Content-Length: 0`` to body-less DELETEs and refuse (or
    move to the end) httpx's ``Transfer-Encoding: chunked`` of a streamed body.
    """

    def update_body_from_data(self, body: Any, *args: Any, **kwargs: Any) -> None:
        declared = "Content-Length" in self.headers
        super().update_body_from_data(body, *args, **kwargs)
        if body is None and not declared:
            self.headers.pop("Content-Length", None)

    def update_transfer_encoding(self) -> None:
        """Keep httpx's ``Transfer-Encoding: chunked`` where httpx put it."""
        if self.chunked and "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return
        super().update_transfer_encoding()


class AiohttpEngine(AiohttpTransport):
    """httpx-aiohttp's transport with our session, limits and error mapping.

    Args:
        ssl_context: The TLS context (CA bundle, verification, client certificate).
        max_connections: Open connections at most (aiohttp keeps idle ones up to this).
        keepalive_expiry: Seconds an idle connection is kept.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
    ) -> None:
        limits = httpx.Limits(max_connections=max_connections, keepalive_expiry=keepalive_expiry)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits, client=self._session)
        self._ssl_context = ssl_context
        self._headers: dict[tuple[tuple[bytes, bytes], ...], CIMultiDictProxy[str]] = {}

    def _wire_headers(self, raw: list[tuple[bytes, bytes]]) -> CIMultiDictProxy[str]:
        """What aiohttp is given for httpx's ``raw`` headers: names with their case, in order.

        Most requests of one client carry the same headers: the first
        ``_HEADER_SETS`` distinct sets are kept (with this engine, never
        beyond it), and later ones are converted each time. A set with a
        secret-looking header (credentials, tokens, cookies) is never kept.
        """
        key = tuple(raw)
        wire = self._headers.get(key)
        if wire is None:
            pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
            wire = CIMultiDictProxy(CIMultiDict(pairs))
            if len(self._headers) < _HEADER_SETS and not any(
                is_credential_header(name) or name.lower() == "cookie" for name, _ in pairs
            ):
                self._headers[key] = wire
        return wire

    def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            ssl=self._ssl_context,
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry or 15.0,
        )
        # No cookie jar and no headers of its own: httpx built them all.
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            request_class=_AsSent,
            trust_env=False,
        )
        # aiohttp silently re-sends an idempotent request once when the connection
        # drops; httpx does not, and our retry policy counts every attempt (a
        # refusing server would else see twice the connections max_retries allows).
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through aiohttp; faults raise httpx's exceptions."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        timeout = request.extensions.get("timeout", {})
        data: bytes | AsyncIterator[bytes] | None
        headers = request.headers.raw
        write_timeout = timeout.get("write")
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            if "transfer-encoding" in request.headers or "content-length" in request.headers:
                # aiohttp writes the chunked framing that httpx's header announces.
                data = request.stream  # type: ignore[assignment]
            else:
                data = None  # a stream with nothing in it (a redirect hop's GET)
        # aiohttp has no write timeout: a body that may not fit the transport's
        # buffer goes out piece by piece under our own deadline (httpx's "write").
        timed = write_timeout is not None and (
            data is not None and (not isinstance(data, bytes) or len(data) > _BUFFERED)
        )
        if timed:
            assert data is not None and write_timeout is not None
            deadline = asyncio.timeout(None)
            pieces = _pieces(data) if isinstance(data, bytes) else data
            data = _timed_body(pieces, deadline, write_timeout)
        assert isinstance(self.client, aiohttp.ClientSession)
        context = self.client.request(
            method=request.method,
            url=_wire_url(request.url),
            headers=self._wire_headers(headers),
            data=data,
            allow_redirects=False,
            auto_decompress=False,
            compress=False,
            timeout=_client_timeout(
                timeout.get("connect"), timeout.get("read"), timeout.get("pool")
            ),
            server_hostname=request.extensions.get("sni_hostname"),
        )
        try:
            if timed:
                async with deadline:
                    response = await context.__aenter__()
            else:
                response = await context.__aenter__()
        except TimeoutError as exc:
            if timed and deadline.expired():
                raise httpx.WriteTimeout("") from exc
            raise to_httpx_error(exc) from exc
        except _FAULTS as exc:
            raise to_httpx_error(exc) from exc
        stream: httpx.AsyncByteStream
        if response.content.is_eof():
            # The whole body came with the headers (most small replies): take it
            # now and give the connection back, rather than stream it through
            # two more layers of iterators (engine.bind_response then marks it read).
            stream = httpx.ByteStream(response.content.read_nowait())
            response.release()
        else:
            # More of the body to come: the server may be holding it back until
            # its headers are acknowledged (see ack_promptly).
            connection = response.connection
            if connection is not None and connection.transport is not None:
                ack_promptly(connection.transport.get_extra_info("socket"))
            stream = _MappedStream(AiohttpResponseStream(response))
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=stream,
            request=request,
            extensions=extensions,
        )
