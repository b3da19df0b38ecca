"""The one seam between WebSocketClient and the library that speaks the wire.

The client keeps everything that makes it ours above this seam: the URL
policy, redirects (each hop checked, credential headers dropped on another
origin), first-message auth, the close policy, reconnects, message decoding
and request/response. An engine only opens one connection to one URL with the
given headers and carries frames. Two engines exist:

* ``"websockets"`` (the default): the ``websockets`` asyncio API
  (:mod:`~agenticaiframework.communication.websocket.connection`).
* ``"picows"``: picows' core API, frames parsed in C
  (:mod:`~agenticaiframework.communication.websocket.picows_engine`); needs the
  ``picows`` extra.

Contract of an engine's :class:`Link` (what the client relies on):

* Errors use the vocabulary of ``websockets.exceptions``, whatever the engine:
  a closed connection is ``ConnectionClosed`` (with ``rcvd``, ``sent`` and
  ``rcvd_then_sent``), a refused handshake ``InvalidStatus`` (with the
  response's status, headers and body), other handshake faults
  ``InvalidHandshake``/``InvalidMessage``, and OS, TLS and timeout errors as
  they come. So :func:`~agenticaiframework.communication.websocket.client.translate_error`
  maps both engines' faults to the same error of ours.
* A handshake never follows a redirect: it fails with ``InvalidStatus``.
* A whole message may be handed to ``sink`` (text as str, binary as bytes)
  right where it was parsed; when ``sink`` returns False, or is None, the
  message waits for :meth:`Link.recv`. Order is kept either way.
* An incoming message over ``max_size`` closes the connection with 1009.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..core import errors

__all__ = ["DEFAULT_ENGINE", "ENGINES", "DialOptions", "Link", "check_engine", "dial"]

ENGINES = ("websockets", "picows")
"""The engine names ``WebSocketConfig.engine`` accepts."""

DEFAULT_ENGINE = "websockets"
"""The engine of clients whose ``engine`` is None.

websockets, because picows is an optional, compiled extra. With it
installed, ``engine="picows"`` passes every WebSocket test; on 2026-12-02
(benchmarks/bench_websocket.py, a saturated 2-core machine) it measured 3.5x
raw websockets on one-way throughput and 1.3x on echo round trips, 0.9-1.4x
raw picows.
"""

Sink = Callable[[str | bytes], bool]


@dataclass(frozen=True, slots=True)
class DialOptions:
    """What one opening handshake needs, read from ``WebSocketConfig``.

    Attributes:
        headers: Extra handshake headers (auth included), already checked.
        subprotocols: Subprotocols to offer.
        compression: Offer permessage-deflate.
        ping_interval: Seconds between keep-alive pings (0: none).
        ping_timeout: Seconds to wait for a pong before the link is dead.
        close_timeout: Seconds to wait for the closing handshake.
        max_size: Largest incoming message, in bytes.
        ssl: The TLS context for ``wss://``, or None for the default one.
        proxy: Honour the system proxy settings (never for loopback hosts).
    """

    headers: Mapping[str, str]
    subprotocols: Sequence[str]
    compression: bool
    ping_interval: float
    ping_timeout: float
    close_timeout: float
    max_size: int
    ssl: ssl.SSLContext | None
    proxy: bool


class Link(Protocol):
    """One open WebSocket connection, as the client sees it (see the module docstring)."""

    sink: Sink | None

    @property
    def is_open(self) -> bool:
        """Whether frames can be sent (the closing handshake has not started)."""
        ...

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server selected."""
        ...

    @property
    def extension_names(self) -> list[str]:
        """The negotiated extensions (``permessage-deflate``...)."""
        ...

    @property
    def close_code(self) -> int | None:
        """The close code received, once closed (1006 without one)."""
        ...

    @property
    def close_reason(self) -> str | None:
        """The close reason received, once closed."""
        ...

    async def send(self, data: str | bytes, /) -> None:
        """Send one message: str as text, bytes as binary."""
        ...

    async def recv(self) -> str | bytes:
        """The next message the sink did not take."""
        ...

    async def ping(self) -> Awaitable[float]:
        """Send a ping; the awaitable gives the round trip in seconds."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake (bounded by the close timeout)."""
        ...

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        ...

    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake."""
        ...


def check_engine(name: str) -> str:
    """Check that an engine can be used here.

    Args:
        name: One of :data:`ENGINES`.

    Returns:
        The name.

    Raises:
        ConfigError: The engine's library is not installed (``ERR_CONFIG``).
    """
    if name == "picows":
        try:
            import picows  # noqa: F401
        except ImportError:
            raise errors.ConfigError(
                "engine: 'picows' needs the picows package: "
                "pip install 'agenticaiframework-communication[picows]'"
            ) from None
    return name


async def dial(engine: str, url: str, options: DialOptions) -> Link:
    """Open one connection with ``engine`` (one handshake, no redirect followed).

    Args:
        engine: One of :data:`ENGINES`.
        url: The ``ws://`` or ``wss://`` URL, already checked by the client.
        options: The handshake and connection settings.

    Returns:
        The open link.
    """
    if engine == "picows":
        from .picows_engine import dial_picows

        return await dial_picows(url, options)
    from .connection import dial_websockets

    return await dial_websockets(url, options)
