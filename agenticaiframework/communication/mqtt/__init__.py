"""MQTT: :class:`MQTTClient` on aiomqtt or gmqtt (``engine=``), and I/O-free topic matching."""

from .client import (
    MessageHandler,
    MQTTAuthError,
    MQTTClient,
    MQTTMessage,
)

__all__ = [
    "MQTTAuthError",
    "MQTTClient",
    "MQTTMessage",
    "MessageHandler",
]
