"""SSEClient: Server-Sent Events over httpx, resuming exactly where a stream stopped.

``async with SSEClient(url) as sse: async for event in sse:`` yields
:class:`SSEEvent` objects (``event``, ``data``, ``id``, ``retry``, ``.json()``).
GET is the default; ``method="POST", json={...}`` streams a completion.

Two layers, as in httpx-sse: :class:`EventStreamDecoder` turns text into events
and does no I/O (the ``text/event-stream`` rules of the WHATWG HTML standard:
CR, LF and CRLF line ends split anywhere, comments, multi-line data, an event
with no ``data`` line is not dispatched, ``id`` persists across events, a
``retry`` of ASCII digits sets the reconnection time, a leading BOM is
dropped); :class:`SSEClient` does the HTTP on the shared httpx seam.

Reconnect contract (``auto_reconnect=True``, the default): when the stream
drops (connection error, read timeout, or the server closing it), the client
waits the server's last ``retry:`` value (else ``reconnect_delay``), backing
off on repeated failures, and sends ``Last-Event-ID`` with the last id
received. A server that honours the header loses and repeats nothing; one that
does not may repeat or skip events. An event whose terminating blank line had
not arrived when the stream dropped is discarded, as the standard requires,
and is re-sent by a resuming server. HTTP 204, or the configured
``terminal_event``, ends iteration without reconnecting. A non-2xx status
raises :class:`~agenticaiframework.communication.errors.HTTPStatusError`, a
content type other than ``text/event-stream`` raises
:class:`UnexpectedContentTypeError`; both carry the status and the start of
the body. 4xx and a wrong content type are not retried; 5xx, connection errors
and timeouts are, ``max_reconnect_attempts`` times in a row at most (the
first connection gets one try plus that many retries).

Redirects are not followed: a 3xx answer raises ``HTTPStatusError``.
"""

from __future__ import annotations

import asyncio
import codecs as _codecs
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable
from typing import Any, cast

import httpx
from tenacity import RetryCallState

from . import errors
from ._httpx import build_client, translate_error
from .auth import Auth, build_auth
from .codecs import loads
from .config import SSEConfig, merge_config
from .health import HealthStatus, run_probe
from .lifecycle import BaseClient, ClientState
from .retry import backoff_delay, parse_retry_after, retrying
from .security import check_url

__all__ = ["EventStreamDecoder", "SSEClient", "SSEEvent", "UnexpectedContentTypeError"]

_HTTP_SCHEMES = frozenset({"http", "https"})
_PREVIEW_BYTES = 512
_PREVIEW_SECONDS = 2.0
_EVENT_STREAM = "text/event-stream"
_logger = logging.getLogger("agenticaiframework.communication.sse")


@dataclasses.dataclass(slots=True)
class SSEEvent:
    r"""One dispatched server-sent event.

    Attributes:
        event: The event type; ``"message"`` when the server gave none.
        data: The data lines joined with ``"\n"``.
        id: The last event id at dispatch (it persists across events, as in
            browsers); ``""`` when the server never sent one.
        retry: The ``retry:`` value (milliseconds) sent with this event, if any.
    """

    event: str
    data: str
    id: str = ""
    retry: int | None = None

    def json(self) -> Any:
        """Decode ``data`` as JSON.

        Returns:
            The decoded value.

        Raises:
            ProtocolError: ``data`` is not valid JSON.
        """
        return loads(self.data)


