"""HTTPClient: REST calls on one ``httpx.AsyncClient``, with retry, auth and the URL policy.

Every request URL and every redirect hop passes the shared security policy;
credentials (Authorization, API-key and cookie headers, and the auth object)
are dropped when a redirect leaves the original origin. Retries go through
the shared retry module: statuses in ``retry_on_status`` and connection
failures are retried for idempotent methods; POST and PATCH only when
``retry_non_idempotent=True``, except when the connection could not even be
opened (the request was surely not sent).
"""

from __future__ import annotations

import codecs as _codecs
import json as _json
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Mapping
from contextlib import aclosing, asynccontextmanager
from contextvars import ContextVar
from time import perf_counter
from typing import Any

import httpx
from tenacity import RetryCallState

from ..core import errors
from ..core.auth import Auth, build_auth
from ..core.codecs import loads as _loads
from ..core.config import (
    IDEMPOTENT_METHODS,
    HTTPConfig,
    check_headers,
    check_size_limit,
    merge_config,
)
from ..core.health import HealthStatus, run_probe
from ..core.lifecycle import BaseClient
from ..core.retry import parse_retry_after, retry_after_first
from ..core.security import (
    check_url,
    install_log_redaction,
    redact_text,
    redact_url,
    strip_credentials,
)
from ..core.telemetry import (
    NO_TELEMETRY,
    Instrumentation,
    OperationTelemetry,
    error_type,
    measure,
    monotonic,
)
from .engine import (
    bind_response,
    build_client,
    direct_transport,
    iter_limited,
    limit_body,
    read_limited,
    translate_error,
    unlink,
)

__all__ = ["HTTPClient", "HTTPResponse"]

_HTTP_SCHEMES = frozenset({"http", "https"})
_UNSET: Any = httpx.USE_CLIENT_DEFAULT


