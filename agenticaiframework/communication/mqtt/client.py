"""MQTTClient: publish/subscribe with reconnect, queues and topic routing, on aiomqtt or gmqtt.

Use::

    async with MQTTClient("mqtt://127.0.0.1:1883") as mqtt:
        await mqtt.subscribe("agents/+/status")
        await mqtt.publish("agents/a1/status", {"status": "online"})
        async for message in mqtt:
            print(message.topic, message.payload)

Payloads: a dict or list is sent as JSON, a str as UTF-8, bytes as is; received
payloads are decoded like every other client (``message_format``).

Reconnection contract (``auto_reconnect=True``, the default):

* When the broker goes away, one background task reconnects with the shared
  backoff (``reconnect_delay`` .. ``max_reconnect_delay``, jitter), forever
  when ``max_reconnect_attempts=0``; then it re-subscribes every subscription
  (unless the broker kept our session) and flushes queued publishes.
* With ``clean_session=False`` and a fixed ``client_id`` the broker keeps our
  session, so QoS 1/2 messages published to our subscriptions while we were
  away are delivered after the reconnect.
* ``publish()`` while disconnected puts the message in a bounded queue
  (``max_queued_publishes``) and returns; the queue goes out in order after
  the reconnect. Past the bound ``publish()`` raises :class:`QueueFullError`;
  with a bound of 0 it raises :class:`ConnectionError`. QoS 1/2 publishes that
  were in flight (sent, not yet acknowledged) when the link died are re-sent
  first: a QoS 1 subscriber may see them twice, as QoS 1 allows. Messages
  still queued when the client is closed are not sent (a warning says how many).
* Received messages wait in a queue of ``max_queued_messages``. When a slow
  consumer lets it fill up, the client stops reading the socket (TCP
  back-pressure) until the consumer has taken half of it; nothing is dropped
  by the client. The queue may exceed the bound by the packets of one socket
  read. While reading is paused the broker holds (or, for QoS 0 past its own
  ``max_queued_messages``, drops) further messages, and a pause longer than
  the keep-alive interval ends in a reconnect, after which a persistent
  session redelivers QoS 1/2 messages.
* A reconnect attempt fails after ``connect_timeout`` when the broker
  accepts the connection but sends no CONNACK (:class:`TimeoutError`,
  ``ERR_TIMEOUT``), and the next attempt follows the backoff.
* When reconnecting gives up (or ``auto_reconnect=False``), the client says
  so everywhere: ``state`` becomes ``FAILED``, the ``error`` event fires,
  iteration, ``receive()`` and ``start_listening()`` raise
  :class:`ConnectionError` once the received messages are consumed, and so
  do ``publish()``, ``subscribe()`` and ``connect()``; queued publishes are
  dropped (a warning says how many) and ``health_check()`` is unhealthy.
  ``close()`` still releases it. After a normal ``close()`` iteration and
  ``start_listening()`` end quietly.

The first ``connect()`` makes one attempt and raises on failure.

Received input is never trusted: a PUBLISH whose topic is not valid UTF-8 is
skipped, a payload that cannot be decoded reaches no handler, and either is
counted in ``stats.errors`` and reported on the ``error`` event as
:class:`ProtocolError`; the connection and the listener go on.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import math
import ssl
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ..core import errors
from ..core.codecs import Message, decode_payload, encode_bytes
from ..core.config import MQTTConfig, merge_config
from ..core.events import EventEmitter
from ..core.health import HealthStatus, run_probe
from ..core.lifecycle import BaseClient, ClientState
from ..core.retry import retrying
from ..core.security import check_endpoint, check_url
from ..core.telemetry import (
    NO_TELEMETRY,
    OperationTelemetry,
    error_type,
    extract_pairs,
    measure,
    monotonic,
    new_trace,
)
from ..core.tls import client_ssl_context
from .engine import (
    TOPIC_ALIAS_MAXIMUM,
    ConnectRefused,
    EarlyClose,
    Engine,
    Incoming,
    Item,
    Lost,
    Settings,
    engine_class,
)
from .properties import UTF8, PropsOut, block_length, gmqtt_to_paho, read
from .reasons import MQTTAuthError, reason_error
from .topics import (
    TopicRouter,
    named_filter,
    share_filter,
    split_shared,
    validate_filter,
    validate_topic,
)

__all__ = ["MQTTAuthError", "MQTTClient", "MQTTMessage", "MessageHandler"]

_SCHEMES = frozenset({"mqtt", "mqtts"})
_EVENTS = ("connect", "disconnect", "reconnect", "message", "error")
_UNREAD: Any = object()
# CONNACK of a 3.1.1 broker to an MQTT 5 CONNECT: 1 (3.1.1's "unacceptable
# protocol version"), or 0x84 as paho reads the same byte.
_REFUSES_V5 = frozenset({0x01, 0x84})
_REPLY_ERROR = "agenticai-error"  # user property of an on_request reply whose handler raised
_NEVER_EXPIRES = 0xFFFFFFFF

MessageHandler = Callable[[str, Any], Any]
"""An ``on_message`` handler: ``handler(topic, payload)``, sync or async."""

H = TypeVar("H", bound=MessageHandler)


class MQTTMessage:
    """One received message.

    Attributes:
        topic: The topic it was published to.
        raw: The payload bytes as received.
        qos: The QoS it was delivered with.
        retain: Whether it is a retained message.
        mid: The packet id (0 for QoS 0).

    The MQTT 5 properties the publisher set (``user_properties``,
    ``content_type``, ``response_topic`` ...) are read from ``properties``
    on access; over MQTT 3.1.1 they are empty.
    """

    __slots__ = ("_decoded", "_format", "_props", "mid", "qos", "raw", "retain", "topic")

    def __init__(
        self,
        topic: str,
        raw: bytes,
        qos: int = 0,
        retain: bool = False,
        mid: int = 0,
        *,
        message_format: str = "auto",
        properties: Any = None,
    ) -> None:
        self.topic = topic
        self.raw = raw
        self.qos = qos
        self.retain = retain
        self.mid = mid
        self._format = message_format
        self._props = properties
        self._decoded: Any = _UNREAD

    @property
    def properties(self) -> Properties | None:
        """The raw MQTT 5 properties (paho ``Properties``, whatever the engine), or None.

        None over MQTT 3.1.1 and for a message that carries no properties.
        """
        props = self._props
        if type(props) is dict:
            props = self._props = gmqtt_to_paho(props)
        found: Properties | None = props
        return found

    def _prop(self, name: str) -> Any:
        return read(self._props, name)

    @property
    def user_property_pairs(self) -> list[tuple[str, str]]:
        """The user properties in the order sent (a name may repeat)."""
        return list(self._prop("UserProperty") or ())

    @property
    def user_properties(self) -> dict[str, str]:
        """The user properties as a dict (for a repeated name, the last value)."""
        return dict(self._prop("UserProperty") or ())

    @property
    def content_type(self) -> str | None:
        """The content type the publisher gave, e.g. ``application/json``."""
        value: str | None = self._prop("ContentType")
        return value

    @property
    def payload_format(self) -> int | None:
        """1 when the publisher marked the payload as UTF-8 text, 0 or None otherwise."""
        value: int | None = self._prop("PayloadFormatIndicator")
        return value

    @property
    def message_expiry(self) -> int | None:
        """Seconds the message has left before it expires (as the broker forwarded it)."""
        value: int | None = self._prop("MessageExpiryInterval")
        return value

    @property
    def response_topic(self) -> str | None:
        """Where the publisher wants a response (request/response)."""
        value: str | None = self._prop("ResponseTopic")
        return value

    @property
    def correlation_data(self) -> bytes | None:
        """The publisher's correlation data, to send back with a response."""
        value: bytes | None = self._prop("CorrelationData")
        return value

    @property
    def subscription_identifiers(self) -> list[int]:
        """The identifiers of the subscriptions that matched (MQTT 5)."""
        value = self._prop("SubscriptionIdentifier")
        return list(value) if value else []

    @property
    def payload(self) -> Message:
        """The payload decoded per ``message_format`` (decoded once, on first access).

        In ``auto`` mode UTF-8 text holding a JSON object or array becomes a
        dict or list, other text a str, and non-UTF-8 payloads stay bytes.

        Raises:
            ProtocolError: The format is pinned (``json``/``text``) and the
                payload does not fit it, or it is JSON nested too deeply to
                decode.
        """
        if self._decoded is _UNREAD:
            self._decoded = decode_payload(self.raw, self._format)
        return self._decoded

    def json(self) -> Any:
        """Decode the payload as JSON whatever the client's format (not cached).

        Returns:
            The decoded value.

        Raises:
            ProtocolError: The payload is not JSON.
        """
        return decode_payload(self.raw, "json")

    def __repr__(self) -> str:
        return (
            f"MQTTMessage(topic={self.topic!r}, qos={self.qos}, retain={self.retain}, "
            f"raw={self.raw[:64]!r}{'...' if len(self.raw) > 64 else ''})"
        )


