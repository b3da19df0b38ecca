"""MQTTClient against hostile brokers of our own and hostile input (issue 16).

A broker that never sends CONNACK or answers garbage, a real Mosquitto
replaced by such a broker during a reconnect, PUBLISH packets with a topic
that is not UTF-8, payloads nested too deeply to decode, credentials in URLs,
and receive() cancelled by short timeouts under a stream of messages.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from agenticaiframework.communication import MQTTClient, MQTTMessage
from agenticaiframework.communication.core.errors import (
    CommunicationError,
    ConfigError,
    ConnectionError,
    ProtocolError,
)
from agenticaiframework.communication.core.errors import TimeoutError as MQTTTimeoutError
from agenticaiframework.communication.core.lifecycle import ClientState
from tests.servers.mosquitto import Mosquitto
from tests.servers.mqtt_hostile import HostileBroker, publish_packet

FAST: dict[str, Any] = {"reconnect_delay": 0.05, "max_reconnect_delay": 0.1}
DEEP = b"[" * 100_000 + b"]" * 100_000


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


# -- item 4: a broker that never sends CONNACK ------------------------------------


async def test_silent_broker_connect_raises_timeout_error() -> None:
    async with HostileBroker("silent") as silent:
        for _ in range(3):  # the timeout raced aiomqtt's own: try it more than once
            mqtt = MQTTClient(silent.url, connect_timeout=0.3)
            with pytest.raises(MQTTTimeoutError) as info:
                await mqtt.connect()
            assert info.value.code == "ERR_TIMEOUT"
            assert f"127.0.0.1:{silent.port}" in str(info.value)
            assert "CONNACK" in str(info.value)
            assert mqtt.state is not ClientState.OPEN
            await mqtt.close()
        assert silent.connects == 3


@pytest.mark.parametrize(
    ("garbage", "code", "detail"),
    [
        (b"\x00\x07not-mqtt", "ERR_CONNECTION", "Protocol error"),  # a reserved packet type
        # Read as a PUBACK announcing 84 bytes that never come.
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "ERR_TIMEOUT", "no CONNACK"),
    ],
    ids=["reserved-packet-type", "http-response"],
)
async def test_garbage_broker_connect_raises_our_error(
    garbage: bytes, code: str, detail: str
) -> None:
    async with HostileBroker("garbage", garbage=garbage) as hostile:
        mqtt = MQTTClient(hostile.url, connect_timeout=0.5)
        with pytest.raises(CommunicationError) as info:
            await mqtt.connect()
        assert info.value.code == code and detail in str(info.value)
        assert f"127.0.0.1:{hostile.port}" in str(info.value)
        await mqtt.close()


async def test_silent_broker_during_reconnect_retries_then_gives_up_everywhere() -> None:
    async with Mosquitto() as broker:
        mqtt = MQTTClient(
            broker.url,
            connect_timeout=0.3,
            max_reconnect_attempts=4,
            reconnect_delay=0.2,  # the silent broker is listening before the second attempt
            max_reconnect_delay=0.2,
        )
        errors_seen: list[BaseException] = []
        mqtt.on("error", errors_seen.append)
        async with mqtt:
            await mqtt.subscribe("x/#")
            consumer = asyncio.create_task(mqtt.receive())
            await broker.stop()
            async with HostileBroker("silent", port=broker.port) as silent:
                await eventually(lambda: not mqtt.is_connected)
                with pytest.raises(ConnectionError) as info:
                    async with asyncio.timeout(20):
                        await consumer
                # Each attempt timed out waiting for CONNACK and the next one
                # followed (the bug: the first timeout killed reconnecting).
                assert silent.connects >= 3
                found = re.search(r"gave up reconnecting .* after (\d+) attempt", str(info.value))
                assert found is not None and int(found.group(1)) >= silent.connects
                assert "no CONNACK" in str(info.value)
                assert mqtt.state is ClientState.FAILED
                with pytest.raises(ConnectionError):
                    await mqtt.publish("x/1", "lost?")
                assert mqtt.queued_publishes == 0
                with pytest.raises(ConnectionError):
                    await mqtt.receive()
                with pytest.raises(ConnectionError):
                    async for _ in mqtt:
                        pass
                with pytest.raises(ConnectionError):
                    await mqtt.start_listening()
                with pytest.raises(ConnectionError):
                    await mqtt.connect()
                health = await mqtt.health_check()
                assert not health.is_healthy and "gave up" in health.detail
                assert any(isinstance(e, ConnectionError) for e in errors_seen)
        assert mqtt.is_closed and len(mqtt._tasks) == 0


async def test_silent_broker_during_reconnect_is_retried_until_the_broker_is_back() -> None:
    async with Mosquitto() as broker:
        mqtt = MQTTClient(broker.url, connect_timeout=0.3, **FAST)  # reconnects forever
        reconnected = asyncio.Event()
        mqtt.on("reconnect", reconnected.set)
        async with mqtt:
            await mqtt.subscribe("back/#", qos=1)  # restored before the queue is flushed
            await broker.stop()
            await eventually(lambda: not mqtt.is_connected)
            async with HostileBroker("silent", port=broker.port) as silent:
                await eventually(lambda: silent.connects >= 4, timeout=20)
                assert mqtt.state is ClientState.OPEN  # still trying
                await mqtt.publish("back/1", "queued while reconnecting", qos=1)
                assert mqtt.queued_publishes == 1
            await broker.start()
            async with asyncio.timeout(20):
                await reconnected.wait()
            msg = await asyncio.wait_for(mqtt.receive(), 10)
            assert msg.payload == "queued while reconnecting"
            assert mqtt.is_connected and (await mqtt.health_check()).is_healthy


# -- item 17: a topic that is not UTF-8 --------------------------------------------


def _bad_topic_broker() -> HostileBroker:
    return HostileBroker(
        "scripted",
        after_subscribe=[
            publish_packet(b"\xff\xfe", b"bad topic"),
            publish_packet(b"ok/topic", b"good"),
        ],
    )


async def test_non_utf8_topic_is_skipped_counted_and_reported() -> None:
    async with _bad_topic_broker() as hostile:
        mqtt = MQTTClient(hostile.url, connect_timeout=2)
        errors_seen: list[BaseException] = []
        mqtt.on("error", errors_seen.append)
        async with mqtt:
            await mqtt.subscribe("#")
            msg = await asyncio.wait_for(mqtt.receive(), 5)
            assert (msg.topic, msg.payload) == ("ok/topic", "good")
            assert mqtt.is_connected and mqtt.stats.received == 1
        assert mqtt.stats.errors == 1
        assert len(errors_seen) == 1 and isinstance(errors_seen[0], ProtocolError)
        assert "UTF-8" in str(errors_seen[0])


async def test_non_utf8_topic_does_not_end_start_listening() -> None:
    async with _bad_topic_broker() as hostile:
        mqtt = MQTTClient(hostile.url, connect_timeout=2)
        got: list[tuple[str, Any]] = []
        errors_seen: list[BaseException] = []
        mqtt.on("error", errors_seen.append)
        mqtt.on_message("#")(lambda topic, payload: got.append((topic, payload)))
        listener = asyncio.create_task(mqtt.start_listening())
        await eventually(lambda: bool(got))
        assert got == [("ok/topic", "good")]
        assert not listener.done()
        await mqtt.close()
        await asyncio.wait_for(listener, 5)
        assert [type(e) for e in errors_seen] == [ProtocolError]


# -- item 15: a payload nested too deeply to decode --------------------------------


async def test_deep_json_payload_is_protocol_error_and_listener_goes_on() -> None:
    async with Mosquitto() as broker, MQTTClient(broker.url) as pub:
        mqtt = MQTTClient(broker.url)
        got: list[tuple[str, Any]] = []
        errors_seen: list[BaseException] = []
        mqtt.on("error", errors_seen.append)
        # Two handlers on one subscription (over MQTT 5 two overlapping
        # subscriptions would each get their own copy of the message).
        mqtt.on_message("deep/+")(lambda topic, payload: got.append((topic, payload)))
        mqtt.on_message("deep/+")(lambda topic, payload: got.append((topic, payload)))
        listener = asyncio.create_task(mqtt.start_listening())
        await eventually(lambda: mqtt.is_connected and "deep/+" in mqtt.subscriptions)
        await asyncio.sleep(0.2)  # the SUBSCRIBEs go out in the background
        await pub.publish("deep/bomb", DEEP, qos=1)
        await pub.publish("deep/ok", {"fine": True}, qos=1)
        await eventually(lambda: len(got) == 2)
        assert got == [("deep/ok", {"fine": True})] * 2  # the bomb reached no handler
        assert not listener.done() and mqtt.is_connected
        await mqtt.close()
        await asyncio.wait_for(listener, 5)
        # One bad message is one error, whatever the number of handlers.
        assert mqtt.stats.errors == 1
        assert len(errors_seen) == 1 and isinstance(errors_seen[0], ProtocolError)
        assert "deep/bomb" in str(errors_seen[0])


async def test_deep_json_payload_received_raises_protocol_error_on_access() -> None:
    async with Mosquitto() as broker, MQTTClient(broker.url) as mqtt:
        await mqtt.subscribe("deep/#", qos=1)
        await mqtt.publish("deep/bomb", DEEP, qos=1)
        await mqtt.publish("deep/ok", "fine", qos=1)
        msg = await asyncio.wait_for(mqtt.receive(), 5)
        assert msg.raw == DEEP
        with pytest.raises(ProtocolError):
            _ = msg.payload
        with pytest.raises(ProtocolError):
            msg.json()
        assert (await asyncio.wait_for(mqtt.receive(), 5)).payload == "fine"
        assert mqtt.is_connected


# -- item 18: bad URLs and credentials --------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "mqtt://[::1",
        "mqtt://127.0.0.1:99999",
        "mqtt://127.0.0.1:port",
        "mqtt://user:s3cret@[::1",
        "mqtt://user:s3cret@127.0.0.1:99999",
    ],
)
def test_invalid_url_is_config_error_naming_it(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        MQTTClient(url)
    assert info.value.code == "ERR_CONFIG"
    assert "s3cret" not in str(info.value)
    assert url.replace("s3cret", "***") in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "mqtt://user:s3cret@broker.example.com",  # refused by the policy, nothing contacted
        "http://user:s3cret@127.0.0.1",
        "mqtt://user:s3cret@127.0.0.1/a/path",
    ],
)
def test_refused_url_errors_hide_the_password(url: str) -> None:
    with pytest.raises(CommunicationError) as info:
        MQTTClient(url)
    assert info.value.code in ("ERR_SECURITY", "ERR_CONFIG")
    assert "s3cret" not in str(info.value)


async def test_url_credentials_never_printed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with HostileBroker("silent") as silent:
        url = f"mqtt://agent:s3cret@127.0.0.1:{silent.port}"
        mqtt = MQTTClient(url, connect_timeout=0.3)
        assert mqtt.config.password == "s3cret"
        with pytest.raises(MQTTTimeoutError) as info:
            await mqtt.connect()
        texts = [repr(mqtt), repr(mqtt.config), str(info.value)]
        await mqtt.close()
    async with Mosquitto() as broker:
        url = f"mqtt://agent:s3cret@127.0.0.1:{broker.port}"
        async with MQTTClient(url, connect_timeout=0.3, **FAST) as mqtt:
            texts.append(repr(mqtt))
            texts.append((await mqtt.health_check()).detail)
            await broker.stop()
            await eventually(lambda: not mqtt.is_connected)
            texts.append((await mqtt.health_check()).detail)
    texts.extend(record.getMessage() for record in caplog.records)
    assert len(texts) > 5
    assert not [text for text in texts if "s3cret" in text]


# -- item 23: receive() cancelled by short timeouts --------------------------------


@pytest.mark.parametrize("with_handler", [False, True], ids=["plain", "async-handler"])
async def test_short_timeouts_never_lose_or_repeat_messages(with_handler: bool) -> None:
    total = 200
    async with Mosquitto() as broker, MQTTClient(broker.url) as pub:
        mqtt = MQTTClient(broker.url)
        handled: list[Any] = []
        if with_handler:

            @mqtt.on_message("stream")
            async def slow(topic: str, payload: Any) -> None:
                if int(payload) % 2:
                    await asyncio.sleep(0.002)  # outlives the timeout: cut short
                else:
                    await asyncio.sleep(0)  # may be cut short too
                handled.append(payload)

        async with mqtt:
            await mqtt.subscribe("stream", qos=1)

            async def produce() -> None:
                for i in range(total):
                    await pub.publish("stream", str(i), qos=1)
                    if i % 10 == 9:
                        await asyncio.sleep(0.02)  # bursts and gaps: receive() waits, is cut

            producer = asyncio.create_task(produce())
            got: list[MQTTMessage] = []
            timeouts = 0
            async with asyncio.timeout(50):
                while len(got) < total:
                    try:
                        async with asyncio.timeout(0.001):
                            got.append(await mqtt.receive() if timeouts % 2 else await anext(mqtt))
                    except TimeoutError:
                        timeouts += 1
            await producer
            assert [m.payload for m in got] == [str(i) for i in range(total)]
            assert timeouts > 0
            assert mqtt.is_connected and mqtt.stats.reconnects == 0
            assert mqtt.queued_messages == 0
            if with_handler:
                # A handler cut short by a timeout is not run again: no repeats.
                assert handled == sorted(set(handled), key=int)
