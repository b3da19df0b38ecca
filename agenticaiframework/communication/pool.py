"""ConnectionPool: connected clients shared per origin, under hard limits.

::

    pool = ConnectionPool(protocol="http", max_connections=10, max_connections_per_host=5)
    async with pool.get_connection("https://api.example.com") as conn:
        response = await conn.get("/data")

What a borrower gets, by protocol (the pool's ``config=`` is passed on as the
client's ``config=``):

=============  ==========================================  =====================
protocol       client                                      reused for
=============  ==========================================  =====================
``http``       ``HTTPClient(base_url=<origin of url>)``     the same origin
``sse``        ``SSEClient(url)``                           the same URL
``websocket``  ``WebSocketClient(url)``                     the same URL
``mqtt``       ``MQTTClient(<scheme://host:port>)``         the same broker
``grpc``       ``GRPCClient(target)``                       the same target
=============  ==========================================  =====================

Limits count clients, not sockets: at most ``max_connections`` clients exist
at once (borrowed, idle or being opened), and at most
``max_connections_per_host`` per host, where a host is an origin (scheme, host
and port). When a limit is reached, an idle client of another URL is closed to
make room; if none is idle the borrower waits, first come first served, for
at most ``connection_timeout`` seconds, then gets :class:`PoolTimeoutError`.

A client is handed back to the idle set when the ``async with`` block ends
normally. It is discarded (closed, never handed out again) when an exception
(cancellation included) escaped the block, or when the client was closed or
is no longer open. Idle clients older than ``idle_timeout`` are closed by a
background task owned by the pool.

``close()``: waiting borrowers get :class:`ClosedError` at once; idle clients
are closed; borrowed clients may be given back within ``grace`` seconds
(default 0), after which they are closed under their borrowers, whose next
call raises ``ClosedError``. ``get_connection`` after close raises
``ClosedError``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import importlib
import logging
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

from .core import errors
from .core.config import (
    BaseConfig,
    GRPCConfig,
    HTTPConfig,
    MQTTConfig,
    SSEConfig,
    WebSocketConfig,
    _check_int,
    _check_number,
)
from .core.lifecycle import ClientState, ClosesOnExit, TaskSet
from .core.security import check_endpoint, check_url, origin_of, redact_url
from .core.telemetry import instrumentation_for
from .manager import ManagedClient

__all__ = ["ClientFactory", "ConnectionPool", "PoolStats"]

logger = logging.getLogger("agenticaiframework.communication.pool")

ClientFactory = Callable[[str], Any]
"""Builds an unconnected client for a URL (the pool calls ``connect()``)."""

# protocol -> (module, class name, config class, URL schemes)
_PROTOCOLS: Final[dict[str, tuple[str, str, type[BaseConfig], frozenset[str] | None]]] = {
    "http": ("http", "HTTPClient", HTTPConfig, frozenset({"http", "https"})),
    "sse": ("sse", "SSEClient", SSEConfig, frozenset({"http", "https"})),
    "websocket": ("websocket", "WebSocketClient", WebSocketConfig, frozenset({"ws", "wss"})),
    "mqtt": ("mqtt", "MQTTClient", MQTTConfig, frozenset({"mqtt", "mqtts"})),
    "grpc": ("grpc", "GRPCClient", GRPCConfig, None),
}


@dataclasses.dataclass(frozen=True, slots=True)
class _Route:
    """Where a URL leads: the binding clients are reused for, and the host it counts against."""

    bind: str
    host: str
    arg: str


@dataclasses.dataclass(frozen=True)
class PoolStats:
    """A snapshot of the pool's counters.

    Attributes:
        in_use: Clients borrowed right now.
        idle: Open clients waiting to be borrowed.
        waiting: Borrowers waiting for a slot.
        opening: Clients being connected for a borrower.
        total: All clients that count against ``max_connections``.
        created: Clients created since the pool started.
        evicted: Idle clients closed for idling past ``idle_timeout`` or to
            make room for another URL.
        discarded: Clients dropped because they broke while borrowed (or
            were found closed).
        timeouts: Borrowers that gave up after ``connection_timeout``.
        peak_in_use: The most clients borrowed at once.
        per_host: Clients per host (origin), borrowed, idle or opening.
    """

    in_use: int
    idle: int
    waiting: int
    opening: int
    total: int
    created: int
    evicted: int
    discarded: int
    timeouts: int
    peak_in_use: int
    per_host: Mapping[str, int]


class _Conn:
    __slots__ = ("client", "last_used", "route")

    def __init__(self, client: ManagedClient, route: _Route) -> None:
        self.client = client
        self.route = route
        self.last_used = 0.0


class _Reserved:
    """A slot granted to a borrower that will open a new client in it."""

    __slots__ = ()


_RESERVED: Final = _Reserved()
_Grant = _Conn | _Reserved


class _Waiter:
    __slots__ = ("future", "route")

    def __init__(self, route: _Route, future: asyncio.Future[_Grant]) -> None:
        self.route = route
        self.future = future


def _pool_observations(pool: ConnectionPool) -> list[tuple[int, dict[str, str]]]:
    """The pool's gauge values: clients per host and state, and waiting borrowers."""
    counts: dict[tuple[str, str], int] = {}
    for host in pool._per_host:
        for state in ("in_use", "idle", "waiting"):
            counts[host, state] = 0
    for conn in pool._in_use:
        counts[conn.route.host, "in_use"] = counts.get((conn.route.host, "in_use"), 0) + 1
    for stack in pool._idle.values():
        for conn in stack:
            counts[conn.route.host, "idle"] = counts.get((conn.route.host, "idle"), 0) + 1
    for waiter in pool._waiters:
        if not waiter.future.done():
            key = (waiter.route.host, "waiting")
            counts[key] = counts.get(key, 0) + 1
    base = {"agentcomm.pool.protocol": pool.protocol}
    return [
        (value, {**base, "agentcomm.pool.host": redact_url(host), "agentcomm.pool.state": state})
        for (host, state), value in counts.items()
    ]


