"""MQTT peers of our own on loopback, written on raw asyncio streams.

:class:`MQTTPeer` is the one base (a :class:`LoopbackServer`): it listens on
127.0.0.1 (a free port unless ``port=`` is given), counts TCP connections in
``accepted``, runs :meth:`MQTTPeer.serve` per connection and drops every
connection on close. Subclasses speak just as much MQTT as their test needs;
the packet helpers below (:func:`read_packet`, :func:`publish_packet` ...)
are shared.

``HostileBroker(mode)`` misbehaves on purpose:

* ``"silent"``: accepts, reads everything, never answers (no CONNACK ever);
* ``"garbage"``: answers CONNECT with ``broker.garbage`` (bytes that are no
  MQTT packet) and keeps the connection open;
* ``"scripted"``: a minimal well-behaved MQTT 3.1.1-only broker (CONNACK,
  SUBACK, UNSUBACK, PINGRESP; an MQTT 5 CONNECT is refused with "unacceptable
  protocol version", as such brokers do) that, after the first SUBACK of each
  connection, writes the raw packets in ``broker.after_subscribe`` (build them
  with :func:`publish_packet`, which takes the topic as bytes, so it can be
  invalid UTF-8).

``broker.connects`` counts CONNECT packets seen, so a test can tell how
often a client tried.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Self

from agenticaiframework.communication.testing import LoopbackServer

__all__ = [
    "HostileBroker",
    "MQTTPeer",
    "publish_packet",
    "read_packet",
    "subscribe_qos",
    "varint",
]

# Packet types; every other packet (PUBLISH from the client...) is read and ignored.
_CONNECT, _PUBACK, _SUBSCRIBE, _UNSUBSCRIBE, _PINGREQ, _DISCONNECT = 1, 4, 8, 10, 12, 14


def varint(n: int) -> bytes:
    """MQTT's variable byte integer (remaining length, property lengths)."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(
    topic: bytes,
    payload: bytes,
    *,
    qos: int = 0,
    packet_id: int = 1,
    properties: bytes | None = None,
) -> bytes:
    """One PUBLISH packet, the topic given as raw bytes.

    Args:
        topic: Topic bytes as they go on the wire (need not be UTF-8; empty
            with a topic alias).
        payload: The payload.
        qos: 0 or 1.
        packet_id: The packet id (QoS 1 only).
        properties: MQTT 5 only: the encoded properties (without their
            length, added here); None for an MQTT 3.1.1 packet.

    Returns:
        The encoded packet.
    """
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += packet_id.to_bytes(2, "big")
    if properties is not None:
        body += varint(len(properties)) + properties
    body += payload
    return bytes([0x30 | (qos << 1)]) + varint(len(body)) + body


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One packet: (type, body after the fixed header)."""
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first >> 4, await reader.readexactly(length)


def subscribe_qos(payload: bytes) -> list[int]:
    """The requested QoS of each filter in an MQTT 3.1.1 SUBSCRIBE payload (after the id)."""
    levels: list[int] = []
    i = 0
    while i < len(payload):
        size = int.from_bytes(payload[i : i + 2], "big")
        i += 2 + size
        levels.append(payload[i])
        i += 1
    return levels


class MQTTPeer(LoopbackServer):
    """A loopback TCP server whose subclasses speak just enough MQTT.

    Args:
        port: The port; a free one by default (give Mosquitto's to replace it).
    """

    def __init__(self, *, port: int = 0) -> None:
        self.port = port
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:<port>``."""
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        """Listen on 127.0.0.1."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        # Aborting ends each handler's read (a handler task is not cancelled:
        # asyncio's server would log the cancellation as an error).
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await self.serve(reader, writer)
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Speak to one connection; it is closed when this returns."""
        raise NotImplementedError


class HostileBroker(MQTTPeer):
    """A loopback TCP server speaking just enough MQTT 3.1.1 to misbehave.

    Args:
        mode: ``"silent"``, ``"garbage"`` or ``"scripted"``.
        port: The port; a free one by default (give Mosquitto's to replace it).
        garbage: What ``"garbage"`` answers to CONNECT.
        after_subscribe: Raw packets ``"scripted"`` sends after the first SUBACK.
    """

    def __init__(
        self,
        mode: str = "silent",
        *,
        port: int = 0,
        garbage: bytes = b"\x00\x07not-mqtt",
        after_subscribe: Sequence[bytes] = (),
    ) -> None:
        if mode not in ("silent", "garbage", "scripted"):
            raise ValueError(f"unknown mode {mode!r}")
        super().__init__(port=port)
        self.mode = mode
        self.garbage = garbage
        self.after_subscribe = list(after_subscribe)
        self.connects = 0
        self.pubacks: list[int] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        subscribed = False
        while True:
            kind, body = await read_packet(reader)
            if kind == _CONNECT:
                self.connects += 1
                if self.mode == "silent":
                    continue
                if self.mode == "scripted" and body[6] != 4:
                    # MQTT 3.1.1 only: "unacceptable protocol version", as such brokers answer.
                    writer.write(b"\x20\x02\x00\x01")
                    await writer.drain()
                    return
                writer.write(self.garbage if self.mode == "garbage" else b"\x20\x02\x00\x00")
            elif kind == _SUBSCRIBE:
                granted = bytes(b & 0x03 for b in subscribe_qos(body[2:]))
                writer.write(bytes([0x90]) + varint(2 + len(granted)) + body[:2] + granted)
                if not subscribed:
                    subscribed = True
                    writer.write(b"".join(self.after_subscribe))
            elif kind == _UNSUBSCRIBE:
                writer.write(b"\xb0\x02" + body[:2])
            elif kind == _PINGREQ:
                writer.write(b"\xd0\x00")
            elif kind == _PUBACK:
                self.pubacks.append(int.from_bytes(body[:2], "big"))
            elif kind == _DISCONNECT:
                return
            await writer.drain()
