"""The Mosquitto broker: now public, in agenticaiframework.communication.testing.mqtt.

``Mosquitto`` is :class:`~agenticaiframework.communication.testing.mqtt.MosquittoBroker`
under the name the tests know; it raises with the install command when the
binary is missing (it never skips).
"""

from agenticaiframework.communication.testing.mqtt import (
    MOSQUITTO_INSTALL_HINT,
    find_mosquitto,
)
from agenticaiframework.communication.testing.mqtt import (
    MosquittoBroker as Mosquitto,
)

__all__ = ["MOSQUITTO_INSTALL_HINT", "Mosquitto", "find_mosquitto"]
