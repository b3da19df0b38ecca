"""MQTTClient against a real Mosquitto broker on loopback (and a fault proxy to break links)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from agenticaiframework.communication import MQTTClient, MQTTConfig, MQTTMessage, MQTTWill
from agenticaiframework.communication.core.errors import (
    ClosedError,
    ConfigError,
    ConnectionError,
    QueueFullError,
    SecurityError,
)
from tests.servers.mosquitto import Mosquitto
from tests.servers.ports import free_port
from tests.servers.proxy import FaultProxy

FAST = {"reconnect_delay": 0.05, "max_reconnect_delay": 0.2, "connect_timeout": 3.0}


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def take(client: MQTTClient, n: int, timeout: float = 5.0) -> list[MQTTMessage]:
    async with asyncio.timeout(timeout):
        return [await client.receive() for _ in range(n)]


@contextlib.asynccontextmanager
async def proxied(broker: Mosquitto) -> AsyncIterator[FaultProxy]:
    proxy = await FaultProxy(broker.port).start()
    try:
        yield proxy
    finally:
        await proxy.close()


# -- publish / subscribe ------------------------------------------------------


@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_payload_types_round_trip(broker: Mosquitto, qos: int) -> None:
    payloads: list[tuple[Any, Any, bytes]] = [
        ({"status": "online", "n": 1}, {"status": "online", "n": 1}, b'{"status":"online","n":1}'),
        ([1, "two"], [1, "two"], b'[1,"two"]'),
        ("héllo", "héllo", "héllo".encode()),
        (b"\xff\x00\x01", b"\xff\x00\x01", b"\xff\x00\x01"),
        (b"", "", b""),
    ]
    async with MQTTClient(broker.url) as mqtt:
        await mqtt.subscribe("rt/#", qos=qos)
        for i, (sent, _, _) in enumerate(payloads):
            await mqtt.publish(f"rt/{i}", sent, qos=qos)
        got = await take(mqtt, len(payloads))
    for i, (msg, (_, decoded, raw)) in enumerate(zip(got, payloads, strict=True)):
        assert msg.topic == f"rt/{i}"
        assert msg.payload == decoded
        assert msg.raw == raw
        assert msg.qos == qos
        assert msg.retain is False
    assert mqtt.stats.sent == len(payloads) and mqtt.stats.received == len(payloads)


async def test_config_object_and_overrides_and_v5(broker: Mosquitto) -> None:
    cfg = MQTTConfig(host="127.0.0.1", port=broker.port, default_qos=1, protocol_version=5)
    async with MQTTClient(config=cfg, client_id="v5-client") as mqtt:
        assert mqtt.config.client_id == "v5-client" and mqtt.config.default_qos == 1
        await mqtt.subscribe([("v5/a", 1), ("v5/b", 2)])
        assert mqtt.subscriptions == {"v5/a": 1, "v5/b": 2}
        await mqtt.publish("v5/a", "x")
        await mqtt.publish("v5/b", "y", qos=2)
        got = await take(mqtt, 2)
        assert [(m.topic, m.payload, m.qos) for m in got] == [("v5/a", "x", 1), ("v5/b", "y", 2)]
        await mqtt.unsubscribe("v5/a")
        await mqtt.publish("v5/a", "dropped")
        await mqtt.publish("v5/b", "kept")
        assert (await mqtt.receive()).payload == "kept"


async def test_message_format_pinned(broker: Mosquitto) -> None:
    async with MQTTClient(broker.url, message_format="text") as mqtt:
        await mqtt.subscribe("fmt")
        await mqtt.publish("fmt", {"a": 1})
        msg = await mqtt.receive()
        assert msg.payload == '{"a":1}' and msg.json() == {"a": 1}


async def test_retained_message(broker: Mosquitto) -> None:
    async with MQTTClient(broker.url) as pub:
        await pub.publish("state/agent1", {"status": "busy"}, qos=1, retain=True)
    async with MQTTClient(broker.url) as late:
        await late.subscribe("state/+")
        msg = (await take(late, 1))[0]
        assert msg.retain is True and msg.payload == {"status": "busy"}


async def test_wildcard_routing_to_decorated_handlers(broker: Mosquitto) -> None:
    mqtt = MQTTClient(broker.url)
    seen: dict[str, list[tuple[str, Any]]] = {"status": [], "result": [], "all": []}
    done = asyncio.Event()

    @mqtt.on_message("agents/+/status")
    async def on_status(topic: str, payload: Any) -> None:
        seen["status"].append((topic, payload))

    @mqtt.on_message("tasks/+/result", qos=1)
    def on_result(topic: str, payload: Any) -> None:
        seen["result"].append((topic, payload))

    @mqtt.on_message("#")
    def on_all(topic: str, payload: Any) -> None:
        seen["all"].append((topic, payload))
        if payload == "last":
            done.set()

    @mqtt.on_message("agents/bad/#")
    def broken(topic: str, payload: Any) -> None:
        raise RuntimeError("handler failure must not stop the reader")

    errors_seen: list[BaseException] = []
    mqtt.on("error", errors_seen.append)

    await mqtt.connect()
    listener = asyncio.create_task(mqtt.start_listening())
    async with MQTTClient(broker.url) as pub:
        await pub.publish("agents/a1/status", {"status": "online"}, qos=1)
        await pub.publish("agents/a1/x/status", "nested", qos=1)
        await pub.publish("tasks/t9/result", "ok", qos=1)
        await pub.publish("agents/bad/status", "boom", qos=1)
        await pub.publish("zzz", "last", qos=1)
        async with asyncio.timeout(5):
            await done.wait()
    await mqtt.close()
    await asyncio.wait_for(listener, 5)  # start_listening returns on close
    assert seen["status"] == [
        ("agents/a1/status", {"status": "online"}),
        ("agents/bad/status", "boom"),
    ]
    assert seen["result"] == [("tasks/t9/result", "ok")]
    assert [t for t, _ in seen["all"]] == [
        "agents/a1/status",
        "agents/a1/x/status",
        "tasks/t9/result",
        "agents/bad/status",
        "zzz",
    ]
    assert len(errors_seen) == 1 and isinstance(errors_seen[0], RuntimeError)
    assert mqtt.stats.errors == 1


async def test_handler_registered_while_connected_subscribes(broker: Mosquitto) -> None:
    async with MQTTClient(broker.url) as mqtt, MQTTClient(broker.url) as pub:
        got: list[Any] = []
        mqtt.on_message("late/+")(lambda topic, payload: got.append(payload))
        await eventually(lambda: "late/+" in mqtt.subscriptions)
        await asyncio.sleep(0.2)  # the SUBSCRIBE goes out in the background
        await pub.publish("late/x", "hi", qos=1)
        msg = await mqtt.receive()
        assert msg.payload == "hi" and got == ["hi"]


# -- validation and security ----------------------------------------------------


@pytest.mark.parametrize("bad", ["a/#/b", "a+", ""])
async def test_invalid_filters_rejected_before_sending(broker: Mosquitto, bad: str) -> None:
    async with proxied(broker) as proxy, MQTTClient(f"mqtt://127.0.0.1:{proxy.port}") as mqtt:
        sent_before = mqtt.stats.sent
        with pytest.raises(ConfigError, match="topic"):
            await mqtt.subscribe(bad)
        with pytest.raises(ConfigError, match="topic"):
            await mqtt.subscribe([("ok/topic", 1), (bad, 1)])
        with pytest.raises(ConfigError, match="topic"):
            mqtt.on_message(bad)
        with pytest.raises(ConfigError, match="topic"):
            await mqtt.unsubscribe(bad)
        assert mqtt.subscriptions == {}  # the valid one in the bad batch was not kept either
        assert mqtt.stats.sent == sent_before
        assert mqtt.is_connected and await mqtt.health_check()


async def test_invalid_publish_arguments(broker: Mosquitto) -> None:
    async with MQTTClient(broker.url) as mqtt:
        with pytest.raises(ConfigError, match="wildcards"):
            await mqtt.publish("a/+", "x")
        with pytest.raises(ConfigError, match="qos"):
            await mqtt.publish("a", "x", qos=3)
        with pytest.raises(ConfigError, match="qos"):
            await mqtt.subscribe("a", qos=5)
        assert mqtt.stats.sent == 0


def test_security_and_url_parsing() -> None:
    with pytest.raises(SecurityError) as info:
        MQTTClient("mqtt://broker.example.com:1883")
    assert info.value.code == "ERR_SECURITY"
    with pytest.raises(SecurityError):
        MQTTClient(config=MQTTConfig(host="broker.example.com"))
    MQTTClient("mqtt://broker.example.com", allow_insecure=True)
    tls = MQTTClient("mqtts://user:p%40ss@broker.example.com")
    assert tls.config.use_tls and tls.config.port == 8883
    assert tls.config.username == "user" and tls.config.password == "p@ss"
    assert "p@ss" not in repr(tls) and "p@ss" not in repr(tls.config)
    plain = MQTTClient("mqtt://localhost")
    assert plain.config.port == 1883 and not plain.config.use_tls
    with pytest.raises(SecurityError):
        MQTTClient("http://127.0.0.1:1883")
    with pytest.raises(ConfigError, match="client_id"):
        MQTTClient("mqtt://127.0.0.1", clean_session=False)
    with pytest.raises(ConfigError, match="no_such"):
        MQTTClient("mqtt://127.0.0.1", no_such=1)


# No broker and no engine at work: one run is enough.
@pytest.mark.parametrize("mqtt_engine", ["aiomqtt"], indirect=True)
def test_an_engine_that_is_not_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gmqtt", None)  # import gmqtt fails
    monkeypatch.delitem(
        sys.modules, "agenticaiframework.communication.mqtt.gmqtt_engine", raising=False
    )
    with pytest.raises(ConfigError) as info:
        MQTTClient("mqtt://127.0.0.1", engine="gmqtt")
    assert info.value.code == "ERR_CONFIG"
    assert "pip install 'agenticaiframework-communication[mqtt-gmqtt]'" in str(info.value)
    with pytest.raises(ConfigError, match="engine"):
        MQTTClient("mqtt://127.0.0.1", engine="paho")


async def test_publish_before_connect_and_after_close(broker: Mosquitto) -> None:
    mqtt = MQTTClient(broker.url)
    with pytest.raises(ConnectionError, match="connect"):
        await mqtt.publish("a", "x")
    await mqtt.connect()
    await mqtt.close()
    with pytest.raises(ClosedError):
        await mqtt.publish("a", "x")
    with pytest.raises(ClosedError):
        await mqtt.connect()


async def test_connect_refused_raises_connection_error() -> None:
    mqtt = MQTTClient(f"mqtt://127.0.0.1:{free_port()}", connect_timeout=2)
    with pytest.raises(ConnectionError) as info:
        await mqtt.connect()
    assert info.value.code == "ERR_CONNECTION"
    # Said once: the engine's error is not wrapped in a second copy of itself.
    assert str(info.value).count("ERR_CONNECTION") == 1, str(info.value)
    assert str(info.value).count("MQTT connect to") == 1, str(info.value)
    await mqtt.close()


# -- TLS ---------------------------------------------------------------------


async def test_mqtts_with_ca_certs(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    tls_port = free_port()
    extra = f"listener {tls_port} 127.0.0.1\ncertfile {cert_path}\nkeyfile {key_path}\n"
    async with Mosquitto(extra_config=extra):
        async with MQTTClient(f"mqtts://127.0.0.1:{tls_port}", ca_certs=str(ca_path)) as mqtt:
            await mqtt.subscribe("secure/#", qos=1)
            await mqtt.publish("secure/x", {"ok": True}, qos=1)
            assert (await take(mqtt, 1))[0].payload == {"ok": True}
        untrusted = MQTTClient(f"mqtts://127.0.0.1:{tls_port}", connect_timeout=3)
        with pytest.raises(ConnectionError):
            await untrusted.connect()
        await untrusted.close()


async def test_mqtts_mutual_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    server, client = ca.issue_cert("127.0.0.1"), ca.issue_cert("agent-1")
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key", "ccert", "ckey")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["ccert"]))
    client.private_key_pem.write_to_path(str(paths["ckey"]))
    tls_port = free_port()
    extra = (
        f"listener {tls_port} 127.0.0.1\ncafile {paths['ca']}\ncertfile {paths['cert']}\n"
        f"keyfile {paths['key']}\nrequire_certificate true\n"
    )
    url = f"mqtts://127.0.0.1:{tls_port}"
    async with Mosquitto(extra_config=extra):
        async with MQTTClient(
            url,
            ca_certs=str(paths["ca"]),
            client_cert=str(paths["ccert"]),
            client_key=str(paths["ckey"]),
        ) as mqtt:
            await mqtt.subscribe("mtls/#", qos=1)
            await mqtt.publish("mtls/x", "with a client certificate", qos=1)
            assert (await take(mqtt, 1))[0].payload == "with a client certificate"
        without = MQTTClient(url, ca_certs=str(paths["ca"]), connect_timeout=3)
        with pytest.raises(ConnectionError):  # the broker wants a client certificate
            await without.connect()
        await without.close()


# -- last will, outages, queues -----------------------------------------------------


async def test_last_will_delivered_when_connection_dies(broker: Mosquitto) -> None:
    async with proxied(broker) as proxy, MQTTClient(broker.url) as watcher:
        await watcher.subscribe("wills/#", qos=1)
        will = MQTTWill(topic="wills/agent1", payload={"status": "offline"}, qos=1)
        doomed = MQTTClient(
            f"mqtt://127.0.0.1:{proxy.port}", will=will, auto_reconnect=False, **FAST
        )
        await doomed.connect()
        await proxy.cut()
        msg = (await take(watcher, 1))[0]
        assert msg.topic == "wills/agent1" and msg.payload == {"status": "offline"}
        with pytest.raises(ConnectionError):  # the iterator raises on an abnormal end
            async with asyncio.timeout(5):
                async for _ in doomed:
                    pass
        with pytest.raises(ConnectionError):
            await doomed.publish("x", "y")
        await doomed.close()


async def test_broker_restart_resubscribes_and_delivers_outage_messages() -> None:
    async with Mosquitto(persistence=True) as broker:
        persistent = MQTTClient(broker.url, client_id="outage-sub", clean_session=False, **FAST)
        clean = MQTTClient(broker.url, **FAST)  # its session dies with the broker
        publisher = MQTTClient(broker.url, **FAST)
        reconnects: list[int] = []
        clean.on("reconnect", lambda: reconnects.append(1))
        async with persistent, clean, publisher:
            await persistent.subscribe("jobs/#", qos=1)
            await clean.subscribe("live/#", qos=1)
            await publisher.publish("jobs/0", "before", qos=1)
            assert (await take(persistent, 1))[0].payload == "before"

            await broker.stop()
            await eventually(lambda: not publisher.is_connected)
            for i in range(1, 6):  # published during the outage: queued
                await publisher.publish(f"jobs/{i}", f"during-{i}", qos=1)
            assert publisher.queued_publishes == 5
            health = await publisher.health_check()
            assert not health.is_healthy

            await broker.start()
            got: list[str] = []
            async with asyncio.timeout(15):
                while len(got) < 5:
                    payload = (await persistent.receive()).payload
                    # QoS 1 is at least once: "before" comes again when the broker went
                    # down before it stored our PUBACK. Nothing else may repeat.
                    if payload != "before":
                        got.append(payload)
            assert got == [f"during-{i}" for i in range(1, 6)]
            await eventually(lambda: clean.is_connected and bool(reconnects), timeout=10)
            await publisher.publish("live/x", "after", qos=1)
            assert (await take(clean, 1))[0].payload == "after"
            assert publisher.queued_publishes == 0
            # A reconnect is counted once its queued publishes are flushed and
            # acknowledged, which may end just after "after" arrived.
            await eventually(
                lambda: publisher.stats.reconnects >= 1 and persistent.stats.reconnects >= 1
            )
            assert (await publisher.health_check()).is_healthy


async def test_session_keeps_qos1_messages_while_client_is_away(broker: Mosquitto) -> None:
    async with proxied(broker) as proxy:
        sub = MQTTClient(
            f"mqtt://127.0.0.1:{proxy.port}", client_id="away-sub", clean_session=False, **FAST
        )
        async with sub, MQTTClient(broker.url) as pub:
            await sub.subscribe("inbox/#", qos=1)
            proxy.refuse = True
            await proxy.cut()
            await eventually(lambda: not sub.is_connected)
            for i in range(3):
                await pub.publish(f"inbox/{i}", str(i), qos=1)
            proxy.refuse = False
            got = await take(sub, 3, timeout=10)
            assert [m.payload for m in got] == ["0", "1", "2"]


async def test_session_delivers_more_queued_messages_than_the_brokers_window(
    broker: Mosquitto,
) -> None:
    # Mosquitto sends at most 20 unacknowledged QoS 1 messages; the rest of the
    # session's 100 come only as we acknowledge, including those that arrive in
    # the same read as the CONNACK.
    common: dict[str, Any] = {"client_id": "window-sub", "clean_session": False}
    async with MQTTClient(broker.url, **common) as sub:
        await sub.subscribe("win/#", qos=1)
    async with MQTTClient(broker.url) as pub:
        for i in range(100):
            await pub.publish(f"win/{i}", str(i), qos=1)
    async with MQTTClient(broker.url, **common) as sub:
        got = await take(sub, 100)
    assert [m.payload for m in got] == [str(i) for i in range(100)]


async def test_queued_publishes_flush_in_order_and_bound(broker: Mosquitto) -> None:
    async with proxied(broker) as proxy:
        pub = MQTTClient(f"mqtt://127.0.0.1:{proxy.port}", max_queued_publishes=5, **FAST)
        async with pub, MQTTClient(broker.url) as sub:
            await sub.subscribe("seq", qos=1)
            proxy.refuse = True
            await proxy.cut()
            await eventually(lambda: not pub.is_connected)
            for i in range(5):
                await pub.publish("seq", str(i), qos=i % 2)
            with pytest.raises(QueueFullError) as info:
                await pub.publish("seq", "overflow", qos=1)
            assert info.value.code == "ERR_QUEUE_FULL"
            proxy.refuse = False
            await eventually(lambda: pub.is_connected, timeout=10)
            await pub.publish("seq", "5", qos=1)  # goes after the queued ones
            got = await take(sub, 6, timeout=10)
            assert [m.payload for m in got] == [str(i) for i in range(6)]


async def test_no_reconnect_queue_when_bound_is_zero(broker: Mosquitto) -> None:
    async with proxied(broker) as proxy:
        pub = MQTTClient(f"mqtt://127.0.0.1:{proxy.port}", max_queued_publishes=0, **FAST)
        async with pub:
            proxy.refuse = True
            await proxy.cut()
            await eventually(lambda: not pub.is_connected)
            with pytest.raises(ConnectionError, match="max_queued_publishes"):
                await pub.publish("x", "y")


async def test_gives_up_after_max_reconnect_attempts(broker: Mosquitto) -> None:
    async with proxied(broker) as proxy:
        mqtt = MQTTClient(f"mqtt://127.0.0.1:{proxy.port}", max_reconnect_attempts=2, **FAST)
        async with mqtt:
            proxy.refuse = True
            await proxy.cut()
            with pytest.raises(ConnectionError, match=r"after 2 attempt\(s\)"):
                async with asyncio.timeout(10):
                    await mqtt.receive()
            with pytest.raises(ConnectionError):
                await mqtt.publish("x", "y")


async def test_slow_consumer_back_pressure_drops_nothing(broker: Mosquitto) -> None:
    total = 300
    async with (
        MQTTClient(broker.url, max_queued_messages=20) as slow,
        MQTTClient(broker.url) as pub,
    ):
        await slow.subscribe("flood", qos=1)
        for i in range(total):
            await pub.publish("flood", str(i), qos=1)
        await asyncio.sleep(0.3)
        # Reading paused near the bound; the rest waits at the broker / in TCP buffers.
        assert 20 <= slow.queued_messages < 60
        got = await take(slow, total, timeout=20)
        assert [m.payload for m in got] == [str(i) for i in range(total)]


async def test_close_leaves_nothing_behind(broker: Mosquitto) -> None:
    before = asyncio.all_tasks()
    mqtt = MQTTClient(broker.url)
    await mqtt.connect()
    await mqtt.subscribe("c/#")
    consumer = asyncio.create_task(anext(aiter(mqtt)))
    await asyncio.sleep(0.05)
    await mqtt.close()
    with pytest.raises(StopAsyncIteration):  # iteration ends quietly on close
        await consumer
    await mqtt.close()  # idempotent
    assert len(mqtt._tasks) == 0
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
    assert mqtt._engine is None
    with pytest.raises(ClosedError):
        await mqtt.receive()


async def test_health_check_and_events(broker: Mosquitto) -> None:
    mqtt = MQTTClient(broker.url)
    events: list[str] = []

    async def on_connect() -> None:
        events.append("connect")

    mqtt.on("connect", on_connect)
    messages: list[MQTTMessage] = []
    mqtt.on("message", messages.append)
    assert not (await mqtt.health_check()).is_healthy
    async with mqtt:
        status = await mqtt.health_check()
        assert status.is_healthy and status.latency_ms >= 0
        await mqtt.subscribe("ev")
        await mqtt.publish("ev", "1")
        await take(mqtt, 1)
    assert events == ["connect"] and [m.payload for m in messages] == ["1"]
    with pytest.raises(ValueError):
        mqtt.on("nope", print)


Runner = Callable[[], Awaitable[None]]