class HTTPResponse:
    """A response: status, headers and body, with the httpx response underneath.

    A streamed response (from :meth:`HTTPClient.stream`) reads its body through
    :meth:`aread` and the ``aiter_*`` methods, which enforce the size limit
    (counted after decompression) and raise our errors, never httpx's.

    Args:
        response: The httpx response.
        max_response_size: Largest body the readers accept, or None.
    """

    __slots__ = ("_limit", "_response")

    def __init__(self, response: httpx.Response, max_response_size: int | None = None) -> None:
        self._response = response
        self._limit = max_response_size

    @property
    def status_code(self) -> int:
        """The HTTP status code."""
        return self._response.status_code

    @property
    def is_success(self) -> bool:
        """True for a 2xx status."""
        return self._response.is_success

    @property
    def headers(self) -> httpx.Headers:
        """Response headers (case-insensitive mapping)."""
        return self._response.headers

    @property
    def text(self) -> str:
        """The body decoded as text."""
        return self._response.text

    @property
    def content(self) -> bytes:
        """The raw body bytes."""
        return self._response.content

    @property
    def url(self) -> str:
        """The final URL (after redirects)."""
        return str(self._response.url)

    @property
    def reason_phrase(self) -> str:
        """The status reason phrase."""
        return self._response.reason_phrase

    @property
    def raw(self) -> httpx.Response:
        """The underlying ``httpx.Response``, for anything else."""
        return self._response

    def json(self) -> Any:
        """Decode the body as JSON.

        Returns:
            The decoded value.

        Raises:
            ProtocolError: The body is not valid JSON (or nests too deeply).
        """
        response = self._response
        content = response.content
        # As json.loads(bytes) and httpx do: UTF-8, -16 or -32 told by the first bytes.
        encoding = _json.detect_encoding(content)
        try:
            return _loads(content if encoding == "utf-8" else content.decode(encoding))
        except (errors.ProtocolError, UnicodeDecodeError) as exc:
            reason = exc.message if isinstance(exc, errors.ProtocolError) else str(exc)
            raise errors.ProtocolError(
                f"response from {redact_url(response.url)} is not JSON "
                f"(status {self.status_code}): {reason}; "
                f"body starts {response.text[:200]!r}"
            ) from exc

    def raise_for_status(self) -> HTTPResponse:
        """Raise HTTPStatusError unless the status is 2xx.

        Returns:
            This response, for chaining.

        Raises:
            HTTPStatusError: The status is not 2xx; status and body start kept.
        """
        if not self.is_success:
            body = (
                self._response.text[:500]
                if not self._response.is_stream_consumed or self._response.is_closed
                else ""
            )
            raise errors.HTTPStatusError(
                f"{self._response.request.method} {redact_url(self._response.url)} answered "
                f"{self.status_code} {self.reason_phrase}",
                status_code=self.status_code,
                body_preview=body,
            )
        return self

    async def aread(self) -> bytes:
        """Read the whole body of a streamed response.

        Raises:
            MessageTooLargeError: The body exceeds ``max_response_size``.
            ConnectionError: The connection broke while reading.
            TimeoutError: A read timed out.
        """
        response = self._response
        if not response.is_stream_consumed:
            try:
                await read_limited(response, self._limit)
            except httpx.HTTPError as exc:
                raise translate_error(exc, response.url) from exc
        return response.content

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncGenerator[bytes, None]:
        """Iterate over a streamed body in decoded chunks.

        Raises:
            MessageTooLargeError: The body exceeds ``max_response_size``.
            ConnectionError: The connection broke while reading.
            TimeoutError: A read timed out.
        """
        try:
            async with aclosing(iter_limited(self._response, self._limit, chunk_size)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except httpx.HTTPError as exc:
            raise translate_error(exc, self._response.url) from exc

    async def aiter_text(self) -> AsyncGenerator[str, None]:
        """Iterate over a streamed body as decoded text (size limited as ``aiter_bytes``)."""
        decoder = _codecs.getincrementaldecoder(self._response.encoding or "utf-8")("replace")
        async with aclosing(self.aiter_bytes()) as chunks:
            async for chunk in chunks:
                text = decoder.decode(chunk)
                if text:
                    yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    async def aiter_lines(self) -> AsyncGenerator[str, None]:
        """Iterate over a streamed body line by line (size limited as ``aiter_bytes``)."""
        pending = ""
        async with aclosing(self.aiter_text()) as texts:
            async for text in texts:
                lines = (pending + text).splitlines(keepends=True)
                # The last piece may be a line still coming, or a CR whose LF is.
                last = lines[-1] if lines else "\n"
                pending = lines.pop() if last.endswith("\r") or last.splitlines()[0] == last else ""
                for line in lines:
                    yield line.splitlines()[0]
        if pending:
            yield pending.splitlines()[0]

    def __repr__(self) -> str:
        return (
            f"<HTTPResponse [{self.status_code} {self.reason_phrase}] "
            f"{redact_url(self._response.url)}>"
        )


class HTTPClient(BaseClient):
    """Async HTTP client: ``async with HTTPClient() as client: await client.get(url)``.

    Args:
        base_url: Prefix for relative URLs (same as ``config.base_url``).
        config: An :class:`HTTPConfig`; keyword overrides are merged over it.
        **overrides: Any HTTPConfig field, e.g. ``headers=``, ``auth=``.

    Raises:
        ConfigError: An invalid field (named).
        SecurityError: ``base_url`` is plain HTTP to a non-loopback host.
    """

    _protocol = "http"

    def __init__(
        self, base_url: str | None = None, *, config: HTTPConfig | None = None, **overrides: Any
    ) -> None:
        super().__init__()
        if base_url is not None:
            overrides["base_url"] = base_url
        self.config = merge_config(HTTPConfig, config, overrides)
        cfg = self.config
        install_log_redaction()
        self._base_url = _parse_base_url(cfg) if cfg.base_url else None
        self._auth: Auth | None = build_auth(cfg.auth, allow_insecure=cfg.allow_insecure)
        self._retry = cfg.retry_config()
        self._retry_statuses = frozenset(self._retry.retry_on_status)
        self._client: httpx.AsyncClient | None = None
        self._allowed_origins: set[tuple[str, str, int | None]] = set()
        self._credential_headers = frozenset(
            name.lower()
            for name in (
                *(self._auth.sensitive_header_names() if self._auth else ()),
                *cfg.credential_headers,
            )
        )

    @property
    def base_url(self) -> str | None:
        """The base URL, if any."""
        return self.config.base_url

    async def _open(self) -> None:
        cfg = self.config
        self._client = build_client(
            timeout=cfg.timeout_seconds,
            connect_timeout=cfg.connect_timeout,
            verify_ssl=cfg.verify_ssl,
            ca_certs=cfg.ca_certs or cfg.cert_path,
            client_cert=cfg.client_cert,
            client_key=cfg.client_key,
            headers=cfg.headers,
            max_keepalive=cfg.pool_connections,
            max_connections=cfg.pool_maxsize,
            http2=cfg.http2,
            transport=cfg.transport,
        )
        if self._base_url is not None:
            self._client.base_url = self._base_url

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _ready(self) -> httpx.AsyncClient:
        if self._client is None:
            await self.connect()
        self._ensure_usable()
        assert self._client is not None
        return self._client

    def _check(self, url: httpx.URL) -> None:
        origin = (url.scheme, url.host, url.port)
        if origin in self._allowed_origins:
            return
        check_url(str(url), allow_insecure=self.config.allow_insecure, schemes=_HTTP_SCHEMES)
        self._allowed_origins.add(origin)

    # -- the public request API -------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = _UNSET,
        follow_redirects: bool | None = None,
        retry: bool | None = None,
        max_response_size: int | None = _UNSET,
    ) -> HTTPResponse:
        """Send a request and read the whole response.

        Args:
            method: HTTP method.
            url: Absolute URL, or relative to ``base_url``.
            params: Query parameters.
            json: A JSON body.
            data: A form body.
            content: A raw body.
            headers: Extra headers for this request.
            timeout: Seconds for this request (None = no timeout).
            follow_redirects: Override ``config.follow_redirects``.
            retry: Force retrying on (True) or off (False) for this request;
                default: retry idempotent methods only.
            max_response_size: Largest body read, in bytes after decompression,
                for this request (None = no limit); default
                ``config.max_response_size``.

        Returns:
            The response (any status; see :meth:`HTTPResponse.raise_for_status`).

        Raises:
            SecurityError: The URL or a redirect hop breaks the policy.
            MessageTooLargeError: The body exceeds ``max_response_size``
                (reading stops there; not retried).
            ConnectionError: The server cannot be reached (after retries).
            TimeoutError: The request timed out (after retries).
            ClosedError: The client was closed.
        """
        limit = self._size_limit(max_response_size)
        client = await self._ready()
        request = self._build(client, method, url, params, json, data, content, headers, timeout)
        follow = self.config.follow_redirects if follow_redirects is None else follow_redirects
        if retry is None:
            may_retry = request.method in IDEMPOTENT_METHODS or self._retry.retry_non_idempotent
        else:
            may_retry = retry
        # The retry policy runs in this frame: one coroutine less per request in flight.
        with _RequestTelemetry(self._otel, request) if self._otel.enabled else NO_TELEMETRY as t:
            try:
                response = await self._send(client, request, follow, limit, stream=False)
            except (errors.ConnectionError, errors.TimeoutError) as exc:
                if (
                    self._retry.max_retries == 0
                    or retry is False
                    or not (may_retry or _not_sent(exc))
                ):
                    raise
                response = await self._retry_loop(
                    client, request, follow, limit, may_retry, first=exc
                )
            else:
                if (
                    response.status_code in self._retry_statuses
                    and may_retry
                    and self._retry.max_retries
                ):
                    response = await self._retry_loop(
                        client, request, follow, limit, may_retry, first=response
                    )
            t.status = response.status_code
        return response

    def _build(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        content: bytes | str | None,
        headers: Mapping[str, str] | None,
        timeout: float | None,
    ) -> httpx.Request:
        """Build a request from the call's arguments and apply the URL policy to it."""
        if headers:
            check_headers("headers", headers)
        try:
            request = client.build_request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                content=content,
                headers=headers,
                timeout=timeout,
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError, ValueError) as exc:
            raise errors.ConfigError(
                f"url: cannot build {method} {redact_url(url)}: {redact_text(exc)}"
            ) from exc
        self._check(request.url)
        return request

    def _size_limit(self, value: int | None) -> int | None:
        if value is _UNSET:
            return self.config.max_response_size
        check_size_limit("max_response_size", value)
        return value

    async def _retry_loop(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        follow: bool,
        limit: int | None,
        may_retry: bool,
        *,
        first: HTTPResponse | Exception,
    ) -> HTTPResponse:
        def retry_exc(exc: BaseException) -> bool:
            return isinstance(exc, errors.ConnectionError | errors.TimeoutError) and (
                may_retry or _not_sent(exc)
            )

        def before_sleep(state: RetryCallState) -> None:
            self.logger.info(
                "retrying %s %s (attempt %d failed)",
                request.method,
                redact_url(request.url),
                state.attempt_number,
            )

        return await retry_after_first(
            self._retry,
            first,
            lambda: self._send(client, request, follow, limit, stream=False),
            retry_if=retry_exc,
            retry_result=lambda r: may_retry and r.status_code in self._retry_statuses,
            hint=_retry_after_hint,
            before_sleep=before_sleep,
        )

    async def _send(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        follow: bool,
        limit: int | None,
        *,
        stream: bool,
    ) -> HTTPResponse:
        auth: httpx.Auth | None = self._auth
        origin = (request.url.scheme, request.url.host, request.url.port)
        hops = 0
        current = request
        while True:
            try:
                # Always streamed: a body is read only once we know it is the
                # final one, and then through the size limit.
                if self._otel.tracing:
                    response = await _traced_send(self._otel, client, current, auth)
                else:
                    transport = direct_transport(client, current, auth)
                    if transport is None:
                        response = await client.send(current, auth=auth, stream=True)
                    else:
                        start = perf_counter()
                        response = await transport.handle_async_request(current)
                        bind_response(client, current, response, start)
            except httpx.HTTPError as exc:
                self.stats.errors += 1
                raise translate_error(exc, current.url) from exc
            self.stats.sent += 1
            self.stats.received += 1
            if not follow or not response.has_redirect_location or response.next_request is None:
                return await self._final(response, limit, stream=stream)
            next_request = response.next_request
            await response.aclose()
            unlink(response)
            hops += 1
            if hops > self.config.max_redirects:
                raise errors.ProtocolError(
                    f"too many redirects ({hops}) starting from {request.method} "
                    f"{redact_url(request.url)}"
                )
            self._check(next_request.url)
            await self._check_redirect(str(next_request.url))
            if (next_request.url.scheme, next_request.url.host, next_request.url.port) != origin:
                # Credentials belong to the origin the caller named, never to a hop.
                strip_credentials(next_request.headers, self._credential_headers)
                auth = None
            current = next_request

    async def _check_redirect(self, url: str) -> None:
        """A further check of each redirect hop, for subclasses (the tool client's); none here."""

    async def _final(
        self, response: httpx.Response, limit: int | None, *, stream: bool
    ) -> HTTPResponse:
        """Wrap the final response, reading its body (within ``limit``) unless streaming."""
        result = HTTPResponse(response, limit)
        try:
            limit_body(response, limit)
            if not stream:
                await result.aread()
                unlink(response)
                self.stats.bytes_received += len(response.content)
        except BaseException as exc:
            await response.aclose()
            unlink(response)
            if isinstance(exc, errors.CommunicationError):
                self.stats.errors += 1
            raise
        return result

    @asynccontextmanager
    async def _otel_stream(
        self, client: httpx.AsyncClient, request: httpx.Request, limit: int | None
    ) -> AsyncIterator[HTTPResponse]:
        """A streamed request whose span lasts to the end of the caller's block."""
        otel = self._otel
        attributes = _http_attributes(request)
        started = monotonic()
        span = otel.start_span(request.method, "client", attributes) if otel.tracing else None
        status: int | None = None
        error: str | None = None
        try:
            token = _SENDS.set([0])
            try:
                with otel.current(span):
                    response = await self._send(
                        client, request, self.config.follow_redirects, limit, stream=True
                    )
            finally:
                _SENDS.reset(token)
            status = response.status_code
            if span is not None:
                _end_attempt(otel, span, status)
            try:
                yield response
            finally:
                await response.raw.aclose()
                unlink(response.raw)
        except BaseException as exc:
            error = error_type(exc)
            if span is not None:
                otel.fail(span, exc)
            raise
        finally:
            if span is not None:
                span.end()
            _record_http(otel, attributes, started, status, error)

    def get(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, HTTPResponse]:
        """Send a GET request; keyword arguments as in :meth:`request`."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, HTTPResponse]:
        """Send a POST request (not retried unless asked)."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, HTTPResponse]:
        """Send a PUT request."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, HTTPResponse]:
        """Send a PATCH request (not retried unless asked)."""
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, HTTPResponse]:
        """Send a DELETE request."""
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, HTTPResponse]:
        """Send a HEAD request."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, HTTPResponse]:
        """Send an OPTIONS request."""
        return self.request("OPTIONS", url, **kwargs)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = _UNSET,
        max_response_size: int | None = _UNSET,
    ) -> AsyncIterator[HTTPResponse]:
        """Send a request and stream the response body (not retried).

        Use ``async with client.stream("GET", url) as response:`` and then
        ``async for chunk in response.aiter_bytes()``. The connection is
        released when the block exits, even on error or cancellation.

        Args:
            method: HTTP method.
            url: Absolute or relative URL.
            params: Query parameters.
            json: A JSON body.
            data: A form body.
            content: A raw body.
            headers: Extra headers.
            timeout: Seconds for this request.
            max_response_size: Largest body the response's readers accept, in
                bytes after decompression (None = no limit); default
                ``config.max_response_size``.

        Yields:
            The response, body not yet read.
        """
        limit = self._size_limit(max_response_size)
        client = await self._ready()
        request = self._build(client, method, url, params, json, data, content, headers, timeout)
        if self._otel.enabled:
            async with self._otel_stream(client, request, limit) as response:
                yield response
            return
        response = await self._send(
            client, request, self.config.follow_redirects, limit, stream=True
        )
        try:
            yield response
        finally:
            await response.raw.aclose()
            unlink(response.raw)  # every streaming user's response is freed at once

    async def health_check(self, url: str = "", *, timeout: float = 5.0) -> HealthStatus:
        """Probe the server with a GET; a 2xx or 3xx answer counts as healthy.

        Args:
            url: URL to probe; default ``health_path`` (relative to the base
                URL), else the base URL itself.
            timeout: Seconds the probe may take.

        Returns:
            The verdict with its latency: a 4xx (a missing health path, a
            refused credential) or 5xx answer is unhealthy, with the status
            in the detail.
        """

        async def probe() -> str:
            target = url or self.config.health_path or self.config.base_url
            if not target:
                raise errors.ConfigError(
                    "url: health_check needs a URL, a health_path or a base_url"
                )
            response = await self.request("GET", target, retry=False, timeout=timeout)
            shown = f"GET {redact_url(target)}"
            if response.status_code >= 400:
                raise errors.RemoteError(
                    f"{shown} answered {response.status_code} {response.reason_phrase}"
                )
            return f"{shown}: {response.status_code}"

        return await run_probe(probe, timeout=timeout, what="http")

    def __repr__(self) -> str:
        base_url = redact_url(self.config.base_url) if self.config.base_url else None
        return f"<HTTPClient base_url={base_url!r} state={self.state.value}>"