@lru_cache(maxsize=4096)
def _route(protocol: str, url: str, allow_insecure: bool, grpc_secure: bool) -> _Route:
    """Parse and police ``url`` once; the result is cached for the hot path."""
    if not isinstance(url, str) or not url:
        raise errors.ConfigError(f"url: must be a non-empty str, got {url!r}")
    schemes = _PROTOCOLS[protocol][3] if protocol in _PROTOCOLS else None
    if protocol == "grpc" and "://" not in url:
        # A bare gRPC target: host:port, [v6]:port.
        raw_host, sep, raw_port = url.rpartition(":")
        if not sep or not raw_port.isdigit():
            raise errors.ConfigError(f"url: gRPC target must be 'host:port', got {url!r}")
        target_host = raw_host.strip("[]").lower()
        check_endpoint(
            secure=grpc_secure, host=target_host, allow_insecure=allow_insecure, what=url
        )
        key = f"{'grpcs' if grpc_secure else 'grpc'}://{target_host}:{raw_port}"
        return _Route(bind=url, host=key, arg=url)
    check_url(url, allow_insecure=allow_insecure, schemes=schemes)
    scheme, host, port = origin_of(url)
    parts = urlsplit(url)
    host_key = f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
    origin = f"{scheme}://{parts.netloc}"
    if protocol in ("http", "mqtt"):
        return _Route(bind=origin, host=host_key, arg=origin)
    return _Route(bind=url, host=host_key, arg=url)


