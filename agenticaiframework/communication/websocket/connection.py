"""The ``websockets`` engine: its connection and connect(), adapted to the engine seam.

:func:`dial_websockets` opens one connection for
:func:`~agenticaiframework.communication.websocket.engine.dial`; the connection
is a :class:`~agenticaiframework.communication.websocket.engine.Link`.

:class:`NoRedirectConnect` is websockets' ``connect`` except that a redirect
ends the handshake (``InvalidStatus`` with the 3xx response): the client
follows redirects itself, so that each hop passes the URL policy and
credential headers never reach another origin (websockets would follow up to
ten hops unchecked and forward ``X-API-Key`` and the like).

websockets queues every received frame in its ``Assembler`` and a task
awaiting ``recv()`` picks it up one event-loop pass later. Our client already
runs a reader task (it owns reconnects, handlers and the close policy), so a
message going through ``recv()`` would wake two tasks: the reader, then the
consumer. :class:`SinkConnection` skips the first: a message that arrives in
one frame is offered to ``sink`` right where the protocol parsed it (after
decompression and the size check; text decoded to str), and the sink puts it
where the consumer waits.

Order is kept by construction: a frame is offered only when nothing waits in
the Assembler (so a message queued there earlier, e.g. a fragmented one, is
never overtaken) and no fragmented message is half received. Anything the
sink declines (it returns False: a handler must run, the inbox is full, the
message does not decode...) takes the ordinary path through the Assembler and
the reader task, which handles every case.
"""

from __future__ import annotations

from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State
from websockets.uri import parse_uri

from ..core.security import is_loopback_host
from .engine import DialOptions, Sink

__all__ = ["NoRedirectConnect", "SinkConnection", "dial_websockets"]

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
_OPEN = State.OPEN


class SinkConnection(ClientConnection):
    """ClientConnection with a synchronous fast path for single-frame messages."""

    sink: Sink | None = None
    """Called with each whole single-frame message; True when it took the message."""

    _fragmented = False

    @property
    def is_open(self) -> bool:
        """Whether frames can be sent."""
        return self.protocol.state is _OPEN

    @property
    def extension_names(self) -> list[str]:
        """Names of the negotiated extensions."""
        return [ext.name for ext in self.protocol.extensions]

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        self.transport.abort()

    def process_event(self, event: Event) -> None:
        """Offer a whole message to the sink, else process it as websockets does."""
        if type(event) is Frame:
            opcode = event.opcode
            if opcode is _TEXT or opcode is _BINARY:
                if not event.fin:
                    self._fragmented = True
                elif (
                    (sink := self.sink) is not None
                    and not self._fragmented
                    and not self.recv_messages.frames
                ):
                    if opcode is _BINARY:
                        if sink(bytes(event.data)):
                            return
                    else:
                        try:
                            text = bytes(event.data).decode()
                        except UnicodeDecodeError:
                            pass  # websockets closes with 1007 on the ordinary path
                        else:
                            if sink(text):
                                return
            elif opcode is _CONT and event.fin:
                self._fragmented = False
        super().process_event(event)


class NoRedirectConnect(connect):
    """websockets' ``connect`` that never follows a redirect (the client checks each hop)."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        """Decline every redirect: the handshake fails with the response in ``exc``."""
        return exc


async def dial_websockets(url: str, options: DialOptions) -> SinkConnection:
    """One opening handshake with websockets (no redirect followed, no deadline of its own).

    Args:
        url: The URL.
        options: The handshake and connection settings.

    Returns:
        The open connection.
    """
    kwargs: dict[str, Any] = {}
    if options.ssl is not None and url[:4].lower() == "wss:":
        kwargs["ssl"] = options.ssl
    # A system proxy is honoured, except for loopback targets.
    proxy: Literal[True] | None = (
        True if options.proxy and not is_loopback_host(parse_uri(url).host) else None
    )
    conn = await NoRedirectConnect(
        url,
        additional_headers=dict(options.headers) or None,
        subprotocols=list(options.subprotocols) or None,  # type: ignore[arg-type]
        compression="deflate" if options.compression else None,
        open_timeout=None,  # the caller's deadline covers every hop
        ping_interval=options.ping_interval or None,
        ping_timeout=options.ping_timeout or None,
        close_timeout=options.close_timeout or None,
        max_size=options.max_size,
        proxy=proxy,
        create_connection=SinkConnection,
        **kwargs,
    )
    assert isinstance(conn, SinkConnection)
    return conn
