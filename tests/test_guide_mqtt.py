"""The MQTT snippets of the guide, run as written against a real Mosquitto (URLs changed only).

Snippets that listen forever (``async for message in mqtt``, ``start_listening()``)
are ended the way a user would: another task closes the client once the
expected messages were logged, and iteration ends quietly on close.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from agenticaiframework.communication import MQTTClient as _MQTTClient
from tests.servers.mosquitto import Mosquitto

MQTTClient = _MQTTClient  # the Topic Patterns snippet assumes it was imported earlier


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


async def _wait_logs(caplog: pytest.LogCaptureFixture, needle: str, count: int) -> None:
    async with asyncio.timeout(10):
        while sum(needle in r.getMessage() for r in caplog.records) < count:
            await asyncio.sleep(0.01)


async def _when_ready(get_client: Callable[[], _MQTTClient]) -> _MQTTClient:
    async with asyncio.timeout(10):
        while True:
            try:
                client = get_client()
            except NameError:  # the snippet has not bound it yet
                await asyncio.sleep(0.01)
                continue
            if client.is_connected:
                return client
            await asyncio.sleep(0.01)


async def test_guide_mqtt_basic_usage(broker: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger=__name__)

    async def stop_after_first_message() -> None:
        client = await _when_ready(lambda: mqtt)
        await _wait_logs(caplog, "Payload:", 1)
        await client.close()

    stopper = asyncio.create_task(stop_after_first_message())

    # --- guide snippet (MQTT Protocol / Basic Usage) ---
    import logging

    logger = logging.getLogger(__name__)

    from agenticaiframework.communication import MQTTClient

    async with MQTTClient(broker.url) as mqtt:
        # Subscribe to topic
        await mqtt.subscribe("agents/+/status")

        # Publish message
        await mqtt.publish(
            topic="agents/agent_01/status",
            payload={"status": "online", "timestamp": "2024-01-15T10:30:00Z"}
        )

        # Receive messages
        async for message in mqtt:
            logger.info(f"Topic: {message.topic}")
            logger.info(f"Payload: {message.payload}")
    # --- end of snippet ---

    await stopper
    text = caplog.text
    assert "Topic: agents/agent_01/status" in text
    assert "Payload: {'status': 'online', 'timestamp': '2024-01-15T10:30:00Z'}" in text


async def test_guide_mqtt_configuration() -> None:
    # --- guide snippet (MQTT Protocol / Configuration) ---
    from agenticaiframework.communication import MQTTClient, MQTTConfig

    config = MQTTConfig(
        # Connection
        host="broker.example.com",
        port=1883,
        client_id="agent_client_01",

        # Authentication
        username="user",
        password="password",

        # TLS/SSL
        use_tls=True,
        ca_certs="/path/to/ca.pem",

        # Quality of Service
        default_qos=1, # 0: At most once, 1: At least once, 2: Exactly once

        # Keep alive
        keepalive=60,

        # Clean session
        clean_session=True
    )

    mqtt = MQTTClient(config=config)
    # --- end of snippet ---

    assert mqtt.config.use_tls and mqtt.config.default_qos == 1
    assert mqtt.config.client_id == "agent_client_01"
    assert "password" not in repr(mqtt.config).replace("password=", "")
    await mqtt.close()


async def test_guide_mqtt_topic_patterns(broker: Mosquitto) -> None:
    broker_url = broker.url

    # --- guide snippet (MQTT Protocol / Topic Patterns) ---
    async with MQTTClient(broker_url) as mqtt:
        # Subscribe to single topic
        await mqtt.subscribe("agents/agent_01/status")

        # Subscribe with single-level wildcard (+)
        await mqtt.subscribe("agents/+/status") # Any agent's status

        # Subscribe with multi-level wildcard (#)
        await mqtt.subscribe("agents/#") # All agent messages

        # Multiple subscriptions
        await mqtt.subscribe([("agents/+/status", 1), # QoS 1
            ("tasks/+/result", 2), # QoS 2
        ])
    # --- end of snippet ---

    assert mqtt.subscriptions == {
        "agents/agent_01/status": 0,
        "agents/+/status": 1,
        "agents/#": 0,
        "tasks/+/result": 2,
    }


async def test_guide_mqtt_message_handling(
    broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    broker_url = broker.url
    caplog.set_level("INFO", logger=__name__)

    async def publish_then_stop() -> None:
        client = await _when_ready(lambda: mqtt)
        async with _MQTTClient(broker_url) as pub:
            await pub.publish("agents/agent_07/status", {"status": "busy"}, qos=1)
            await pub.publish("tasks/task_42/result", "done", qos=1)
            await pub.publish("other/topic", "ignored", qos=1)
        await _wait_logs(caplog, "result:", 1)
        await client.close()

    driver = asyncio.create_task(publish_then_stop())

    # --- guide snippet (MQTT Protocol / Message Handling) ---
    import logging

    logger = logging.getLogger(__name__)

    from agenticaiframework.communication import MQTTClient

    mqtt = MQTTClient(broker_url)

    @mqtt.on_message("agents/+/status")
    async def handle_agent_status(topic, payload):
        agent_id = topic.split("/")[1]
        logger.info(f"Agent {agent_id} status: {payload}")

    @mqtt.on_message("tasks/+/result")
    async def handle_task_result(topic, payload):
        task_id = topic.split("/")[1]
        logger.info(f"Task {task_id} result: {payload}")

    await mqtt.connect()
    await mqtt.start_listening()
    # --- end of snippet ---

    await driver
    text = caplog.text
    assert "Agent agent_07 status: {'status': 'busy'}" in text
    assert "Task task_42 result: done" in text
    assert "ignored" not in text