class ConnectionPool(ClosesOnExit):
    """A bounded pool of connected clients of one protocol, shared per origin.

    Args:
        protocol: ``"http"``, ``"websocket"``, ``"sse"``, ``"grpc"`` or ``"mqtt"``.
        max_connections: Clients alive at once, over all hosts.
        max_connections_per_host: Clients alive at once per host (origin);
            default ``max_connections``.
        connection_timeout: Seconds ``get_connection`` may take in all, waiting
            for a slot and connecting (None = no limit).
        idle_timeout: Seconds a client may sit idle before it is closed
            (None = never).
        config: The protocol's config (``HTTPConfig`` for ``"http"``...), passed
            to every client as ``config=``.
        factory: Build clients yourself: ``factory(url)`` returns an
            unconnected client; replaces the protocol's client class.

    Raises:
        ConfigError: An unknown protocol, a bad limit or timeout (named), or a
            config of the wrong class.
    """

    def __init__(
        self,
        protocol: str = "http",
        *,
        max_connections: int = 100,
        max_connections_per_host: int | None = None,
        connection_timeout: float | None = 30.0,
        idle_timeout: float | None = 300.0,
        config: BaseConfig | None = None,
        factory: ClientFactory | None = None,
    ) -> None:
        if protocol not in _PROTOCOLS and factory is None:
            raise errors.ConfigError(
                f"protocol: must be one of {', '.join(map(repr, _PROTOCOLS))}, got {protocol!r}"
            )
        _check_int("max_connections", max_connections, minimum=1)
        if max_connections_per_host is None:
            max_connections_per_host = max_connections
        _check_int("max_connections_per_host", max_connections_per_host, minimum=1)
        if connection_timeout is not None:
            _check_number("connection_timeout", connection_timeout, allow_equal=False)
        if idle_timeout is not None:
            _check_number("idle_timeout", idle_timeout, allow_equal=False)
        if config is not None and protocol in _PROTOCOLS:
            expected = _PROTOCOLS[protocol][2]
            if not isinstance(config, expected):
                raise errors.ConfigError(
                    f"config: protocol {protocol!r} needs a {expected.__name__}, "
                    f"got {type(config).__name__}"
                )
        self.protocol = protocol
        self.max_connections = max_connections
        self.max_connections_per_host = max_connections_per_host
        self.connection_timeout = connection_timeout
        self.idle_timeout = idle_timeout
        self.config = config
        self._factory = factory
        self._client_cls: Any = None
        self._allow_insecure = bool(config.allow_insecure) if config is not None else False
        self._grpc_secure = bool(getattr(config, "secure", False))

        self._idle: dict[str, list[_Conn]] = {}
        self._idle_count = 0
        self._total = 0
        self._per_host: dict[str, int] = {}
        self._in_use: set[_Conn] = set()
        self._opening = 0
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._closed = False
        self._returned: asyncio.Event | None = None
        self._wake = asyncio.Event()
        self._tasks = TaskSet("ConnectionPool")
        self._closers: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._created = 0
        self._evicted = 0
        self._discarded = 0
        self._timeouts = 0
        self._peak = 0
        otel = instrumentation_for(config, "pool")
        if otel.metering:
            otel.observe(
                "agentcomm.pool.connections",
                "{connection}",
                "Pooled clients per host: in use, idle, and borrowers waiting.",
                self,
                _pool_observations,
            )

    # -- public API -------------------------------------------------------------

    def get_connection(self, url: str) -> _Lease:
        """Borrow a connected client for ``url``: ``async with pool.get_connection(url) as c``.

        The client is reused from the idle set when one is bound to the same
        origin (HTTP, MQTT) or URL (WebSocket, SSE) or target (gRPC);
        otherwise a new one is created and connected, within the limits.
        Safe to cancel: a cancelled wait leaves no slot taken.

        Args:
            url: The URL (or gRPC ``host:port`` target) to talk to.

        Returns:
            An async context manager yielding the connected client.

        Raises:
            PoolTimeoutError: (on enter) No slot became free within
                ``connection_timeout``.
            TimeoutError: (on enter) Connecting took the rest of
                ``connection_timeout``.
            SecurityError: (on enter) The URL breaks the security policy.
            ConfigError: (on enter) The URL cannot be used with this protocol.
            ClosedError: (on enter) The pool is closed, or closed while waiting.
        """
        return _Lease(self, url)

    @property
    def stats(self) -> PoolStats:
        """A snapshot of the pool's counters."""
        return PoolStats(
            in_use=len(self._in_use),
            idle=self._idle_count,
            waiting=sum(1 for w in self._waiters if not w.future.done()),
            opening=self._opening,
            total=self._total,
            created=self._created,
            evicted=self._evicted,
            discarded=self._discarded,
            timeouts=self._timeouts,
            peak_in_use=self._peak,
            per_host={h: n for h, n in self._per_host.items() if n},
        )

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    async def close(self, *, grace: float = 0.0) -> None:
        """Close the pool and every client it made (idempotent).

        Waiting borrowers get ClosedError at once. Idle clients are closed.
        Borrowed clients may be given back for ``grace`` seconds; those still
        out then are closed under their borrowers (their next call raises
        ClosedError). The idle-eviction task is cancelled and awaited.

        Args:
            grace: Seconds to wait for borrowed clients to come back.
        """
        if self._closed:
            return
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(errors.ClosedError("the pool was closed"))
        to_close: list[_Conn] = []
        for stack in self._idle.values():
            to_close.extend(stack)
        self._idle.clear()
        self._idle_count = 0
        try:
            await self._tasks.cancel_all()  # the idle reaper
            if grace > 0 and self._in_use:
                self._returned = asyncio.Event()
                try:
                    async with asyncio.timeout(grace):
                        await self._returned.wait()
                except TimeoutError:
                    logger.info(
                        "%d borrowed client(s) not returned within %gs", len(self._in_use), grace
                    )
            to_close.extend(self._in_use)
            await self._discard(to_close)
        finally:
            while self._closers:
                await asyncio.gather(*list(self._closers), return_exceptions=True)

    async def __aenter__(self) -> Self:
        if self._closed:
            raise errors.ClosedError("ConnectionPool is closed")
        return self

    def __repr__(self) -> str:
        return (
            f"<ConnectionPool protocol={self.protocol!r} in_use={len(self._in_use)} "
            f"idle={self._idle_count} max={self.max_connections} closed={self._closed}>"
        )

    # -- acquiring --------------------------------------------------------------

    async def _acquire(self, url: str) -> _Conn:
        if self._closed:
            raise errors.ClosedError("ConnectionPool is closed")
        if not isinstance(url, str):
            raise errors.ConfigError(f"url: must be a str, got {type(url).__name__}")
        route = _route(self.protocol, url, self._allow_insecure, self._grpc_secure)
        if self._reaper is None and self.idle_timeout is not None:
            self._reaper = self._tasks.spawn(self._reap(), "idle-reaper")
        loop = asyncio.get_running_loop()
        deadline = (
            None if self.connection_timeout is None else loop.time() + self.connection_timeout
        )
        evict: list[_Conn] = []
        grant = self._try_grant(route, evict)
        if evict:
            self._spawn_close(evict)
        if grant is None:
            grant = await self._wait(route, deadline)
        if isinstance(grant, _Conn):
            self._lend(grant)
            return grant
        return await self._open(route, deadline)

    async def _wait(self, route: _Route, deadline: float | None) -> _Grant:
        waiter = _Waiter(route, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline) as cm:
                return await waiter.future
        except TimeoutError as exc:
            self._abandon(waiter)
            if not cm.expired():
                raise
            self._timeouts += 1
            stats = self.stats
            raise errors.PoolTimeoutError(
                f"no connection to {route.host} free within {self.connection_timeout:g}s "
                f"(in use {stats.in_use}/{self.max_connections}, "
                f"this host {self._per_host.get(route.host, 0)}/{self.max_connections_per_host}, "
                f"waiting {stats.waiting})"
            ) from exc
        except BaseException:
            self._abandon(waiter)
            raise

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter gave up: forget it, and give back anything it was granted meanwhile."""
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass  # already served or failed by close()
        future = waiter.future
        if not future.done():
            future.cancel()
            return
        if future.cancelled() or future.exception() is not None:
            return
        grant = future.result()
        evict: list[_Conn] = []
        if isinstance(grant, _Conn):
            self._park(grant)
        else:
            self._unreserve(waiter.route)
        self._dispatch(evict)
        if evict:
            self._spawn_close(evict)

    async def _open(self, route: _Route, deadline: float | None) -> _Conn:
        self._opening += 1
        client: ManagedClient | None = None
        cm: asyncio.Timeout | None = None
        try:
            client = self._make_client(route)
            async with asyncio.timeout_at(deadline) as cm:
                await client.connect()
        except BaseException as exc:
            self._opening -= 1
            self._unreserve(route)
            evict: list[_Conn] = []
            self._dispatch(evict)
            pending = evict + ([_Conn(client, route)] if client is not None else [])
            await self._discard(pending)
            if isinstance(exc, TimeoutError) and cm is not None and cm.expired():
                raise errors.TimeoutError(
                    f"connecting to {route.bind} took longer than connection_timeout "
                    f"({self.connection_timeout:g}s)"
                ) from exc
            raise
        self._opening -= 1
        conn = _Conn(client, route)
        self._created += 1
        if self._closed:
            self._unreserve(route)
            await self._discard([conn])
            raise errors.ClosedError("the pool was closed while connecting")
        self._lend(conn)
        return conn

    def _make_client(self, route: _Route) -> ManagedClient:
        if self._factory is not None:
            client: ManagedClient = self._factory(route.arg)
            return client
        if self._client_cls is None:
            module, name, _, _ = _PROTOCOLS[self.protocol]
            mod = importlib.import_module(f"{__package__}.{module}")
            self._client_cls = getattr(mod, name)
        made: ManagedClient = self._client_cls(route.arg, config=self.config)
        return made

    def _lend(self, conn: _Conn) -> None:
        self._in_use.add(conn)
        if len(self._in_use) > self._peak:
            self._peak = len(self._in_use)

    def _try_grant(self, route: _Route, evict: list[_Conn]) -> _Grant | None:
        """Give ``route`` an idle client or a reserved slot, if the limits allow."""
        stack = self._idle.get(route.bind)
        while stack:
            conn = stack.pop()
            self._idle_count -= 1
            if conn.client.state is ClientState.OPEN:
                return conn
            # Died while idle (peer closed it, or someone closed it).
            self._discarded += 1
            self._forget(conn)
            evict.append(conn)
        if self._per_host.get(route.host, 0) >= self.max_connections_per_host:
            victim = self._oldest_idle(route.host)
            if victim is None:
                return None
            self._evict(victim, evict)
        if self._total >= self.max_connections:
            victim = self._oldest_idle(None)
            if victim is None:
                return None
            self._evict(victim, evict)
        self._total += 1
        self._per_host[route.host] = self._per_host.get(route.host, 0) + 1
        return _RESERVED

    def _dispatch(self, evict: list[_Conn]) -> None:
        """Serve waiters in arrival order with whatever the limits now allow."""
        if not self._waiters:
            return
        for waiter in list(self._waiters):
            if self._total >= self.max_connections and not self._idle_count:
                break
            if waiter.future.done():
                self._waiters.remove(waiter)
                continue
            grant = self._try_grant(waiter.route, evict)
            if grant is not None:
                self._waiters.remove(waiter)
                waiter.future.set_result(grant)

    # -- returning --------------------------------------------------------------

    async def _release(self, conn: _Conn, failed: bool) -> None:
        self._in_use.discard(conn)
        if self._closed:
            if self._returned is not None and not self._in_use:
                self._returned.set()
            await self._discard([conn])
            return
        evict: list[_Conn] = []
        if failed or conn.client.state is not ClientState.OPEN:
            self._discarded += 1
            self._forget(conn)
            evict.append(conn)
        else:
            self._park(conn)
        self._dispatch(evict)
        if evict:
            await self._discard(evict)

    def _park(self, conn: _Conn) -> None:
        conn.last_used = time.monotonic()
        self._idle.setdefault(conn.route.bind, []).append(conn)
        self._idle_count += 1
        if not self._wake.is_set():
            self._wake.set()

    def _forget(self, conn: _Conn) -> None:
        self._unreserve(conn.route)

    def _unreserve(self, route: _Route) -> None:
        self._total -= 1
        left = self._per_host[route.host] - 1
        if left:
            self._per_host[route.host] = left
        else:
            del self._per_host[route.host]

    def _oldest_idle(self, host: str | None) -> _Conn | None:
        best: _Conn | None = None
        for stack in self._idle.values():
            if (
                stack
                and (host is None or stack[0].route.host == host)
                and (best is None or stack[0].last_used < best.last_used)
            ):
                best = stack[0]
        return best

    def _evict(self, conn: _Conn, evict: list[_Conn]) -> None:
        stack = self._idle[conn.route.bind]
        stack.remove(conn)
        if not stack:
            del self._idle[conn.route.bind]
        self._idle_count -= 1
        self._evicted += 1
        self._forget(conn)
        evict.append(conn)

    async def _close_conns(self, conns: list[_Conn]) -> None:
        if not conns:
            return
        if len(conns) == 1:
            results: list[BaseException | None] = []
            try:
                await conns[0].client.close()
            except Exception as exc:
                results.append(exc)
        else:
            results = list(
                await asyncio.gather(*(c.client.close() for c in conns), return_exceptions=True)
            )
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                logger.warning("closing a pooled client failed", exc_info=result)

    def _spawn_close(self, conns: list[_Conn]) -> asyncio.Task[None]:
        """Close clients in a task the pool owns; ``close()`` awaits it (never cancels it)."""
        task = asyncio.get_running_loop().create_task(
            self._close_conns(conns), name="ConnectionPool:close"
        )
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)
        return task

    async def _discard(self, conns: list[_Conn]) -> None:
        """Close clients and wait; if the caller is cancelled the closing still finishes."""
        if conns:
            await asyncio.shield(self._spawn_close(conns))

    # -- idle eviction ----------------------------------------------------------

    async def _reap(self) -> None:
        assert self.idle_timeout is not None
        ttl = self.idle_timeout
        try:
            while True:
                if not self._idle_count:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                now = time.monotonic()
                oldest = self._oldest_idle(None)
                assert oldest is not None
                due = oldest.last_used + ttl
                if due > now:
                    await asyncio.sleep(due - now)
                    continue
                evict: list[_Conn] = []
                for stack in list(self._idle.values()):
                    for conn in [c for c in stack if c.last_used + ttl <= now]:
                        self._evict(conn, evict)
                self._dispatch(evict)
                logger.debug("closing %d client(s) idle for %gs", len(evict), ttl)
                await self._discard(evict)
        except Exception:
            logger.exception("idle eviction stopped by an unexpected error")
            raise


class _Lease:
    """The ``async with`` of :meth:`ConnectionPool.get_connection`."""

    __slots__ = ("_conn", "_pool", "_url")

    def __init__(self, pool: ConnectionPool, url: str) -> None:
        self._pool = pool
        self._url = url
        self._conn: _Conn | None = None

    async def __aenter__(self) -> Any:
        if self._conn is not None:
            raise RuntimeError("get_connection() context entered twice")
        self._conn = await self._pool._acquire(self._url)
        return self._conn.client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool._release(conn, exc_type is not None)
