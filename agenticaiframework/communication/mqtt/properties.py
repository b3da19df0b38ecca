"""MQTT 5 PUBLISH properties, one representation for every engine.

Outgoing properties are a plain dict keyed by the names below (``PropsOut``);
each engine turns it into what its library sends. Incoming properties stay as
the engine's library parsed them (paho ``Properties`` from aiomqtt, a dict of
lists from gmqtt): :func:`read` reads one property from either, so that a
message's properties are only looked at when the user asks for them.
"""

from __future__ import annotations

from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["NAMES", "UTF8", "PropsOut", "block_length", "read", "to_paho"]

PropsOut = dict[str, Any]
"""Outgoing PUBLISH properties: keys from :data:`NAMES`."""

# our name -> (paho attribute, gmqtt key, property id, wire type)
NAMES: dict[str, tuple[str, str, int, str]] = {
    "payload_format": ("PayloadFormatIndicator", "payload_format_id", 0x01, "byte"),
    "message_expiry": ("MessageExpiryInterval", "message_expiry_interval", 0x02, "int4"),
    "content_type": ("ContentType", "content_type", 0x03, "str"),
    "response_topic": ("ResponseTopic", "response_topic", 0x08, "str"),
    "correlation_data": ("CorrelationData", "correlation_data", 0x09, "bin"),
    "subscription_identifiers": ("SubscriptionIdentifier", "subscription_identifier", 0x0B, "vbi"),
    "topic_alias": ("TopicAlias", "topic_alias", 0x23, "int2"),
    "user_properties": ("UserProperty", "user_property", 0x26, "pairs"),
}
_PAHO = {paho: ours for ours, (paho, _, _, _) in NAMES.items()}
_GMQTT = {paho: gmqtt for paho, gmqtt, _, _ in NAMES.values()}
_MULTIPLE = frozenset({"UserProperty", "SubscriptionIdentifier"})

UTF8: PropsOut = {"payload_format": 1}
"""Shared, never changed: a text or JSON payload without other properties."""


def read(props: Any, paho_name: str) -> Any:
    """One property of a received message, whatever engine parsed it.

    Args:
        props: paho ``Properties``, a gmqtt dict of lists, or None.
        paho_name: The paho attribute name, e.g. ``"UserProperty"``.

    Returns:
        The value (a list for user properties and subscription
        identifiers), or None when absent.
    """
    if props is None:
        return None
    if type(props) is dict:
        values = props.get(_GMQTT[paho_name])
        if not values:
            return None
        return values if paho_name in _MULTIPLE else values[0]
    return getattr(props, paho_name, None)


def to_paho(props: PropsOut, packet: int = PacketTypes.PUBLISH) -> Properties:
    """A paho ``Properties`` holding ``props`` (our names).

    Args:
        props: The properties.
        packet: The paho packet type.

    Returns:
        A new ``Properties``.
    """
    out = Properties(packet)  # type: ignore[no-untyped-call]
    for name, value in props.items():
        attr = NAMES[name][0]
        if attr == "UserProperty":
            value = [tuple(pair) for pair in value]
        elif attr == "SubscriptionIdentifier" and isinstance(value, list):
            value = value[0]
        setattr(out, attr, value)
    return out


def gmqtt_to_paho(props: dict[str, list[Any]]) -> Properties:
    """A paho ``Properties`` holding what gmqtt parsed (for ``MQTTMessage.properties``)."""
    out = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for paho_name, gmqtt in _GMQTT.items():
        values = props.get(gmqtt)
        if values:
            if paho_name == "UserProperty":
                out.UserProperty = [tuple(pair) for pair in values]
            elif paho_name == "SubscriptionIdentifier":
                out.SubscriptionIdentifier = list(values)
            else:
                setattr(out, paho_name, values[0])
    return out


def _vbi_length(n: int) -> int:
    return 1 if n < 128 else 2 if n < 16384 else 3 if n < 2097152 else 4


def block_length(props: PropsOut | None) -> int:
    """Bytes the properties take in a PUBLISH, their length prefix included."""
    if not props:
        return 1
    size = 0
    for name, value in props.items():
        kind = NAMES[name][3]
        if kind == "byte":
            size += 2
        elif kind == "int2":
            size += 3
        elif kind == "int4":
            size += 5
        elif kind == "str":
            size += 3 + len(value.encode())
        elif kind == "bin":
            size += 3 + len(value)
        elif kind == "vbi":
            size += 1 + _vbi_length(value)
        else:
            size += sum(5 + len(k.encode()) + len(v.encode()) for k, v in value)
    return size + _vbi_length(size)
