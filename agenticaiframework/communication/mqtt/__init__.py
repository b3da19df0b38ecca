"""MQTT: :class:`MQTTClient` on aiomqtt, and I/O-free topic matching (``topics.py``)."""

from .client import (
    MessageHandler,
    MQTTClient,
    MQTTMessage,
)

__all__ = [
    "MQTTClient",
    "MQTTMessage",
    "MessageHandler",
]
