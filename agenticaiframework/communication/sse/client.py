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

The stream is read by a reader task the client owns (started by ``connect()``,
stopped by ``close()``) into a bounded queue, as WebSocketClient does: a
cancelled wait for the next event (``asyncio.timeout`` around ``anext()``)
never closes the connection nor loses an event, and a consumer that falls
behind makes the reader stop reading (TCP then slows the server down).

Reconnect contract (``auto_reconnect=True``, the default): when the stream
drops (connection error, read timeout, or the server closing it), the reader
waits the server's last ``retry:`` value (else ``reconnect_delay``), backing
off on repeated failures, and sends ``Last-Event-ID`` with the last id
received. A server that honours the header loses and repeats nothing; one that
does not may repeat or skip events. An id that cannot travel in a header
(non-ASCII, control characters, leading or trailing space) is not sent: the
last one that can is sent instead (logged), so a server repeats rather than
skips. An event whose terminating blank line had not arrived when the stream
dropped is discarded, as the standard requires, and is re-sent by a resuming
server. HTTP 204, or the configured ``terminal_event``, ends iteration without
reconnecting. A non-2xx status raises
:class:`~agenticaiframework.communication.core.errors.HTTPStatusError`, a content
type other than ``text/event-stream`` raises :class:`UnexpectedContentTypeError`;
both carry the status and the start of the body. 4xx and a wrong content type
are not retried; 5xx, connection errors and timeouts are,
``max_reconnect_attempts`` times in a row at most (the first connection gets
one try plus that many retries). An event larger than ``max_event_size``
(every line of it counts, empty ``data:`` lines and the unfinished line
included) raises ``MessageTooLargeError`` and closes the stream for good.

