"""WebSocketClient: full-duplex messaging on ``websockets`` or ``picows``.

One background reader task per client reads every frame, decodes it (JSON
objects and arrays to dict/list, other text as str, binary as bytes, unless
``message_format`` pins one), resolves :meth:`WebSocketClient.request` replies,
runs the ``message`` handlers and buffers the message for :meth:`receive` and
``async for``. So handlers fire after a bare ``await ws.connect()``, with no
read loop written by the user.

Reconnect contract (``auto_reconnect=True``):

* A drop (no close frame, or close codes 1001/1011/1012/1013/1014) starts a
  reconnect: every attempt waits its backoff (shared retry module, with
  jitter); after ``max_reconnect_attempts`` failed attempts the iteration ends
  with :class:`~agenticaiframework.communication.core.errors.ConnectionError`
  (``ERR_CONNECTION``) carrying the last close code and reason; pending
  requests fail with it and still-queued sends are dropped (logged, counted
  in ``stats.errors``). ``max_reconnect_attempts=0`` means
  no reconnect at all. A reconnect that succeeds starts the count afresh.
* ``send()`` during the outage queues the message (at most
  ``send_queue_size``, then :class:`QueueFullError`); the queue is flushed in
  order on the new connection before any newer send, and before the
  ``reconnect`` then ``open`` events fire (so ``open`` handlers can
  re-subscribe). Queued messages are sent once, never twice: if the new
  connection drops again while flushing, the message being written may be
  lost and the rest stay queued. A message whose ``send()`` returned before
  the drop is not re-sent: it may be lost in flight. A send interrupted by
  the drop raises ``ConnectionError``.
* ``async for`` continues across the reconnect; replies to pending
  :meth:`request` calls still resolve if they arrive on the new connection.
* A normal close (1000 from the server, or :meth:`close`) ends iteration
  quietly and never reconnects. Any other close code is fatal: iteration
  ends with ``ConnectionError``.

An incoming message over ``max_message_size`` makes the connection close with
1009 (the protocol offers nothing else); iteration raises
:class:`MessageTooLargeError` at that point, then goes on after the reconnect
(or ends with ``ConnectionError`` when reconnecting is off). A message that
cannot be decoded (``message_format="json"`` and not JSON, JSON nested too
deeply...) is counted in ``stats.errors`` and reported on ``error``; iteration
raises :class:`ProtocolError` in its place and goes on with the next message.

Handshake redirects (3xx) are followed by this client, not by websockets:
every hop passes the URL policy, a TLS downgrade is refused, and a hop to
another origin drops every credential header (the auth object's, any that
looks like one, and ``credential_headers``). ``auth_message`` is never sent to
an origin reached through a redirect from another one.

The wire library is an engine behind one seam
(:mod:`~agenticaiframework.communication.websocket.engine`): ``websockets``
by default, ``picows`` with ``engine="picows"``. Everything above stays ours
on every engine: the URL policy, redirects, auth, the close policy, reconnects,
decoding. Engine errors come in ``websockets``' vocabulary and are translated
in one place, :func:`translate_error`.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Self, TypeVar, overload
from urllib.parse import urlsplit

from tenacity import RetryCallState
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    PayloadTooBig,
)
from websockets.exceptions import SecurityError as WSSecurityError
from websockets.uri import parse_uri

from ..core import errors
from ..core.auth import Auth, build_auth
from ..core.codecs import Message, decode, encode
from ..core.config import WebSocketConfig, check_headers, merge_config
from ..core.events import EventEmitter, Handler
from ..core.health import HealthStatus, run_probe
from ..core.lifecycle import BaseClient, ClientState
from ..core.retry import backoff_delay, retrying
from ..core.security import (
    _safe,
    check_url,
    install_log_redaction,
    origin_of,
    redact_text,
)
from ..core.telemetry import (
    NO_TELEMETRY,
    OperationTelemetry,
    extract_field,
    monotonic,
)
from ..core.tls import client_ssl_context
from . import engine as _engine
from .engine import DialOptions, Link, check_engine
from .protocol import (
    AuthReply,
    CloseAction,
    RequestIds,
    auth_reply,
    check_close,
    classify_close,
    describe_close,
    hop_headers,
    redirect_target,
    with_query,
)

__all__ = ["EVENTS", "WebSocketClient", "translate_error"]

EVENTS = ("open", "message", "close", "error", "reconnect")
"""Event names of :meth:`WebSocketClient.on`."""

H = TypeVar("H", bound=Handler)

_WS_SCHEMES = frozenset({"ws", "wss"})
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 20
"""Handshake redirects followed before failing with ``ProtocolError``."""
LATE_REPLY_MEMORY = 4096
"""How many ids of timed-out or cancelled requests are remembered to drop their late replies."""


class _Raise:
    """An inbox item: raise ``error`` at this point of the stream."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _End:
    """The stream ended normally."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int | None, reason: str) -> None:
        self.code = code
        self.reason = reason


_WAKE: Any = object()  # wakes consumers blocked on the inbox once the stream is final


def translate_error(exc: BaseException, url: str, *, open_timeout: float = 0.0) -> Exception:
    """Map a ``websockets`` / OS exception to our hierarchy (the one boundary).

    Args:
        exc: The exception raised while connecting or talking.
        url: The URL (without credentials) for the message.
        open_timeout: The handshake timeout, for the timeout message.

    Returns:
        Our error; callers raise it ``from exc``. Our own errors pass through.
    """
    if isinstance(exc, errors.CommunicationError):
        return exc
    if isinstance(exc, InvalidURI):
        return errors.ConfigError(f"url: not a valid WebSocket URL: {url} ({redact_text(exc)})")
    if isinstance(exc, WSSecurityError):
        return errors.SecurityError(f"WebSocket handshake with {url} refused: {redact_text(exc)}")
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        body = redact_text((exc.response.body or b"")[:200].decode("utf-8", "replace"))
        if status in (401, 403):
            return errors.AuthenticationError(
                f"WebSocket handshake to {url} refused with HTTP {status}: {body.strip()}"
            )
        return errors.HTTPStatusError(
            f"WebSocket handshake to {url} failed with HTTP {status}",
            status_code=status,
            body_preview=body,
        )
    if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, EOFError | OSError):
        return errors.ConnectionError(f"connection to {url} closed during the handshake")
    if isinstance(exc, InvalidHandshake):
        return errors.ProtocolError(f"WebSocket handshake with {url} failed: {redact_text(exc)}")
    if isinstance(exc, PayloadTooBig):
        return errors.MessageTooLargeError(f"message from {url} too large: {redact_text(exc)}")
    if isinstance(exc, ConnectionClosed):
        rcvd = exc.rcvd
        code = rcvd.code if rcvd is not None else 1006
        reason = rcvd.reason if rcvd is not None else ""
        return errors.ConnectionError(
            f"connection to {url} closed: {describe_close(code, reason)}",
            close_code=code,
            close_reason=reason,
        )
    if isinstance(exc, ssl.SSLError):
        return errors.ConnectionError(
            f"TLS failure connecting to {url}: {redact_text(exc)}", code="ERR_TLS"
        )
    if isinstance(exc, TimeoutError):
        return errors.TimeoutError(
            f"WebSocket handshake with {url} timed out after {open_timeout:g}s"
        )
    if isinstance(exc, OSError):
        return errors.ConnectionError(
            f"cannot connect to {url}: {redact_text(exc.strerror or exc)}"
        )
    return errors.CommunicationError(f"WebSocket failure with {url}: {redact_text(repr(exc))}")


def _parse_ws_url(url: str) -> None:
    """Raise ``InvalidURI`` or ``ValueError`` for a URL websockets cannot dial as written."""
    parse_uri(url)
    if urlsplit(url).port == 0:  # websockets would quietly dial port 80 instead
        raise ValueError("port 0 cannot be connected to")


def _is_transient(exc: BaseException) -> bool:
    """Whether another connection attempt might succeed."""
    if isinstance(exc, errors.HTTPStatusError):
        return exc.status_code in _TRANSIENT_STATUS
    if isinstance(exc, errors.ConnectionError):
        return exc.code == errors.ConnectionError.code  # not TLS failures
    return isinstance(exc, errors.TimeoutError)


class WebSocketClient(BaseClient):
    """An async WebSocket client with events, request/response and lossless reconnect.

    Args:
        url: ``ws://`` (loopback only unless ``allow_insecure``) or ``wss://`` URL.
        config: A :class:`WebSocketConfig`; keyword overrides are merged over it.
        **overrides: Any ``WebSocketConfig`` field (``ping_interval=5``...).

    Raises:
        SecurityError: ``ws://`` to a non-loopback host, or a non-WebSocket
            scheme (before any connection).
        ConfigError: The URL cannot be parsed (bad port, bad IPv6 literal,
            a fragment), a header cannot be sent (control or non-ASCII
            character), or another config value is invalid.

    Example::

        async with WebSocketClient("wss://api.example.com/ws") as ws:
            await ws.send({"type": "subscribe", "channel": "updates"})
            async for message in ws:
                ...
    """

    _protocol = "websocket"
    _otel_attrs: dict[str, Any] | None = None  # telemetry attributes of the URL, once parsed

    def __init__(
        self, url: str, *, config: WebSocketConfig | None = None, **overrides: Any
    ) -> None:
        super().__init__()
        install_log_redaction()  # websockets' DEBUG lines quote the handshake headers
        cfg = merge_config(WebSocketConfig, config, overrides)
        check_url(url, allow_insecure=cfg.allow_insecure, schemes=_WS_SCHEMES)
        try:
            _parse_ws_url(url)
        except (InvalidURI, ValueError) as exc:
            raise errors.ConfigError(
                f"url: not a valid WebSocket URL: {_safe(url)} ({redact_text(exc)})"
            ) from None
        check_headers("headers", cfg.headers)
        self._engine = check_engine(cfg.engine or _engine.DEFAULT_ENGINE)
        self._config = cfg
        self._url = url
        self._safe_url = _safe(url)
        parts = urlsplit(url)
        self._auth: Auth | None = build_auth(cfg.auth, allow_insecure=cfg.allow_insecure)
        self._credential_names = (
            *(self._auth.sensitive_header_names() if self._auth is not None else ()),
            *cfg.credential_headers,
        )
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme.lower() == "wss" and (
            not cfg.verify_ssl or cfg.ca_certs or cfg.client_cert
        ):
            self._ssl = client_ssl_context(
                verify=cfg.verify_ssl,
                ca_certs=cfg.ca_certs,
                client_cert=cfg.client_cert,
                client_key=cfg.client_key,
            )
        self._events = EventEmitter(EVENTS, self.logger)
        self._inbox: asyncio.Queue[Any] = asyncio.Queue(cfg.receive_queue_size)
        self._outbox: collections.deque[str | bytes] = collections.deque()
        self._pending: dict[Any, asyncio.Future[Any]] = {}
        # Ids of requests that timed out or were cancelled, oldest first.
        self._abandoned: collections.OrderedDict[Any, None] = collections.OrderedDict()
        self._late_replies = 0
        self._ids = RequestIds()
        self._conn: Link | None = None
        self._live = False
        self._closing = False
        self._final: _End | BaseException | None = None
        self._held: list[str | bytes] = []
        self._dispatching = False
        self._resume: asyncio.Task[None] | None = None
        self._dropped_inbox = 0
        self._reconnect_attempts = 0
        self._reader_task: asyncio.Task[None] | None = None
        self._close_args: tuple[int, str] = (1000, "")

    # -- public surface --------------------------------------------------------

    @property
    def engine(self) -> str:
        """The wire engine in use: ``"websockets"`` or ``"picows"``."""
        return self._engine

    @property
    def url(self) -> str:
        """The URL, without credentials."""
        return self._safe_url

    @property
    def config(self) -> WebSocketConfig:
        """The merged config."""
        return self._config

    @property
    def connected(self) -> bool:
        """Whether a connection is open and sends go straight out."""
        return self._live

    @property
    def pending_sends(self) -> int:
        """Messages queued during an outage, waiting for the reconnect."""
        return len(self._outbox)

    @property
    def dropped_from_buffer(self) -> int:
        """Messages dropped from the full iteration buffer (``message`` handlers saw them)."""
        return self._dropped_inbox

    @property
    def late_replies(self) -> int:
        """Replies dropped because their :meth:`request` had timed out or was cancelled."""
        return self._late_replies

    def __repr__(self) -> str:
        return f"WebSocketClient(url={self._safe_url!r}, state={self._state.value!r})"

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server selected, if any."""
        conn = self._conn
        return None if conn is None else conn.subprotocol

    @property
    def extensions(self) -> list[str]:
        """Names of the negotiated extensions (``permessage-deflate``...)."""
        conn = self._conn
        return [] if conn is None else conn.extension_names

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...
    @overload
    def on(self, event: str, handler: H) -> H: ...
    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register a handler for an event; usable as a decorator.

        Events and handler arguments: ``open()`` after every (re)connect,
        ``message(data)`` for every message, ``close(code, reason)`` when a
        connection ends, ``error(exc)`` for failures, ``reconnect(attempts)``
        after a successful reconnect. Handlers may be sync or async; one that
        raises is logged and reported on ``error``. ``message``, ``close`` and
        ``error`` handlers run in the reader task: a slow handler delays
        reading, :meth:`send` is fine there, but :meth:`request` is refused and
        :meth:`receive` would wait for itself. ``open`` and ``reconnect``
        handlers may use all three.

        Args:
            event: One of ``open``, ``message``, ``close``, ``error``, ``reconnect``.
            handler: The handler; omit it to use ``on`` as a decorator.

        Returns:
            The handler.

        Raises:
            ValueError: Unknown event name.
        """
        return self._events.on(event, handler)

    def off(self, event: str, handler: Handler) -> None:
        """Remove a handler registered with :meth:`on`.

        Args:
            event: The event name.
            handler: The handler.
        """
        self._events.off(event, handler)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection with ``code``/``reason`` and stop every task (idempotent).

        Messages still queued for a reconnect are dropped (logged); pending
        :meth:`request` calls fail with ``ClosedError``; iteration in other
        tasks ends quietly.

        Args:
            code: The close code sent to the server (1000, 1001, 1002, 1003,
                1007-1014 or 3000-4999).
            reason: The close reason sent to the server (at most 123 bytes).

        Raises:
            ConfigError: The code or reason cannot be sent (nothing is closed).
        """
        check_close(code, reason)
        self._close_args = (code, reason)
        await super().close()

    async def send(self, message: Message) -> None:
        """Send a message: dict/list as JSON text, str as text, bytes as binary.

        During an outage with ``auto_reconnect`` the message is queued and
        sent once reconnected. Safe to cancel before it is written.

        Args:
            message: The message.

        Raises:
            ProtocolError: The message cannot be encoded.
            QueueFullError: ``send_queue_size`` messages are already queued.
            ConnectionError: Not connected (and not reconnecting), or the
                connection dropped while this message was being written.
            ClosedError: The client was closed.
        """
        # The telemetry is a with-block, not a coroutine wrapping the send: the
        # plain path runs in this frame.
        with _Telemetry(self, "send") if self._otel.enabled else NO_TELEMETRY as t:
            data = encode(t.outgoing(message))
            conn = self._conn
            if self._live and conn is not None and conn.is_open:
                try:
                    await conn.send(data)
                except ConnectionClosed as exc:
                    self.stats.errors += 1
                    raise errors.ConnectionError(
                        f"connection to {self._safe_url} dropped while sending; "
                        "the message may not have been delivered",
                        close_code=conn.close_code,
                        close_reason=conn.close_reason,
                    ) from exc
                self.stats.sent += 1
                self.stats.bytes_sent += len(data)
                return
            self._enqueue(data)

    async def receive(self, timeout: float | None = None) -> Message:
        """Wait for the next message.

        Args:
            timeout: Seconds to wait; None waits as long as it takes. Safe to
                cancel: no message is lost.

        Returns:
            The decoded message.

        Raises:
            TimeoutError: Nothing arrived in time (``ERR_TIMEOUT``).
            ConnectionError: The connection ended (normally: ``close_code``
                says 1000) or reconnecting gave up.
            MessageTooLargeError: An oversized message was refused here.
            ClosedError: The client was closed.
        """
        self._ensure_usable()
        if timeout is None:
            item = await self._next()  # no timeout scope: this is the per-message path
        else:
            try:
                async with asyncio.timeout(timeout):
                    item = await self._next()
            except TimeoutError as exc:
                raise errors.TimeoutError(f"no message within {timeout:g}s") from exc
        if type(item) is _End:
            raise errors.ConnectionError(
                f"connection to {self._safe_url} closed: {describe_close(item.code, item.reason)}",
                close_code=item.code,
                close_reason=item.reason,
            )
        if self._otel.enabled:
            self._otel_received(item)
        return item

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        """The next message; stops quietly on a normal close.

        Raises:
            ConnectionError: The connection was lost for good.
        """
        item = await self._next()
        if type(item) is _End:
            raise StopAsyncIteration
        if self._otel.enabled:
            self._otel_received(item)
        return item

    async def request(self, message: Mapping[str, Any], timeout: float | None = None) -> Any:
        """Send a dict tagged with an id and wait for the reply carrying the same id.

        The id goes in ``config.request_id_field`` (generated unless the
        message has one). The reply is returned and not delivered to
        iteration or handlers; every other message still is. Replies are read
        by the reader task, which pauses when ``receive_queue_size`` other
        messages wait unconsumed and no ``message`` handler is registered:
        consume them or register a handler when the server also pushes.

        Safe to cancel. A reply that arrives after its request timed out or
        was cancelled is dropped (counted in :attr:`late_replies`), never
        delivered to :meth:`receive`; the ids of the last
        ``LATE_REPLY_MEMORY`` such requests are remembered.

        Args:
            message: The request (a mapping; it is copied, not modified).
            timeout: Seconds to wait for the reply; defaults to
                ``config.request_timeout`` (0 there means no limit).

        Returns:
            The decoded reply.

        Raises:
            TimeoutError: No reply in time (the pending entry is removed).
            ProtocolError: ``message`` is not a mapping, or its id is in use
                or cannot be one (unhashable).
            ConnectionError: The connection was lost for good before the reply.
            ClosedError: The client was closed while waiting.
        """
        with _Telemetry(self, "request") if self._otel.enabled else NO_TELEMETRY:
            if not isinstance(message, Mapping):
                raise errors.ProtocolError(
                    f"request() needs a dict message, got {type(message).__name__}"
                )
            field = self._config.request_id_field
            payload = dict(message)
            rid = payload.get(field)
            if rid is None:
                rid = payload[field] = self._ids.next()
            try:
                hash(rid)
            except TypeError:
                raise errors.ProtocolError(
                    f"request id {rid!r} cannot be matched to a reply: use a str or a number"
                ) from None
            if asyncio.current_task() is self._reader_task:
                raise errors.ProtocolError(
                    "request() cannot wait inside a message/close/error handler: the reply "
                    "would be read by the task running the handler; use send() there"
                )
            if rid in self._pending:
                raise errors.ProtocolError(f"request id {rid!r} is already waiting for a reply")
            if self._final is not None:
                self._raise_final()
            limit = timeout if timeout is not None else (self._config.request_timeout or None)
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending[rid] = future
            self._abandoned.pop(rid, None)
            try:
                async with asyncio.timeout(limit):
                    await self.send(payload)
                    return await future
            except TimeoutError as exc:
                if isinstance(exc, errors.CommunicationError):
                    raise
                raise errors.TimeoutError(
                    f"no reply to request {rid!r} from {self._safe_url} within {limit:g}s"
                ) from exc
            finally:
                if self._pending.get(rid) is future:
                    # Timed out, cancelled or not sent: a reply that still comes is late.
                    del self._pending[rid]
                    abandoned = self._abandoned
                    abandoned[rid] = None
                    if len(abandoned) > LATE_REPLY_MEMORY:
                        abandoned.popitem(last=False)

    async def health_check(self, timeout: float | None = None) -> HealthStatus:
        """Measure a WebSocket ping/pong round trip.

        Args:
            timeout: Seconds to wait for the pong; defaults to ``ping_timeout``
                (or 10 s when that is 0).

        Returns:
            Healthy with the round trip, or unhealthy with the reason.
        """

        async def probe() -> str:
            conn = self._conn
            if not self._live or conn is None:
                raise errors.ConnectionError("not connected")
            try:
                latency = await (await conn.ping())
            except ConnectionClosed as exc:
                raise translate_error(exc, self._safe_url) from exc
            return f"WebSocket ping {self._safe_url}: pong in {latency * 1000:.1f} ms"

        limit = timeout if timeout is not None else (self._config.ping_timeout or 10.0)
        return await run_probe(probe, timeout=limit, what=f"WebSocket ping {self._safe_url}")

    # -- lifecycle -------------------------------------------------------------

    async def _open(self) -> None:
        conn = await self._dial()
        self._conn = conn
        self._live = True
        reader = self._reader_task = self._tasks.spawn(self._reader(conn), "reader")
        try:
            await self._events.emit("open")
        except BaseException:
            reader.cancel()
            conn.abort()
            self._live = False
            raise

    async def _close(self) -> None:
        self._closing = True
        code, reason = self._close_args
        conn = self._conn
        was_open = conn is not None and conn.is_open
        self._live = False
        if conn is not None:
            await conn.close(code, reason)
        self._finish(_End(code, reason), errors.ClosedError("the WebSocketClient was closed"))
        if was_open:
            await self._events.emit("close", code, reason)

    # -- connecting ------------------------------------------------------------

    async def _dial(self) -> Link:
        """Open one connection: the handshake (each redirect hop checked), then the auth message."""
        if self._otel.tracing:
            attributes = self._otel_attributes()
            attributes["url.full"] = self._safe_url
            with self._otel.span("websocket connect", "client", attributes):
                return await self._dial_link()
        return await self._dial_link()

    async def _dial_link(self) -> Link:
        cfg = self._config
        headers = dict(cfg.headers)
        if self._otel.tracing:  # the connect span is current
            self._otel.inject(headers)
        url = self._url
        if self._auth is not None:
            headers.update(await self._auth.headers())
            url = with_query(url, self._auth.query_params())
            check_headers("headers", headers)
        first = url
        try:
            # One deadline for the whole handshake, every redirect hop included.
            async with asyncio.timeout(cfg.open_timeout or None):
                hops = 0
                while True:
                    try:
                        conn = await self._handshake(url, headers)
                        break
                    except InvalidStatus as exc:
                        response = exc.response
                        locations = response.headers.get_all("Location")
                        target = redirect_target(
                            url, response.status_code, locations[0] if len(locations) == 1 else None
                        )
                        if target is None:
                            raise
                        hops += 1
                        if hops > MAX_REDIRECTS:
                            raise errors.ProtocolError(
                                f"WebSocket handshake with {self._safe_url}: too many redirects "
                                f"({MAX_REDIRECTS} followed)"
                            ) from exc
                        headers = self._next_hop(url, target, headers, response.status_code)
                        await self._check_redirect(target)
                        url = target
        except TimeoutError as exc:
            if isinstance(exc, errors.CommunicationError):
                raise
            raise errors.TimeoutError(
                f"WebSocket handshake with {_safe(url)} timed out after {cfg.open_timeout:g}s"
            ) from exc
        except Exception as exc:
            raise translate_error(exc, _safe(url), open_timeout=cfg.open_timeout) from exc
        if cfg.auth_message is not None:
            try:
                if origin_of(url) != origin_of(first):
                    raise errors.SecurityError(
                        f"{self._safe_url} redirected to another origin ({_safe(url)}): "
                        "the auth_message is not sent there"
                    )
                await self._authenticate(conn)
            except BaseException:
                conn.abort()
                await conn.wait_closed()
                raise
        return conn

    async def _handshake(self, url: str, headers: Mapping[str, str]) -> Link:
        """One opening handshake with ``url``; a redirect raises ``InvalidStatus``."""
        cfg = self._config
        options = DialOptions(
            headers=headers,
            subprotocols=cfg.subprotocols,
            compression=cfg.compression,
            ping_interval=cfg.ping_interval,
            ping_timeout=cfg.ping_timeout,
            close_timeout=cfg.close_timeout,
            max_size=cfg.max_message_size,
            ssl=self._ssl,
            proxy=True,
        )
        return await _engine.dial(self._engine, url, options)

    async def _check_redirect(self, url: str) -> None:
        """A further check of each redirect hop, for subclasses (the tool client's); none here."""

    def _next_hop(
        self, url: str, target: str, headers: Mapping[str, str], status: int
    ) -> dict[str, str]:
        """Check a redirect hop against the policy; the headers to send there.

        Raises:
            SecurityError: The hop breaks the URL policy, or leaves TLS.
            ProtocolError: The hop is not a valid WebSocket URL.
        """
        where = f"{_safe(url)} redirected (HTTP {status}) to {_safe(target)}"
        try:
            check_url(target, allow_insecure=self._config.allow_insecure, schemes=_WS_SCHEMES)
            _parse_ws_url(target)
        except errors.SecurityError as exc:
            raise errors.SecurityError(f"{where}, which is refused: {exc.message}") from exc
        except (errors.ConfigError, InvalidURI, ValueError) as exc:
            raise errors.ProtocolError(f"{where}, which is not a valid WebSocket URL") from exc
        if url[:4].lower() == "wss:" and target[:4].lower() != "wss:":
            raise errors.SecurityError(f"{where}, which would leave TLS")
        self.logger.info("%s", where)
        return hop_headers(headers, url, target, self._credential_names)

    async def _authenticate(self, conn: Link) -> None:
        """Send the first-message auth and wait for the verdict.

        Messages that arrive before the verdict are held (at most
        ``receive_queue_size``) and delivered once authenticated.
        """
        cfg = self._config
        limit = cfg.receive_queue_size
        held: list[str | bytes] = []
        try:
            async with asyncio.timeout(cfg.auth_timeout or None):
                await conn.send(encode(cfg.auth_message))
                while True:
                    raw = await conn.recv()
                    try:
                        message = decode(raw, "auto")
                    except errors.ProtocolError:
                        message = None  # not a verdict; reported when delivered
                    verdict = auth_reply(message, cfg.auth_success_types, cfg.auth_error_types)
                    if verdict is AuthReply.SUCCESS:
                        break
                    if verdict is AuthReply.ERROR:
                        text = message.get("message") or message.get("type")
                        raise errors.AuthenticationError(
                            f"{self._safe_url} refused the auth message: {redact_text(text)[:200]}"
                        )
                    if verdict is AuthReply.OTHER:
                        if len(held) >= limit:
                            raise errors.ProtocolError(
                                f"{self._safe_url} sent more than {limit} messages before "
                                f"the auth verdict (receive_queue_size={limit})"
                            )
                        held.append(raw)
        except TimeoutError as exc:
            if isinstance(exc, errors.CommunicationError):
                raise
            raise errors.TimeoutError(
                f"no auth reply from {self._safe_url} within {cfg.auth_timeout:g}s"
            ) from exc
        except ConnectionClosed as exc:
            raise errors.AuthenticationError(
                f"{self._safe_url} closed the connection during the auth handshake: "
                f"{redact_text(exc)}"
            ) from exc
        self._held = held

    async def _reconnect(self) -> tuple[Link, int]:
        """Reconnect with backoff; raises the last error when attempts run out."""
        policy = self._config.retry_config()
        attempts = 0
        conn: Link | None = None

        def next_wait(state: RetryCallState) -> float:
            # The first attempt already waited backoff 1; shift by one.
            return backoff_delay(policy, state.attempt_number + 1)

        def log_retry(state: RetryCallState) -> None:
            outcome = state.outcome
            reason = outcome.exception() if outcome is not None else None
            self.logger.info(
                "reconnect attempt %d to %s failed: %s", attempts, self._safe_url, reason
            )

        await asyncio.sleep(backoff_delay(policy, 1))
        async for attempt in retrying(
            policy, retry_if=_is_transient, hint=next_wait, before_sleep=log_retry
        ):
            with attempt:
                attempts += 1
                self._reconnect_attempts = attempts
                conn = await self._dial()
        assert conn is not None
        return conn, attempts

    # -- reading ---------------------------------------------------------------

    async def _reader(self, conn: Link) -> None:
        """The reader task; a failure of its own ends the stream with that error."""
        try:
            await self._read_forever(conn)
        except Exception as exc:
            error = errors.CommunicationError(
                f"the WebSocket reader failed: {redact_text(repr(exc))}"
            )
            error.__cause__ = exc
            self.logger.exception("reader of %s failed", self._safe_url)
            await self._fail(error)
            conn = self._conn or conn
            conn.abort()

    async def _read_forever(self, conn: Link) -> None:
        """The reader task: read, and on a drop reconnect, until the stream is final."""
        while True:
            closed = await self._pump(conn)
            self._live = False
            if self._closing:
                return
            raw_code = conn.close_code
            code, reason = (None if raw_code is None else int(raw_code)), conn.close_reason or ""
            sent = closed.sent if closed is not None else None
            action = classify_close(
                code,
                sent_code=sent.code if sent is not None else None,
                sent_first=bool(closed is not None and closed.rcvd_then_sent is False),
            )
            if action is CloseAction.TOO_BIG and sent is not None:
                # We failed the connection ourselves; report what we sent.
                code, reason = int(sent.code), sent.reason
            await self._events.emit("close", code, reason)
            if action is CloseAction.TOO_BIG:
                too_big = errors.MessageTooLargeError(
                    f"a message from {self._safe_url} exceeded max_message_size "
                    f"({self._config.max_message_size} bytes); the connection was closed with 1009"
                )
                self.stats.errors += 1
                await self._events.emit("error", too_big)
                await self._deliver(_Raise(too_big))
            if action is CloseAction.NORMAL:
                self._finish(_End(code, reason))
                return
            lost = f"connection to {self._safe_url} lost: {describe_close(code, reason)}"
            cfg = self._config
            if (
                action is CloseAction.FATAL
                or not cfg.auto_reconnect
                or cfg.max_reconnect_attempts == 0
            ):
                await self._fail(errors.ConnectionError(lost, close_code=code, close_reason=reason))
                return
            self.logger.warning("%s; reconnecting", lost)
            if self._resume is not None and not self._resume.done():
                self._resume.cancel()
                await asyncio.gather(self._resume, return_exceptions=True)
            try:
                conn, attempts = await self._reconnect()
            except errors.CommunicationError as exc:
                final = errors.ConnectionError(
                    f"{lost}; gave up reconnecting after "
                    f"{self._reconnect_attempts} attempt(s): {exc}",
                    close_code=code,
                    close_reason=reason,
                )
                final.__cause__ = exc
                await self._fail(final)
                return
            if self._closing:  # close() ran while we were reconnecting
                await conn.close()
                return
            self._conn = conn
            self.stats.reconnects += 1
            self._resume = self._tasks.spawn(self._after_reconnect(conn, attempts), "resume")

    async def _pump(self, conn: Link) -> ConnectionClosed | None:
        """Read one connection until it closes; returns how it closed.

        Whole messages mostly never get here: the engine hands them to
        :meth:`_take` as they are parsed. This loop gets the rest (whatever
        the engine keeps for ``recv()``, and whatever ``_take`` declines).
        """
        held, self._held = self._held, []
        for raw in held:
            await self._dispatch(raw, conn)
        dispatch = self._dispatch
        recv = conn.recv
        conn.sink = self._take
        try:
            while True:
                raw = await recv()
                # While this message is dispatched (which may wait), later
                # frames must queue behind it, not overtake it.
                self._dispatching = True
                await dispatch(raw, conn)
                self._dispatching = False
        except ConnectionClosed as exc:
            return exc
        finally:
            self._dispatching = False
            conn.sink = None

    def _take(self, raw: str | bytes) -> bool:
        """Take a whole message straight from the engine's parser (the hot path).

        Returns False, leaving the frame to the reader task, whenever anything
        would have to wait or report: a message handler is registered, the
        inbox is full, the text is "ping" to answer, the message does not
        decode, or the reader is still dispatching an earlier message.
        """
        if self._dispatching or self._events.has("message"):
            return False
        inbox = self._inbox
        if inbox.full():
            return False
        cfg = self._config
        if cfg.answer_text_ping and raw == "ping":
            return False
        try:
            message = decode(raw, cfg.message_format)
        except errors.ProtocolError:
            return False
        stats = self.stats
        stats.received += 1
        stats.bytes_received += len(raw)
        if not ((self._pending or self._abandoned) and self._settle_reply(message)):
            inbox.put_nowait(message)
        return True

    def _settle_reply(self, message: Message) -> bool:
        """Resolve the request() waiting for this reply, or drop a late one.

        Returns:
            True when the message was a reply (delivered or dropped).
        """
        if type(message) is not dict:
            return False
        rid = message.get(self._config.request_id_field)
        try:
            future = self._pending.pop(rid, None)
            if future is None:
                if rid not in self._abandoned:
                    return False
                del self._abandoned[rid]
                self._late_replies += 1
                self.logger.debug("dropped a late reply to request %r", rid)
                return True
        except TypeError:  # an unhashable id cannot be one of ours
            return False
        if not future.done():
            future.set_result(message)
        return True

    async def _dispatch(self, raw: str | bytes, conn: Link) -> None:
        """Handle one received frame (the hot path)."""
        stats = self.stats
        stats.received += 1
        stats.bytes_received += len(raw)
        cfg = self._config
        if cfg.answer_text_ping and raw == "ping":
            await conn.send("pong")
            return
        try:
            message = decode(raw, cfg.message_format)
        except errors.ProtocolError as exc:
            stats.errors += 1
            await self._events.emit("error", exc)
            await self._deliver(_Raise(exc))
            return
        if (self._pending or self._abandoned) and self._settle_reply(message):
            return
        if self._events.has("message"):
            await self._events.emit("message", message)
            inbox = self._inbox
            if inbox.full():
                # The handlers saw it; the iteration buffer keeps the newest.
                inbox.get_nowait()
                self._dropped_inbox += 1
            inbox.put_nowait(message)
            return
        inbox = self._inbox
        if inbox.full():
            await inbox.put(message)  # backpressure: nobody consumes and no handler
        else:
            inbox.put_nowait(message)

    async def _deliver(self, item: Any) -> None:
        inbox = self._inbox
        if inbox.full() and self._events.has("message"):
            inbox.get_nowait()
            self._dropped_inbox += 1
        await inbox.put(item)

    async def _next(self) -> Any:
        """The next inbox item: a message, or ``_End``; raises a delivered error."""
        inbox = self._inbox
        while True:
            if inbox.empty():
                if self._final is not None:
                    return self._terminal()
                if self._conn is None:
                    raise errors.ConnectionError(
                        "not connected: call connect() or use 'async with' first"
                    )
            item = await inbox.get()
            if item is _WAKE:
                inbox.put_nowait(_WAKE)  # wake the next waiter too
                return self._terminal()
            if type(item) is _Raise:
                raise item.error
            return item

    def _terminal(self) -> _End:
        final = self._final
        if isinstance(final, BaseException):
            raise final
        assert final is not None
        return final

    def _raise_final(self) -> None:
        final = self._final
        if isinstance(final, BaseException):
            raise final
        if isinstance(final, _End):
            if self._closing:
                raise errors.ClosedError("the WebSocketClient was closed")
            closed = describe_close(final.code, final.reason)
            raise errors.ConnectionError(
                f"connection to {self._safe_url} closed: {closed}",
                close_code=final.code,
                close_reason=final.reason,
            )

    async def _fail(self, error: errors.CommunicationError) -> None:
        self.stats.errors += 1
        self.logger.error("%s", error)
        self._finish(error, error)
        await self._events.emit("error", error)

    def _finish(
        self, final: _End | BaseException, pending_error: BaseException | None = None
    ) -> None:
        """Make the stream final: wake consumers, fail pending requests, drop the queue."""
        if self._final is None:
            self._final = final
        if self._outbox:
            self.stats.errors += len(self._outbox)
            self.logger.warning(
                "%d queued messages for %s were never sent", len(self._outbox), self._safe_url
            )
            self._outbox.clear()
        error = pending_error or errors.ConnectionError(
            f"connection to {self._safe_url} closed before the reply"
        )
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        try:
            self._inbox.put_nowait(_WAKE)
        except asyncio.QueueFull:
            pass  # consumers are not waiting; they see the end once the inbox drains

    # -- sending during an outage ---------------------------------------------

    def _enqueue(self, data: str | bytes) -> None:
        self._ensure_usable()
        if self._final is not None:
            self._raise_final()
        if self._state is ClientState.UNOPENED and self._conn is None:
            raise errors.ConnectionError("not connected: call connect() or use 'async with' first")
        cfg = self._config
        if not cfg.auto_reconnect or cfg.max_reconnect_attempts == 0:
            raise errors.ConnectionError(
                f"connection to {self._safe_url} is closed (auto_reconnect is off)"
            )
        if cfg.send_queue_size == 0:
            raise errors.ConnectionError(
                f"connection to {self._safe_url} is down and send_queue_size is 0"
            )
        if len(self._outbox) >= cfg.send_queue_size:
            raise errors.QueueFullError(
                f"{len(self._outbox)} messages already wait for the reconnect to "
                f"{self._safe_url} (send_queue_size={cfg.send_queue_size})"
            )
        self._outbox.append(data)
        if self._otel.enabled:
            self._otel.count(
                "agentcomm.client.queued_messages", 1, {"agentcomm.protocol": "websocket"}
            )

    # -- telemetry ------------------------------------------------------------

    def _otel_attributes(self) -> dict[str, Any]:
        """The messaging attributes of this client's URL (parsed once), as a new dict."""
        cached = self._otel_attrs
        if cached is None:
            parts = urlsplit(self._url)
            secure = parts.scheme.lower() == "wss"
            cached = self._otel_attrs = {
                "messaging.system": "websocket",
                "messaging.destination.name": parts.path or "/",
                "server.address": parts.hostname or "",
                "server.port": parts.port or (443 if secure else 80),
            }
        return dict(cached)

    def _otel_received(self, message: Message) -> None:
        field = self._config.trace_field
        attributes = self._otel_attributes()
        attributes["messaging.operation.name"] = "receive"
        context = extract_field(message, field) if field else None
        self._otel.received(
            f"receive {attributes['messaging.destination.name']}", attributes, context
        )

    def _otel_reconnected(self, attempts: int, queued: int) -> None:
        """A reconnect: counted; a span with its attempts and the queued sends it flushes."""
        otel = self._otel
        otel.count("agentcomm.client.reconnects", 1, {"agentcomm.protocol": "websocket"})
        if otel.tracing:
            span = otel.start_span("websocket reconnect", "internal", self._otel_attributes())
            span.add_event("reconnect", {"agentcomm.reconnect.attempts": attempts})
            span.add_event("flush", {"agentcomm.queued_messages": queued})
            span.end()

    async def _after_reconnect(self, conn: Link, attempts: int) -> None:
        """Flush the outage queue in order, go live, then fire reconnect and open."""
        if self._otel.enabled:
            self._otel_reconnected(attempts, len(self._outbox))
        outbox = self._outbox
        while outbox:
            if not conn.is_open:
                return  # dropped again: the reader reconnects; the rest stays queued
            data = outbox.popleft()
            try:
                await conn.send(data)
            except ConnectionClosed:
                # It was being written when the link dropped: at most once.
                self.stats.errors += 1
                self.logger.warning(
                    "a queued message was in flight when %s dropped", self._safe_url
                )
                return
            self.stats.sent += 1
            self.stats.bytes_sent += len(data)
        if conn is not self._conn or not conn.is_open:
            return
        self._live = True
        self.logger.info("reconnected to %s after %d attempt(s)", self._safe_url, attempts)
        await self._events.emit("reconnect", attempts)
        await self._events.emit("open")