def _parse_base_url(cfg: HTTPConfig) -> httpx.URL:
    """Check ``base_url`` once: parsable, no control characters, allowed by the policy.

    Raises:
        ConfigError: The URL cannot be parsed or used (the message names ``base_url``).
        SecurityError: Plain HTTP to a non-loopback host.
    """
    raw = cfg.base_url or ""
    # urlsplit silently drops TAB, CR and LF (as browsers do); httpx refuses them.
    control = next((c for c in raw if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if control is not None:
        raise errors.ConfigError(
            f"base_url: {redact_url(raw)!r} has the control character {control!r}"
        )
    try:
        check_url(raw, allow_insecure=cfg.allow_insecure, schemes=_HTTP_SCHEMES)
        return httpx.URL(raw)
    except errors.ConfigError as exc:
        raise errors.ConfigError(f"base_url: {exc.message}") from exc
    except httpx.InvalidURL as exc:
        raise errors.ConfigError(
            f"base_url: invalid URL {redact_url(raw)!r}: {redact_text(exc)}"
        ) from exc


# Sends of the current logical request so far (its span is the current one).
_SENDS: ContextVar[list[int] | None] = ContextVar("agentcomm_http_sends", default=None)


class _RequestTelemetry(OperationTelemetry):
    """The CLIENT span and duration metric of one logical request, for a ``with`` block.

    Set ``status`` to the final response's status before the block ends; an
    exception leaving the block marks the span failed.
    """

    __slots__ = ("_attributes", "_started", "_token", "status")

    def __init__(self, otel: Instrumentation, request: httpx.Request) -> None:
        attributes = _http_attributes(request)
        super().__init__(
            otel, otel.span(request.method, "client", attributes) if otel.tracing else None
        )
        self._attributes = attributes
        self._started = monotonic()
        self._token: Any = None
        self.status: int | None = None

    def begin(self) -> None:
        """Count the sends of this request (retries and redirects become child spans)."""
        self._token = _SENDS.set([0])

    def end(self, exc: BaseException | None) -> None:
        """Put the final status on the span."""
        _SENDS.reset(self._token)
        if exc is None and self.status is not None:
            _end_attempt(self._otel, self._span, self.status)

    def finish(self, exc: BaseException | None) -> None:
        """Record ``http.client.request.duration``."""
        error = error_type(exc) if exc is not None else None
        status = self.status if exc is None else None
        _record_http(self._otel, self._attributes, self._started, status, error)


# (method, URL) -> its attributes: a client calls the same few URLs over and over, and
# redacting one costs more than looking it up. Only URLs with no userinfo and no query
# (so no secret is kept here); bounded, cleared when full.
_HTTP_ATTRIBUTES: dict[tuple[str, str], dict[str, Any]] = {}


def _http_attributes(request: httpx.Request) -> dict[str, Any]:
    """HTTP client span and metric attributes of a request (the URL redacted), a new dict."""
    url = request.url
    plain = not url.userinfo and not url.query
    key = (request.method, str(url)) if plain else None
    cached = _HTTP_ATTRIBUTES.get(key) if key is not None else None
    if cached is None:
        cached = {
            "http.request.method": request.method,
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
            "url.scheme": url.scheme,
            "url.full": redact_url(url),
        }
        if key is not None:
            if len(_HTTP_ATTRIBUTES) >= 512:
                _HTTP_ATTRIBUTES.clear()
            _HTTP_ATTRIBUTES[key] = cached
    return dict(cached)


def _record_http(
    otel: Instrumentation,
    attributes: dict[str, Any],
    started: float,
    status: int | None,
    error: str | None,
) -> None:
    if not otel.metering:
        return
    if status is not None:
        attributes["http.response.status_code"] = status
        if status >= 400:
            attributes["error.type"] = str(status)
    elif error is not None:
        attributes["error.type"] = error
    attributes.pop("url.full", None)  # high cardinality: spans only
    measure(otel, "http.client.request.duration", started, attributes)


def _end_attempt(otel: Instrumentation, span: Any, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        otel.fail_status(span, str(status))


async def _traced_send(
    otel: Instrumentation, client: httpx.AsyncClient, request: httpx.Request, auth: Any
) -> httpx.Response:
    """One wire send: the first in the logical span, each resend in a child span."""
    state = _SENDS.get()
    sends = 0 if state is None else state[0]
    if state is not None:
        state[0] += 1
    if sends == 0:
        otel.inject(request.headers)
        return await client.send(request, auth=auth, stream=True)
    attributes = _http_attributes(request)
    attributes["http.request.resend_count"] = sends
    with otel.span(request.method, "client", attributes) as span:
        otel.inject(request.headers)
        response = await client.send(request, auth=auth, stream=True)
        _end_attempt(otel, span, response.status_code)
        return response


def _not_sent(exc: BaseException) -> bool:
    """The request never left: the connection could not be opened."""
    return isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout)


def _retry_after_hint(state: RetryCallState) -> float | None:
    outcome = state.outcome
    if outcome is None or outcome.failed:
        return None
    response = outcome.result()
    if isinstance(response, HTTPResponse):
        return parse_retry_after(response.headers.get("retry-after"))
    return None
