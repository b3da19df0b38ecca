"""ConnectionManager: named clients of any protocol, opened, checked and closed together.

::

    manager = ConnectionManager()
    manager.register("api", HTTPClient("https://api.example.com"))
    manager.register("broker", MQTTClient("mqtts://broker.example.com"))
    async with manager:                      # connects all; failures in connect_errors
        health = await manager.health_check(timeout=2)
        manager.start_monitoring(10, on_change=alert)

Ownership: a registered client belongs to the manager until it is
unregistered; :meth:`ConnectionManager.close` closes every registered client.

Never-connected clients: :meth:`ConnectionManager.health_check` opens a client
that was registered but never connected (its ``connect()`` runs inside the same
per-check timeout), because a registered client is meant to be used and the
verdict should say whether its peer is reachable. A client that failed to
connect is tried again on the next check; a closed client is reported
unhealthy without being probed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from .core import errors
from .core.config import _check_number
from .core.events import EventEmitter
from .core.health import HealthStatus
from .core.lifecycle import ClientState, Lifecycle, TaskSet
from .core.security import redact_text
from .core.telemetry import instrumentation_for

__all__ = ["ConnectionManager", "HealthChangeCallback", "ManagedClient"]

logger = logging.getLogger("agenticaiframework.communication.manager")

HealthChangeCallback = Callable[[str, HealthStatus | None, HealthStatus], Any]
"""``on_change(name, old, new)``; ``old`` is None for a client's first verdict.
May be a plain function or a coroutine function."""


@runtime_checkable
class ManagedClient(Protocol):
    """What the pool and the manager need from a client: every client has it."""

    @property
    def state(self) -> ClientState:
        """The lifecycle state."""
        ...

    @property
    def is_closed(self) -> bool:
        """Whether the client was closed."""
        ...

    async def connect(self) -> None:
        """Open the client (idempotent)."""
        ...

    async def close(self) -> None:
        """Close the client (idempotent)."""
        ...

    def health_check(self) -> Awaitable[HealthStatus]:
        """Probe the peer."""
        ...


class _Entry:
    __slots__ = ("client", "name", "takes_timeout")

    def __init__(self, name: str, client: ManagedClient) -> None:
        self.name = name
        self.client = client
        self.takes_timeout = _takes_timeout(client)


class _TelemetryOptions:
    """The telemetry fields of a client config, for the manager (which has no config)."""

    __slots__ = ("meter_provider", "telemetry", "tracer_provider")

    def __init__(self, telemetry: bool, meter_provider: Any) -> None:
        self.telemetry = telemetry
        self.meter_provider = meter_provider
        self.tracer_provider = None


def _health_observations(manager: ConnectionManager) -> list[tuple[int, dict[str, str]]]:
    return [
        (int(status.is_healthy), {"agentcomm.client.name": name})
        for name, status in manager.last_health.items()
    ]


def _takes_timeout(client: ManagedClient) -> bool:
    """Whether ``client.health_check`` accepts ``timeout=`` (then it gets our budget)."""
    try:
        params = inspect.signature(client.health_check).parameters
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        or (p.name == "timeout" and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
        for p in params.values()
    )


class ConnectionManager(Lifecycle):
    """A registry of named clients with shared lifecycle and health checks.

    Args:
        health_timeout: Default seconds one client's check may take in
            :meth:`health_check` (connecting a never-connected client included).
        connect_timeout: Seconds each client may take to connect in
            :meth:`connect` / ``async with`` (None = the client's own limits).
        meter_provider: An OpenTelemetry ``MeterProvider`` for the manager's
            metrics (health per client, check latency) instead of the global one.
        telemetry: False turns the manager's metrics off.

    Raises:
        ConfigError: A timeout is not a positive number.
    """

    def __init__(
        self,
        *,
        health_timeout: float = 5.0,
        connect_timeout: float | None = 30.0,
        meter_provider: Any = None,
        telemetry: bool = True,
    ) -> None:
        _check_number("health_timeout", health_timeout, allow_equal=False)
        if connect_timeout is not None:
            _check_number("connect_timeout", connect_timeout, allow_equal=False)
        self.health_timeout = float(health_timeout)
        self.connect_timeout = connect_timeout
        super().__init__()
        self._clients: dict[str, _Entry] = {}
        self._tasks = TaskSet("ConnectionManager")
        self._monitor: asyncio.Task[None] | None = None
        self._on_change: HealthChangeCallback | None = None
        self._events = EventEmitter(("health_change", "error"), logger)
        self.connect_errors: dict[str, Exception] = {}
        """Clients that failed to connect in the last :meth:`connect`, by name."""
        self.last_health: dict[str, HealthStatus] = {}
        """The latest verdict of every client checked so far, by name."""
        self._otel = instrumentation_for(_TelemetryOptions(telemetry, meter_provider), "manager")
        self._otel.observe(
            "agentcomm.manager.health",
            "1",
            "1 if the managed client's last health check passed, else 0.",
            self,
            _health_observations,
        )

    # -- registry ---------------------------------------------------------------

    def register(self, name: str, client: Any) -> Any:
        """Add ``client`` under ``name``; the manager owns it from now on.

        A client registered while the manager is open is not connected here;
        the next :meth:`connect` or :meth:`health_check` opens it.

        Args:
            name: A unique, non-empty name.
            client: Any of our clients (anything with ``connect``, ``close``,
                ``state``, ``is_closed`` and ``health_check``).

        Returns:
            The client, so ``api = manager.register("api", HTTPClient(...))`` works.

        Raises:
            ConfigError: Empty or duplicate name, or not a client.
            ClosedError: The manager was closed.
        """
        self._ensure_usable()
        if not isinstance(name, str) or not name:
            raise errors.ConfigError(f"name: must be a non-empty str, got {name!r}")
        if name in self._clients:
            raise errors.ConfigError(f"name: {name!r} is already registered")
        if not isinstance(client, ManagedClient):
            raise errors.ConfigError(
                f"client: {type(client).__name__} lacks connect/close/state/health_check"
            )
        self._clients[name] = _Entry(name, client)
        return client

    def unregister(self, name: str) -> Any:
        """Remove a client and hand it back, open or not (the caller owns it again).

        Args:
            name: A registered name.

        Returns:
            The client, not closed.

        Raises:
            KeyError: No client has that name.
        """
        entry = self._clients.pop(name, None)
        if entry is None:
            raise KeyError(f"no client registered as {name!r}")
        self.connect_errors.pop(name, None)
        self.last_health.pop(name, None)
        return entry.client

    def get(self, name: str) -> Any:
        """The client registered as ``name``.

        Raises:
            KeyError: No client has that name.
        """
        entry = self._clients.get(name)
        if entry is None:
            raise KeyError(f"no client registered as {name!r}")
        return entry.client

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._clients)

    def __contains__(self, name: object) -> bool:
        return name in self._clients

    def __len__(self) -> int:
        return len(self._clients)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._clients))

    # -- lifecycle --------------------------------------------------------------

    async def connect(self) -> dict[str, Exception]:
        """Connect every registered client concurrently.

        One client failing does not stop the others: each failure is logged,
        kept in :attr:`connect_errors` and returned; the clients that did
        connect stay open. A client that takes longer than ``connect_timeout``
        fails with TimeoutError.

        Returns:
            ``{name: error}`` of the clients that failed (empty if none did).

        Raises:
            ClosedError: The manager was closed.
        """
        self._ensure_usable()
        self._state = ClientState.OPEN
        entries = [e for e in self._clients.values() if e.client.state is not ClientState.OPEN]
        results = await asyncio.gather(*(self._connect_one(e) for e in entries))
        failed = {e.name: err for e, err in zip(entries, results, strict=True) if err is not None}
        for entry in entries:
            self.connect_errors.pop(entry.name, None)
        self.connect_errors.update(failed)
        return failed

    async def _connect_one(self, entry: _Entry) -> Exception | None:
        try:
            async with asyncio.timeout(self.connect_timeout) as cm:
                await entry.client.connect()
        except TimeoutError as exc:
            err: Exception = exc
            if cm.expired():
                err = errors.TimeoutError(
                    f"{entry.name}: connect took longer than {self.connect_timeout:g}s"
                )
                err.__cause__ = exc
            logger.warning("client %r failed to connect: %s", entry.name, redact_text(err))
            return err
        except Exception as exc:
            logger.warning("client %r failed to connect: %s", entry.name, redact_text(exc))
            return exc
        return None

    async def close(self) -> None:
        """Stop monitoring and close every registered client (idempotent).

        Every client is closed, concurrently, even if some fail to close; a
        failure is logged and the first one is raised after all are closed.
        """
        if self._state is ClientState.CLOSED:
            return
        self._state = ClientState.CLOSED
        try:
            await self.stop_monitoring()
        finally:
            await self._tasks.cancel_all()
            entries = list(self._clients.values())
            results = await asyncio.gather(
                *(e.client.close() for e in entries), return_exceptions=True
            )
            first: BaseException | None = None
            for entry, result in zip(entries, results, strict=True):
                if isinstance(result, BaseException):
                    logger.error("client %r failed to close", entry.name, exc_info=result)
                    first = first or result
            if first is not None:
                raise first

    # -- health -----------------------------------------------------------------

    async def health_check(self, timeout: float | None = None) -> dict[str, HealthStatus]:
        """Check every client at once, each within ``timeout``.

        Each client's own ``health_check()`` runs concurrently with the others
        (given ``timeout=`` when it accepts one) under a hard deadline, so a
        hung peer is reported unhealthy after ``timeout`` and never delays the
        other verdicts. A never-connected client is connected first, within the
        same deadline; a closed one is reported unhealthy without a probe.
        Safe to cancel.

        Args:
            timeout: Seconds per client; default ``health_timeout``.

        Returns:
            ``{name: HealthStatus}`` in registration order.

        Raises:
            ClosedError: The manager was closed.
            ConfigError: ``timeout`` is not a positive number.
        """
        self._ensure_usable()
        budget = self.health_timeout if timeout is None else timeout
        _check_number("timeout", budget, allow_equal=False)
        entries = list(self._clients.values())
        results = await asyncio.gather(*(self._check_one(e, budget) for e in entries))
        verdicts = {e.name: r for e, r in zip(entries, results, strict=True)}
        self.last_health.update(verdicts)
        if self._otel.metering:
            for name, verdict in verdicts.items():
                self._otel.record(
                    "agentcomm.manager.health_check.duration",
                    verdict.latency_ms / 1000,
                    {"agentcomm.client.name": name, "agentcomm.healthy": verdict.is_healthy},
                )
        return verdicts

    async def _check_one(self, entry: _Entry, budget: float) -> HealthStatus:
        client = entry.client
        start = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - start) * 1000

        if client.is_closed:
            return HealthStatus(False, 0.0, f"{entry.name}: client is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        step = "connect"
        try:
            async with asyncio.timeout_at(deadline) as cm:
                if client.state is ClientState.UNOPENED:
                    await client.connect()
                step = "health_check"
                if entry.takes_timeout:
                    remaining = max(deadline - loop.time(), 0.001)
                    status = await client.health_check(timeout=remaining)  # type: ignore[call-arg]
                else:
                    status = await client.health_check()
        except TimeoutError as exc:
            if cm.expired():
                return HealthStatus(
                    False, elapsed(), f"{entry.name}: {step} gave no answer within {budget:g}s"
                )
            return HealthStatus(
                False, elapsed(), redact_text(f"{entry.name}: {step} failed: {exc}")
            )
        except Exception as exc:
            return HealthStatus(
                False, elapsed(), redact_text(f"{entry.name}: {step} failed: {exc}")
            )
        if not isinstance(status, HealthStatus):
            return HealthStatus(
                False, elapsed(), f"{entry.name}: health_check returned {type(status).__name__}"
            )
        # A client of the user's own may report a URL with its secrets.
        detail = redact_text(status.detail)
        return status if detail == status.detail else dataclasses.replace(status, detail=detail)

    # -- monitoring -------------------------------------------------------------

    @property
    def is_monitoring(self) -> bool:
        """Whether background monitoring is running."""
        return self._monitor is not None and not self._monitor.done()

    def start_monitoring(
        self,
        interval: float,
        on_change: HealthChangeCallback | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Check every client every ``interval`` seconds in a background task.

        ``on_change(name, old, new)`` is called (awaited if it is a coroutine
        function) for each client's first verdict (``old`` is None) and then
        whenever its ``is_healthy`` flips. A raising callback is logged and
        never stops monitoring. Stopped by :meth:`stop_monitoring` or
        :meth:`close`. Must be called inside a running event loop.

        Args:
            interval: Seconds between the starts of two rounds of checks.
            on_change: The callback (sync or async).
            timeout: Seconds per client check; default
                ``min(health_timeout, interval)``.

        Raises:
            ConfigError: ``interval`` or ``timeout`` is not a positive number.
            ClosedError: The manager was closed.
            RuntimeError: Monitoring is already running, or no running loop.
        """
        self._ensure_usable()
        _check_number("interval", interval, allow_equal=False)
        budget = min(self.health_timeout, interval) if timeout is None else timeout
        _check_number("timeout", budget, allow_equal=False)
        if self.is_monitoring:
            raise RuntimeError("monitoring is already running; call stop_monitoring() first")
        asyncio.get_running_loop()
        if on_change is not None:
            self._events.on("health_change", on_change)
        self._on_change = on_change
        self._monitor = self._tasks.spawn(self._monitor_loop(interval, budget), "monitor")

    async def stop_monitoring(self) -> None:
        """Stop background monitoring and wait until it has stopped (idempotent).

        Raises:
            Exception: Whatever unexpected error ended the monitor task early
                (it was also logged when it happened).
        """
        task, self._monitor = self._monitor, None
        if self._on_change is not None:
            self._events.off("health_change", self._on_change)
            self._on_change = None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    async def _monitor_loop(self, interval: float, budget: float) -> None:
        loop = asyncio.get_running_loop()
        previous: dict[str, HealthStatus] = {}
        try:
            while True:
                started = loop.time()
                verdicts = await self.health_check(budget)
                for name, new in verdicts.items():
                    old = previous.get(name)
                    if old is None or old.is_healthy != new.is_healthy:
                        await self._events.emit("health_change", name, old, new)
                previous = verdicts
                await asyncio.sleep(max(0.0, interval - (loop.time() - started)))
        except errors.ClosedError:
            return
        except Exception:
            logger.exception("health monitoring stopped by an unexpected error")
            raise

    def __repr__(self) -> str:
        return f"<ConnectionManager clients={len(self._clients)} state={self._state.value}>"
