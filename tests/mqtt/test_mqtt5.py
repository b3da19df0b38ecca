"""MQTT 5 features of MQTTClient against a real Mosquitto (and a 3.1.1-only broker of our own)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agenticaiframework.communication import MQTTClient, MQTTConfig
from agenticaiframework.communication.core.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionError,
    MessageTooLargeError,
    RemoteError,
    TimeoutError,
)
from agenticaiframework.communication.mqtt import MQTTAuthError
from agenticaiframework.communication.testing import servers as amqtt_servers
from tests import test_demo_amqtt
from tests.servers.mosquitto import Mosquitto
from tests.servers.mqtt_hostile import MQTTPeer, read_packet, subscribe_qos, varint

from .test_mqtt import eventually, take

# The demo test's fixture: amqtt in an environment of its own (pip install, ~10 s).
amqtt_venv = test_demo_amqtt.amqtt_venv


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


@contextlib.asynccontextmanager
async def listening(client: MQTTClient) -> AsyncIterator[MQTTClient]:
    """``client`` connected, with start_listening() running; closed afterwards."""
    await client.connect()
    task = asyncio.create_task(client.start_listening())
    try:
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, 5)


# -- protocol ---------------------------------------------------------------------


async def test_auto_speaks_5_to_mosquitto(broker: Mosquitto) -> None:
    mqtt = MQTTClient(broker.url)
    assert mqtt.config.protocol == "auto" and mqtt.protocol is None
    async with mqtt:
        assert mqtt.protocol == "5"
    async with MQTTClient(broker.url, protocol="3.1.1") as old:
        assert old.protocol == "3.1.1"
    assert MQTTConfig(protocol_version=4).protocol == "3.1.1"
    with pytest.raises(ConfigError, match="protocol"):
        MQTTConfig(protocol="6")
    with pytest.raises(ConfigError, match="session_expiry"):
        MQTTConfig(session_expiry=-1)


class Broker311(MQTTPeer):
    """A well-behaved MQTT 3.1.1-only broker: an MQTT 5 CONNECT gets return code 1
    (unacceptable protocol version) and the connection is closed; 3.1.1 clients
    can subscribe and get their own QoS 0 publishes back."""

    def __init__(self) -> None:
        super().__init__()
        self.connects = 0
        self.levels: list[int] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        filters: list[bytes] = []
        while True:
            kind, body = await read_packet(reader)
            if kind == 1:  # CONNECT: protocol name (2 + 4 bytes), then the level
                self.connects += 1
                self.levels.append(body[6])
                if body[6] != 4:
                    writer.write(b"\x20\x02\x00\x01")
                    await writer.drain()
                    return
                writer.write(b"\x20\x02\x00\x00")
            elif kind == 8:  # SUBSCRIBE
                size = int.from_bytes(body[2:4], "big")
                filters.append(body[4 : 4 + size])
                granted = bytes(b & 0x03 for b in subscribe_qos(body[2:]))
                writer.write(bytes([0x90]) + varint(2 + len(granted)) + body[:2] + granted)
            elif kind == 3:  # PUBLISH (QoS 0): echo it when subscribed to that exact topic
                size = int.from_bytes(body[:2], "big")
                if body[2 : 2 + size] in filters:
                    writer.write(bytes([0x30]) + varint(len(body)) + body)
            elif kind == 12:
                writer.write(b"\xd0\x00")
            elif kind == 14:
                return
            await writer.drain()


async def test_auto_falls_back_to_311_when_the_broker_refuses_5() -> None:
    async with Broker311() as old_broker:
        async with MQTTClient(old_broker.url, connect_timeout=3.0) as mqtt:
            assert mqtt.protocol == "3.1.1"
            assert old_broker.levels == [5, 4]  # tried 5, then spoke 3.1.1
            await mqtt.subscribe("legacy/topic", qos=0)
            await mqtt.publish("legacy/topic", {"works": True}, qos=0)
            assert (await take(mqtt, 1))[0].payload == {"works": True}
            # MQTT 5-only features say so instead of being dropped silently.
            with pytest.raises(ConfigError, match="MQTT 5"):
                await mqtt.publish("legacy/topic", "x", user_properties={"a": "b"})
            with pytest.raises(ConfigError, match="MQTT 5"):
                await mqtt.request("svc/x", "x", timeout=1)
        # protocol="5" is taken at its word: the refusal is an error.
        with pytest.raises(ConnectionError, match="refused"):
            await MQTTClient(old_broker.url, protocol="5", connect_timeout=3.0).connect()


@pytest.mark.timeout(240)  # the first use creates amqtt's environment (pip install)
async def test_auto_falls_back_to_311_on_amqtt(amqtt_venv: Path) -> None:
    python = amqtt_servers.find_amqtt(amqtt_venv)
    assert python is not None
    async with amqtt_servers.serve_amqtt(python) as url:
        async with MQTTClient(url, connect_timeout=5.0) as sub, MQTTClient(url) as pub:
            assert sub.protocol == "3.1.1" and pub.protocol == "3.1.1"
            await sub.subscribe("legacy/#", qos=1)
            await pub.publish("legacy/a", {"ok": True}, qos=1)
            assert (await take(sub, 1, timeout=10))[0].payload == {"ok": True}


class SlowAckBroker(MQTTPeer):
    """An MQTT 5 broker that announces Receive Maximum 2 and acknowledges each
    QoS 1 PUBLISH late, recording how many were unacknowledged at once."""

    def __init__(self) -> None:
        super().__init__()
        self.most_in_flight = 0
        self.acked = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        in_flight = 0

        def ack(packet_id: bytes) -> None:
            nonlocal in_flight
            in_flight -= 1
            self.acked += 1
            writer.write(b"\x40\x02" + packet_id)

        loop = asyncio.get_running_loop()
        while True:
            kind, body = await read_packet(reader)
            if kind == 1:  # CONNACK, properties: Receive Maximum (0x21) = 2
                writer.write(b"\x20\x06\x00\x00\x03\x21\x00\x02")
            elif kind == 3:
                size = int.from_bytes(body[:2], "big")
                in_flight += 1
                self.most_in_flight = max(self.most_in_flight, in_flight)
                loop.call_later(0.05, ack, body[2 + size : 4 + size])
            elif kind == 12:
                writer.write(b"\xd0\x00")
            elif kind == 14:
                return
            await writer.drain()


async def test_broker_receive_maximum_is_respected() -> None:
    async with SlowAckBroker() as slow, MQTTClient(slow.url, connect_timeout=3.0) as mqtt:
        assert mqtt.protocol == "5"
        await asyncio.gather(*(mqtt.publish("flow/x", str(i), qos=1) for i in range(10)))
        assert slow.acked == 10
        assert slow.most_in_flight == 2


async def test_publish_over_the_brokers_maximum_packet_size_is_refused_before_sending() -> None:
    async with Mosquitto(extra_config="max_packet_size 300") as small:
        async with MQTTClient(small.url) as mqtt:
            await mqtt.subscribe("big/#", qos=1)
            with pytest.raises(MessageTooLargeError, match="maximum packet size of 300"):
                await mqtt.publish("big/x", b"x" * 400, qos=1)
            await mqtt.publish("big/y", b"y" * 200, qos=1)
            assert (await take(mqtt, 1))[0].raw == b"y" * 200
            assert mqtt.is_connected and mqtt.stats.reconnects == 0


@pytest.mark.parametrize("qos", [0, 1])
async def test_publishes_the_socket_cannot_take_at_once_are_finished_later(
    broker: Mosquitto, qos: int
) -> None:
    # The broker is stopped (SIGSTOP) so that it reads nothing: the publishes
    # fill the socket buffers and are written in parts, the rest when the
    # socket drains after the broker goes on.
    payloads = [bytes([i]) * (2 * 1024 * 1024) for i in range(4)]
    async with MQTTClient(broker.url) as sub, MQTTClient(broker.url, keepalive=30) as pub:
        await sub.subscribe("big/#", qos=qos)
        pid = broker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            sending = asyncio.gather(
                *(pub.publish(f"big/{i}", p, qos=qos) for i, p in enumerate(payloads))
            )
            await asyncio.sleep(0.5)
            assert not sending.done()  # the socket is full
        finally:
            os.kill(pid, signal.SIGCONT)
        await asyncio.wait_for(sending, 20)
        got = await take(sub, 4, timeout=20)
    assert sorted(m.raw for m in got) == payloads


# -- properties -----------------------------------------------------------------------


async def test_user_properties_and_content_type_round_trip(broker: Mosquitto) -> None:
    async with MQTTClient(broker.url) as sub, MQTTClient(broker.url) as pub:
        await sub.subscribe("props/#", qos=1)
        await pub.publish(
            "props/a",
            {"task": 1},
            qos=1,
            user_properties={"trace-id": "abc123", "tenant": "t1"},
            content_type="application/json",
            message_expiry=3600,
            response_topic="props/replies",
            correlation_data=b"\x00\x01",
        )
        await pub.publish("props/b", b"\xff\x00", qos=1, user_properties=[("k", "1"), ("k", "2")])
        await pub.publish("props/c", "plain text", qos=1)
        a, b, c = await take(sub, 3)
    assert a.payload == {"task": 1}
    assert a.user_properties == {"trace-id": "abc123", "tenant": "t1"}
    assert a.content_type == "application/json"
    assert a.payload_format == 1  # JSON is text: marked automatically
    assert a.message_expiry is not None and 3590 <= a.message_expiry <= 3600
    assert a.response_topic == "props/replies"
    assert a.correlation_data == b"\x00\x01"
    assert b.user_property_pairs == [("k", "1"), ("k", "2")] and b.user_properties == {"k": "2"}
    assert b.payload_format is None and b.content_type is None  # bytes are not marked
    assert c.payload == "plain text" and c.payload_format == 1


async def test_bad_properties_are_config_errors_before_sending(broker: Mosquitto) -> None:
    async with MQTTClient(broker.url) as mqtt:
        for kwargs, name in [
            ({"user_properties": {"a": 1}}, "user_properties"),
            ({"user_properties": [("only-one",)]}, "user_properties"),
            ({"content_type": 5}, "content_type"),
            ({"message_expiry": -1}, "message_expiry"),
            ({"response_topic": "bad/#"}, "topic"),
            ({"correlation_data": 12}, "correlation_data"),
        ]:
            with pytest.raises(ConfigError, match=name):
                await mqtt.publish("t", "x", **kwargs)
        assert mqtt.stats.sent == 0


async def test_expired_message_not_delivered_to_late_persistent_subscriber(
    broker: Mosquitto,
) -> None:
    async with MQTTClient(broker.url, client_id="late-sub", clean_session=False) as late:
        await late.subscribe("exp/#", qos=1)
    async with MQTTClient(broker.url) as pub:
        await pub.publish("exp/short", "gone", qos=1, message_expiry=1)
        await pub.publish("exp/long", "kept", qos=1, message_expiry=600)
    await asyncio.sleep(2.5)
    async with MQTTClient(broker.url, client_id="late-sub", clean_session=False) as late:
        got = await take(late, 1)
        assert [(m.topic, m.payload) for m in got] == [("exp/long", "kept")]
        await asyncio.sleep(0.3)
        assert late.queued_messages == 0


async def test_session_expiry_ends_the_session_at_the_broker(broker: Mosquitto) -> None:
    common: dict[str, Any] = {"client_id": "short-session", "clean_session": False}
    async with MQTTClient(broker.url, session_expiry=1, **common) as mqtt:
        await mqtt.subscribe("sess/#", qos=1)
    await asyncio.sleep(2.5)
    async with MQTTClient(broker.url) as pub:
        await pub.publish("sess/x", "nobody keeps this", qos=1)
    async with MQTTClient(broker.url, session_expiry=1, **common) as mqtt:
        await pub_after_reconnect(broker, "sess/y")
        await asyncio.sleep(0.3)
        assert mqtt.queued_messages == 0  # no session, no subscription, nothing queued


async def pub_after_reconnect(broker: Mosquitto, topic: str) -> None:
    async with MQTTClient(broker.url) as pub:
        await pub.publish(topic, "after", qos=1)


async def test_subscription_options_no_local_and_retain_handling(broker: Mosquitto) -> None:
    async with MQTTClient(broker.url, default_qos=1) as mqtt, MQTTClient(broker.url) as other:
        await other.publish("opt/retained", "old", qos=1, retain=True)
        await mqtt.subscribe("opt/#", no_local=True, retain_handling=2)
        await mqtt.publish("opt/mine", "own echo")  # not sent back to us: no_local
        await other.publish("opt/theirs", "from other", qos=1)
        got = await take(mqtt, 1)
        assert [(m.topic, m.payload) for m in got] == [("opt/theirs", "from other")]
        await asyncio.sleep(0.2)
        assert mqtt.queued_messages == 0  # neither the retained message nor our own
        # retain_as_published keeps the retain flag on a live forwarded message.
        await mqtt.subscribe("keep/#", retain_as_published=True)
        await other.publish("keep/x", "r", qos=1, retain=True)
        assert (await take(mqtt, 1))[0].retain is True
        with pytest.raises(ConfigError, match="retain_handling"):
            await mqtt.subscribe("x", retain_handling=3)
    async with MQTTClient(broker.url, protocol="3.1.1") as old:
        with pytest.raises(ConfigError, match="MQTT 5"):
            await old.subscribe("x", no_local=True)


# -- shared subscriptions -------------------------------------------------------------


async def test_share_group_splits_1000_messages_between_two_consumers(broker: Mosquitto) -> None:
    n = 1000
    async with (
        MQTTClient(broker.url, max_queued_messages=n) as one,
        MQTTClient(broker.url, max_queued_messages=n) as two,
        MQTTClient(broker.url) as pub,
    ):
        await one.subscribe("jobs/#", qos=1, group="workers")
        await two.subscribe("$share/workers/jobs/#", qos=1)  # the literal form
        assert one.subscriptions == {"$share/workers/jobs/#": 1}
        for i in range(n):
            await pub.publish(f"jobs/{i % 7}", str(i), qos=1)
        await eventually(lambda: one.queued_messages + two.queued_messages >= n, timeout=30)
        await asyncio.sleep(0.3)  # nothing more may come
        got_one = [m.payload for m in await take(one, one.queued_messages)]
        got_two = [m.payload for m in await take(two, two.queued_messages)]
    assert got_one and got_two  # both worked
    assert not set(got_one) & set(got_two)  # no message went to both
    assert sorted(got_one + got_two, key=int) == [str(i) for i in range(n)]


async def test_shared_handlers_route_on_the_inner_filter(broker: Mosquitto) -> None:
    got: list[tuple[str, Any]] = []
    mqtt = MQTTClient(broker.url)
    mqtt.on_message("$share/g1/work/+")(lambda topic, payload: got.append((topic, payload)))
    with pytest.raises(ConfigError, match="group"):
        mqtt.on_message("$share/g1/x", group="g2")
    with pytest.raises(ConfigError, match="group"):
        await mqtt.subscribe("x", group="bad/name")
    with pytest.raises(ConfigError, match="shared"):
        mqtt.on_message("$share/only-group")
    async with listening(mqtt), MQTTClient(broker.url) as pub:
        await asyncio.sleep(0.2)  # the SUBSCRIBE goes out on connect
        await pub.publish("work/1", "a", qos=1)
        await eventually(lambda: got == [("work/1", "a")])


# -- named wildcards --------------------------------------------------------------------


async def test_named_wildcards_reach_the_handler_by_name(broker: Mosquitto) -> None:
    seen: list[tuple[str, Any, dict[str, str]]] = []
    mqtt = MQTTClient(broker.url)

    @mqtt.on_message("agents/{agent_id}/tasks/{task}")
    async def on_task(topic: str, payload: Any, **names: str) -> None:
        seen.append((topic, payload, names))

    @mqtt.on_message("agents/{agent_id}/#")
    def on_any(topic: str, payload: Any, agent_id: str) -> None:
        seen.append((topic, payload, {"any": agent_id}))

    assert mqtt.subscriptions == {"agents/+/tasks/+": 0, "agents/+/#": 0}
    with pytest.raises(ConfigError, match="named wildcard"):
        mqtt.on_message("agents/x{id}/status")
    with pytest.raises(ConfigError, match="twice"):
        mqtt.on_message("a/{x}/{x}")
    async with listening(mqtt), MQTTClient(broker.url) as pub:
        await asyncio.sleep(0.2)
        await pub.publish("agents/a1/tasks/t9", "go", qos=1)
        await eventually(lambda: len(seen) == 2)
        await asyncio.sleep(0.2)
    # Each handler ran once, though MQTT 5 sends one copy per matching subscription.
    assert sorted(seen, key=str) == sorted(
        [
            ("agents/a1/tasks/t9", "go", {"agent_id": "a1", "task": "t9"}),
            ("agents/a1/tasks/t9", "go", {"any": "a1"}),
        ],
        key=str,
    )


async def test_overlapping_subscriptions_run_each_handler_once(broker: Mosquitto) -> None:
    seen: list[str] = []
    mqtt = MQTTClient(broker.url)
    mqtt.on_message("ov/+")(lambda topic, payload: seen.append(f"plus:{payload}"))
    mqtt.on_message("ov/#")(lambda topic, payload: seen.append(f"hash:{payload}"))
    async with mqtt, MQTTClient(broker.url) as pub:
        await mqtt.subscribe("#", qos=1)  # no handler of its own
        await asyncio.sleep(0.2)
        await pub.publish("ov/x", "1", qos=1)
        # MQTT 5: one copy per matching subscription (three), each runs only
        # the handlers of its own subscription.
        got = await take(mqtt, 3)
        assert [m.topic for m in got] == ["ov/x"] * 3
        await asyncio.sleep(0.2)
        assert mqtt.queued_messages == 0
    assert sorted(seen) == ["hash:1", "plus:1"]


# -- request / response ----------------------------------------------------------------


async def test_request_answered_by_on_request_in_another_client(broker: Mosquitto) -> None:
    responder = MQTTClient(broker.url)

    @responder.on_request("svc/{name}/get")
    async def get(topic: str, payload: Any, name: str) -> dict[str, Any]:
        if name == "broken":
            raise ValueError("no such thing")
        return {"name": name, "asked": payload}

    async with listening(responder), MQTTClient(broker.url) as caller:
        await asyncio.sleep(0.2)
        answers = await asyncio.gather(
            *(caller.request(f"svc/n{i}/get", {"i": i}, timeout=10) for i in range(5))
        )
        assert [a.payload for a in answers] == [
            {"name": f"n{i}", "asked": {"i": i}} for i in range(5)
        ]
        with pytest.raises(RemoteError, match="no such thing"):
            await caller.request("svc/broken/get", "x", timeout=10)
        # Responses do not show up as ordinary messages.
        assert caller.queued_messages == 0


async def test_request_without_responder_times_out(broker: Mosquitto) -> None:
    async with MQTTClient(broker.url) as caller:
        with pytest.raises(TimeoutError, match="no response") as info:
            await caller.request("svc/nobody/get", {"q": 1}, timeout=0.5)
        assert info.value.code == "ERR_TIMEOUT"
        assert caller.is_connected


# -- reason codes ---


class DisconnectingBroker(MQTTPeer):
    """An MQTT 5 broker that accepts, then soon ends the connection with a
    DISCONNECT carrying ``reason``."""

    def __init__(self, reason: int) -> None:
        super().__init__()
        self.reason = reason

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kind, _ = await read_packet(reader)
        assert kind == 1
        writer.write(b"\x20\x03\x00\x00\x00")
        await asyncio.sleep(0.3)
        writer.write(bytes([0xE0, 2, self.reason, 0]))
        await writer.drain()


@pytest.mark.parametrize(
    ("reason", "kind", "code"),
    [(0x87, MQTTAuthError, "ERR_AUTH"), (0x97, RemoteError, "ERR_REMOTE")],
)
async def test_server_disconnect_reason_is_kept(reason: int, kind: type, code: str) -> None:
    async with DisconnectingBroker(reason) as hostile:
        mqtt = MQTTClient(hostile.url, auto_reconnect=False, connect_timeout=3.0)
        seen: list[BaseException | None] = []
        mqtt.on("disconnect", seen.append)
        async with mqtt:
            await eventually(lambda: bool(seen))
            [stated] = seen
            assert isinstance(stated, kind) and stated.code == code
            assert f"0x{reason:02X}" in str(stated)
            with pytest.raises(ConnectionError, match=f"0x{reason:02X}") as info:
                await mqtt.receive()
            assert isinstance(info.value.__cause__, kind)  # the broker's reason, kept


# -- ACL ---------------------------------------------------------------------------------


async def test_publish_refused_by_acl_is_err_auth_with_reason_code(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite open/#\n")
    async with Mosquitto(extra_config=f"acl_file {acl}") as broker:
        async with MQTTClient(broker.url) as mqtt:
            with pytest.raises(AuthenticationError) as info:
                await mqtt.publish("secret/plans", "x", qos=1)
            assert info.value.code == "ERR_AUTH"
            assert isinstance(info.value, MQTTAuthError) and info.value.reason_code == 0x87
            assert "secret/plans" in str(info.value)
            with pytest.raises(MQTTAuthError, match="0x87"):  # QoS 2: refused in the PUBREC
                await mqtt.publish("secret/plans", "x", qos=2)
            # 0x10 "no matching subscribers" is a success, and the client goes on.
            await mqtt.publish("open/nobody-listens", "x", qos=1)
            await mqtt.subscribe("open/#", qos=1)
            await mqtt.publish("open/a", "fine", qos=1)
            assert (await take(mqtt, 1))[0].payload == "fine"
            assert mqtt.is_connected
