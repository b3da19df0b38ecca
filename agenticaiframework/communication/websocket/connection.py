"""websockets' connection and connect(), adapted: a fast path, no redirects of their own.

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
decompression and the size check), and the sink puts it where the consumer
waits.

Order is kept by construction: a frame is offered only when nothing waits in
the Assembler (so a message queued there earlier, e.g. a fragmented one, is
never overtaken) and no fragmented message is half received. Anything the
sink declines (it returns False: a handler must run, the inbox is full, the
message does not decode...) takes the ordinary path through the Assembler and
the reader task, which handles every case.
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

__all__ = ["NoRedirectConnect", "SinkConnection"]

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT


class SinkConnection(ClientConnection):
    """ClientConnection with a synchronous fast path for single-frame messages."""

    sink: Callable[[Frame], bool] | None = None
    """Called with each whole single-frame message; True when it took the message."""

    _fragmented = False

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
                    and sink(event)
                ):
                    return
            elif opcode is _CONT and event.fin:
                self._fragmented = False
        super().process_event(event)


class NoRedirectConnect(connect):
    """websockets' ``connect`` that never follows a redirect (the client checks each hop)."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        """Decline every redirect: the handshake fails with the response in ``exc``."""
        return exc
