"""MQTT: :class:`MQTTClient` on aiomqtt, and I/O-free topic matching (``topics.py``)."""

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
