"""MQTTClient: topic handlers, QoS 1 publishes and a health check.

Starts Mosquitto as a child process on a free 127.0.0.1 port (temporary
config: ``listener PORT 127.0.0.1``, ``allow_anonymous true``) and stops it at
the end. Needs the ``mosquitto`` binary (``apt-get install -y mosquitto``).
Run: ``python examples/mqtt_example.py``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from agenticaiframework.communication import MQTTClient
from agenticaiframework.communication.testing.servers import (
    MOSQUITTO_INSTALL_HINT,
    find_mosquitto,
    serve_mosquitto,
)


async def main() -> int:
    """Route two agents' status messages to a handler."""
    binary = find_mosquitto()
    if binary is None:
        print(f"mosquitto is not installed: {MOSQUITTO_INSTALL_HINT}", file=sys.stderr)
        return 1
    async with serve_mosquitto(binary) as broker_url:
        print(f"broker: {broker_url}")
        mqtt = MQTTClient(broker_url, client_id="example-agent", default_qos=1)
        done = asyncio.Event()
        seen: dict[str, Any] = {}

        @mqtt.on_message("agents/+/status")
        def on_status(topic: str, payload: Any) -> None:
            print(f"{topic}: {payload}")
            seen[topic] = payload
            if len(seen) == 2:
                done.set()

        async with mqtt:
            listener = asyncio.create_task(mqtt.start_listening(), name="mqtt-listener")
            await mqtt.publish("agents/a1/status", {"status": "online"})
            await mqtt.publish("agents/a2/status", {"status": "busy", "load": 0.7})
            await asyncio.wait_for(done.wait(), 10)
            status = await mqtt.health_check()
            print(f"healthy={status.is_healthy} latency={status.latency_ms:.1f} ms")
            await mqtt.close()  # start_listening() returns
            await listener
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
