"""The default MQTT engine: aiomqtt (on paho-mqtt), one instance per connection.

It hands incoming messages straight to the client (no aiomqtt queue and no
task per message), writes publishes and PUBACKs in the call instead of one
loop pass later, tracks publish acknowledgements in futures that fail when
the link dies, and can pause reading the socket for back-pressure.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

import aiomqtt
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ..core import errors
from .engine import (
    ConnectRefused,
    EarlyClose,
    EngineBase,
    Incoming,
    Item,
    Lost,
    Settings,
    TopicAliases,
)
from .properties import UTF8, PropsOut, to_paho
from .reasons import AUTH_CONNACK_CODES, reason_error

__all__ = ["AiomqttEngine"]

_NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
_PAHO_INFLIGHT = 20  # paho's default window of unacknowledged QoS 1/2 publishes


def _frozen(props: PropsOut) -> Properties:
    """Properties packed once, for objects shared by many publishes and never changed.

    paho packs a publish's properties every time, which costs more than the
    rest of the publish (tens of microseconds for one property).
    """
    out = to_paho(props)
    packed = out.pack()  # type: ignore[no-untyped-call]
    object.__setattr__(out, "pack", lambda: packed)  # paho's __setattr__ takes property names only
    return out


_PAHO_UTF8 = _frozen(UTF8)


def _code(code: object) -> int:
    value = code.value if isinstance(code, ReasonCode) else code
    return value if isinstance(value, int) else 0x80


class _EarlyCloseCode(aiomqtt.MqttCodeError):
    """Internal: the broker closed the connection before its CONNACK."""


class _Client(aiomqtt.Client):
    """aiomqtt's client with our paho callbacks (the engine holds it)."""

    def __init__(self, engine: AiomqttEngine, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = engine
        self.connack: Properties | None = None
        self._reader: tuple[int, Callable[[], None]] | None = None
        self._reading = True
        context: ssl.SSLContext | None = kwargs.get("tls_context")
        if context is not None:
            # paho leaks the TLS socket when the handshake fails; wrap it ourselves.
            wrapper = _tls_wrapper(context, kwargs["hostname"])
            self._client._ssl_wrap_socket = wrapper  # type: ignore[method-assign,assignment]

    # -- paho callbacks (run on the event loop thread) ---------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        self.engine.session_present = bool(flags.session_present)
        self.connack = properties
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        if flags.is_disconnect_packet_from_server:
            self.engine.server_disconnect = _code(reason_code)
        connected = self._connected
        if not connected.done():
            # Lost before CONNACK: fail the connect now rather than at its timeout.
            connected.set_exception(_EarlyCloseCode(reason_code, "connection lost before CONNACK"))
            return
        if connected.cancelled():
            # The connect timed out (which cancels the future): nobody waits for
            # this connection, and aiomqtt would call .exception() on it.
            return
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        # Messages with properties (or QoS 2) come this way; the rest through
        # the fast path of _install_fast_publish.
        props = message.properties
        topic: bytes = message._topic
        alias = getattr(props, "TopicAlias", None) if props is not None else None
        if alias is not None:
            known = self.engine.incoming_alias(topic, alias)
            if known is None:
                return
            topic = known
        self.engine.deliver(
            (topic, bytes(message.payload), message.qos, bool(message.retain), message.mid, props)
        )

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        entry = self.engine.acks.pop(mid, None)
        if entry is None:
            super()._on_publish(client, userdata, mid, reason_code, properties)
        elif not entry[0].done():
            if reason_code.value >= 0x80:  # 0x10 "no matching subscribers" is a success
                entry[0].set_exception(
                    reason_error(
                        reason_code.value, f"publish to {entry[1].topic!r}", PacketTypes.PUBACK
                    )
                )
            else:
                entry[0].set_result(True)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # As aiomqtt's own, but the reader callback is kept so that reading can
        # be paused and resumed (back-pressure from a slow consumer), and one
        # wake-up reads every packet already buffered (TLS included).
        def on_readable() -> None:
            try:
                while True:
                    client.loop_read()
                    pending = getattr(client.socket(), "pending", None)
                    if pending is not None and pending() > 0:
                        continue
                    break
            except Exception as exc:  # a broken socket ends the connection
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        fileno = sock.fileno()
        self._reader = (fileno, on_readable)

        def register() -> None:
            if self._reading:
                self._loop.add_reader(fileno, on_readable)
            self._misc_task = self._loop.create_task(self._misc_loop(), name="mqtt-engine-misc")

        self._loop.call_soon_threadsafe(register)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._reader = None
        super()._on_socket_close(client, userdata, sock)

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            if self._reader is not None:
                self._loop.remove_reader(self._reader[0])

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            if self._reader is not None:
                self._loop.add_reader(*self._reader)


class AiomqttEngine(EngineBase):
    """One MQTT connection through aiomqtt (see :class:`.engine.Engine`)."""

    def __init__(self, settings: Settings, deliver: Callable[[Incoming], None]) -> None:
        super().__init__(settings, deliver)
        self._alias_props: dict[tuple[int, bool], Properties] = {}
        v5 = settings.v5
        properties: Properties | None = None
        if v5 and (settings.topic_aliases or settings.session_expiry):
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if settings.topic_aliases:
                properties.TopicAliasMaximum = settings.topic_aliases
            if settings.session_expiry:
                properties.SessionExpiryInterval = settings.session_expiry
        will = None
        if settings.will is not None:
            will = aiomqtt.Will(*settings.will)
        self._conn = conn = _Client(
            self,
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            logger=settings.logger.getChild("aiomqtt"),
            identifier=settings.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            will=will,
            clean_session=None if v5 else settings.clean_session,
            clean_start=settings.clean_session if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            keepalive=settings.keepalive,
            timeout=settings.timeout,
            properties=properties,
            tls_context=settings.ssl,
            socket_options=_NODELAY,
        )
        self._paho = client = conn._client
        _install_fast_publish(client, self, v5=v5)
        if v5:
            _install_pubrec_refusal(client)
        self._direct_write = all(hasattr(client, name) for name in _PAHO_SEND)

    # -- connection ----------------------------------------------------------

    async def connect(self) -> None:
        """CONNECT; see :meth:`.engine.Engine.connect`."""
        where = f"{self._settings.host}:{self._settings.port}"
        try:
            await self._conn.__aenter__()
        except _EarlyCloseCode as exc:
            raise EarlyClose(f"MQTT connect to {where}: {exc}") from exc
        except MqttConnectError as exc:
            value = _code(exc.rc)
            if value in AUTH_CONNACK_CODES:
                raise errors.AuthenticationError(
                    f"broker {where} refused the credentials: {exc}"
                ) from exc
            raise ConnectRefused(
                f"broker {where} refused the connection: {exc}", reason=value
            ) from exc
        except aiomqtt.MqttError as exc:
            raise _translate(exc, f"connect to {where}") from exc
        except OSError as exc:
            raise errors.ConnectionError(
                f"MQTT connect to {where}: {type(exc).__name__}: {exc}"
            ) from exc
        connack = self._conn.connack
        # Subscription identifiers route MQTT 5 copies to their handlers, when
        # the broker supports them (CONNACK says so; absent means yes).
        self.sids_available = self._settings.v5 and (
            getattr(connack, "SubscriptionIdentifierAvailable", 1) == 1
        )
        self.max_packet = getattr(connack, "MaximumPacketSize", None)
        receive_maximum = getattr(connack, "ReceiveMaximum", None)
        if receive_maximum is not None and receive_maximum < _PAHO_INFLIGHT:
            # Flow control: no more unacknowledged QoS 1/2 publishes than the
            # broker takes; paho holds the rest until acknowledgements arrive.
            # (paho's setter refuses a connected client; the window is read per publish.)
            self._paho._max_inflight_messages = receive_maximum
        alias_maximum = getattr(connack, "TopicAliasMaximum", 0) or 0
        if alias_maximum:
            self._aliases_out = TopicAliases(alias_maximum)

    @property
    def is_connected(self) -> bool:
        """Connected and not yet disconnected."""
        conn = self._conn
        connected = conn._connected
        # A timed-out connect leaves the future cancelled; .exception() would raise.
        return (
            connected.done()
            and not connected.cancelled()
            and connected.exception() is None
            and not conn._disconnected.done()
        )

    # -- operations ------------------------------------------------------------

    async def send(self, item: Item) -> bool:
        """Publish; see :meth:`.engine.Engine.send`. Safe to cancel."""
        client = self._paho
        topic = item.topic
        props = item.props
        if props is None:
            paho_props = None
        elif props is UTF8:
            paho_props = _PAHO_UTF8
        else:
            paho_props = to_paho(props)
        aliases = self._aliases_out
        if aliases is not None:
            topic, paho_props = self._alias(aliases, topic, props, paho_props)
        if self._direct_write:
            info = _write_now(
                client,
                lambda: client.publish(topic, item.data, item.qos, item.retain, paho_props),
            )
        else:
            info = client.publish(topic, item.data, item.qos, item.retain, paho_props)
        if info.rc != paho.MQTT_ERR_SUCCESS and info.rc != paho.MQTT_ERR_QUEUE_SIZE:
            raise Lost(paho.error_string(info.rc))
        if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
            raise Lost("paho outgoing queue full")
        if info.is_published():
            return True
        fut: asyncio.Future[bool] = self._conn._loop.create_future()
        self.acks[info.mid] = (fut, item)
        try:
            return await fut
        finally:
            self.acks.pop(info.mid, None)

    def _alias(
        self,
        aliases: TopicAliases,
        topic: str,
        props: PropsOut | None,
        paho_props: Properties | None,
    ) -> tuple[str, Properties | None]:
        alias, known = aliases.use(topic)
        if not alias:
            return topic, paho_props
        if props is None or props is UTF8:
            # Few distinct objects: one per alias and payload kind, made once.
            key = (alias, props is UTF8)
            cached = self._alias_props.get(key)
            if cached is None:
                cached = _frozen({**(props or {}), "topic_alias": alias})
                self._alias_props[key] = cached
            paho_props = cached
        else:
            assert paho_props is not None
            paho_props.TopicAlias = alias
        return ("" if known else topic), paho_props

    async def subscribe(
        self,
        entries: list[tuple[str, int, tuple[bool, bool, int] | None]],
        sid: int | None,
        timeout: float,
    ) -> list[int]:
        """One SUBSCRIBE; see :meth:`.engine.Engine.subscribe`."""
        props: Properties | None = None
        if sid is not None:
            props = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
            props.SubscriptionIdentifier = sid
        topics: list[tuple[str, Any]] = [
            (flt, qos if opts is None else SubscribeOptions(qos, *opts))  # type: ignore[no-untyped-call]
            for flt, qos, opts in entries
        ]
        try:
            codes = await self._conn.subscribe(topics, properties=props, timeout=timeout)
        except aiomqtt.MqttError as exc:
            raise _translate(exc, f"subscribe {[e[0] for e in entries]}") from exc
        return [_code(code) for code in codes]

    async def unsubscribe(self, filters: list[str], timeout: float) -> None:
        """One UNSUBSCRIBE; see :meth:`.engine.Engine.unsubscribe`."""
        try:
            await self._conn.unsubscribe(filters, timeout=timeout)
        except aiomqtt.MqttError as exc:
            raise _translate(exc, f"unsubscribe {filters}") from exc

    def pause_reading(self) -> None:
        """Stop reading the socket until :meth:`resume_reading`."""
        self._conn.pause_reading()

    def resume_reading(self) -> None:
        """Read the socket again."""
        self._conn.resume_reading()

    async def wait_disconnected(self) -> BaseException | None:
        """Wait until the connection ends; the reason, or None for a clean end."""
        ended = self._conn._disconnected
        # asyncio.wait, not await: the future may end up cancelled (aiomqtt
        # cancels it when its own wait for it times out), which must read as
        # "ended", not as a cancellation of the caller.
        await asyncio.wait([ended])
        if ended.cancelled():
            return Lost("connection ended")
        return ended.exception()

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` as soon as the connection ends (for any reason)."""
        self._conn._disconnected.add_done_callback(lambda _: callback())

    async def shutdown(self, timeout: float) -> None:
        """Disconnect (gracefully when possible) and release socket and tasks."""
        conn = self._conn
        try:
            if self.is_connected:
                try:
                    async with asyncio.timeout(timeout):
                        await conn.__aexit__(None, None, None)
                except (TimeoutError, aiomqtt.MqttError) as exc:
                    self._settings.logger.debug("MQTT disconnect did not complete: %s", exc)
        finally:
            if conn._lock.locked():
                conn._lock.release()
            # Connections that never completed (or died) may leave the socket open.
            if self._paho.socket() is not None:
                self._paho._sock_close()  # paho has no public close
            disconnected = conn._disconnected
            if not disconnected.done():
                disconnected.set_result(None)
            elif not disconnected.cancelled():
                disconnected.exception()  # mark the reason retrieved
            misc = conn._misc_task
            if misc is not None and not misc.done():
                misc.cancel()
                await asyncio.wait([misc])


def _translate(exc: BaseException, where: str) -> errors.CommunicationError:
    """Map an aiomqtt failure to our error tree."""
    if isinstance(exc, aiomqtt.MqttCodeError):
        return errors.ConnectionError(f"MQTT {where}: {exc}")
    if "timed out" in str(exc):
        return errors.TimeoutError(f"MQTT {where}: {exc}")
    return errors.ConnectionError(f"MQTT {where}: {exc}")


T = TypeVar("T")


def _write_now(client: paho.Client, queue: Callable[[], T]) -> T:
    """Run ``queue`` (a paho call that queues a packet) and write the packet at once.

    Left to paho, every packet registers a writer on the loop, waits one loop
    pass, is written, and unregisters the writer: two selector changes and a
    loop pass per packet. Here paho writes in the call; only when the socket
    cannot take it all is the writer registered, as before.
    """
    register = client._on_socket_register_write
    was_registered = client._registered_write
    client._on_socket_register_write = None
    try:
        return queue()
    finally:
        client._on_socket_register_write = register
        if client.want_write():
            if not was_registered:
                client._registered_write = False  # flagged above with no callback to call
            client._call_socket_register_write()


_PAHO_SEND = ("_on_socket_register_write", "_registered_write", "_call_socket_register_write")
_PAHO_RECEIVE = ("_in_packet", "_send_puback", "_manual_ack")
_PAHO_PUBREC = ("_handle_pubrec", "_out_message_mutex", "_out_messages", "_do_on_publish")


def _install_pubrec_refusal(client: paho.Client) -> None:
    """End a QoS 2 publish the broker refuses in its PUBREC (MQTT 5 reason >= 0x80).

    paho ignores the reason and sends PUBREL anyway, so the refusal reads as
    a success. Here the flow ends at the PUBREC (MQTT 5, 4.3.3): paho reports
    it to ``on_publish`` with the reason code (which fails the publish) and
    forgets the message, as it does on PUBCOMP.
    """
    if not all(hasattr(client, name) for name in _PAHO_PUBREC):
        return
    original = client._handle_pubrec

    def handle_pubrec() -> MQTTErrorCode:
        packet = client._in_packet["packet"]
        if len(packet) > 2 and packet[2] >= 0x80:
            mid = int.from_bytes(packet[:2], "big")
            with client._out_message_mutex:
                if mid in client._out_messages:
                    reason = ReasonCode(PacketTypes.PUBREC, identifier=packet[2])  # type: ignore[no-untyped-call]
                    props = Properties(PacketTypes.PUBREC)  # type: ignore[no-untyped-call]
                    return client._do_on_publish(mid, reason, props)
            return paho.MQTT_ERR_SUCCESS
        return original()

    client._handle_pubrec = handle_pubrec  # type: ignore[method-assign]


def _install_fast_publish(client: paho.Client, engine: AiomqttEngine, *, v5: bool) -> None:
    """Receive QoS 0/1 PUBLISH packets without paho's per-message overhead.

    paho builds and fills a ``Properties`` object for every MQTT 5 PUBLISH,
    which costs about as much as the rest of receiving it, and queues each
    PUBACK through a writer registration on the loop. Here messages without
    properties (an empty block, one zero byte; MQTT 3.1.1 has none) go to the
    client as a tuple, and the PUBACK is written at once (:func:`_write_now`).
    Everything else (properties present, QoS 2, anything malformed) goes to
    paho's own handler, and so does everything when paho's internals are not
    the ones this was written against.
    """
    if not all(hasattr(client, name) for name in (*_PAHO_RECEIVE, *_PAHO_SEND)):
        return
    original = client._handle_publish
    success = paho.MQTT_ERR_SUCCESS
    skip = 1 if v5 else 0  # the (empty) properties block before the payload

    def handle_publish() -> MQTTErrorCode:
        incoming = client._in_packet
        header = incoming["command"]
        packet = incoming["packet"]
        qos = (header & 0x06) >> 1
        size = int.from_bytes(packet[:2], "big")
        at = 2 + size + (2 if qos else 0)
        if qos == 2 or size == 0 or len(packet) < at + skip or (skip and packet[at] != 0):
            return original()
        mid = int.from_bytes(packet[at - 2 : at], "big") if qos else 0
        engine.deliver(
            (
                bytes(packet[2 : 2 + size]),
                bytes(packet[at + skip :]),
                qos,
                bool(header & 1),
                mid,
                None,
            )
        )
        if qos == 1 and not client._manual_ack:
            return _write_now(client, lambda: client._send_puback(mid))
        return success

    client._handle_publish = handle_publish  # type: ignore[method-assign]


def _tls_wrapper(context: ssl.SSLContext, host: str) -> Callable[[socket.socket], ssl.SSLSocket]:
    def wrap(tcp_sock: socket.socket) -> ssl.SSLSocket:
        tls_sock = context.wrap_socket(
            tcp_sock, server_hostname=host, do_handshake_on_connect=False
        )
        try:
            tls_sock.do_handshake()
        except BaseException:
            tls_sock.close()
            raise
        return tls_sock

    return wrap