class _PublishOptions(NamedTuple):
    """The MQTT 5 properties of one publish, as ``publish()`` was given them."""

    user_properties: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
    content_type: str | None = None
    message_expiry: int | None = None
    response_topic: str | None = None
    correlation_data: bytes | str | None = None


class _Route:
    """One ``on_message``/``on_request`` handler and what its filter names."""

    __slots__ = ("filter", "handler", "names", "reply")

    def __init__(
        self,
        handler: MessageHandler,
        names: tuple[tuple[int, str], ...],
        reply: bool,
        filter: str = "",
    ) -> None:
        self.filter = filter  # the subscription filter, for telemetry (``process <filter>``)
        self.handler = handler
        self.names = names  # (level index, name) of each named wildcard
        self.reply = reply  # publish the return value to the response topic

    def call(self, topic: str, payload: Any) -> Any:
        """Call the handler on a message, each named wildcard as a keyword argument."""
        if self.names:
            levels = topic.split("/")
            named = {name: levels[i] for i, name in self.names}
            return self.handler(topic, payload, **named)
        return self.handler(topic, payload)


class _Delivery:
    """A received message whose handlers are being run; resumable after a cancellation."""

    __slots__ = ("handlers", "message", "step")

    def __init__(self, message: MQTTMessage, handlers: tuple[_Route, ...]) -> None:
        self.message = message
        self.handlers = handlers
        self.step = 0  # handlers started so far; len(handlers) + 1 once the event ran


class _Inbox:
    """Received messages for the consumer; pauses the reader when full."""

    __slots__ = ("_bound", "_end", "_items", "_low", "_pause", "_paused", "_resume", "_waiter")

    def __init__(self, bound: int, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self._items: collections.deque[Incoming] = collections.deque()
        self._bound = bound
        self._low = bound // 2
        self._pause = pause
        self._resume = resume
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._end: BaseException | None = None

    @property
    def paused(self) -> bool:
        """Whether the reader is paused because the queue is full."""
        return self._paused

    def __len__(self) -> int:
        return len(self._items)

    def put(self, message: Incoming) -> None:
        self._items.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if len(self._items) >= self._bound and not self._paused:
            self._paused = True
            self._pause()

    def end(self, reason: BaseException) -> None:
        """Wake every consumer; ``get`` raises ``reason`` once the queue is empty or at close."""
        self._end = reason
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._items.clear()

    async def get(self) -> Incoming:
        while not self._items:
            if self._end is not None:
                # The same instance is raised to every later call: drop the
                # previous traceback so that repeated calls do not grow it.
                raise self._end.with_traceback(None)
            if self._waiter is None or self._waiter.done():
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)
        message = self._items.popleft()
        if self._paused and len(self._items) <= self._low:
            self._paused = False
            self._resume()
        return message


class _ClosedNormally(Exception):
    """Internal: the inbox ended because the client was closed."""


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, errors.ConnectionError | errors.TimeoutError)


def _check_qos(qos: object) -> int:
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        raise errors.ConfigError(f"qos: must be 0, 1 or 2, got {qos!r}")
    return qos  # type: ignore[return-value]


