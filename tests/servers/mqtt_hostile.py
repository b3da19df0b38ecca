"""A hostile MQTT 3.1.1 "broker" on loopback, written on raw asyncio streams.

``async with HostileBroker(mode) as broker`` listens on ``broker.url``
(127.0.0.1, a free port unless ``port=`` is given) and misbehaves on purpose:

* ``"silent"``: accepts, reads everything, never answers (no CONNACK ever);
* ``"garbage"``: answers CONNECT with ``broker.garbage`` (bytes that are no
  MQTT packet) and keeps the connection open;
* ``"scripted"``: a minimal well-behaved broker (CONNACK, SUBACK, UNSUBACK,
  PINGRESP) that, after the first SUBACK of each connection, writes the raw
  packets in ``broker.after_subscribe`` (build them with :func:`publish_packet`,
  which takes the topic as bytes, so it can be invalid UTF-8).

``broker.accepted`` counts TCP connections and ``broker.connects`` CONNECT
packets seen, so a test can tell how often a client tried.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from agenticaiframework.communication.testing import LoopbackServer

__all__ = ["HostileBroker", "publish_packet"]

# Packet types; every other packet (PUBLISH from the client...) is read and ignored.
_CONNECT, _PUBACK, _SUBSCRIBE, _UNSUBSCRIBE, _PINGREQ, _DISCONNECT = 1, 4, 8, 10, 12, 14


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: bytes, payload: bytes, *, qos: int = 0, packet_id: int = 1) -> bytes:
    """One PUBLISH packet, the topic given as raw bytes.

    Args:
        topic: Topic bytes as they go on the wire (need not be UTF-8).
        payload: The payload.
        qos: 0 or 1.
        packet_id: The packet id (QoS 1 only).

    Returns:
        The encoded packet.
    """
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += packet_id.to_bytes(2, "big")
    body += payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first >> 4, await reader.readexactly(length)


class HostileBroker(LoopbackServer):
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
        self.mode = mode
        self.port = port
        self.garbage = garbage
        self.after_subscribe = list(after_subscribe)
        self.accepted = 0
        self.connects = 0
        self.pubacks: list[int] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:<port>``."""
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> HostileBroker:
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
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                await self._serve(reader, writer)
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        subscribed = False
        while True:
            kind, body = await _read_packet(reader)
            if kind == _CONNECT:
                self.connects += 1
                if self.mode == "silent":
                    continue
                writer.write(self.garbage if self.mode == "garbage" else b"\x20\x02\x00\x00")
            elif kind == _SUBSCRIBE:
                granted = bytes(b & 0x03 for b in _subscribe_qos(body[2:]))
                writer.write(bytes([0x90]) + _varint(2 + len(granted)) + body[:2] + granted)
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


def _subscribe_qos(payload: bytes) -> list[int]:
    """The requested QoS of each filter in a SUBSCRIBE payload."""
    levels: list[int] = []
    i = 0
    while i < len(payload):
        size = int.from_bytes(payload[i : i + 2], "big")
        i += 2 + size
        levels.append(payload[i])
        i += 1
    return levels