class _Telemetry(OperationTelemetry):
    """The span of one send (PRODUCER) or request (CLIENT), for a ``with`` block.

    The span is current in the block; an exception leaving it marks it
    failed. A send is counted in ``messaging.client.sent.messages``, a
    request timed in ``agentcomm.websocket.request.duration``.
    """

    __slots__ = ("_attributes", "_field", "_started")

    def __init__(self, client: WebSocketClient, operation: str) -> None:
        otel = client._otel
        attributes = self._attributes = client._otel_attributes()
        attributes["messaging.operation.name"] = operation
        request = operation == "request"
        self._started = monotonic() if request else None
        if not request:
            otel.count("messaging.client.sent.messages", 1, attributes)
        self._field = client._config.trace_field
        scope = None
        if otel.tracing:
            name = f"{operation} {attributes['messaging.destination.name']}"
            scope = otel.span(name, "client" if request else "producer", attributes)
        super().__init__(otel, scope)

    def finish(self, exc: BaseException | None) -> None:
        """Time a request in ``agentcomm.websocket.request.duration``."""
        if self._started is not None:
            self.measure(
                "agentcomm.websocket.request.duration", self._started, self._attributes, exc
            )

    def outgoing(self, message: Message) -> Message:
        """The message to send: with ``trace_field``, a JSON object carries the span's context."""
        field = self._field
        if field and self._scope is not None:
            return self._otel.inject_field(message, field)
        return message
