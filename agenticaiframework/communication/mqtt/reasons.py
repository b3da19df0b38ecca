"""MQTT reason codes as our errors, the same for every engine."""

from __future__ import annotations

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from ..core import errors

__all__ = ["AUTH_CONNACK_CODES", "MQTTAuthError", "reason_error", "reason_name"]

AUTH_CONNACK_CODES = frozenset({4, 5, 134, 135})  # 3.1.1 bad creds/not authorised; MQTT 5 same
_AUTH_REASONS = frozenset({0x86, 0x87, 0x8C})  # bad credentials, not authorized, bad auth method


class MQTTAuthError(errors.AuthenticationError):
    """The broker refused an operation as not authorized (``ERR_AUTH``).

    Attributes:
        reason_code: The MQTT 5 reason code (0x87 not authorized, 0x86 bad
            user name or password, 0x8C bad authentication method).
    """

    def __init__(self, message: str, *, reason_code: int) -> None:
        super().__init__(message)
        self.reason_code = reason_code


def reason_name(code: int, packet: int = PacketTypes.DISCONNECT) -> str:
    """The MQTT 5 name of a reason code (``"Not authorized"``), or ``"refused"``."""
    for kind in (packet, PacketTypes.DISCONNECT, PacketTypes.SUBACK, PacketTypes.PUBACK):
        try:
            name: str = ReasonCode(kind, identifier=code).getName()  # type: ignore[no-untyped-call]
        except (ValueError, KeyError):
            continue
        if name:
            return name
    return "refused"


def reason_error(
    code: int, what: str, packet: int = PacketTypes.DISCONNECT
) -> errors.CommunicationError:
    """The error for an MQTT 5 failure reason code (>= 0x80), the reason kept.

    Not authorized and bad credentials are :class:`MQTTAuthError` (``ERR_AUTH``);
    every other code is a :class:`RemoteError` whose ``remote_code`` is the code.

    Args:
        code: The reason code.
        what: What failed, e.g. ``"publish to 'a/b'"``.
        packet: The packet type that carried it (for the name).

    Returns:
        The error.
    """
    text = f"MQTT {what}: broker answered {reason_name(code, packet)} (0x{code:02X})"
    if code in _AUTH_REASONS:
        return MQTTAuthError(text, reason_code=code)
    return errors.RemoteError(text, remote_code=code)