Redirects are not followed: a 3xx answer raises ``HTTPStatusError``. URLs are
printed (``url``, repr, errors, logs) with passwords and secret query values
redacted.
"""

from __future__ import annotations

import asyncio
import codecs as _codecs
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable
from typing import Any, Literal, NoReturn, cast

import httpx
from tenacity import RetryCallState

from ..core import errors
from ..core.auth import Auth, build_auth
from ..core.codecs import loads
from ..core.config import SSEConfig, merge_config
from ..core.health import HealthStatus, run_probe
from ..core.lifecycle import BaseClient, ClientState
from ..core.retry import backoff_delay, parse_retry_after, retrying
from ..core.security import check_url, install_log_redaction, redact_text, redact_url
from ..http.engine import build_client, translate_error, unlink

__all__ = [
    "MAX_RETRY_MS",
    "EventStreamDecoder",
    "SSEClient",
    "SSEEvent",
    "UnexpectedContentTypeError",
    "is_sendable_id",
]

MAX_RETRY_MS = 3_600_000
"""The largest ``retry:`` honoured (one hour); a larger value is capped to it."""

_HTTP_SCHEMES = frozenset({"http", "https"})
_PREVIEW_BYTES = 512
_PREVIEW_SECONDS = 2.0
_EVENT_STREAM = "text/event-stream"
# Characters of events (as counted for max_event_size) the reader may have
# decoded and not yet handed out before it stops reading: memory held is this
# plus one network read's events (or one event of up to max_event_size). Much
# smaller makes the reader and the iteration wake each other for every read of
# small events; with 16 KiB the CPU per event is what it was when iteration
# read the stream itself.
_READ_AHEAD = 16 * 1024
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

    The size of an event is counted as it is built, line by line as on the
    wire (each field line with its line end, empty ``data:`` lines included,
    plus the line still waiting for its line end); comments do not count.

    Args:
        last_event_id: The id to start from (sent as ``Last-Event-ID``).
        max_event_size: Largest event, in characters.

    Attributes:
        last_event_id: The last event id buffer (``""`` = none).
        resume_id: The last id that can be sent back as a ``Last-Event-ID``
            header (printable ASCII without leading or trailing space);
            differs from ``last_event_id`` only after an id that cannot.
        retry: The reconnection time the server asked for, in milliseconds,
            at most :data:`MAX_RETRY_MS`.
        dispatched_size: The total size of the events returned so far,
            counted as for ``max_event_size`` (for flow control).
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
        "dispatched_size",
        "last_event_id",
        "resume_id",
        "retry",
    )

    def __init__(self, last_event_id: str = "", *, max_event_size: int = 16 * 1024 * 1024) -> None:
        self.last_event_id = last_event_id
        self.resume_id = last_event_id if is_sendable_id(last_event_id) else ""
        self.retry: int | None = None
        self._max = max_event_size
        self._buffer = ""
        self._cr = False
        self._first = True
        self._event = ""
        self._data: list[str] = []
        self._retry_field: int | None = None
        self._size = 0
        self.dispatched_size = 0

    def new_stream(self) -> None:
        """Forget the partial line and event of the previous connection."""
        self._first = True
        self._drop_partial()

    def _drop_partial(self) -> None:
        self._buffer = ""
        self._cr = False
        self._event = ""
        self._data = []
        self._retry_field = None
        self._size = 0

    def feed(self, text: str, out: list[SSEEvent] | None = None) -> list[SSEEvent]:
        """Decode more of the stream.

        Args:
            text: The next piece of the stream, split anywhere.
            out: A list to append the completed events to (and return); when
                an error is raised, the events completed before it are in it.

        Returns:
            The events completed by this piece, in order (often empty).

        Raises:
            MessageTooLargeError: The event being built grew past
                ``max_event_size``; it is dropped, with the rest of the piece.
        """
        events: list[SSEEvent] = [] if out is None else out
        if not text:
            return events
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
        data = self._data
        size = self._size
        limit = self._max
        new_id = False
        for line in lines:
            if line[:5] == "data:":
                size += len(line) + 1
                if size > limit:
                    self._too_large(size)
                value = line[5:]
                if value[:1] == " ":
                    value = value[1:]
                data.append(value)
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
                    self.dispatched_size += size
                    data = self._data = []
                self._event = ""
                self._retry_field = None
                size = 0
                continue
            colon = line.find(":")
            if colon == 0:
                continue  # a comment (keep-alive)
            size += len(line) + 1
            if size > limit:
                self._too_large(size)
            if colon < 0:
                name, value = line, ""
            else:
                name, value = line[:colon], line[colon + 1 :]
                if value[:1] == " ":
                    value = value[1:]
            if name == "id":
                if "\0" not in value:
                    self.last_event_id = value
                    new_id = True
            elif name == "event":
                self._event = value
            elif name == "data":
                data.append(value)
            elif name == "retry" and value.isascii() and value.isdigit():
                # Per the standard any run of digits is valid; a huge one is capped
                # (int() of 4,300+ digits raises, and float() overflows past 308).
                retry = int(value) if len(value) <= 10 else MAX_RETRY_MS
                self.retry = self._retry_field = min(retry, MAX_RETRY_MS)
        self._size = size
        if new_id:
            # Checked once per piece, not per event: the last id of the piece.
            last = self.last_event_id
            if is_sendable_id(last):
                self.resume_id = last
            else:
                self._resume_from_earlier_id(lines)
        if size + len(self._buffer) > limit:
            self._too_large(size + len(self._buffer))
        return events

    def _resume_from_earlier_id(self, lines: list[str]) -> None:
        """Make ``resume_id`` the last sendable id of this piece (if it has one)."""
        for line in reversed(lines):
            if line[:2] != "id":
                continue
            name, colon, value = line.partition(":")
            if name != "id":
                continue
            if colon and value[:1] == " ":
                value = value[1:]
            if "\0" not in value and is_sendable_id(value):
                self.resume_id = value
                return

    def _too_large(self, size: int) -> NoReturn:
        self._drop_partial()
        raise errors.MessageTooLargeError(
            f"server-sent event of at least {size} characters exceeds max_event_size={self._max}"
        )


def is_sendable_id(value: str) -> bool:
    """Tell whether an event id can be sent back as a ``Last-Event-ID`` header.

    Args:
        value: An id from the stream.

    Returns:
        True for ``""`` (no header is sent) and for printable ASCII without
        leading or trailing space; False for anything httpx or the HTTP
        grammar would refuse in a header value.
    """
    if not value:
        return True
    return value.isascii() and value.isprintable() and value[0] != " " and value[-1] != " "


class SSEClient(BaseClient):
    """Async Server-Sent Events client: ``async for event in SSEClient(url)``.

    Iterating opens the stream if ``connect()`` was not called. From then on
    a reader task owned by the client reads the stream, decodes it, queues
    the events (about 16 KiB of them ahead of iteration at most: then it
    stops reading, and TCP slows the server down) and resumes a stream that
    dropped. So a wait for the next event may be cancelled (``asyncio.timeout``)
    without closing the stream or losing an event. One task at a time may
    iterate; ``close()`` may be called from any task: it stops the reader, and
    a pending iteration then ends quietly.

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
    _otel_span: Any = None  # the stream's span, while it lasts
    _otel_done = False

    def __init__(self, url: str, *, config: SSEConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = merge_config(SSEConfig, config, overrides)
        cfg = self.config
        check_url(url, allow_insecure=cfg.allow_insecure, schemes=_HTTP_SCHEMES)
        install_log_redaction()
        self._url = url
        self._safe_url = redact_url(url)
        initial_id = cfg.last_event_id or ""
        if not is_sendable_id(initial_id):
            raise errors.ConfigError(
                f"last_event_id: {initial_id!r} cannot be sent as a Last-Event-ID header "
                "(printable ASCII only, without leading or trailing space)"
            )
        try:
            # Query parameters add to the URL's own query (httpx alone would replace it).
            request_url = httpx.URL(url)
            self._request_url = request_url.copy_merge_params(cfg.params or {})
        except (httpx.InvalidURL, TypeError) as exc:
            raise errors.ConfigError(
                f"url: cannot use {self._safe_url} with params: {redact_text(exc)}"
            ) from exc
        self._auth: Auth | None = build_auth(cfg.auth, allow_insecure=cfg.allow_insecure)
        self._policy = cfg.retry_config()
        self._decoder = EventStreamDecoder(initial_id, max_event_size=cfg.max_event_size)
        self._client: httpx.AsyncClient | None = None
        self._response: httpx.Response | None = None
        self._chunks: AsyncGenerator[bytes, None] | None = None
        self._text: Callable[[bytes], str] = _utf8_decoder()
        self._pending: deque[SSEEvent] = deque()
        # The reader's queue: (events of one network read, their size), None =
        # the stream is over (see _error). The reader stops reading while more
        # than _READ_AHEAD is queued or in hand (the batch being iterated), so
        # a large read is decoded only once the previous one is used up, as if
        # iteration read the stream itself. A deque and two futures: less than
        # half the cost of asyncio.Queue per hand-over.
        self._batches: deque[tuple[list[SSEEvent], int] | None] = deque()
        self._queued = 0
        self._in_hand = 0
        self._wanted: asyncio.Future[None] | None = None  # iteration waits for a batch
        self._room: asyncio.Future[None] | None = None  # the reader waits for room
        self._error: errors.CommunicationError | None = None
        self._retry_after: float | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def url(self) -> str:
        """The stream URL, its password and secret query values replaced by ``***``."""
        return self._safe_url

    @property
    def last_event_id(self) -> str:
        """The last event id read (sent as ``Last-Event-ID`` on reconnect).

        The reader may be ahead of iteration by the events still queued: to
        remember how far *you* got, keep the ``id`` of the last event handled.
        """
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
        if self._otel.tracing:
            self._otel_span = self._otel.start_span(
                self.config.method,
                "client",
                _otel_attributes(self.config.method, self._request_url),
            )
        try:
            await self._establish(reconnect=False)
        except BaseException as exc:
            if self._otel.enabled:
                self._otel_end(exc)
            client, self._client = self._client, None
            try:
                await self._drop_stream()
            finally:
                await client.aclose()
            raise
        if self._chunks is None:
            self._batches.append(None)  # 204: nothing to read
        else:
            self._tasks.spawn(self._reader(), "reader")

    async def _close(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        # The reader first: it may be inside a read of the stream we release.
        await self._tasks.cancel_all()
        self._pending.clear()
        self._error = None
        self._batches.clear()
        self._batches.append(None)
        self._queued = self._in_hand = 0
        _wake(self._wanted)  # a pending iteration wakes up and ends
        if self._otel.enabled:
            self._otel_end(None)
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
        """The next event (opening the stream first if needed).

        Safe to cancel (``asyncio.timeout`` around it is fine): the stream is
        read by the client's reader task, so a cancelled wait neither closes
        the connection nor loses an event; the next call returns it.

        Raises:
            StopAsyncIteration: HTTP 204, the terminal event was yielded, the
                server ended the stream with reconnecting off, or the client
                was closed; also on every call after one of the errors below.
            HTTPStatusError: A non-2xx answer (after retries for 5xx).
            UnexpectedContentTypeError: The answer is not an event stream.
            ConnectionError: The stream could not be (re)opened.
            TimeoutError: No byte within ``timeout_seconds`` (after retries).
            MessageTooLargeError: An event exceeded ``max_event_size``; the
                stream is closed and not resumed.
            RuntimeError: Another task is already waiting for the next event.
        """
        pending = self._pending
        if pending:
            return pending.popleft()
        if self._state is ClientState.UNOPENED:
            await self.connect()
        batches = self._batches
        while not pending:
            if self._state is ClientState.CLOSED:
                raise StopAsyncIteration
            if not batches:
                self._release()  # the batch in hand is used up
                # Wait for the reader; a cancelled wait leaves everything queued.
                if self._wanted is not None:
                    raise RuntimeError("another task is already waiting for the next event")
                waiter = self._wanted = asyncio.get_running_loop().create_future()
                try:
                    await waiter
                finally:
                    self._wanted = None
                continue
            item = batches.popleft()
            if item is None:
                batches.appendleft(None)  # the end stays: later calls end too
                error, self._error = self._error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            batch, size = item
            self._release()
            self._in_hand = size
            pending.extend(batch)
        return pending.popleft()

    def _release(self) -> None:
        """Uncount the batch in hand (it is used up); let the reader go on if it may."""
        queued = self._queued = self._queued - self._in_hand
        self._in_hand = 0
        room = self._room
        if room is not None and queued <= _READ_AHEAD and not room.done():
            room.set_result(None)

    async def _put(self, batch: list[SSEEvent], size: int) -> None:
        """Queue a batch; then wait while too much is queued (back-pressure)."""
        self._batches.append((batch, size))
        self._queued += size
        _wake(self._wanted)
        await self._wait_for_room()

    async def _wait_for_room(self) -> None:
        while self._queued > _READ_AHEAD:
            room = self._room = asyncio.get_running_loop().create_future()
            try:
                await room
            finally:
                self._room = None

    # -- the reader task ----------------------------------------------------------------

    async def _reader(self) -> None:
        """Read, decode and queue events, resuming dropped streams, until the stream is over."""
        error: errors.CommunicationError | None = None
        try:
            await self._read_until_final()
        except errors.ClosedError:
            return  # close() is stopping us; it wakes the iteration itself
        except errors.CommunicationError as exc:
            error = exc
        except Exception as exc:
            self.logger.exception("the SSE reader of %s failed", self._safe_url)
            error = errors.CommunicationError(
                f"the SSE reader of {self._safe_url} failed: {redact_text(repr(exc))}"
            )
            error.__cause__ = exc
        finally:
            await self._drop_stream()
        if self._otel.enabled:
            self._otel_end(error)
        self._error = error
        self._batches.append(None)
        _wake(self._wanted)

    async def _read_until_final(self) -> None:
        cfg = self.config
        may_reconnect = cfg.auto_reconnect and cfg.max_reconnect_attempts > 0
        while (chunks := self._chunks) is not None:
            outcome = await self._pump(chunks)
            if outcome == "terminal":
                return
            await self._drop_stream()
            if isinstance(outcome, httpx.HTTPError):
                self.stats.errors += 1
                error = translate_error(outcome, self._safe_url)
                if not may_reconnect:
                    raise error from outcome
                self.logger.info(
                    "SSE stream %s broke (%s); resuming", self._safe_url, error.message
                )
            elif not may_reconnect:
                return
            else:
                self.logger.debug("SSE stream %s ended by the server; resuming", self._safe_url)
            if self._otel.enabled:
                self._otel_reconnect()
            await self._establish(reconnect=True)
            self.stats.reconnects += 1

    async def _pump(
        self, chunks: AsyncGenerator[bytes, None]
    ) -> httpx.HTTPError | Literal["ended", "terminal"]:
        """Read one response until it ends (the hot path: one pass per network read).

        Returns:
            ``"ended"`` when the server ended the response, ``"terminal"``
            once the terminal event is queued, or the failure that broke it.
        """
        decoder = self._decoder
        feed = decoder.feed
        text = self._text
        batches = self._batches
        stats = self.stats
        terminal = self.config.terminal_event
        try:
            async for chunk in chunks:
                batch: list[SSEEvent] = []
                before = decoder.dispatched_size
                try:
                    feed(text(chunk), batch)
                except errors.MessageTooLargeError:
                    size = decoder.dispatched_size - before
                    if terminal is not None and _cut_at_terminal(batch, terminal):
                        stats.received += len(batch)
                        await self._put(batch, size)
                        return "terminal"
                    stats.errors += 1
                    if batch:
                        stats.received += len(batch)
                        await self._put(batch, size)
                    raise
                if not batch:
                    continue
                size = decoder.dispatched_size - before
                if terminal is not None and _cut_at_terminal(batch, terminal):
                    stats.received += len(batch)
                    await self._put(batch, size)
                    return "terminal"
                stats.received += len(batch)
                batches.append((batch, size))
                # Iteration frees each event once used; this list must not keep
                # them all alive while the next read waits.
                del batch, chunk
                wanted = self._wanted
                if wanted is not None and not wanted.done():
                    wanted.set_result(None)
                queued = self._queued = self._queued + size
                if queued > _READ_AHEAD:
                    await self._wait_for_room()  # back-pressure: iteration is behind
        except httpx.HTTPError as exc:
            return exc
        return "ended"

    # -- connecting -------------------------------------------------------------------

    async def _establish(self, *, reconnect: bool) -> None:
        """Open the stream, retrying transient failures per the policy.

        Args:
            reconnect: The stream dropped: wait the reconnection time first,
                and allow ``max_reconnect_attempts`` attempts in all.
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
        if reconnect:
            await self._sleep(self._reconnect_wait(1))

        def hint(state: RetryCallState) -> float:
            return self._reconnect_wait(state.attempt_number + offset)

        def before_sleep(state: RetryCallState) -> None:
            outcome = state.outcome
            failure = outcome.exception() if outcome is not None else None
            self.logger.info(
                "SSE connection to %s failed (attempt %d: %s); retrying",
                self._safe_url,
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
        if resume:
            decoder = self._decoder
            resume_id = decoder.resume_id
            if resume_id != decoder.last_event_id:
                self.logger.warning(
                    "SSE event id %r cannot be sent as a Last-Event-ID header; resuming %s "
                    "from id %r instead (the server may repeat events)",
                    decoder.last_event_id,
                    self._safe_url,
                    resume_id,
                )
            if resume_id:
                headers["Last-Event-ID"] = resume_id
        try:
            return client.build_request(
                cfg.method, self._request_url, json=cfg.json, headers=headers
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError) as exc:
            raise errors.ConfigError(
                f"url: cannot build {cfg.method} {self._safe_url}: {redact_text(exc)}"
            ) from exc

    async def _send(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        if self._otel_span is not None:
            self._otel.inject(request.headers, self._otel_span)
        try:
            response = await client.send(request, auth=self._auth, stream=True)
        except httpx.HTTPError as exc:
            self.stats.errors += 1
            raise translate_error(exc, self._safe_url) from exc
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
        response = await self._send(client, self._build_request(client, resume=True))
        try:
            is_stream = await self._check_response(response)
        except BaseException:
            await response.aclose()
            raise
        if not is_stream:
            await response.aclose()
            self.logger.debug("SSE %s answered 204: stream finished", self._safe_url)
            return
        if self.is_closed:
            await response.aclose()
            raise errors.ClosedError("SSEClient is closed")
        self._decoder.new_stream()
        self._text = _utf8_decoder()
        self._response = response
        # Without a content encoding the raw bytes are the content: one
        # generator layer less per network read.
        encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
        chunks = response.aiter_bytes() if encoded else response.aiter_raw()
        self._chunks = cast(AsyncGenerator[bytes, None], chunks)

    async def _check_response(self, response: httpx.Response) -> bool:
        """Return whether ``response`` is an event stream (False for 204), else raise."""
        status = response.status_code
        if self._otel_span is not None:
            self._otel_span.set_attribute("http.response.status_code", status)
        if status == 204:
            return False
        method, url = response.request.method, redact_url(response.request.url)
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

    def _otel_reconnect(self) -> None:
        """Telemetry of a reconnect: a span event with the Last-Event-ID, a counter."""
        self._otel.count("agentcomm.client.reconnects", 1, {"agentcomm.protocol": "sse"})
        if self._otel_span is not None:
            self._otel_span.add_event(
                "sse.reconnect",
                {
                    "sse.last_event_id": self._decoder.resume_id,
                    "agentcomm.reconnects": self.stats.reconnects + 1,
                },
            )

    def _otel_end(self, exc: BaseException | None) -> None:
        """End the stream's span (once) and count its events."""
        if self._otel_done:
            return
        self._otel_done = True
        received = self.stats.received
        self._otel.count(
            "agentcomm.sse.events", received, {"server.address": self._request_url.host}
        )
        span, self._otel_span = self._otel_span, None
        if span is not None:
            span.set_attribute("agentcomm.sse.events", received)
            self._otel.end_span(span, exc)

    async def _drop_stream(self) -> None:
        response, chunks = self._response, self._chunks
        self._response = self._chunks = None
        try:
            if chunks is not None:
                await chunks.aclose()
        finally:
            if response is not None:
                self.stats.bytes_received += response.num_bytes_downloaded
                await response.aclose()
                unlink(response)

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
                return f"stream open to {self._safe_url} ({self.stats.received} events)"
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
            return f"{cfg.method} {self._safe_url}: {response.status_code}"

        return await run_probe(probe, timeout=timeout, what="sse")

    def __repr__(self) -> str:
        return (
            f"<SSEClient {self.config.method} {self._safe_url} state={self.state.value} "
            f"last_event_id={self._decoder.last_event_id!r}>"
        )


def _otel_attributes(method: str, url: httpx.URL) -> dict[str, Any]:
    """HTTP client span attributes of the stream request (the URL redacted)."""
    return {
        "http.request.method": method,
        "server.address": url.host,
        "server.port": url.port or (443 if url.scheme == "https" else 80),
        "url.scheme": url.scheme,
        "url.full": redact_url(url),
    }


def _cut_at_terminal(events: list[SSEEvent], name: str) -> bool:
    """Drop what follows the terminal event; tell whether there was one."""
    for index, event in enumerate(events):
        if event.event == name:
            del events[index + 1 :]
            return True
    return False


def _utf8_decoder() -> Callable[[bytes], str]:
    # The standard says event streams are always UTF-8, whatever the charset says.
    return _codecs.getincrementaldecoder("utf-8")("replace").decode


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
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
        _logger.debug(
            "could not read the body of %s: %s", redact_url(response.request.url), redact_text(exc)
        )
    return body[:_PREVIEW_BYTES].decode("utf-8", "replace")