class MQTTClient(BaseClient):
    """Async MQTT client: ``async with MQTTClient("mqtt://host:1883") as mqtt``.

    Args:
        url: ``mqtt://[user:pass@]host[:port]`` or ``mqtts://...`` (TLS); it
            sets host, port, username, password and use_tls.
        config: An :class:`MQTTConfig`; keyword overrides are merged over it.
        **overrides: Any MQTTConfig field, e.g. ``client_id=``, ``default_qos=``,
            ``engine="gmqtt"`` (the faster engine; API and behaviour are the same).

    Raises:
        ConfigError: An invalid field (named) or URL, or an engine whose
            library is not installed (the message names the extra).
        SecurityError: ``mqtt://`` (no TLS) to a non-loopback host without
            ``allow_insecure=True``.
    """

    _protocol = "mqtt"

    def __init__(
        self, url: str | None = None, *, config: MQTTConfig | None = None, **overrides: Any
    ) -> None:
        super().__init__()
        if url is not None:
            allow = overrides.get(
                "allow_insecure", config.allow_insecure if config is not None else False
            )
            check_url(url, allow_insecure=allow, schemes=_SCHEMES)
            overrides = {**_url_fields(url), **overrides}
        self.config = cfg = merge_config(MQTTConfig, config, overrides)
        check_endpoint(
            secure=cfg.use_tls,
            host=cfg.host,
            allow_insecure=cfg.allow_insecure,
            what=f"{'mqtts' if cfg.use_tls else 'mqtt'}://{cfg.host}:{cfg.port}",
        )
        self._events = EventEmitter(_EVENTS, self.logger)
        self._router: TopicRouter[_Route] = TopicRouter()
        self._subscriptions: dict[str, int] = {}
        self._engine_class = engine_class(cfg.engine)  # ConfigError naming the extra to install
        self._outbox: collections.deque[Item] = collections.deque()
        self._inbox = _Inbox(cfg.max_queued_messages, self._pause_reading, self._resume_reading)
        self._engine: Engine | None = None
        self._online = False
        self._failure: errors.CommunicationError | None = None
        self._pending: _Delivery | None = None
        self._format = cfg.message_format
        self._health_topic = f"agenticaiframework/health/{uuid.uuid4().hex}"
        self._ssl: ssl.SSLContext | None = None
        # "auto" tries MQTT 5 until a broker refuses it; then 3.1.1 for good.
        self._try_v5 = cfg.protocol != "3.1.1"
        self._negotiated = False  # a connection succeeded: the version is settled
        self._use_sids = False
        self._max_packet: int | None = None  # the broker's Maximum Packet Size (MQTT 5)
        self._v5 = False  # what the current/last connection speaks
        self._reply_topic: str | None = None
        self._reply_bytes: bytes | None = None
        self._requests: dict[bytes, asyncio.Future[MQTTMessage]] = {}
        self._request_seq = 0
        self._reply_lock = asyncio.Lock()
        self._sids: dict[str, int] = {}  # subscribed filter -> MQTT 5 subscription identifier
        self._sid_routes: dict[int, tuple[_Route, ...]] = {}
        # MQTT 5 subscription options of the filters that have any:
        # (no_local, retain_as_published, retain_handling).
        self._sub_options: dict[str, tuple[bool, bool, int]] = {}

    # -- properties ----------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """Whether the client is connected to the broker right now."""
        return self._online and self._engine is not None and self._engine.is_connected

    @property
    def protocol(self) -> str | None:
        """The MQTT version spoken: ``"5"`` or ``"3.1.1"``; None before the first connect."""
        if self._state is ClientState.UNOPENED:
            return None
        return "5" if self._v5 else "3.1.1"

    @property
    def subscriptions(self) -> dict[str, int]:
        """A copy of the current subscriptions, filter -> QoS."""
        return dict(self._subscriptions)

    @property
    def queued_publishes(self) -> int:
        """Publishes waiting for a reconnect."""
        return len(self._outbox)

    @property
    def queued_messages(self) -> int:
        """Received messages not yet consumed."""
        return len(self._inbox)

    def __repr__(self) -> str:
        cfg = self.config
        scheme = "mqtts" if cfg.use_tls else "mqtt"
        return f"<MQTTClient {scheme}://{cfg.host}:{cfg.port} {self.state.value}>"

    # -- events and handlers -------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Register a handler for a client event; usable as a decorator.

        Events: ``connect()``, ``disconnect(exc | None)``, ``reconnect()``,
        ``message(MQTTMessage)`` and ``error(exc)``.

        Args:
            event: The event name.
            handler: The handler; omit it to decorate.

        Returns:
            The handler.

        Raises:
            ValueError: Unknown event name.
        """
        return self._events.on(event, handler)

    def on_message(
        self, topic_filter: str, qos: int | None = None, *, group: str | None = None
    ) -> Callable[[H], H]:
        """Decorator: call ``handler(topic, payload)`` for messages matching ``topic_filter``.

        The filter is subscribed to (at ``qos``, default ``default_qos``) on
        connect, or at once if already connected. Handlers may be sync or
        async; one that raises is logged and reported on the ``error`` event.
        Handlers run only as messages are consumed: by :meth:`start_listening`
        (start it, usually as a task, once the handlers are registered), or by
        ``async for`` / :meth:`receive`. With nothing consuming, messages wait
        in the queue and no handler runs.

        A level written ``{name}`` is a ``+`` whose value is passed by name:
        ``@mqtt.on_message("agents/{agent_id}/status")`` calls
        ``handler(topic, payload, agent_id="a1")``. With ``group`` (or a
        literal ``$share/<group>/<filter>``) the subscription is shared (MQTT
        5): the broker gives each message to one member of the group, and the
        handler matches the inner filter.

        Args:
            topic_filter: An MQTT filter such as ``agents/+/status``.
            qos: Subscription QoS.
            group: A share group name.

        Returns:
            The decorator; it returns the handler unchanged.

        Raises:
            ConfigError: Invalid filter, group or QoS.
        """
        return self._register(topic_filter, qos, group, reply=False)

    def on_request(
        self, topic_filter: str, qos: int | None = None, *, group: str | None = None
    ) -> Callable[[H], H]:
        """Decorator: answer requests (MQTT 5 request/response) on ``topic_filter``.

        The handler is called like an :meth:`on_message` handler (named
        wildcards included) and its return value (dict/list/str/bytes) is
        published to the request's response topic with its correlation data,
        which is what :meth:`request` waits for. A handler that raises is
        answered with the user property ``agenticai-error`` (``request()``
        raises :class:`RemoteError`); a request without a response topic is
        handled and not answered. Handlers run as messages are consumed (see
        :meth:`on_message`).

        Args:
            topic_filter: An MQTT filter such as ``svc/+/get``.
            qos: Subscription QoS.
            group: A share group name, to spread requests over responders.

        Returns:
            The decorator; it returns the handler unchanged.

        Raises:
            ConfigError: Invalid filter, group or QoS.
        """
        return self._register(topic_filter, qos, group, reply=True)

    def _register(
        self, topic_filter: str, qos: int | None, group: str | None, *, reply: bool
    ) -> Callable[[H], H]:
        if not isinstance(topic_filter, str):
            raise errors.ConfigError(f"topic filter: must be a str, got {topic_filter!r}")
        shared_group, inner = None, topic_filter
        if topic_filter.startswith("$share/"):
            parts = topic_filter.split("/", 2)
            if len(parts) < 3 or not parts[2]:
                raise errors.ConfigError(
                    f"topic filter: a shared subscription is '$share/<group>/<filter>': "
                    f"{topic_filter!r}"
                )
            shared_group, inner = parts[1], parts[2]
        if group is not None and shared_group is not None:
            raise errors.ConfigError(f"group: {topic_filter!r} already names a share group")
        flt, names = named_filter(inner)
        group = group if group is not None else shared_group
        subscribed = flt if group is None else share_filter(flt, group)
        level = self.config.default_qos if qos is None else _check_qos(qos)

        def register(handler: H) -> H:
            if not callable(handler):
                raise errors.ConfigError(f"handler for {topic_filter!r} must be callable")
            self._router.add(flt, _Route(handler, names, reply, flt))
            self._sid_routes.clear()
            # Resubscribed when already subscribed without handlers: over MQTT 5
            # the subscription now needs its identifier.
            if self._subscriptions.get(subscribed, -1) < level or (
                self._use_sids
                and subscribed in self._subscriptions
                and subscribed not in self._sids
            ):
                self._subscriptions[subscribed] = max(level, self._subscriptions.get(subscribed, 0))
                if self._online:
                    self._tasks.spawn(
                        self._subscribe_background([(subscribed, self._subscriptions[subscribed])]),
                        f"subscribe {subscribed}",
                    )
            return handler

        return register

    async def _subscribe_background(self, pairs: list[tuple[str, int]]) -> None:
        try:
            await self._send_subscribe(pairs)
        except errors.CommunicationError as exc:
            self.stats.errors += 1
            self.logger.warning("subscribing to %s failed: %s", pairs, exc)
            await self._events.emit("error", exc)

    # -- lifecycle -----------------------------------------------------------

    async def _open(self) -> None:
        if self._failure is not None:
            raise self._failed_error()
        await self._establish(first=True)
        self._tasks.spawn(self._supervise(), "supervisor")
        await self._events.emit("connect")

    async def _close(self) -> None:
        self._online = False
        self._inbox.end(_ClosedNormally())
        await self._tasks.cancel_all()
        engine, self._engine = self._engine, None
        if self._outbox:
            self.logger.warning("closing with %d unsent queued publishes", len(self._outbox))
            self._outbox.clear()
        if engine is not None:
            self._settle_inflight(engine, requeue=False)
            await engine.shutdown(self.config.connect_timeout)
        self._inbox.clear()
        self._pending = None

    def _new_engine(self) -> Engine:
        cfg = self.config
        expiry = cfg.session_expiry
        if expiry is None:
            expiry = 0 if cfg.clean_session else _NEVER_EXPIRES
        will = None
        if cfg.will is not None:
            will = (cfg.will.topic, encode_bytes(cfg.will.payload), cfg.will.qos, cfg.will.retain)
        settings = Settings(
            host=cfg.host,
            port=cfg.port,
            client_id=cfg.client_id,
            username=cfg.username,
            password=cfg.password,
            v5=self._try_v5,
            clean_session=cfg.clean_session,
            session_expiry=expiry,
            keepalive=cfg.keepalive,
            timeout=cfg.connect_timeout,
            ssl=self._ssl,
            will=will,
            logger=self.logger,
            # Not on the first CONNECT of "auto": a 3.1.1 broker may hang on a
            # CONNECT with properties instead of refusing it (amqtt does).
            topic_aliases=TOPIC_ALIAS_MAXIMUM if self._negotiated or cfg.protocol == "5" else 0,
        )
        return self._engine_class(
            settings, self._inbox.put if self._reply_bytes is None else self._incoming
        )

    async def _establish(self, *, first: bool = False) -> None:
        """One connection attempt: CONNECT, resubscribe, flush the outgoing queue."""
        cfg = self.config
        where = f"{cfg.host}:{cfg.port}"
        if cfg.use_tls and self._ssl is None:
            # Reading certificate files blocks: do it once, off the loop.
            self._ssl = await asyncio.to_thread(
                client_ssl_context,
                verify=cfg.verify_ssl,
                ca_certs=cfg.ca_certs,
                client_cert=cfg.client_cert,
                client_key=cfg.client_key,
            )
        engine = self._new_engine()
        try:
            try:
                async with asyncio.timeout(cfg.connect_timeout):
                    await engine.connect()
            except (ConnectRefused, EarlyClose) as exc:
                if not self._refuses_v5(exc):
                    raise
                # A 3.1.1 broker: "auto" speaks 3.1.1 to it from now on.
                self.logger.info("MQTT %s refused MQTT 5 (%s); using 3.1.1", where, exc.message)
                self._try_v5 = False
                await engine.shutdown(cfg.connect_timeout)
                engine = self._new_engine()
                async with asyncio.timeout(cfg.connect_timeout):
                    await engine.connect()
        except BaseException as exc:
            await engine.shutdown(cfg.connect_timeout)
            if isinstance(exc, errors.CommunicationError):
                raise  # the engine already said what went wrong, and where
            # Our deadline and the library's own (the same length) race: both
            # mean the broker accepted the socket but sent no CONNACK.
            if isinstance(exc, TimeoutError):
                raise errors.TimeoutError(
                    f"MQTT connect to {where}: no CONNACK within {cfg.connect_timeout:g}s"
                ) from exc
            if isinstance(exc, OSError):
                raise errors.ConnectionError(
                    f"MQTT connect to {where}: {type(exc).__name__}: {exc}"
                ) from exc
            raise
        self._v5 = self._try_v5
        self._negotiated = True
        # Subscription identifiers route MQTT 5 copies to their handlers, when
        # the broker supports them.
        self._use_sids = engine.sids_available
        self._max_packet = engine.max_packet
        try:
            requeue = cfg.auto_reconnect
            engine.on_lost(lambda: self._settle_inflight(engine, requeue=requeue))
            if self._inbox.paused:
                engine.pause_reading()
            self._engine = engine
            if self._subscriptions and not (engine.session_present and not cfg.clean_session):
                await self._send_subscribe(list(self._subscriptions.items()), engine)
            while self._outbox:
                # Taken off first: if the link dies under it, _settle_inflight
                # puts a QoS 1/2 message back in front.
                item = self._outbox.popleft()
                try:
                    delivered = await engine.send(item)
                except Lost as exc:
                    self._outbox.appendleft(item)
                    raise errors.ConnectionError(
                        f"MQTT {where}: lost while flushing: {exc}"
                    ) from exc
                except errors.CommunicationError as exc:
                    # The broker refused this one (a reason code): report it, go on.
                    self.stats.errors += 1
                    self.logger.warning("queued publish refused: %s", exc)
                    self._tasks.spawn(self._events.emit("error", exc), "report refusal")
                    continue
                if not delivered:
                    raise errors.ConnectionError(f"MQTT {where}: lost while flushing")
                self._count_sent(item)
        except BaseException:
            if self._engine is engine:
                self._engine = None
            self._settle_inflight(engine, requeue=True)
            await engine.shutdown(cfg.connect_timeout)
            raise
        self._online = True
        if not first:
            self.stats.reconnects += 1

    def _refuses_v5(self, exc: BaseException) -> bool:
        """Whether a failed first CONNECT under ``"auto"`` means "this broker has no MQTT 5"."""
        if not self._try_v5 or self._negotiated or self.config.protocol != "auto":
            return False
        if isinstance(exc, EarlyClose):
            return True  # some 3.1.1 brokers just hang up on an MQTT 5 CONNECT
        return isinstance(exc, ConnectRefused) and exc.reason in _REFUSES_V5

    async def _supervise(self) -> None:
        """Own the connection until it fails for good; whatever ends it is reported.

        A failure of the supervisor itself (a bug, or a stray CancelledError
        from a future cancelled under us) must not leave the client looking
        alive: consumers would wait forever and publishes would queue silently.
        """
        try:
            await self._reconnect_forever()
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if self._state is ClientState.CLOSED or (task is not None and task.cancelling()):
                raise  # close() cancels us
            failure = errors.ConnectionError(f"MQTT reconnecting stopped: {exc!r}")
        except Exception as exc:
            self.logger.exception("MQTT supervisor failed")
            failure = errors.ConnectionError(f"MQTT reconnecting stopped: {exc!r}")
            failure.__cause__ = exc
        else:
            return
        self._give_up(failure)
        await self._events.emit("error", failure)

    async def _reconnect_forever(self) -> None:
        """Wait for the connection to end, then reconnect; return after giving up."""
        cfg = self.config
        where = f"{cfg.host}:{cfg.port}"
        while True:
            engine = self._engine
            if engine is None:  # pragma: no cover - _establish always sets it
                return
            reason = await engine.wait_disconnected()
            refused = engine.server_disconnect
            if refused is not None and refused >= 0x80:
                # The broker said why it ended the connection (MQTT 5 DISCONNECT).
                stated = reason_error(refused, f"connection to {where} ended by the broker")
                stated.__cause__ = reason
                reason = stated
            self._online = False
            self._engine = None
            self._settle_inflight(engine, requeue=cfg.auto_reconnect)
            await engine.shutdown(cfg.connect_timeout)
            self.logger.warning("MQTT connection to %s lost: %s", where, reason)
            await self._events.emit("disconnect", reason)
            if not cfg.auto_reconnect:
                lost = errors.ConnectionError(f"MQTT connection to {where} lost: {reason}")
                lost.__cause__ = reason
                self._give_up(lost)
                await self._events.emit("error", lost)
                return
            attempts = 0
            try:
                async for attempt in retrying(
                    cfg.retry_config(),
                    retry_if=_is_transient,
                    before_sleep=self._log_retry,
                    forever=cfg.max_reconnect_attempts == 0,
                ):
                    with attempt:
                        attempts += 1
                        await self._establish()
            except errors.CommunicationError as exc:
                final = errors.ConnectionError(
                    f"MQTT gave up reconnecting to {where} after {attempts} attempt(s): "
                    f"{exc.message}"
                )
                final.__cause__ = exc
                self._give_up(final)
                await self._events.emit("error", final)
                return
            self.logger.info("MQTT reconnected to %s", where)
            self._otel.count("agentcomm.client.reconnects", 1, {"agentcomm.protocol": "mqtt"})
            await self._events.emit("reconnect")

    def _log_retry(self, state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.logger.info("MQTT reconnect attempt %d failed: %s", state.attempt_number, exc)

    def _give_up(self, exc: errors.CommunicationError) -> None:
        """Fail for good: say so in the state, to consumers, and to every later call."""
        self._failure = exc
        self._online = False
        if self._state is ClientState.OPEN:
            self._state = ClientState.FAILED
        self.stats.errors += 1
        self.logger.error("%s", exc.message)
        if self._outbox:
            self.logger.warning("dropping %d queued publishes: %s", len(self._outbox), exc)
            self._outbox.clear()
        self._inbox.end(exc)

    def _failed_error(self) -> errors.ConnectionError:
        """A fresh error for a call made after giving up, chained to the reason."""
        failure = self._failure
        assert failure is not None
        error = errors.ConnectionError(f"MQTTClient failed for good: {failure.message}")
        error.__cause__ = failure
        return error

    def _settle_inflight(self, engine: Engine, *, requeue: bool) -> None:
        """The link died: put unacknowledged QoS 1/2 publishes back in front, in order."""
        entries = list(engine.acks.values())
        engine.acks.clear()
        if requeue:
            back = [item for _, item in entries if item.qos > 0]
            self._outbox.extendleft(reversed(back))
        for fut, _ in entries:
            if not fut.done():
                if requeue:
                    fut.set_result(False)
                else:
                    fut.set_exception(Lost("connection closed"))

    def _pause_reading(self) -> None:
        if self._engine is not None:
            self._engine.pause_reading()

    def _resume_reading(self) -> None:
        if self._engine is not None:
            self._engine.resume_reading()

    # -- subscribe -----------------------------------------------------------

    async def subscribe(
        self,
        topic: str | Sequence[tuple[str, int]],
        qos: int | None = None,
        *,
        group: str | None = None,
        no_local: bool = False,
        retain_as_published: bool = False,
        retain_handling: int = 0,
    ) -> None:
        """Subscribe to one filter, or to several ``[(filter, qos), ...]`` at once.

        Subscriptions are remembered and restored after every reconnect. Made
        before ``connect()`` (or while reconnecting) they are sent on connect.

        With ``group`` each filter is subscribed as the shared subscription
        ``$share/<group>/<filter>`` (the literal form works too): the broker
        hands each message to one member of the group.

        Args:
            topic: A filter such as ``agents/+/status``, or a list of pairs.
            qos: QoS for a single filter (default ``default_qos``).
            group: A share group name.
            no_local: MQTT 5: do not receive our own publishes on it.
            retain_as_published: MQTT 5: keep the retain flag of forwarded
                messages as the publisher set it.
            retain_handling: MQTT 5: when the broker sends retained messages:
                0 on every subscribe, 1 only when the subscription is new, 2 never.

        Raises:
            ConfigError: An invalid filter, group, QoS or option, or an
                option over MQTT 3.1.1 (nothing is sent).
            AuthenticationError: The broker refused a subscription as not
                authorized (``ERR_AUTH``, :class:`MQTTAuthError`).
            RemoteError: The broker refused a subscription (``remote_code``
                is the reason code).
            ConnectionError: The connection failed for good.
            ClosedError: The client is closed.
        """
        self._ensure_usable()
        pairs = self._subscription_pairs(topic, qos)
        if group is not None:
            pairs = [(share_filter(flt, group), level) for flt, level in pairs]
        if no_local or retain_as_published or retain_handling:
            if retain_handling not in (0, 1, 2) or isinstance(retain_handling, bool):
                raise errors.ConfigError(
                    f"retain_handling: must be 0, 1 or 2, got {retain_handling!r}"
                )
            if self._state is ClientState.OPEN and not self._v5:
                raise errors.ConfigError(
                    "subscription options (no_local, retain_as_published, retain_handling) "
                    "need MQTT 5; this connection speaks 3.1.1"
                )
            for flt, _ in pairs:
                self._sub_options[flt] = (
                    bool(no_local),
                    bool(retain_as_published),
                    retain_handling,
                )
        else:
            for flt, _ in pairs:
                self._sub_options.pop(flt, None)
        for flt, level in pairs:
            self._subscriptions[flt] = level
        if self._online:
            await self._send_subscribe(pairs)
        elif self._failure is not None:
            raise self._failed_error()

    def _subscription_pairs(
        self, topic: str | Sequence[tuple[str, int]], qos: int | None
    ) -> list[tuple[str, int]]:
        if isinstance(topic, str):
            level = self.config.default_qos if qos is None else _check_qos(qos)
            split_shared(validate_filter(topic))
            return [(topic, level)]
        if not isinstance(topic, Iterable):
            raise errors.ConfigError(
                f"topic: expected a filter or (filter, qos) pairs, got {topic!r}"
            )
        pairs: list[tuple[str, int]] = []
        for entry in topic:
            if not isinstance(entry, tuple | list) or len(entry) != 2:
                raise errors.ConfigError(f"topic: expected (filter, qos) pairs, got {entry!r}")
            split_shared(validate_filter(entry[0]))
            pairs.append((entry[0], _check_qos(entry[1])))
        if not pairs:
            raise errors.ConfigError("topic: no filters given")
        return pairs

    async def _send_subscribe(
        self, pairs: list[tuple[str, int]], engine: Engine | None = None
    ) -> None:
        engine = engine or self._engine
        if engine is None:
            return
        timeout = self.config.connect_timeout
        try:
            if self._v5 and (self._use_sids or self._sub_options):
                # One SUBSCRIBE per filter, each with its subscription identifier
                # and options: an MQTT 5 broker sends one copy of a message per
                # matching subscription, and the identifier says which handlers
                # it is for.
                answers = await asyncio.gather(
                    *(
                        engine.subscribe(
                            [(flt, level, self._sub_options.get(flt))],
                            self._sid_for(flt) if self._use_sids else None,
                            timeout,
                        )
                        for flt, level in pairs
                    )
                )
                codes = [answer[0] for answer in answers]
            else:
                codes = await engine.subscribe(
                    [(flt, level, None) for flt, level in pairs], None, timeout
                )
        except errors.CommunicationError:
            if self.config.auto_reconnect and not engine.is_connected:
                return  # restored by the reconnect
            raise
        refused = [
            (flt, code) for (flt, _), code in zip(pairs, codes, strict=False) if code >= 0x80
        ]
        if refused:
            for flt, _ in refused:
                self._subscriptions.pop(flt, None)
            names = ", ".join(flt for flt, _ in refused)
            raise reason_error(refused[0][1], f"subscription to {names}", PacketTypes.SUBACK)

    def _sid_for(self, subscribed: str) -> int | None:
        """The subscription identifier of a filter that has handlers (None without any).

        A filter without handlers gets none: its messages need no routing, and
        the broker then adds no property to every message.
        """
        sid = self._sids.get(subscribed)
        if sid is None:
            if not self._router.exact(split_shared(subscribed)[1]):
                return None
            sid = self._sids[subscribed] = len(self._sids) + 1
            self._sid_routes.clear()
        return sid

    def _routes_for(self, message: MQTTMessage) -> tuple[_Route, ...]:
        """The handlers of the subscription(s) this copy of a message came through."""
        sids = message._prop("SubscriptionIdentifier")
        if not sids:
            if self._use_sids and self._sids:
                return ()  # the copy of a subscription without handlers
            return self._router.match(message.topic)
        cache = self._sid_routes
        if len(sids) == 1:
            found = cache.get(sids[0])
            if found is not None:
                return found
        if not cache and self._sids:
            for subscribed, sid in self._sids.items():
                cache[sid] = self._router.exact(split_shared(subscribed)[1])
        routes: list[_Route] = []
        for sid in sids:
            for route in cache.get(sid, ()):
                if route not in routes:
                    routes.append(route)
        if not routes and any(sid not in cache for sid in sids):
            return self._router.match(message.topic)  # an identifier of an older session
        return tuple(routes)

    async def unsubscribe(self, topic: str | Sequence[str]) -> None:
        """Unsubscribe from one filter or several.

        Args:
            topic: A filter or a list of filters.

        Raises:
            ConfigError: An invalid filter.
            ConnectionError: The broker did not answer.
            ClosedError: The client is closed.
        """
        self._ensure_usable()
        filters = [topic] if isinstance(topic, str) else list(topic)
        for flt in filters:
            validate_filter(flt)
        for flt in filters:
            self._subscriptions.pop(flt, None)
            self._sub_options.pop(flt, None)
        engine = self._engine
        if self._online and engine is not None:
            try:
                await engine.unsubscribe(filters, self.config.connect_timeout)
            except errors.CommunicationError:
                if self.config.auto_reconnect and not engine.is_connected:
                    return
                raise

    # -- publish -------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: Message = b"",
        qos: int | None = None,
        retain: bool = False,
        *,
        user_properties: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content_type: str | None = None,
        message_expiry: int | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | str | None = None,
    ) -> None:
        """Publish a message.

        Connected, it returns once the message is written (QoS 0) or
        acknowledged by the broker (QoS 1 and 2). While reconnecting it
        queues the message (see the module docs) and returns at once.

        Safe to cancel; a cancelled QoS 1/2 publish may still be delivered.

        Over MQTT 5 a str/dict/list payload is marked as UTF-8 (payload format
        indicator 1), and the keyword-only properties are sent; over MQTT 3.1.1
        giving any of them is an error.

        Args:
            topic: A topic name (no wildcards).
            payload: dict/list (sent as JSON), str (UTF-8), bytes, or None (empty).
            qos: 0, 1 or 2 (default ``default_qos``).
            retain: Ask the broker to retain the message.
            user_properties: MQTT 5 user properties, a dict or (name, value) pairs.
            content_type: MQTT 5 content type, e.g. ``application/json``.
            message_expiry: Seconds after which the broker drops the message
                if it is not delivered yet (MQTT 5).
            response_topic: Where a responder should answer (MQTT 5).
            correlation_data: Sent back by a responder with its answer (MQTT 5).

        Raises:
            ConfigError: Invalid topic, QoS or property, or a property over
                MQTT 3.1.1.
            AuthenticationError: The broker refused the publish as not
                authorized (``ERR_AUTH``, :class:`MQTTAuthError`; QoS 1/2 on MQTT 5).
            RemoteError: The broker refused it with another reason code
                (``remote_code``; quota exceeded, topic name invalid ...).
            MessageTooLargeError: The packet would exceed the broker's
                Maximum Packet Size (MQTT 5; nothing is sent).
            ProtocolError: The payload cannot be encoded.
            QueueFullError: Disconnected and ``max_queued_publishes`` are waiting.
            ConnectionError: Not connected and not reconnecting, or reconnecting
                gave up.
            ClosedError: The client is closed.
        """
        options = (
            None
            if user_properties is None
            and content_type is None
            and message_expiry is None
            and response_topic is None
            and correlation_data is None
            else _PublishOptions(
                user_properties, content_type, message_expiry, response_topic, correlation_data
            )
        )
        # The telemetry is a with-block, not a coroutine wrapping the publish: the
        # plain path runs in this frame.
        with _PublishTelemetry(self, topic, qos) if self._otel.enabled else NO_TELEMETRY as t:
            options = t.outgoing(options)
            if self._state is not ClientState.OPEN:
                self._ensure_usable()
                if self._failure is not None:
                    raise self._failed_error()
                raise errors.ConnectionError("MQTTClient is not connected: call connect() first")
            validate_topic(topic)
            data = b"" if payload is None else encode_bytes(payload)
            level = self.config.default_qos if qos is None else _check_qos(qos)
            props: PropsOut | None = None
            if options is not None:
                props = self._publish_properties(payload, options)
            elif self._v5 and isinstance(payload, str | dict | list):
                props = UTF8
            item = Item(topic, data, level, retain, props)
            if self._max_packet is not None:
                self._check_size(item, self._max_packet)
            engine = self._engine
            if self._online and not self._outbox and engine is not None:
                try:
                    if await engine.send(item):
                        self._count_sent(item)
                    return
                except Lost as exc:
                    if not self.config.auto_reconnect or self._failure is not None:
                        raise errors.ConnectionError(
                            f"MQTT publish to {topic!r} failed: {exc}"
                        ) from exc
            self._enqueue(item)

    def _check_size(self, item: Item, limit: int) -> None:
        """Refuse a PUBLISH larger than the broker's Maximum Packet Size (MQTT 5).

        Sent anyway, the broker would drop the connection, and a queued QoS 1/2
        message would be re-sent after every reconnect.
        """
        size = len(item.data) + len(item.topic.encode()) + 2 + (2 if item.qos else 0)
        size += block_length(item.props)
        size += 1 + (1 if size < 128 else 2 if size < 16384 else 3 if size < 2097152 else 4)
        if size > limit:
            raise errors.MessageTooLargeError(
                f"MQTT publish to {item.topic!r}: the packet would be {size} bytes, more than "
                f"the broker's maximum packet size of {limit}"
            )

    def _publish_properties(self, payload: Message, options: _PublishOptions) -> PropsOut:
        if not self._v5:
            raise errors.ConfigError(
                "publish properties (user_properties, content_type, message_expiry, "
                "response_topic, correlation_data) need MQTT 5; this connection speaks 3.1.1"
            )
        user_properties, content_type, message_expiry, response_topic, correlation_data = options
        props: PropsOut = {}
        if isinstance(payload, str | dict | list):
            props["payload_format"] = 1
        if user_properties is not None:
            pairs = list(
                user_properties.items() if isinstance(user_properties, Mapping) else user_properties
            )
            for pair in pairs:
                if (
                    not isinstance(pair, tuple | list)
                    or len(pair) != 2
                    or not all(isinstance(v, str) for v in pair)
                ):
                    raise errors.ConfigError(
                        f"user_properties: expected str names and values, got {pair!r}"
                    )
            if pairs:
                props["user_properties"] = [tuple(p) for p in pairs]
        if content_type is not None:
            if not isinstance(content_type, str):
                raise errors.ConfigError(f"content_type: must be a str, got {content_type!r}")
            props["content_type"] = content_type
        if message_expiry is not None:
            if (
                isinstance(message_expiry, bool)
                or not isinstance(message_expiry, int)
                or not 0 <= message_expiry <= _NEVER_EXPIRES
            ):
                raise errors.ConfigError(
                    f"message_expiry: must be whole seconds >= 0, got {message_expiry!r}"
                )
            props["message_expiry"] = message_expiry
        if response_topic is not None:
            props["response_topic"] = validate_topic(response_topic)
        if correlation_data is not None:
            if isinstance(correlation_data, str):
                correlation_data = correlation_data.encode()
            if not isinstance(correlation_data, bytes | bytearray):
                raise errors.ConfigError(
                    f"correlation_data: must be bytes or str, got {correlation_data!r}"
                )
            props["correlation_data"] = bytes(correlation_data)
        return props

    async def request(
        self,
        topic: str,
        payload: Message = b"",
        *,
        timeout: float = 30.0,
        qos: int | None = None,
        user_properties: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> MQTTMessage:
        """Publish a request and wait for its response (MQTT 5 request/response).

        The request carries this client's response topic (one subscription
        per client, made on the first request) and a fresh correlation
        data; the first message back with that correlation data is the
        response. :meth:`on_request` handlers answer this way, and so does
        any MQTT 5 responder that honours the response topic.

        Args:
            topic: The request topic.
            payload: As for :meth:`publish`.
            timeout: Seconds to wait for the response.
            qos: QoS of request and response subscription (default ``default_qos``).
            user_properties: Sent with the request.
            content_type: Sent with the request.

        Returns:
            The response message.

        Raises:
            TimeoutError: No response within ``timeout`` (``ERR_TIMEOUT``).
            RemoteError: The responder's handler raised (its error is the message).
            ConfigError: Invalid arguments, or the connection speaks MQTT 3.1.1.
            ConnectionError: Not connected, or the connection failed for good.
        """
        if self._state is ClientState.OPEN and not self._v5:
            raise errors.ConfigError(
                "request() needs MQTT 5 (response topic, correlation data); "
                "this connection speaks 3.1.1"
            )
        if self._reply_topic is None:
            async with self._reply_lock:  # concurrent first requests share one subscription
                if self._reply_topic is None:
                    reply_topic = f"agenticaiframework/replies/{uuid.uuid4().hex}"
                    await self.subscribe(reply_topic, qos=1)
                    self._reply_topic = reply_topic
                    self._reply_bytes = reply_topic.encode()
                    if self._engine is not None:
                        self._engine.deliver = self._incoming
        self._request_seq += 1
        correlation = self._request_seq.to_bytes(8, "big")
        future: asyncio.Future[MQTTMessage] = asyncio.get_running_loop().create_future()
        self._requests[correlation] = future
        try:
            await self.publish(
                topic,
                payload,
                qos,
                user_properties=user_properties,
                content_type=content_type,
                response_topic=self._reply_topic,
                correlation_data=correlation,
            )
            try:
                async with asyncio.timeout(timeout):
                    response = await future
            except TimeoutError:
                raise errors.TimeoutError(
                    f"MQTT request to {topic!r}: no response within {timeout:g}s"
                ) from None
        finally:
            self._requests.pop(correlation, None)
        failure = response.user_properties.get(_REPLY_ERROR)
        if failure is not None:
            raise errors.RemoteError(f"MQTT request to {topic!r} failed: {failure}")
        return response

    def _incoming(self, raw: Incoming) -> None:
        """Engine callback once requests are in use: responses go to their waiter."""
        if raw[0] != self._reply_bytes:
            self._inbox.put(raw)
            return
        _, payload, qos, retain, mid, props = raw
        correlation = read(props, "CorrelationData")
        future = self._requests.get(correlation) if correlation is not None else None
        if future is None or future.done():
            self.logger.debug("dropped a response nobody waits for (late or unknown)")
            return
        message = MQTTMessage(
            self._reply_topic or "",
            payload,
            qos,
            retain,
            mid,
            message_format=self._format,
            properties=props,
        )
        stats = self.stats
        stats.received += 1
        stats.bytes_received += len(message.raw)
        future.set_result(message)

    def _enqueue(self, item: Item) -> None:
        self._ensure_usable()
        if self._failure is not None:
            raise self._failed_error()
        bound = self.config.max_queued_publishes
        if bound == 0:
            raise errors.ConnectionError("MQTT is disconnected and max_queued_publishes is 0")
        if len(self._outbox) >= bound:
            raise errors.QueueFullError(
                f"{len(self._outbox)} publishes already wait for the reconnect "
                f"(max_queued_publishes={bound})"
            )
        self._outbox.append(item)
        self._otel.count("agentcomm.client.queued_messages", 1, {"agentcomm.protocol": "mqtt"})

    def _count_sent(self, item: Item) -> None:
        stats = self.stats
        stats.sent += 1
        stats.bytes_sent += len(item.data)

    # -- receive -------------------------------------------------------------

    async def receive(self) -> MQTTMessage:
        """Wait for the next message (after running its ``on_message`` handlers).

        Safe to cancel (``asyncio.timeout`` around it included): the connection
        stays up and no message is lost or returned twice. A cancellation that
        lands while a handler runs cancels that handler; the next call runs the
        handlers not yet run and returns the same message.

        A message whose topic is not valid UTF-8 is skipped; one whose payload
        cannot be decoded is returned (``raw`` holds the bytes, ``payload``
        raises :class:`ProtocolError`) but its handlers are skipped. Either is
        counted in ``stats.errors`` and reported on the ``error`` event.

        Returns:
            The message.

        Raises:
            ClosedError: The client was closed.
            ConnectionError: The connection failed for good.
        """
        try:
            return await self._next()
        except _ClosedNormally:
            raise errors.ClosedError("MQTTClient is closed") from None

    async def _next(self) -> MQTTMessage:
        if self._state is ClientState.UNOPENED:
            raise errors.ConnectionError("MQTTClient is not connected: call connect() first")
        delivery = self._pending
        if delivery is None or self._state is ClientState.CLOSED:
            message = await self._take()
            handlers = self._routes_for(message)
            if self._otel.enabled:
                self._otel_taken(message, handlers)
            if not handlers and not self._events.has("message"):
                return message  # nothing awaited after the take: nothing to lose
            delivery = _Delivery(message, handlers)
        self._pending = None
        try:
            await self._deliver(delivery)
        except BaseException:
            # Cut short (a timeout around receive()) while a handler ran: the
            # next receive() resumes this message instead of losing it.
            self._pending = delivery
            raise
        return delivery.message

    async def _take(self) -> MQTTMessage:
        """The next usable message off the inbox; unusable ones are counted and reported."""
        inbox = self._inbox
        while True:
            raw_topic, payload, qos, retain, mid, props = await inbox.get()
            try:
                topic = raw_topic.decode()
            except UnicodeDecodeError as exc:
                await self._reject(
                    f"dropped a message whose topic is not valid UTF-8: {raw_topic[:64]!r}", exc
                )
                continue
            message = MQTTMessage(
                topic,
                payload,
                qos,
                retain,
                mid,
                message_format=self._format,
                properties=props,
            )
            stats = self.stats
            stats.received += 1
            stats.bytes_received += len(message.raw)
            return message

    async def _deliver(self, delivery: _Delivery) -> None:
        """Run the message's handlers, then the ``message`` event, from where it stopped."""
        message = delivery.message
        handlers = delivery.handlers
        if delivery.step < len(handlers):
            try:
                payload = message.payload  # decoded once for every handler
            except errors.ProtocolError as exc:
                delivery.step = len(handlers)
                await self._reject(
                    f"the payload on {message.topic!r} cannot be decoded, its handlers "
                    f"were skipped: {exc.message}",
                    exc,
                )
            else:
                while delivery.step < len(handlers):
                    route = handlers[delivery.step]
                    # Counted before it runs: one cut short by a cancellation is not run twice.
                    delivery.step += 1
                    try:
                        if self._otel.enabled:
                            result = await self._otel_process(route, message, payload)
                        else:
                            result = route.call(message.topic, payload)
                        if inspect.isawaitable(result):
                            result = await result
                    except Exception as exc:
                        self.stats.errors += 1
                        self.logger.exception("on_message handler %r raised", route.handler)
                        if route.reply:
                            await self._answer(message, None, exc)
                        await self._events.emit("error", exc)
                    else:
                        if route.reply:
                            await self._answer(message, result, None)
        if delivery.step == len(handlers):
            delivery.step += 1
            if self._events.has("message"):
                await self._events.emit("message", message)

    async def _answer(
        self, request: MQTTMessage, result: Any, failure: BaseException | None
    ) -> None:
        """Publish an ``on_request`` handler's result (or failure) to the response topic."""
        reply_to = request.response_topic
        if reply_to is None:
            self.logger.debug("request on %r has no response topic; not answered", request.topic)
            return
        user: list[tuple[str, str]] | None = None
        if failure is not None:
            user = [(_REPLY_ERROR, f"{type(failure).__name__}: {failure}"[:1000])]
            result = b""
        try:
            await self.publish(
                reply_to,
                result,
                qos=request.qos,
                user_properties=user,
                correlation_data=request.correlation_data,
            )
        except errors.CommunicationError as exc:
            self.stats.errors += 1
            self.logger.warning("answering the request on %r failed: %s", request.topic, exc)
            await self._events.emit("error", exc)

    async def _reject(self, text: str, cause: BaseException) -> None:
        """Count and report a received message the client cannot use; the reader goes on."""
        error = errors.ProtocolError(text)
        error.__cause__ = cause
        self.stats.errors += 1
        self.logger.warning("%s", text)
        await self._events.emit("error", error)

    # -- telemetry -----------------------------------------------------------

    def _otel_attributes(self, topic: str, operation: str, qos: Any) -> dict[str, Any]:
        cfg = self.config
        attributes: dict[str, Any] = {
            "messaging.system": "mqtt",
            "messaging.operation.name": operation,
            "messaging.destination.name": topic,
            "server.address": cfg.host,
            "server.port": cfg.port,
        }
        if qos in (0, 1, 2):
            attributes["messaging.mqtt.qos"] = qos
        if cfg.client_id:
            attributes["messaging.client.id"] = cfg.client_id
        return attributes

    def _otel_taken(self, message: MQTTMessage, handlers: tuple[_Route, ...]) -> None:
        """A message taken: counted; without handlers, its CONSUMER span (async for, receive)."""
        otel = self._otel
        attributes = self._otel_attributes(message.topic, "process", message.qos)
        otel.count("messaging.client.consumed.messages", 1, attributes)
        if otel.tracing and not handlers:
            context = (extract_pairs(message.user_property_pairs) if self._v5 else None) or (
                new_trace()
            )
            if message.mid:
                attributes["messaging.message.id"] = str(message.mid)
            otel.start_span(
                f"process {message.topic}", "consumer", attributes, context=context
            ).end()

    async def _otel_process(self, route: _Route, message: MQTTMessage, payload: Any) -> Any:
        """Run one handler in its CONSUMER span ``process <filter>``, timed.

        The span's parent is the publisher's span when the message carried its
        context (MQTT 5 user properties); otherwise it starts a new trace.
        """
        otel = self._otel
        attributes = self._otel_attributes(message.topic, "process", message.qos)
        if route.filter:
            attributes["messaging.destination.template"] = route.filter
        if message.mid:
            attributes["messaging.message.id"] = str(message.mid)

        async def run() -> Any:
            result = route.call(message.topic, payload)
            if inspect.isawaitable(result):
                result = await result
            return result

        context = (extract_pairs(message.user_property_pairs) if self._v5 else None) or (
            new_trace()
        )
        started = monotonic()
        error: str | None = None
        try:
            if otel.tracing:
                with otel.span(
                    f"process {route.filter or message.topic}",
                    "consumer",
                    attributes,
                    context=context,
                ):
                    return await run()
            return await run()
        except BaseException as exc:
            error = error_type(exc)
            raise
        finally:
            if otel.metering:
                if error is not None:
                    attributes["error.type"] = error
                attributes.pop("messaging.message.id", None)  # per message: spans only
                measure(otel, "messaging.process.duration", started, attributes)

    def __aiter__(self) -> MQTTClient:
        return self

    async def __anext__(self) -> MQTTMessage:
        """The next message; ends quietly after ``close()``.

        Raises:
            ConnectionError: The connection failed for good.
        """
        try:
            return await self._next()
        except _ClosedNormally:
            raise StopAsyncIteration from None

    async def start_listening(self) -> None:
        """Dispatch messages to the ``on_message`` handlers until the client closes.

        Connects first if needed. Returns when ``close()`` is called. Messages
        that cannot be used (see :meth:`receive`) are reported on the
        ``error`` event and listening goes on.

        Raises:
            ConnectionError: The connection failed for good.
            ClosedError: The client was closed before.
        """
        await self.connect()
        try:
            while True:
                await self._next()
        except _ClosedNormally:
            return

    # -- health --------------------------------------------------------------

    async def health_check(self) -> HealthStatus:
        """Connected, plus one broker round trip (UNSUBSCRIBE -> UNSUBACK of a private topic).

        Returns:
            The verdict; never raises.
        """
        cfg = self.config

        async def probe() -> str:
            if self._failure is not None:
                raise self._failed_error()
            engine = self._engine
            if not self._online or engine is None or not engine.is_connected:
                raise errors.ConnectionError("not connected")
            await engine.unsubscribe([self._health_topic], math.inf)
            return f"MQTT {cfg.host}:{cfg.port}: connected, broker answered"

        what = f"MQTT {cfg.host}:{cfg.port}"
        return await run_probe(probe, timeout=cfg.connect_timeout, what=what)


