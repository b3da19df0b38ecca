"""MQTT telemetry: PRODUCER publish and CONSUMER process spans, trace context in MQTT 5 user
properties (W3C Trace Context for MQTT), none over 3.1.1 and no error; on both engines."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable
from itertools import takewhile
from traceback import walk_stack
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from agenticaiframework.communication import MQTTClient
from agenticaiframework.communication.mqtt.engine import Item
from tests.servers.mosquitto import Mosquitto
from tests.telemetry_support import OTel, otel, traceparent_of

__all__ = ["otel"]

SECRET = "mqtt-password-5a0c"


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


async def test_a_v5_publish_parents_the_second_clients_process_span(
    broker: Mosquitto, otel: OTel
) -> None:
    seen: list[tuple[str, Any]] = []
    tracer = otel.tracer_provider.get_tracer("test")
    async with (
        MQTTClient(broker.url, protocol="5", **otel.kwargs) as consumer,
        MQTTClient(broker.url, protocol="5", client_id="producer-1", **otel.kwargs) as producer,
    ):
        consumer.on_message("agents/+/status", qos=1)(lambda t, p: seen.append((t, p)))
        await consumer.subscribe("agents/+/status", qos=1)
        with tracer.start_as_current_span("parent") as parent:
            await producer.publish(
                "agents/a1/status", {"state": "ready"}, qos=1, user_properties={"tenant": "t1"}
            )
        message = await asyncio.wait_for(consumer.receive(), 10)
    assert seen == [("agents/a1/status", {"state": "ready"})]
    (publish,) = otel.named("publish agents/a1/status")
    (process,) = otel.named("process agents/+/status")
    assert publish.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    assert publish.parent is not None
    assert publish.parent.span_id == parent.get_span_context().span_id
    assert process.context.trace_id == parent.get_span_context().trace_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    assert message.user_properties["traceparent"] == traceparent_of(publish)
    assert message.user_properties["tenant"] == "t1"
    attrs = dict(publish.attributes or {})
    assert attrs["messaging.system"] == "mqtt"
    assert attrs["messaging.destination.name"] == "agents/a1/status"
    assert attrs["messaging.mqtt.qos"] == 1
    assert attrs["messaging.client.id"] == "producer-1"
    assert dict(process.attributes or {})["messaging.destination.template"] == "agents/+/status"
    metrics = otel.metrics()
    assert sum(p.value for p in metrics["messaging.client.sent.messages"]) == 1
    assert sum(p.value for p in metrics["messaging.client.consumed.messages"]) == 1
    assert metrics["messaging.process.duration"][0].count == 1


async def test_a_message_taken_by_async_for_gets_a_process_span(
    broker: Mosquitto, otel: OTel
) -> None:
    async with (
        MQTTClient(broker.url, protocol="5", **otel.kwargs) as consumer,
        MQTTClient(broker.url, protocol="5", **otel.kwargs) as producer,
    ):
        await consumer.subscribe("jobs/#", qos=1)
        await producer.publish("jobs/1", b"x", qos=1)
        async for message in consumer:
            assert message.topic == "jobs/1"
            break
    (publish,) = otel.named("publish jobs/1")
    (process,) = otel.named("process jobs/1")
    assert process.parent is not None and process.parent.span_id == publish.context.span_id


async def test_mqtt_311_carries_no_context_and_raises_nothing(
    broker: Mosquitto, otel: OTel
) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    async with (
        MQTTClient(broker.url, protocol="3.1.1", **otel.kwargs) as consumer,
        MQTTClient(
            broker.url.replace("://", f"://user:{SECRET}@"), protocol="3.1.1", **otel.kwargs
        ) as producer,
    ):
        await consumer.subscribe("old/#", qos=1)
        with tracer.start_as_current_span("parent") as parent:
            await producer.publish("old/x", "hello", qos=1)
            async for message in consumer:  # taken inside the parent span: still a new trace
                assert message.payload == "hello"
                break
    (publish,) = otel.named("publish old/x")
    (process,) = otel.named("process old/x")
    assert publish.parent is not None
    assert publish.parent.span_id == parent.get_span_context().span_id
    assert process.parent is None  # a new trace: 3.1.1 has nowhere to carry the context
    assert process.context.trace_id != parent.get_span_context().trace_id
    assert SECRET not in otel.all_attribute_text()


async def test_telemetry_false_adds_no_user_property(broker: Mosquitto, otel: OTel) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    async with (
        MQTTClient(broker.url, protocol="5", **otel.kwargs) as consumer,
        MQTTClient(broker.url, protocol="5", telemetry=False, **otel.kwargs) as producer,
    ):
        await consumer.subscribe("quiet/#", qos=1)
        with tracer.start_as_current_span("parent"):
            await producer.publish("quiet/x", b"x", qos=1)
        message = await asyncio.wait_for(consumer.receive(), 10)
    assert message.user_property_pairs == []
    assert not otel.named("publish quiet/x")


async def test_with_telemetry_off_publish_reaches_the_engine_from_its_own_frame(
    broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Per-message cost: no inner coroutine (the old _publish) between publish() and the
    # engine's send; the client's frames the engine call sits under are listed.
    test = sys._getframe().f_code
    chains: list[list[str]] = []
    async with (
        MQTTClient(broker.url, protocol="5", telemetry=False) as consumer,
        MQTTClient(broker.url, protocol="5", telemetry=False) as producer,
    ):
        await consumer.subscribe("frames/t", qos=1)
        engine = producer._engine
        assert engine is not None
        wire = engine.send

        def send(item: Item) -> Awaitable[bool]:
            frames = takewhile(lambda f: f[0].f_code is not test, walk_stack(sys._getframe(1)))
            chains.append([frame.f_code.co_qualname for frame, _ in frames])
            return wire(item)

        monkeypatch.setattr(engine, "send", send)
        await producer.publish("frames/t", {"n": 1}, qos=1, user_properties={"k": "v"})
        message = await asyncio.wait_for(consumer.receive(), 10)
    assert message.payload == {"n": 1}
    assert message.user_properties == {"k": "v"}
    assert chains == [["MQTTClient.publish"]]
