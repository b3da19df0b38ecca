"""The seam between :class:`MQTTClient` and an MQTT library: one engine per connection.

An engine makes one connection (CONNECT .. DISCONNECT) and nothing more: the
client owns reconnecting, queues, subscriptions, routing and errors. Two
engines exist, chosen by ``MQTTConfig.engine``:

* ``"aiomqtt"`` (default): :mod:`.aiomqtt_engine`, aiomqtt on paho-mqtt;
* ``"gmqtt"``: :mod:`.gmqtt_engine`, gmqtt (the ``mqtt-gmqtt`` extra).

What both share lives here and in :mod:`.properties` / :mod:`.reasons`:
the outgoing :class:`Item`, the incoming message tuple, the connection
settings, topic aliases and the errors an engine raises.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..core import errors
from .properties import PropsOut

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "ConnectRefused",
    "EarlyClose",
    "Engine",
    "EngineBase",
    "Incoming",
    "Item",
    "Lost",
    "Settings",
    "TopicAliases",
    "engine_class",
]

Incoming = tuple[bytes, bytes, int, bool, int, Any]
"""A received PUBLISH: (topic bytes, payload, qos, retain, packet id, properties).

The topic is the raw bytes (checked as UTF-8 by the client); properties are
what the engine's library parsed (see :func:`.properties.read`), or None.
"""

ENGINES: dict[str, tuple[str, str, str]] = {
    # name -> (module, class, extra to install)
    "aiomqtt": (".aiomqtt_engine", "AiomqttEngine", ""),
    "gmqtt": (".gmqtt_engine", "GmqttEngine", "mqtt-gmqtt"),
}

DEFAULT_ENGINE = "aiomqtt"
"""The engine of a config whose ``engine`` is None."""

TOPIC_ALIAS_MAXIMUM = 64
"""Topic aliases we accept from the broker (sent in CONNECT once MQTT 5 is settled)."""


class Item:
    """A publish on its way out (or waiting in the client's queue)."""

    __slots__ = ("data", "props", "qos", "retain", "topic")

    def __init__(
        self, topic: str, data: bytes, qos: int, retain: bool, props: PropsOut | None = None
    ) -> None:
        self.topic = topic
        self.data = data
        self.qos = qos
        self.retain = retain
        self.props = props


@dataclass(frozen=True)
class Settings:
    """What one connection needs; built by the client from its config."""

    host: str
    port: int
    client_id: str | None
    username: str | None
    password: str | None
    v5: bool
    clean_session: bool
    session_expiry: int  # MQTT 5 only
    keepalive: int
    timeout: float
    ssl: ssl.SSLContext | None
    will: tuple[str, bytes, int, bool] | None  # topic, payload, qos, retain
    logger: logging.Logger
    topic_aliases: int = 0
    """Topic Alias Maximum sent in CONNECT (MQTT 5): aliases the broker may use toward us."""


class Lost(Exception):
    """The connection died under an operation (a publish is re-queued or fails)."""


class ConnectRefused(errors.ConnectionError):
    """The broker answered CONNECT with a refusal (``reason`` is its return/reason code)."""

    def __init__(self, message: str, *, reason: int) -> None:
        super().__init__(message)
        self.reason = reason


class EarlyClose(errors.ConnectionError):
    """The broker closed the connection before its CONNACK."""


class TopicAliases:
    """Outgoing topic aliases of one connection (MQTT 5).

    The first ``maximum`` distinct topics published get an alias; the
    first PUBLISH of a topic sends topic and alias, later ones the alias
    with an empty topic. The broker forgets aliases with the connection, so
    a new connection starts over (a new engine, a new instance).
    """

    __slots__ = ("_aliases", "_maximum")

    def __init__(self, maximum: int) -> None:
        self._maximum = maximum
        self._aliases: dict[str, int] = {}

    def use(self, topic: str) -> tuple[int, bool]:
        """The alias for ``topic`` and whether it is already known to the broker.

        Returns:
            ``(alias, known)``; ``(0, False)`` when no alias is left.
        """
        alias = self._aliases.get(topic)
        if alias is not None:
            return alias, True
        if len(self._aliases) >= self._maximum:
            return 0, False
        alias = self._aliases[topic] = len(self._aliases) + 1
        return alias, False


class EngineBase:
    """The state every engine starts a connection with, and incoming topic aliases."""

    def __init__(self, settings: Settings, deliver: Callable[[Incoming], None]) -> None:
        self.deliver = deliver
        self.acks: dict[int, tuple[asyncio.Future[bool], Item]] = {}
        self.session_present = False
        self.server_disconnect: int | None = None
        self.sids_available = False
        self.max_packet: int | None = None
        self._settings = settings
        self._aliases_in: dict[int, bytes] = {}
        self._aliases_out: TopicAliases | None = None

    def incoming_alias(self, topic: bytes, alias: int) -> bytes | None:
        """Resolve an incoming topic alias (MQTT 5); None for an unknown one (dropped)."""
        if topic:
            if 0 < alias <= self._settings.topic_aliases:
                self._aliases_in[alias] = topic
            return topic
        known = self._aliases_in.get(alias)
        if known is None:
            self._settings.logger.warning("dropped a message with unknown topic alias %d", alias)
        return known


class Engine(Protocol):
    """What :class:`MQTTClient` needs of one connection."""

    deliver: Callable[[Incoming], None]
    acks: dict[int, tuple[asyncio.Future[bool], Item]]
    """Unacknowledged QoS 1/2 publishes by packet id (settled by the client when lost)."""
    session_present: bool
    server_disconnect: int | None
    """Reason code of a DISCONNECT sent by the broker, if one came."""
    sids_available: bool
    max_packet: int | None
    """The broker's Maximum Packet Size (MQTT 5), if it set one."""

    @property
    def is_connected(self) -> bool:
        """Connected (CONNACK received) and not yet lost."""
        ...

    async def connect(self) -> None:
        """CONNECT and wait for the CONNACK (the caller bounds the wait).

        Raises:
            ConnectRefused: The broker refused (AuthenticationError for credentials).
            EarlyClose: The broker hung up before its CONNACK.
            CommunicationError: Any other failure, translated.
        """
        ...

    async def send(self, item: Item) -> bool:
        """Publish: return once written (QoS 0) or acknowledged (QoS 1/2).

        Returns:
            True when delivered; False when the link died first and the
            client settled (re-queued) it.

        Raises:
            Lost: The link is down and the message was not taken.
            CommunicationError: The broker refused it (a reason code).
        """
        ...

    async def subscribe(
        self,
        entries: list[tuple[str, int, tuple[bool, bool, int] | None]],
        sid: int | None,
        timeout: float,
    ) -> list[int]:
        """One SUBSCRIBE; the reason code (granted QoS or failure) per filter.

        Args:
            entries: (filter, qos, (no_local, retain_as_published, retain_handling) or None).
            sid: The subscription identifier (MQTT 5), or None.
            timeout: Seconds to wait for the SUBACK.

        Raises:
            CommunicationError: No SUBACK (lost or timed out).
        """
        ...

    async def unsubscribe(self, filters: list[str], timeout: float) -> None:
        """One UNSUBSCRIBE, waiting for the UNSUBACK."""
        ...

    def pause_reading(self) -> None:
        """Stop reading the socket (back-pressure) until :meth:`resume_reading`."""
        ...

    def resume_reading(self) -> None:
        """Read the socket again."""
        ...

    async def wait_disconnected(self) -> BaseException | None:
        """Wait until the connection ends; the reason, or None when clean."""
        ...

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (a plain function) as soon as the connection ends."""
        ...

    async def shutdown(self, timeout: float) -> None:
        """Disconnect (gracefully when possible) and release socket and tasks."""
        ...


def engine_class(name: str | None) -> Callable[[Settings, Callable[[Incoming], None]], Engine]:
    """The engine class called ``name`` (None: :data:`DEFAULT_ENGINE`), imported on first use.

    Raises:
        ConfigError: Unknown name, or the engine's library is not installed
            (the message names the extra to install).
    """
    name = DEFAULT_ENGINE if name is None else name
    try:
        module_name, class_name, extra = ENGINES[name]
    except KeyError:
        raise errors.ConfigError(
            f"engine: must be one of {', '.join(map(repr, ENGINES))}, got {name!r}"
        ) from None
    try:
        module = importlib.import_module(module_name, __package__)
    except ImportError as exc:
        raise errors.ConfigError(
            f"engine={name!r} needs the {exc.name or name} library: "
            f"pip install 'agenticaiframework-communication[{extra}]'"
        ) from exc
    cls: Callable[[Settings, Callable[[Incoming], None]], Engine] = getattr(module, class_name)
    return cls