def _url_fields(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError as exc:
        raise errors.ConfigError(f"url: invalid port in {parts.hostname!r}") from exc
    fields: dict[str, Any] = {
        "host": parts.hostname,
        "use_tls": scheme == "mqtts",
        "port": port or (8883 if scheme == "mqtts" else 1883),
    }
    if parts.username:
        fields["username"] = unquote(parts.username)
    if parts.password is not None:
        fields["password"] = unquote(parts.password)
    if parts.path not in ("", "/"):
        raise errors.ConfigError("url: an MQTT URL has no path; give topics to subscribe()")
    return fields


class _PublishTelemetry(OperationTelemetry):
    """One publish's PRODUCER span and its count, for a ``with`` block.

    The span is current in the block; an exception leaving it marks it
    failed. Over MQTT 5 :meth:`outgoing` puts the span's context in the user
    properties; MQTT 3.1.1 has no place for it: the message goes out as it is.
    """

    __slots__ = ("_v5",)

    def __init__(self, client: MQTTClient, topic: str, qos: int | None) -> None:
        otel = client._otel
        level = client.config.default_qos if qos is None else qos
        attributes = client._otel_attributes(topic, "publish", level)
        otel.count("messaging.client.sent.messages", 1, attributes)
        self._v5 = client._v5
        super().__init__(
            otel, otel.span(f"publish {topic}", "producer", attributes) if otel.tracing else None
        )

    def outgoing(self, options: _PublishOptions | None) -> _PublishOptions | None:
        """The properties to publish with: over MQTT 5, the trace context added."""
        if self._scope is None or not self._v5:
            return options
        options = options or _PublishOptions()
        user_properties = options.user_properties
        pairs = (
            list(user_properties.items())
            if isinstance(user_properties, Mapping)
            else list(user_properties or ())
        )
        return options._replace(user_properties=self._otel.inject_pairs(pairs))
