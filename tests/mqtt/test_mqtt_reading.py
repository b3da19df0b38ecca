"""How the engines read the socket: packets of every size across reads, malformed properties."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from agenticaiframework.communication import MQTTClient
from agenticaiframework.communication.core.errors import ProtocolError
from tests.servers.mosquitto import Mosquitto
from tests.servers.mqtt_hostile import MQTTPeer, publish_packet, read_packet, varint

from .test_mqtt import eventually, take


class ScriptedBroker5(MQTTPeer):
    """An MQTT 5 broker that, after the first SUBACK of connection ``i``, writes ``scripts[i]``."""

    def __init__(self, scripts: list[list[bytes]]) -> None:
        super().__init__()
        self.scripts = scripts
        self.connects = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script: list[bytes] = []
        while True:
            kind, body = await read_packet(reader)
            if kind == 1:  # CONNECT
                script = self.scripts[self.connects] if self.connects < len(self.scripts) else []
                self.connects += 1
                writer.write(b"\x20\x03\x00\x00\x00")
            elif kind == 8:  # SUBSCRIBE (one filter): granted QoS 0
                writer.write(b"\x90\x04" + body[:2] + b"\x00\x00")
                writer.write(b"".join(script))
                script = []
            elif kind == 12:
                writer.write(b"\xd0\x00")
            elif kind == 14:
                return
            await writer.drain()


@pytest.mark.parametrize("mqtt_engine", ["gmqtt"], indirect=True)
async def test_publish_whose_properties_run_past_the_packet_is_a_protocol_error() -> None:
    # The properties announce 5 bytes, the packet holds 2: the packet is not
    # MQTT. Read as it came, it would be delivered with a wrong (empty) payload.
    body = len(b"in/bad").to_bytes(2, "big") + b"in/bad" + b"\x05\x01\x01"
    bad = b"\x30" + varint(len(body)) + body
    scripts = [
        [bad, publish_packet(b"in/ok", b"same read", properties=b"")],
        [publish_packet(b"in/ok", b"after", properties=b"")],
    ]
    async with ScriptedBroker5(scripts) as peer:
        mqtt = MQTTClient(
            peer.url, protocol="5", connect_timeout=3, reconnect_delay=0.05, max_reconnect_delay=0.1
        )
        ended: list[Any] = []
        mqtt.on("disconnect", ended.append)
        async with mqtt:
            await mqtt.subscribe("in/#")
            got = await take(mqtt, 1, timeout=10)
            await eventually(lambda: peer.connects == 2)
        assert [m.topic for m in got] == ["in/ok"]
        assert got[0].raw in (b"same read", b"after")  # never the bad one's bytes
        assert any(
            isinstance(e, ProtocolError) and "malformed PUBLISH properties" in str(e) for e in ended
        ), ended


async def test_messages_of_every_size_across_reads_arrive_whole_and_in_order() -> None:
    # Sizes around the read buffer (16 KiB) and far past it, so packets and
    # their headers are cut at every kind of place between two reads.
    rng = random.Random(20)
    sizes = [0, 1, 127, 128, 16_000, 16_383, 16_384, 16_385, 40_000, 300_000, 3]
    sizes += [rng.randrange(0, 20_000) for _ in range(60)]
    payloads = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
    async with Mosquitto() as broker:
        async with MQTTClient(broker.url) as sub, MQTTClient(broker.url) as pub:
            await sub.subscribe("sizes", qos=1)
            for payload in payloads:
                await pub.publish("sizes", payload, qos=1)
            got = await take(sub, len(payloads), timeout=20)
    assert [m.raw for m in got] == payloads


@pytest.mark.parametrize("mqtt_engine", ["gmqtt"], indirect=True)
async def test_publish_whose_topic_runs_past_the_packet_is_a_protocol_error() -> None:
    # The topic length says 200 bytes, the packet holds 6: read as it came,
    # the topic would take the next packet's bytes.
    body = (200).to_bytes(2, "big") + b"in/bad" + b"\x00"
    bad = b"\x30" + varint(len(body)) + body
    scripts = [
        [bad, publish_packet(b"in/ok", b"same read", properties=b"")],
        [publish_packet(b"in/ok", b"after", properties=b"")],
    ]
    async with ScriptedBroker5(scripts) as peer:
        mqtt = MQTTClient(
            peer.url, protocol="5", connect_timeout=3, reconnect_delay=0.05, max_reconnect_delay=0.1
        )
        ended: list[Any] = []
        mqtt.on("disconnect", ended.append)
        async with mqtt:
            await mqtt.subscribe("in/#")
            got = await take(mqtt, 1, timeout=10)
            await eventually(lambda: peer.connects == 2)
        assert [m.topic for m in got] == ["in/ok"]
        assert any(
            isinstance(e, ProtocolError) and "malformed PUBLISH (topic length)" in str(e)
            for e in ended
        ), ended