class UnexpectedContentTypeError(errors.ProtocolError):
    """The server answered 2xx with a content type other than ``text/event-stream``.

    Attributes:
        status_code: The HTTP status.
        content_type: The content type received.
        body_preview: The first bytes of the body, decoded.
    """

    def __init__(
        self, message: str, *, status_code: int, content_type: str, body_preview: str
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.content_type = content_type
        self.body_preview = body_preview


class EventStreamDecoder:
    """Incremental, I/O-free decoder of ``text/event-stream`` text.

    Feed it text as it arrives with :meth:`feed`; it returns the events that
    are complete. Call :meth:`new_stream` when a new connection starts: the
    partial line and event are dropped, ``last_event_id`` and ``retry`` kept.

    Args:
        last_event_id: The id to start from (sent as ``Last-Event-ID``).
        max_event_size: Largest event, or unterminated line, in characters.

    Attributes:
        last_event_id: The last event id buffer (``""`` = none).
        retry: The reconnection time the server asked for, in milliseconds.
    """

    __slots__ = (
        "_buffer",
        "_cr",
        "_data",
        "_event",
        "_first",
        "_max",
        "_retry_field",
        "_size",
        "last_event_id",
        "retry",
    )

    def __init__(self, last_event_id: str = "", *, max_event_size: int = 16 * 1024 * 1024) -> None:
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self._max = max_event_size
        self._buffer = ""
        self._cr = False
        self._first = True
        self._event = ""
        self._data: list[str] = []
        self._retry_field: int | None = None
        self._size = 0

    def new_stream(self) -> None:
        """Forget the partial line and event of the previous connection."""
        self._buffer = ""
        self._cr = False
        self._first = True
        self._event = ""
        self._data = []
        self._retry_field = None
        self._size = 0

    def feed(self, text: str) -> list[SSEEvent]:
        """Decode more of the stream.

        Args:
            text: The next piece of the stream, split anywhere.

        Returns:
            The events completed by this piece, in order (often empty).

        Raises:
            MessageTooLargeError: An event or line grew past ``max_event_size``.
        """
        if not text:
            return []
        if self._first:
            self._first = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._cr:
            # A CR ended the previous piece: a leading LF completes that CRLF.
            self._cr = False
            if text[:1] == "\n":
                text = text[1:]
        if "\r" in text:
            self._cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if self._buffer:
            lines[0] = self._buffer + lines[0]
        self._buffer = lines.pop()
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if line[:5] == "data:":
                value = line[5:]
                if value[:1] == " ":
                    value = value[1:]
                data.append(value)
                self._size += len(value)
                continue
            if not line:
                if data:
                    events.append(
                        SSEEvent(
                            self._event or "message",
                            "\n".join(data),
                            self.last_event_id,
                            self._retry_field,
                        )
                    )
                    data = self._data = []
                self._event = ""
                self._retry_field = None
                self._size = 0
                continue
            colon = line.find(":")
            if colon == 0:
                continue  # a comment (keep-alive)
            if colon < 0:
                name, value = line, ""
            else:
                name, value = line[:colon], line[colon + 1 :]
                if value[:1] == " ":
                    value = value[1:]
            if name == "event":
                self._event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                if "\0" not in value:
                    self.last_event_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                self.retry = self._retry_field = int(value)
        if self._size > self._max or len(self._buffer) > self._max:
            size = max(self._size, len(self._buffer))
            raise errors.MessageTooLargeError(
                f"server-sent event of {size} characters exceeds max_event_size={self._max}"
            )
        return events


class SSEClient(BaseClient):
    """Async Server-Sent Events client: ``async for event in SSEClient(url)``.

    Iterating opens the stream if ``connect()`` was not called. One task at a
    time may iterate; ``close()`` may be called from any task, and a pending
    iteration then ends quietly.

    Args:
        url: The stream URL (http to loopback, else https).
        config: An :class:`SSEConfig`; keyword overrides are merged over it.
        **overrides: Any SSEConfig field: ``method=``, ``json=``, ``headers=``,
            ``params=``, ``auth=``, ``terminal_event=``...

    Raises:
        ConfigError: An invalid field (named).
        SecurityError: Plain HTTP to a non-loopback host without ``allow_insecure``.
    """

    _protocol = "sse"

    def __init__(self, url: str, *, config: SSEConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = merge_config(SSEConfig, config, overrides)
        cfg = self.config
        check_url(url, allow_insecure=cfg.allow_insecure, schemes=_HTTP_SCHEMES)
        self._url = url
        self._auth: Auth | None = build_auth(cfg.auth, allow_insecure=cfg.allow_insecure)
        self._policy = cfg.retry_config()
        self._decoder = EventStreamDecoder(
            cfg.last_event_id or "", max_event_size=cfg.max_event_size
        )
        self._client: httpx.AsyncClient | None = None
        self._response: httpx.Response | None = None
        self._chunks: AsyncGenerator[bytes, None] | None = None
        self._text: Callable[[bytes], str] = _utf8_decoder()
        self._pending: deque[SSEEvent] = deque()
        self._reading = False
        self._interrupted = False
        self._stale_client = False
        self._retry_after: float | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def url(self) -> str:
        """The stream URL."""
        return self._url

    @property
    def last_event_id(self) -> str:
        """The last event id received (sent as ``Last-Event-ID`` on reconnect)."""
        return self._decoder.last_event_id

    @property
    def retry_ms(self) -> int | None:
        """The reconnection time the server asked for with ``retry:``, if any."""
        return self._decoder.retry

    # -- lifecycle ------------------------------------------------------------------

    def _new_client(self) -> httpx.AsyncClient:
        cfg = self.config
        return build_client(
            timeout=cfg.timeout_seconds,
            connect_timeout=cfg.connect_timeout,
            verify_ssl=cfg.verify_ssl,
            ca_certs=cfg.ca_certs,
            client_cert=cfg.client_cert,
            client_key=cfg.client_key,
            headers=cfg.headers,
            max_keepalive=1,
            max_connections=4,
        )

    async def _open(self) -> None:
        self._client = self._new_client()
        try:
            await self._establish(reconnect=False)
        except BaseException:
            client, self._client = self._client, None
            await client.aclose()
            raise

    async def _close(self) -> None:
        self._pending.clear()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        try:
            await self._drop_stream()
        finally:
            client, self._client = self._client, None
            if client is not None:
                await client.aclose()

    # -- iteration --------------------------------------------------------------------

    def __aiter__(self) -> SSEClient:
        return self

    async def __anext__(self) -> SSEEvent:
        """The next event (opening or resuming the stream as needed).

        Safe to cancel (``asyncio.timeout`` around it is fine): a read that is
        cancelled closes the connection, and the next call resumes the stream
        at once with ``Last-Event-ID``, as after a drop but without waiting
        (or raises ``ConnectionError`` when reconnecting is off).

        Raises:
            StopAsyncIteration: HTTP 204, the terminal event was yielded, the
                server ended the stream with reconnecting off, or the client
                was closed.
            HTTPStatusError: A non-2xx answer (after retries for 5xx).
            UnexpectedContentTypeError: The answer is not an event stream.
            ConnectionError: The stream could not be (re)opened.
            TimeoutError: No byte within ``timeout_seconds`` (after retries).
            MessageTooLargeError: An event exceeded ``max_event_size``.
        """
        if self._pending:
            return self._pending.popleft()
        return await self._fill()

    async def _fill(self) -> SSEEvent:
        if self._state is ClientState.UNOPENED:
            await self.connect()
        pending = self._pending
        while True:
            if pending:
                return pending.popleft()
            chunks = self._chunks
            if chunks is None:
                if not self._interrupted or self.is_closed:
                    raise StopAsyncIteration
                self._interrupted = False  # a resume was cancelled: take it up again
                await self._resume(wait=False)
                continue
            failure: httpx.HTTPError | None = None
            self._reading = True
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                chunk = None
            except httpx.HTTPError as exc:
                chunk, failure = None, exc
            except asyncio.CancelledError:
                # httpx closes the connection under a cancelled read; the next
                # call resumes (or raises) as after any broken stream.
                self._interrupted = True
                raise
            finally:
                self._reading = False
            if self._interrupted:
                self._interrupted = False
                if self.is_closed:
                    raise StopAsyncIteration
                try:
                    await self._stream_ended(httpx.ReadError("a read was cancelled"), wait=False)
                except asyncio.CancelledError:
                    self._interrupted = True
                    raise
                continue
            if chunk is not None:
                try:
                    events = self._decoder.feed(self._text(chunk))
                except errors.MessageTooLargeError:
                    self.stats.errors += 1
                    await self._drop_stream()
                    raise
                if events:
                    self.stats.received += len(events)
                    if self.config.terminal_event is not None and self._cut_at_terminal(events):
                        pending.extend(events)
                        await self._drop_stream()
                        continue
                    pending.extend(events)
                continue
            if self.is_closed:
                raise StopAsyncIteration
            try:
                await self._stream_ended(failure)
            except asyncio.CancelledError:
                self._interrupted = True
                raise

    def _cut_at_terminal(self, events: list[SSEEvent]) -> bool:
        """Drop what follows the terminal event; tell whether there was one."""
        name = self.config.terminal_event
        for index, event in enumerate(events):
            if event.event == name:
                del events[index + 1 :]
                return True
        return False

    async def _stream_ended(self, failure: httpx.HTTPError | None, *, wait: bool = True) -> None:
        """Resume after the stream ended or broke, or end/raise if we may not."""
        await self._drop_stream()
        cfg = self.config
        may_reconnect = cfg.auto_reconnect and cfg.max_reconnect_attempts > 0
        if failure is not None:
            self.stats.errors += 1
            error = translate_error(failure, self._url)
            if not may_reconnect:
                raise error from failure
            self.logger.info("SSE stream %s broke (%s); resuming", self._url, error.message)
        elif not may_reconnect:
            return
        else:
            self.logger.debug("SSE stream %s ended by the server; resuming", self._url)
        await self._resume(wait=wait)

    async def _resume(self, *, wait: bool) -> None:
        try:
            await self._establish(reconnect=True, wait=wait)
        except errors.ClosedError:
            raise StopAsyncIteration from None
        except asyncio.CancelledError:
            # httpcore can leave a half-made connection in its pool when a
            # connect is cancelled; the next attempt starts from a fresh pool.
            self._interrupted = self._stale_client = True
            raise
        self.stats.reconnects += 1

    # -- connecting -------------------------------------------------------------------

    async def _establish(self, *, reconnect: bool, wait: bool = True) -> None:
        """Open the stream, retrying transient failures per the policy.

        Args:
            reconnect: The stream dropped: allow ``max_reconnect_attempts``
                attempts in all.
            wait: Wait the reconnection time before the first attempt (not
                when the drop was our own cancelled read).
        """
        cfg = self.config
        if not cfg.auto_reconnect:
            attempts = 1
        elif reconnect:
            attempts = cfg.max_reconnect_attempts
        else:
            attempts = cfg.max_reconnect_attempts + 1
        policy = dataclasses.replace(self._policy, max_retries=max(attempts - 1, 0))
        offset = 1 if reconnect else 0
        if reconnect and wait:
            await self._sleep(self._reconnect_wait(1))

        def hint(state: RetryCallState) -> float:
            return self._reconnect_wait(state.attempt_number + offset)

        def before_sleep(state: RetryCallState) -> None:
            outcome = state.outcome
            failure = outcome.exception() if outcome is not None else None
            self.logger.info(
                "SSE connection to %s failed (attempt %d: %s); retrying",
                self._url,
                state.attempt_number,
                failure,
            )

        async for attempt in retrying(
            policy,
            retry_if=_is_transient,
            hint=hint,
            before_sleep=before_sleep,
            sleep=self._sleep,
        ):
            with attempt:
                await self._open_stream()

    def _reconnect_wait(self, attempt: int) -> float:
        """Seconds before attempt ``attempt`` (1-based): Retry-After, retry:, or backoff."""
        retry_after, self._retry_after = self._retry_after, None
        if retry_after is not None:
            return retry_after
        policy = self._policy
        retry_ms = self._decoder.retry
        if retry_ms is not None:
            seconds = retry_ms / 1000
            policy = dataclasses.replace(
                policy, retry_delay=seconds, max_delay=max(policy.max_delay, seconds)
            )
        return backoff_delay(policy, attempt)

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the client is closed meanwhile."""
        if self.is_closed:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(seconds, _wake, waiter)
        self._waiter = waiter
        try:
            await waiter
        finally:
            handle.cancel()
            self._waiter = None

    def _build_request(self, client: httpx.AsyncClient, *, resume: bool) -> httpx.Request:
        cfg = self.config
        headers = {"Accept": _EVENT_STREAM, "Cache-Control": "no-store"}
        if resume and self._decoder.last_event_id:
            headers["Last-Event-ID"] = self._decoder.last_event_id
        try:
            return client.build_request(
                cfg.method, self._url, params=cfg.params, json=cfg.json, headers=headers
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError) as exc:
            raise errors.ConfigError(f"url: cannot build {cfg.method} {self._url}: {exc}") from exc

    async def _send(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        try:
            response = await client.send(request, auth=self._auth, stream=True)
        except httpx.HTTPError as exc:
            self.stats.errors += 1
            raise translate_error(exc, self._url) from exc
        except RuntimeError as exc:
            if self.is_closed:  # httpx refuses to send on a closed client
                raise errors.ClosedError("SSEClient is closed") from exc
            raise
        self.stats.sent += 1
        return response

    async def _open_stream(self) -> None:
        """One attempt: send the request and, if it is a stream, make it current."""
        client = self._client
        if self.is_closed or client is None:
            raise errors.ClosedError("SSEClient is closed")
        if self._stale_client:
            self._stale_client = False
            self._client = self._new_client()
            await client.aclose()
            client = self._client
        response = await self._send(client, self._build_request(client, resume=True))
        try:
            is_stream = await self._check_response(response)
        except BaseException:
            await response.aclose()
            raise
        if not is_stream:
            await response.aclose()
            self.logger.debug("SSE %s answered 204: stream finished", self._url)
            return
        if self.is_closed:
            await response.aclose()
            raise errors.ClosedError("SSEClient is closed")
        self._decoder.new_stream()
        self._text = _utf8_decoder()
        self._response = response
        self._chunks = cast(AsyncGenerator[bytes, None], response.aiter_bytes())

    async def _check_response(self, response: httpx.Response) -> bool:
        """Return whether ``response`` is an event stream (False for 204), else raise."""
        status = response.status_code
        if status == 204:
            return False
        method, url = response.request.method, response.request.url
        if not 200 <= status < 300:
            self.stats.errors += 1
            self._retry_after = parse_retry_after(response.headers.get("retry-after"))
            preview = await _preview(response)
            hint = " (redirects are not followed)" if 300 <= status < 400 else ""
            raise errors.HTTPStatusError(
                f"{method} {url} answered {status} {response.reason_phrase}{hint}: {preview!r}",
                status_code=status,
                body_preview=preview,
            )
        content_type = response.headers.get("content-type", "")
        if content_type.partition(";")[0].strip().lower() != _EVENT_STREAM:
            self.stats.errors += 1
            preview = await _preview(response)
            raise UnexpectedContentTypeError(
                f"{method} {url} answered {status} with content type {content_type!r}, "
                f"not {_EVENT_STREAM}: {preview!r}",
                status_code=status,
                content_type=content_type,
                body_preview=preview,
            )
        return True

    async def _drop_stream(self) -> None:
        response, chunks = self._response, self._chunks
        self._response = self._chunks = None
        try:
            if chunks is not None and not self._reading:
                await chunks.aclose()
        finally:
            if response is not None:
                self.stats.bytes_received += response.num_bytes_downloaded
                await response.aclose()

    # -- health -------------------------------------------------------------------------

    async def health_check(self, *, timeout: float = 5.0) -> HealthStatus:
        """Check the stream: healthy if it is open, else probe the URL once.

        The probe sends the configured request (method, body, headers) and
        closes it as soon as the status and content type are known, so a POST
        stream's endpoint does see a request.

        Args:
            timeout: Seconds the probe may take.

        Returns:
            The verdict with its latency.
        """

        async def probe() -> str:
            if self._response is not None:
                return f"stream open to {self._url} ({self.stats.received} events)"
            cfg = self.config
            client = self._client
            own = client is None
            if client is None:
                client = build_client(
                    timeout=timeout,
                    connect_timeout=timeout,
                    verify_ssl=cfg.verify_ssl,
                    ca_certs=cfg.ca_certs,
                    client_cert=cfg.client_cert,
                    client_key=cfg.client_key,
                    headers=cfg.headers,
                )
            try:
                response = await self._send(client, self._build_request(client, resume=False))
                try:
                    await self._check_response(response)
                finally:
                    await response.aclose()
            finally:
                if own:
                    await client.aclose()
            return f"{cfg.method} {self._url}: {response.status_code}"

        return await run_probe(probe, timeout=timeout, what="sse")

    def __repr__(self) -> str:
        return (
            f"<SSEClient {self.config.method} {self._url} state={self.state.value} "
            f"last_event_id={self._decoder.last_event_id!r}>"
        )


def _utf8_decoder() -> Callable[[bytes], str]:
    # The standard says event streams are always UTF-8, whatever the charset says.
    return _codecs.getincrementaldecoder("utf-8")("replace").decode


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _is_transient(exc: BaseException) -> bool:
    """Whether a failed attempt is worth another: connection, timeout, 5xx."""
    if isinstance(exc, errors.HTTPStatusError):
        return exc.status_code >= 500
    if isinstance(exc, errors.SecurityError | errors.ClosedError):
        return False
    return isinstance(exc, errors.ConnectionError | errors.TimeoutError)


async def _preview(response: httpx.Response) -> str:
    """The start of an unexpected body, read briefly (it may be a stream)."""
    body = bytearray()
    try:
        async with (
            asyncio.timeout(_PREVIEW_SECONDS),
            contextlib.aclosing(
                cast(AsyncGenerator[bytes, None], response.aiter_bytes())
            ) as chunks,
        ):
            async for chunk in chunks:
                body += chunk
                if len(body) >= _PREVIEW_BYTES:
                    break
    except (TimeoutError, httpx.HTTPError) as exc:
        # The status is the error being raised; the body only illustrates it.
        _logger.debug("could not read the body of %s: %r", response.request.url, exc)
    return body[:_PREVIEW_BYTES].decode("utf-8", "replace")
