"""The gmqtt engine (``engine="gmqtt"``, extra ``mqtt-gmqtt``): one instance per connection.

gmqtt speaks MQTT on an asyncio protocol (no selector juggling, no thread),
which is where its speed comes from. It is used for what it does well:
building packets, the CONNACK/SUBACK/UNSUBACK/PUBREC/PUBREL/PUBCOMP
handshakes, keep-alive. Three things are ours, because gmqtt's own do not fit
the client's contract:

* reading: the socket is read into our own buffer (a BufferedProtocol:
  no reader task, no StreamReader, no 256 KiB allocation per ``recv``) and
  QoS 0/1 PUBLISH and PUBACK are handled right there (PUBACK reason codes
  are read, which gmqtt ignores); packets of a reserved type end the
  connection as a protocol error instead of being logged and ignored, and
  reading pauses at the transport for back-pressure;
* reconnecting: gmqtt reconnects on its own; here the client does, so the
  engine's reconnect does nothing;
* flow control: gmqtt turns the broker's Receive Maximum into an error when
  more publishes are in flight; here publishes wait for a free slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import gmqtt
from gmqtt.mqtt.connection import MQTTConnection
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from gmqtt.mqtt.package import Package, PackageFactory
from gmqtt.mqtt.protocol import MQTTProtocol

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
from .properties import NAMES, UTF8, PropsOut
from .reasons import AUTH_CONNACK_CODES, reason_error

__all__ = ["GmqttEngine"]

_GMQTT_UTF8 = {"payload_format_id": 1}
_NO_PROPS = b"\x00"
_TOPIC_CACHE = 1024
_MAX_IDS = 65536
_PUBACK = 0x40
_PUBLISH = 0x30
_READ_SIZE = 16384  # the most one socket read takes (a larger packet grows the buffer)
_PROPS_CACHE = 256  # distinct short property blocks kept parsed (subscription ids, aliases)
_PROPS_CACHED_SIZE = 32  # longer blocks (user properties, correlation data) are parsed each time
_PUBACK_TYPE, _PUBREC_TYPE, _PUBCOMP_TYPE = 0x40, 0x50, 0x70


def _varint(n: int) -> bytes:
    if n < 128:
        return bytes((n,))
    out = bytearray()
    while n:
        n, byte = divmod(n, 128)
        out.append(byte | (0x80 if n else 0))
    return bytes(out)


def _packet_size(data: bytes, at: int) -> int:
    """Bytes the packet starting at ``data[at]`` takes; 0 while its header is incomplete."""
    length = 0
    multiplier = 1
    pos = at + 1
    while pos < len(data) and multiplier <= 2097152:
        byte = data[pos]
        length += (byte & 0x7F) * multiplier
        pos += 1
        if not byte & 0x80:
            return pos - at + length
        multiplier *= 128
    return 0


def _gmqtt_props(props: PropsOut) -> dict[str, Any]:
    if props is UTF8:
        return _GMQTT_UTF8
    return {NAMES[name][1]: value for name, value in props.items()}


class _Protocol(MQTTProtocol, asyncio.BufferedProtocol):  # type: ignore[misc]
    """gmqtt's protocol reading into our own buffer (see the module docs).

    As a :class:`asyncio.BufferedProtocol` the transport reads the socket
    into :attr:`buffer` and packets are handled in :meth:`buffer_updated`,
    in the loop's read callback: no reader task, no StreamReader copy, and no
    256 KiB ``recv`` allocation per read. One read is at most the buffer's
    size, so a burst of small messages reaches the client's queue a buffer at
    a time, its consumer running between two reads.
    """

    def __init__(self, engine: GmqttEngine, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.engine = engine
        self.reader_task: asyncio.Future[None] | None = None
        self.buffer = bytearray(_READ_SIZE)
        self.filled = 0  # bytes of an incomplete packet at the start of the buffer
        self.waiting = 0  # that packet's size, once its header is in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.reader_task = self._read_loop_future
        # Set now, not after connect() returns: a persistent session's queued
        # messages may come in the same read as the CONNACK, and their PUBACKs
        # are written through it.
        self.engine._protocol = self

    def connection_lost(self, exc: Exception | None) -> None:
        self.engine.lost_reason = exc
        super().connection_lost(exc)

    def eof_received(self) -> bool:
        super().eof_received()
        return False  # the broker hung up: close our side too

    async def _read_loop(self) -> None:
        """Nothing to do: packets are read in :meth:`buffer_updated`."""

    def get_buffer(self, sizehint: int) -> memoryview:
        buffer = self.buffer
        if self.filled == len(buffer):  # a packet larger than the buffer: double it
            buffer.extend(bytes(len(buffer)))
        return memoryview(buffer)[self.filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self._connection._last_data_in = time.monotonic()
        filled = self.filled = self.filled + nbytes
        if filled < self.waiting:
            return  # a large packet is still coming: not copied read after read
        buffer = self.buffer
        data = bytes(memoryview(buffer)[:filled])
        try:
            used = self._read_packet(data)
        except Exception as exc:  # a packet we cannot read ends the connection
            self.engine.protocol_error(f"Protocol error: unreadable packet ({exc!r})")
            return
        if used == -1:
            self.engine.protocol_error("Protocol error: malformed remaining length")
            return
        if used < 0:  # already reported
            return
        rest = self.filled = filled - used
        if rest:
            if used:
                buffer[:rest] = data[used:]
            self.waiting = _packet_size(data, used)
        else:
            self.waiting = 0
            if len(buffer) > _READ_SIZE:
                self.buffer = bytearray(_READ_SIZE)  # a large packet is done: give its room back

    def _read_packet(self, data: bytes) -> int:
        """Handle the whole packets of ``data``; the bytes used (negative: an error)."""
        engine = self.engine
        parsed = 0
        size = len(data)
        while size - parsed >= 2:
            length = 0
            multiplier = 1
            at = parsed + 1
            while True:
                if at >= size:
                    return parsed
                byte = data[at]
                length += (byte & 0x7F) * multiplier
                at += 1
                if not byte & 0x80:
                    break
                multiplier *= 128
                if multiplier > 2097152:
                    return -1
            end = at + length
            if end > size:
                return parsed
            command = data[parsed]
            kind = command & 0xF0
            parsed = end
            if kind == _PUBLISH and command & 0x06 != 0x04:
                engine.on_publish(command, data, at, end)
            elif kind == _PUBACK:
                engine.on_ack(_PUBACK_TYPE, data[at:end])
            elif kind == 0 or kind == 0xF0:
                engine.protocol_error(f"Protocol error: packet of reserved type {kind >> 4}")
                return -2
            else:
                self._connection.put_package(Package(command, data[at:end]))
            if self._transport.is_closing():  # a protocol error, or closed by a handler
                return -2
        return parsed


def _done() -> asyncio.Future[None]:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


class _Client(gmqtt.Client):  # type: ignore[misc]
    """gmqtt's client with our protocol, and without its own reconnecting."""

    def __init__(self, engine: GmqttEngine, client_id: str | None, **kwargs: Any) -> None:
        super().__init__(client_id, **kwargs)
        self.engine = engine

    def reconnect(self, delay: bool = False) -> asyncio.Future[None]:
        """Nothing to do: the client reconnects (with a new engine).

        A done future rather than a coroutine: gmqtt wraps what this returns
        in ``ensure_future``, and a task still pending when the loop stops
        would be cancelled and reported by gmqtt's done-callback.
        """
        return _done()

    def _resend_qos_messages(self) -> asyncio.Future[None]:
        # The client re-sends unacknowledged publishes itself (re-queued).
        return _done()

    async def _create_connection(
        self, host: str, port: int, ssl: Any, clean_session: bool, keepalive: int
    ) -> MQTTConnection:
        self._exit_reconnecting_state()
        self._package_handler.clear_topics_aliases()
        self._connack_received.clear()
        self._connection_lost.clear()
        factory = partial(
            _Protocol,
            self.engine,
            connection_state=self._connection_state,
            id_generator=self._package_handler.id_generator,
        )
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(factory, host, port, ssl=ssl)
        return MQTTConnection(
            transport,
            protocol,
            clean_session,
            keepalive,
            package_handler=self._package_handler,
            logger=self._logger,
        )


