"""MQTT 5 topic aliases: used for repeated topics within the broker's maximum, resolved on receipt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agenticaiframework.communication import MQTTClient
from tests.servers.mosquitto import Mosquitto
from tests.servers.mqtt_hostile import MQTTPeer, publish_packet, read_packet, varint

from .test_mqtt import eventually, take


def _properties(body: bytes) -> tuple[dict[int, bytes], int]:
    """The properties at the start of ``body`` (id -> raw value) and where they end."""
    length, at, shift = 0, 0, 0
    while True:
        byte = body[at]
        at += 1
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    end = at + length
    found: dict[int, bytes] = {}
    sizes = {0x01: 1, 0x02: 4, 0x22: 2, 0x23: 2, 0x11: 4, 0x21: 2}
    while at < end:
        ident = body[at]
        at += 1
        if ident in sizes:
            found[ident] = body[at : at + sizes[ident]]
            at += sizes[ident]
        else:  # a string or binary value: two length bytes
            size = int.from_bytes(body[at : at + 2], "big")
            found[ident] = body[at + 2 : at + 2 + size]
            at += 2 + size
    return found, end


class AliasBroker(MQTTPeer):
    """An MQTT 5 broker that allows ``maximum`` topic aliases from the client,
    records every PUBLISH as (topic, alias or None, payload), and after the
    first SUBACK sends ``after_subscribe`` (aliased PUBLISH packets)."""

    def __init__(self, maximum: int, after_subscribe: list[bytes] | None = None) -> None:
        super().__init__()
        self.maximum = maximum
        self.after_subscribe = after_subscribe or []
        self.published: list[tuple[bytes, int | None, bytes]] = []
        self.alias_maximum_asked: int | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            kind, body = await read_packet(reader)
            if kind == 1:  # CONNECT: name (6), level, flags, keep-alive (2), properties
                props, _ = _properties(body[10:])
                if 0x22 in props:
                    self.alias_maximum_asked = int.from_bytes(props[0x22], "big")
                connack_props = b"\x22" + self.maximum.to_bytes(2, "big")
                writer.write(
                    b"\x20" + varint(3 + len(connack_props)) + b"\x00\x00" + b"\x03" + connack_props
                )
            elif kind == 3:  # PUBLISH, QoS 0
                size = int.from_bytes(body[:2], "big")
                topic = body[2 : 2 + size]
                props, end = _properties(body[2 + size :])
                alias = props.get(0x23)
                self.published.append(
                    (topic, int.from_bytes(alias, "big") if alias else None, body[2 + size + end :])
                )
            elif kind == 8:  # SUBSCRIBE: one filter, granted QoS 0
                writer.write(b"\x90\x04" + body[:2] + b"\x00\x00")
                writer.write(b"".join(self.after_subscribe))
                self.after_subscribe = []
            elif kind == 12:
                writer.write(b"\xd0\x00")
            elif kind == 14:
                return
            await writer.drain()


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


async def test_repeated_topics_use_aliases_within_the_brokers_maximum() -> None:
    async with AliasBroker(maximum=2) as peer, MQTTClient(peer.url, connect_timeout=3) as mqtt:
        for topic in ["a/1", "a/1", "a/2", "a/3", "a/2", "a/3", "a/1"]:
            await mqtt.publish(topic, topic.encode(), qos=0)
        await eventually(lambda: len(peer.published) == 7)
    assert peer.published == [
        (b"a/1", 1, b"a/1"),  # first use: topic and alias
        (b"", 1, b"a/1"),  # then the alias alone
        (b"a/2", 2, b"a/2"),
        (b"a/3", None, b"a/3"),  # the broker allows 2: no alias left
        (b"", 2, b"a/2"),
        (b"a/3", None, b"a/3"),
        (b"", 1, b"a/1"),
    ]


async def test_no_alias_when_the_broker_allows_none(broker: Mosquitto) -> None:
    async with AliasBroker(maximum=0) as peer, MQTTClient(peer.url, connect_timeout=3) as mqtt:
        for _ in range(3):
            await mqtt.publish("same/topic", b"x", qos=0)
        await eventually(lambda: len(peer.published) == 3)
    assert peer.published == [(b"same/topic", None, b"x")] * 3


async def test_aliased_publishes_reach_subscribers_of_mosquitto(broker: Mosquitto) -> None:
    # Mosquitto allows 10 aliases by default; 12 topics use them all and two more.
    topics = [f"alias/{i}" for i in range(12)]
    async with MQTTClient(broker.url) as sub, MQTTClient(broker.url) as pub:
        await sub.subscribe("alias/#", qos=1)
        for round_ in range(3):
            for topic in topics:
                await pub.publish(topic, f"{topic}:{round_}", qos=round_ % 2)
        got = await take(sub, 36)
    assert [(m.topic, m.payload) for m in got] == [
        (topic, f"{topic}:{round_}") for round_ in range(3) for topic in topics
    ]


async def test_incoming_aliases_are_resolved() -> None:
    alias = b"\x23\x00\x07"  # Topic Alias 7
    packets = [
        publish_packet(b"in/first", b"1", properties=alias),  # defines alias 7
        publish_packet(b"", b"2", properties=alias),  # uses it
        publish_packet(b"", b"lost", properties=b"\x23\x00\x09"),  # unknown alias 9: dropped
        publish_packet(b"in/plain", b"3", properties=b""),
        publish_packet(b"", b"4", properties=alias),
    ]
    async with (
        AliasBroker(maximum=0, after_subscribe=packets) as peer,
        MQTTClient(peer.url, protocol="5", connect_timeout=3) as mqtt,
    ):
        assert peer.alias_maximum_asked == 64  # we told the broker it may use aliases
        await mqtt.subscribe("in/#")
        got = await take(mqtt, 4)
        assert [(m.topic, m.payload) for m in got] == [
            ("in/first", "1"),
            ("in/first", "2"),
            ("in/plain", "3"),
            ("in/first", "4"),
        ]
        assert mqtt.is_connected
