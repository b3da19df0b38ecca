"""The small event emitter shared by WebSocket, MQTT and STDIO.

Handlers may be plain functions or coroutine functions. A handler that raises
is logged and reported on the ``error`` event; it never stops the caller (the
reader loop). Emitting an event nobody listens to costs one dict lookup.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["EventEmitter", "Handler"]

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)


class EventEmitter:
    """Register handlers per event name and call them in order.

    Args:
        events: The event names allowed; others raise ``ValueError`` on ``on``.
        logger: Where raising handlers are logged.
    """

    def __init__(self, events: Iterable[str], logger: logging.Logger) -> None:
        self._allowed = frozenset(events)
        self._handlers: dict[str, list[Handler]] = {}
        self._logger = logger

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register ``handler`` for ``event``; usable as a decorator.

        Args:
            event: The event name.
            handler: The handler; omit it to use ``on`` as a decorator.

        Returns:
            The handler (decorator form) so the function stays usable.

        Raises:
            ValueError: Unknown event name, or handler not callable.
        """
        if event not in self._allowed:
            raise ValueError(
                f"unknown event {event!r}; expected one of {', '.join(sorted(self._allowed))}"
            )

        def register(fn: H) -> H:
            if not callable(fn):
                raise ValueError(f"handler for {event!r} must be callable, got {fn!r}")
            self._handlers.setdefault(event, []).append(fn)
            return fn

        if handler is None:
            return register
        return register(handler)

    def off(self, event: str, handler: Handler) -> None:
        """Remove a handler; unknown handlers are ignored.

        Args:
            event: The event name.
            handler: The handler registered before.
        """
        handlers = self._handlers.get(event)
        if handlers and handler in handlers:
            handlers.remove(handler)

    def has(self, event: str) -> bool:
        """Whether any handler listens to ``event``.

        Args:
            event: The event name.

        Returns:
            True when at least one handler is registered.
        """
        return bool(self._handlers.get(event))

    async def emit(self, event: str, *args: Any) -> None:
        """Call every handler of ``event`` with ``args``, in registration order.

        A raising handler is logged and reported on ``error`` (an ``error``
        handler that raises is only logged). Cancellation propagates.

        Args:
            event: The event name.
            *args: Positional arguments for the handlers.
        """
        handlers = self._handlers.get(event)
        if not handlers:
            return
        for handler in tuple(handlers):
            try:
                result = handler(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                self._logger.exception("%r handler %r raised", event, handler)
                if event != "error":
                    await self.emit("error", exc)