class GmqttEngine(EngineBase):
    """One MQTT connection through gmqtt (see :class:`.engine.Engine`)."""

    def __init__(self, settings: Settings, deliver: Callable[[Incoming], None]) -> None:
        super().__init__(settings, deliver)
        self.lost_reason: Exception | None = None
        self._where = f"{settings.host}:{settings.port}"
        self._v5 = settings.v5
        self._connack = False
        self._error_text: str | None = None
        self._pending: dict[int, asyncio.Future[list[int]]] = {}
        self._window: asyncio.Semaphore | None = None
        self._disconnected: asyncio.Future[BaseException | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._protocol: _Protocol | None = None
        self._blocks: dict[tuple[int, bool], bytes] = {}
        self._topics: dict[bytes, bytes] = {}
        self._props_cache: dict[bytes, dict[str, list[Any]]] = {}
        self._names: dict[str, bytes] = {}  # topic -> its length-prefixed UTF-8, for PUBLISH
        connect_props: dict[str, Any] = {}
        if settings.v5:
            if settings.topic_aliases:
                connect_props["topic_alias_maximum"] = settings.topic_aliases
            if settings.session_expiry:
                connect_props["session_expiry_interval"] = settings.session_expiry
        will = None
        if settings.will is not None:
            topic, payload, qos, retain = settings.will
            will = gmqtt.Message(topic, payload, qos=qos, retain=retain)
        logger = settings.logger.getChild("gmqtt")
        self._client = client = _Client(
            self,
            settings.client_id,
            clean_session=settings.clean_session,
            will_message=will,
            logger=logger,
            **connect_props,
        )
        if settings.username is not None:
            client.set_auth_credentials(settings.username, settings.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_suback
        client.on_unsubscribe = self._on_suback
        handler = client._package_handler
        self._handler = handler
        connack = handler._handle_connack_packet
        pubrec = handler._handle_pubrec_packet
        pubcomp = handler._handle_pubcomp_packet

        def on_connack(cmd: int, packet: bytes) -> None:
            result = packet[1] if len(packet) > 1 else 0x80
            if result:
                handler._error = self._refusal(result)
                handler._permanent_failure = True
                client._connack_received.set()
                return
            connack(cmd, packet)
            # gmqtt makes Receive Maximum a hard limit on packet ids (publishes
            # past it raise); the flow control is ours, in send().
            handler.id_generator._max = _MAX_IDS

        def on_pubrec(cmd: int, packet: bytes) -> None:
            self.on_ack(_PUBREC_TYPE, packet)
            pubrec(cmd, packet)

        def on_pubcomp(cmd: int, packet: bytes) -> None:
            pubcomp(cmd, packet)
            self.on_ack(_PUBCOMP_TYPE, packet)

        handler._handle_connack_packet = on_connack
        handler._handle_pubrec_packet = on_pubrec
        handler._handle_pubcomp_packet = on_pubcomp

    # -- connection ----------------------------------------------------------

    def _refusal(self, result: int) -> errors.CommunicationError:
        text = gmqtt.MQTTConnectError(result)
        if result in AUTH_CONNACK_CODES:
            return errors.AuthenticationError(
                f"broker {self._where} refused the credentials: {text}"
            )
        return ConnectRefused(f"broker {self._where} refused the connection: {text}", reason=result)

    async def connect(self) -> None:
        """CONNECT; see :meth:`.engine.Engine.connect`."""
        settings = self._settings
        try:
            await self._client.connect(
                settings.host,
                settings.port,
                ssl=settings.ssl or False,
                keepalive=settings.keepalive,
                version=MQTTv50 if settings.v5 else MQTTv311,
                raise_exc=True,
            )
        except errors.CommunicationError:
            raise
        except gmqtt.MQTTConnectError as exc:  # a CONNACK gmqtt could not read
            raise errors.ConnectionError(f"MQTT connect to {self._where}: {exc}") from exc
        except OSError as exc:
            raise errors.ConnectionError(
                f"MQTT connect to {self._where}: {type(exc).__name__}: {exc}"
            ) from exc
        self._connack = True
        props = self._handler._connack_properties

        def first(name: str) -> Any:
            values = props.get(name)
            return values[0] if values else None

        self.sids_available = settings.v5 and first("sub_id_available") in (None, 1)
        self.max_packet = first("maximum_packet_size")
        receive_maximum = first("receive_maximum")
        if receive_maximum:
            self._window = asyncio.Semaphore(receive_maximum)
        alias_maximum = first("topic_alias_maximum")
        if alias_maximum:
            self._aliases_out = TopicAliases(alias_maximum)

    def _on_connect(self, client: Any, session_present: int, result: int, props: Any) -> None:
        self.session_present = bool(session_present)

    def _on_disconnect(self, client: Any, packet: Any = b"", exc: Any = None) -> None:
        if isinstance(packet, bytes | bytearray) and packet and self.server_disconnect is None:
            self.server_disconnect = packet[0]
        if not self._connack:
            # Lost before (or instead of) CONNACK: fail the connect now.
            handler = self._handler
            if handler._error is None:
                if self._error_text is not None:
                    handler._error = errors.ConnectionError(
                        f"MQTT connect to {self._where}: {self._error_text}"
                    )
                else:
                    handler._error = EarlyClose(
                        f"MQTT connect to {self._where}: connection lost before CONNACK"
                    )
            client._connack_received.set()
        self._end()

    def _end(self) -> None:
        if self._disconnected.done():
            return
        reason: BaseException | None
        if self._error_text is not None:
            reason = errors.ProtocolError(f"MQTT {self._where}: {self._error_text}")
        elif self.lost_reason is not None:
            reason = self.lost_reason
        else:
            reason = Lost("connection closed")
        self._disconnected.set_result(reason)
        lost = Lost("connection lost")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(lost)
        self._pending.clear()

    def protocol_error(self, text: str) -> None:
        """The broker sent what is not MQTT: end the connection, saying why."""
        self._error_text = text
        self._settings.logger.warning("MQTT %s: %s", self._where, text)
        connection = self._client._connection
        if connection is not None:
            connection._transport.close()

    @property
    def is_connected(self) -> bool:
        """Connected (CONNACK received) and not yet lost."""
        return self._connack and not self._disconnected.done()

    # -- incoming ------------------------------------------------------------

    def on_publish(self, command: int, data: bytes, start: int, end: int) -> None:
        """A QoS 0/1 PUBLISH (``data[start:end]`` is its body), straight from the read loop."""
        qos = (command >> 1) & 3
        at = start + 2 + ((data[start] << 8) | data[start + 1])
        if at + (qos and 2) + self._v5 > end:  # the topic runs past the packet
            self.protocol_error("Protocol error: malformed PUBLISH (topic length)")
            return
        topic = data[start + 2 : at]
        # One bytes object per topic while messages wait for the consumer.
        known = self._topics.get(topic)
        if known is not None:
            topic = known
        elif len(self._topics) < _TOPIC_CACHE:
            self._topics[topic] = topic
        mid = 0
        if qos:
            mid = (data[at] << 8) | data[at + 1]
            at += 2
        props: Any = None
        if self._v5:
            if data[at] == 0:
                at += 1
            else:
                props, at = self._properties(data, at, end)
                if props is None:
                    self.protocol_error("Protocol error: malformed PUBLISH properties")
                    return
                alias = props.get("topic_alias")
                if alias:
                    known = self.incoming_alias(topic, alias[0])
                    if not known:
                        return
                    topic = known
        self.deliver((topic, data[at:end], qos, bool(command & 1), mid, props))
        if qos:
            protocol = self._protocol
            if protocol is not None:
                protocol._transport.write(b"\x40\x02" + mid.to_bytes(2, "big"))

    def _properties(self, data: bytes, at: int, end: int) -> tuple[Any, int]:
        """The properties block at ``data[at]``: (gmqtt's dict of lists or None, offset after it).

        A short block (a subscription identifier, a payload format, an alias)
        repeats message after message: it is parsed once and the same dict,
        never changed by its readers, is shared by every message carrying it.
        """
        length = 0
        multiplier = 1
        pos = at
        while True:
            if pos >= end or multiplier > 2097152:
                return None, end
            byte = data[pos]
            pos += 1
            length += (byte & 0x7F) * multiplier
            if not byte & 0x80:
                break
            multiplier *= 128
        after = pos + length
        if after > end:  # the properties run past the packet
            return None, end
        block = data[at:after]
        if length > _PROPS_CACHED_SIZE:
            props, _ = self._handler._parse_properties(block)
            return props, after
        cache = self._props_cache
        props = cache.get(block)
        if props is None:
            props, _ = self._handler._parse_properties(block)
            if props is not None and len(cache) < _PROPS_CACHE:
                cache[block] = props
        return props, after

    def _on_message(self, client: Any, topic: Any, payload: bytes, qos: int, props: Any) -> None:
        # QoS 2 messages come through gmqtt's handler (it runs the handshake).
        retain = bool(props.pop("retain", 0))
        props.pop("dup", None)
        raw = topic.encode() if isinstance(topic, str) else topic
        self.deliver((raw, payload, qos, retain, 0, props or None))

    def on_ack(self, kind: int, body: bytes) -> None:
        """PUBACK (from the read loop), PUBREC or PUBCOMP of one of our publishes."""
        mid = (body[0] << 8) | body[1]
        reason = body[2] if len(body) > 2 else 0
        if kind == _PUBACK_TYPE:
            self._handler.id_generator.free_id(mid)
        elif kind == _PUBREC_TYPE and reason < 0x80:
            return  # the handshake goes on; PUBCOMP ends it
        entry = self.acks.pop(mid, None)
        if entry is None or entry[0].done():
            return
        if reason >= 0x80:
            entry[0].set_exception(
                reason_error(reason, f"publish to {entry[1].topic!r}", kind >> 4)
            )
        else:
            entry[0].set_result(True)

    def _on_suback(self, client: Any, mid: int, codes: Any, props: Any = None) -> None:
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(list(codes))

    # -- operations ------------------------------------------------------------

    async def send(self, item: Item) -> bool:
        """Publish; see :meth:`.engine.Engine.send`. Safe to cancel."""
        protocol = self._protocol
        if protocol is None or not self._connack or self._disconnected.done():
            raise Lost("not connected")
        if protocol._paused:  # the socket's write buffer is full: wait for it
            try:
                await protocol._drain_helper()
            except ConnectionError as exc:
                raise Lost(str(exc)) from exc
            if self._disconnected.done():
                raise Lost("connection lost")
        qos = item.qos
        window = self._window
        if qos and window is not None:
            await window.acquire()
        try:
            transport = protocol._transport
            if self._disconnected.done() or transport.is_closing():
                raise Lost("connection lost")
            topic = item.topic
            alias = 0
            aliases = self._aliases_out
            if aliases is not None:
                alias, known = aliases.use(topic)
                if known:
                    topic = ""
            # The PUBLISH is built here rather than by gmqtt.Message and its
            # PublishPacket (a third of the cost of a publish), and not sent by
            # gmqtt's Client.publish, which also stores every QoS 1/2 packet for
            # its own resending (the client re-queues instead).
            name = self._names.get(topic)
            if name is None:
                encoded = topic.encode()
                name = len(encoded).to_bytes(2, "big") + encoded
                if len(self._names) < _TOPIC_CACHE:
                    self._names[topic] = name
            data = item.data
            mid = 0
            if qos:
                mid = self._handler.id_generator.next_id()
                name += mid.to_bytes(2, "big")
            if self._v5:
                props = item.props
                name += _NO_PROPS if props is None and not alias else self._block(props, alias)
            size = len(name) + len(data)
            command = _PUBLISH | qos << 1 | item.retain
            parts = (
                bytes((command, size)) if size < 128 else bytes((command,)) + _varint(size),
                name,
                data,
            )
            transport.write(b"".join(parts))
            protocol._connection._last_data_out = time.monotonic()  # for keep-alive
            if not qos:
                return True
            fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self.acks[mid] = (fut, item)
            try:
                return await fut
            finally:
                self.acks.pop(mid, None)
        finally:
            if qos and window is not None:
                window.release()

    def _block(self, props: PropsOut | None, alias: int) -> bytes:
        """The encoded properties of a PUBLISH (length prefix included)."""
        plain = props is None or props is UTF8
        if plain:
            cached = self._blocks.get((alias, props is UTF8))
            if cached is not None:
                return cached
        values = _gmqtt_props(props) if props is not None else {}
        if alias:
            values = {**values, "topic_alias": alias}
        block = bytes(PackageFactory._build_properties_data(values, MQTTv50))
        if plain:
            self._blocks[(alias, props is UTF8)] = block  # one per alias at most
        return block

    async def subscribe(
        self,
        entries: list[tuple[str, int, tuple[bool, bool, int] | None]],
        sid: int | None,
        timeout: float,
    ) -> list[int]:
        """One SUBSCRIBE; see :meth:`.engine.Engine.subscribe`."""
        subs = [
            gmqtt.Subscription(flt, qos, *(opts or (False, False, 0))) for flt, qos, opts in entries
        ]
        kwargs = {} if sid is None else {"subscription_identifier": sid}
        return await self._request(
            lambda connection: connection.subscribe(subs, **kwargs),
            timeout,
            f"subscribe {[e[0] for e in entries]}",
        )

    async def unsubscribe(self, filters: list[str], timeout: float) -> None:
        """One UNSUBSCRIBE; see :meth:`.engine.Engine.unsubscribe`."""
        await self._request(
            lambda connection: connection.unsubscribe(filters), timeout, f"unsubscribe {filters}"
        )

    async def _request(
        self, send: Callable[[MQTTConnection], int], timeout: float, what: str
    ) -> list[int]:
        connection = self._client._connection
        if connection is None or self._disconnected.done():
            raise errors.ConnectionError(f"MQTT {what}: not connected")
        mid = send(connection)
        fut: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending[mid] = fut
        try:
            async with asyncio.timeout(None if timeout == float("inf") else timeout):
                return await fut
        except TimeoutError:
            raise errors.TimeoutError(f"MQTT {what}: no answer within {timeout:g}s") from None
        except Lost as exc:
            raise errors.ConnectionError(f"MQTT {what}: {exc}") from exc
        finally:
            self._pending.pop(mid, None)

    def pause_reading(self) -> None:
        """Stop reading the socket until :meth:`resume_reading`."""
        protocol = self._protocol
        if protocol is not None and not protocol._transport.is_closing():
            protocol._transport.pause_reading()

    def resume_reading(self) -> None:
        """Read the socket again."""
        protocol = self._protocol
        if protocol is not None and not protocol._transport.is_closing():
            protocol._transport.resume_reading()

    async def wait_disconnected(self) -> BaseException | None:
        """Wait until the connection ends; the reason."""
        return await asyncio.shield(self._disconnected)

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` as soon as the connection ends (for any reason)."""
        self._disconnected.add_done_callback(lambda _: callback())

    async def shutdown(self, timeout: float) -> None:
        """Disconnect (gracefully when possible) and release socket and tasks."""
        client = self._client
        connection: MQTTConnection | None = client._connection
        client._is_active = False
        if connection is None:
            self._end()
            return
        protocol = connection._protocol
        try:
            async with asyncio.timeout(timeout):
                if self.is_connected:
                    connection.send_disconnect()
                await connection.close()
        except (TimeoutError, OSError) as exc:
            self._settings.logger.debug("MQTT disconnect did not complete: %s", exc)
            connection._transport.abort()
        finally:
            keepalive = connection._keep_connection_callback
            if keepalive is not None:
                keepalive.cancel()
            task = protocol.reader_task
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait([task])
            self._end()
