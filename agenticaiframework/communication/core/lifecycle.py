"""Lifecycle shared by every client: state, ``async with``, owned tasks, counters.

A client goes UNOPENED -> OPEN (-> FAILED) -> CLOSED and never back: ``connect()`` and
``close()`` are idempotent, and using a closed client raises
:class:`~agenticaiframework.communication.core.errors.ClosedError`. Background
work runs in named tasks held by a :class:`TaskSet`; ``close()`` cancels and
awaits every one of them.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from .errors import ClosedError
from .telemetry import DISABLED, Instrumentation, instrumentation_for

__all__ = ["BaseClient", "ClientState", "ClientStats", "ClosesOnExit", "Lifecycle", "TaskSet"]


class ClientState(enum.Enum):
    """Where a client is in its life.

    FAILED is an OPEN client that gave up for good (reconnecting ran out):
    every operation raises its ConnectionError; ``close()`` still releases it.
    """

    UNOPENED = "unopened"
    OPEN = "open"
    FAILED = "failed"
    CLOSED = "closed"


@dataclass
class ClientStats:
    """Counters every client keeps.

    Attributes:
        sent: Messages (or requests) sent.
        received: Messages (or responses) received.
        bytes_sent: Payload bytes sent, where known.
        bytes_received: Payload bytes received, where known.
        reconnects: Successful reconnects.
        errors: Errors seen (failed sends, bad frames, handler failures...).
    """

    sent: int = 0
    received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    reconnects: int = 0
    errors: int = 0


class TaskSet:
    """Named background tasks owned by one client; cancelled and awaited together."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start ``coro`` as a task owned by this set.

        Args:
            coro: The coroutine.
            name: A short name (prefixed with the owner) for debugging.

        Returns:
            The task; it leaves the set when it finishes.
        """
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self) -> None:
        """Cancel every task and wait until all have finished.

        Exceptions of the tasks are collected, not raised (they were reported
        by the tasks themselves); the caller's own cancellation propagates.
        """
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class ClosesOnExit(abc.ABC):
    """``async with`` ends with ``await self.close()``, however the block ended."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close (idempotent)."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Lifecycle(ClosesOnExit):
    """UNOPENED -> OPEN -> CLOSED, ``async with``, and the closed check.

    Shared by every client (through :class:`BaseClient`) and by the
    ConnectionManager; subclasses define what ``connect()`` and ``close()`` do.
    """

    def __init__(self) -> None:
        self._state = ClientState.UNOPENED

    @property
    def state(self) -> ClientState:
        """UNOPENED until ``connect()``, OPEN, then CLOSED for good."""
        return self._state

    @property
    def is_closed(self) -> bool:
        """Whether ``close()`` has been called."""
        return self._state is ClientState.CLOSED

    def _ensure_usable(self) -> None:
        if self._state is ClientState.CLOSED:
            raise ClosedError(f"{type(self).__name__} is closed")

    @abc.abstractmethod
    async def connect(self) -> object:
        """Open (idempotent)."""

    async def __aenter__(self) -> Self:
        await self.connect()
        return self


class BaseClient(Lifecycle):
    """Shared ``async with`` / ``connect()`` / ``close()`` behaviour.

    Subclasses implement ``_open()`` and ``_close()``; this class makes both
    idempotent and forbids reopening after close.
    """

    _protocol: str = "base"

    def __init__(self) -> None:
        super().__init__()
        self._state_lock: asyncio.Lock | None = None
        self._tasks = TaskSet(type(self).__name__)
        self.stats = ClientStats()
        self.logger = logging.getLogger(f"agenticaiframework.communication.{self._protocol}")
        # OpenTelemetry: resolved at connect (after the application set its SDK up).
        self._otel: Instrumentation = DISABLED

    def _lock(self) -> asyncio.Lock:
        if self._state_lock is None:
            self._state_lock = asyncio.Lock()
        return self._state_lock

    async def connect(self) -> None:
        """Open the client (idempotent).

        Raises:
            ClosedError: The client was closed before.
        """
        if self._state is ClientState.OPEN:
            return
        self._ensure_usable()
        async with self._lock():
            if self.state is ClientState.OPEN:  # opened while we waited
                return
            self._ensure_usable()
            self._otel = instrumentation_for(getattr(self, "config", None), self._protocol)
            await self._open()
            self._state = ClientState.OPEN

    async def close(self) -> None:
        """Close the client and everything it started (idempotent).

        Safe to call twice and from any state; background tasks are cancelled
        and awaited before it returns.
        """
        if self._state is ClientState.CLOSED:
            return
        self._state = ClientState.CLOSED
        try:
            await self._close()
        finally:
            await self._tasks.cancel_all()

    @abc.abstractmethod
    async def _open(self) -> None:
        """Open the protocol connection."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Release the protocol connection."""
