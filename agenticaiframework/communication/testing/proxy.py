"""A fault-injection TCP proxy on loopback, driven by the test.

``async with FaultProxy(target) as proxy`` listens on 127.0.0.1 and a free
port (``proxy.port``) and forwards every connection to the target: a port on
127.0.0.1, a ``host:port``, or a URL (then ``proxy.url`` is the same URL
through the proxy). On command it can:

* ``await proxy.cut()`` — close every live connection (each side reads end of
  stream), new ones still work;
* ``await proxy.reset()`` — abort every live connection with a TCP reset (RST);
* ``proxy.stall()`` — hold every connection, new ones included, forwarding
  nothing until ``proxy.resume()``;
* ``proxy.delay(0.05)`` — hold each chunk that long, both ways (``delay(0)`` ends it);
* ``proxy.refuse()`` — reset each new connection at once (until ``resume()``);
* ``proxy.target_port = p`` — send new connections elsewhere.

``proxy.stall = True`` / ``proxy.refuse = True`` and ``proxy.latency = s``
mean the same as the calls. ``connections`` counts the live connections,
``accepted`` all accepted, ``bytes_to_server`` and ``bytes_to_client`` the
bytes forwarded each way.

The proxy can be driven from another thread or event loop than the one it
runs in (as the pytest plugin's fixtures do): the awaitable commands hand
over to its loop, the others only set a flag.

It accepts connections itself (``loop.add_reader`` on its listening socket,
so it needs a selector event loop: the default on Linux and macOS, uvloop
too), so that ``close()`` closes even a connection accepted an instant
before it, which an ``asyncio.start_server`` server can leave open.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, overload
from urllib.parse import urlsplit, urlunsplit

from ..core.errors import ConfigError
from ._process import LoopbackServer

__all__ = ["FaultProxy"]


class _Switch:
    """The value of a fault switch: true while on; calling it turns it on."""

    __slots__ = ("_attr", "_owner")

    def __init__(self, owner: object, attr: str) -> None:
        self._owner = owner
        self._attr = attr

    def __call__(self) -> None:
        setattr(self._owner, self._attr, True)

    def __bool__(self) -> bool:
        return bool(getattr(self._owner, self._attr))

    def __eq__(self, other: object) -> bool:
        return bool(self) == other if isinstance(other, bool) else NotImplemented

    def __hash__(self) -> int:
        return hash(bool(self))

    def __repr__(self) -> str:
        return repr(bool(self))


class _Toggle:
    """A switch attribute: ``proxy.stall()`` and ``proxy.stall = True`` both turn it on."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr = f"_{name}_on"

    @overload
    def __get__(self, obj: None, owner: type) -> _Toggle: ...
    @overload
    def __get__(self, obj: object, owner: type) -> _Switch: ...
    def __get__(self, obj: object | None, owner: type) -> _Toggle | _Switch:
        return self if obj is None else _Switch(obj, self._attr)

    def __set__(self, obj: object, value: bool) -> None:
        setattr(obj, self._attr, bool(value))


class _Link:
    """One proxied connection: the client's side and, once connected, the server's."""

    __slots__ = ("client", "server")

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.server: asyncio.StreamWriter | None = None

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.server) if w is not None]


class FaultProxy(LoopbackServer):
    """A TCP proxy that can cut, reset, stall, delay and refuse connections.

    Args:
        target: Where to forward: a port on ``target_host``, ``"host:port"``,
            or a URL such as ``mqtt://127.0.0.1:1883`` or ``ws://127.0.0.1:8765/echo``.
        target_host: The host when ``target`` is a port.
        listen_host: The address the proxy listens on (loopback unless a
            test needs another, e.g. inside a private network namespace).

    Raises:
        ConfigError: ``target`` is none of those.
    """

    stall = _Toggle()
    refuse = _Toggle()

    def __init__(
        self, target: int | str, target_host: str = "127.0.0.1", *, listen_host: str = "127.0.0.1"
    ) -> None:
        self.listen_host = listen_host
        self._url_parts: tuple[str, str, str, str] | None = None
        if isinstance(target, int):
            self.target_host, self.target_port = target_host, target
        elif "://" in target:
            parts = urlsplit(target)
            if parts.hostname is None or parts.port is None:
                raise ConfigError(f"FaultProxy target URL names no host and port: {target!r}")
            self.target_host, self.target_port = parts.hostname, parts.port
            self._url_parts = (parts.scheme, parts.path, parts.query, parts.fragment)
        else:
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"FaultProxy target is not a port, host:port or URL: {target!r}")
            self.target_host, self.target_port = host.strip("[]"), int(port)
        self.latency = 0.0
        self._stall_on = False
        self._refuse_on = False
        self.accepted = 0
        self.bytes_to_server = 0
        self.bytes_to_client = 0
        self.port = 0
        self._listener: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._links: set[_Link] = set()
        # Accepted sockets whose task has not yet made them a transport: closed by close().
        self._unattached: set[socket.socket] = set()

    def __repr__(self) -> str:
        return (
            f"<FaultProxy {self.listen_host}:{self.port} -> {self.target_host}:{self.target_port}"
            f" connections={self.connections}>"
        )

    @property
    def url(self) -> str:
        """The target's URL (or ``127.0.0.1:<port>``) with the proxy's port in its place."""
        if self._url_parts is None:
            return f"127.0.0.1:{self.port}"
        scheme, path, query, fragment = self._url_parts
        return urlunsplit((scheme, f"127.0.0.1:{self.port}", path, query, fragment))

    @property
    def connections(self) -> int:
        """Live client-side connections."""
        return sum(1 for link in list(self._links) if not link.client.is_closing())

    # -- commands ----------------------------------------------------------------------

    def delay(self, seconds: float) -> None:
        """Hold every chunk ``seconds`` before forwarding it, both ways (0 ends it).

        Raises:
            ConfigError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ConfigError(f"FaultProxy delay must be >= 0 seconds, got {seconds}")
        self.latency = float(seconds)

    def resume(self) -> None:
        """End :attr:`stall` and :attr:`refuse`: forward and accept as usual again."""
        self._stall_on = False
        self._refuse_on = False

    async def cut(self) -> None:
        """Close every live connection: each side reads end of stream. New ones still work."""
        await self._on_loop(self._close_links, False)

    async def reset(self) -> None:
        """Abort every live connection with a TCP reset (RST). New ones still work."""
        await self._on_loop(self._close_links, True)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> FaultProxy:
        """Start listening on ``listen_host`` (127.0.0.1) on a free port.

        Returns:
            Self.
        """
        loop = self._loop = asyncio.get_running_loop()
        try:  # an address (the usual case) needs no resolver thread
            infos = socket.getaddrinfo(
                self.listen_host,
                0,
                type=socket.SOCK_STREAM,
                flags=socket.AI_PASSIVE | socket.AI_NUMERICHOST,
            )
        except socket.gaierror:
            infos = await loop.getaddrinfo(
                self.listen_host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        family, _, _, _, address = infos[0]
        self._listener = socket.create_server(address, family=family, backlog=100)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        # Our own accept, not asyncio.start_server: an asyncio server closed between accepting
        # a connection and attaching it leaves that socket open (CPython gh-109564).
        loop.add_reader(self._listener.fileno(), self._accept)
        return self

    async def close(self) -> None:
        """Stop listening and abort every connection."""
        await self._on_loop(self._close)

    # -- internals ---------------------------------------------------------------------

    async def _on_loop(self, func: Any, *args: Any) -> None:
        """Run ``func`` in the proxy's own event loop, from whichever loop calls."""
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            await func(*args)
            return
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(func(*args), loop))

    async def _close_links(self, rst: bool) -> None:
        for link in list(self._links):
            for writer in link.writers():
                _abort(writer) if rst else writer.close()
        await asyncio.sleep(0)

    async def _close(self) -> None:
        self._closing = True
        listener, self._listener = self._listener, None
        if listener is not None and self._loop is not None:
            self._loop.remove_reader(listener.fileno())
            listener.close()  # connections not yet accepted get a reset from the kernel
        await self._close_links(True)
        if self._tasks:  # every link was aborted: its task ends on its own
            await asyncio.wait(list(self._tasks), timeout=2)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        while self._unattached:  # their task was cancelled before it ran
            _abort_socket(self._unattached.pop())

    def _accept(self) -> None:
        """Accept every waiting connection (called by the loop when the listener is readable)."""
        listener, loop = self._listener, self._loop
        assert listener is not None and loop is not None
        for _ in range(100):  # as asyncio does: at most a backlog's worth per turn of the loop
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up before we accepted it
            except OSError:
                # Out of file descriptors or buffers: stop accepting for a moment rather than spin.
                loop.remove_reader(listener.fileno())
                loop.call_later(0.1, self._resume_accepting, listener)
                return
            self.accepted += 1
            conn.setblocking(False)
            self._unattached.add(conn)
            task = loop.create_task(self._handle(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _resume_accepting(self, listener: socket.socket) -> None:
        if self._listener is listener and self._loop is not None:
            self._loop.add_reader(listener.fileno(), self._accept)

    async def _held(self, writer: asyncio.StreamWriter) -> bool:
        """Wait while stalled; False when the connection was closed meanwhile."""
        while self._stall_on:
            if writer.is_closing():
                return False
            await asyncio.sleep(0.01)
        return not writer.is_closing()

    async def _handle(self, conn: socket.socket) -> None:
        # From here on the transport owns the socket (made before this step yields).
        self._unattached.discard(conn)
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
        except BaseException as exc:
            conn.close()  # a transport made of it is closed already; this covers none made
            if isinstance(exc, OSError):
                return  # the client left meanwhile
            raise
        link = _Link(writer)
        self._links.add(link)
        try:
            if self._refuse_on or self._closing:
                _abort(writer)
                return
            if not await self._held(writer):
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                _abort(writer)
                return
            link.server = up_writer
            if writer.is_closing() or self._closing:  # cut or closed while connecting
                return
            await asyncio.gather(
                self._pipe(link, reader, up_writer, to_server=True),
                self._pipe(link, up_reader, writer, to_server=False),
            )
        finally:
            self._links.discard(link)
            for side in link.writers():
                if not side.is_closing():
                    _abort(side)

    async def _pipe(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        to_server: bool,
    ) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self._stall_on and not await self._held(writer):
                    break
                if self.latency:
                    await asyncio.sleep(self.latency)
                writer.write(data)
                if to_server:
                    self.bytes_to_server += len(data)
                else:
                    self.bytes_to_client += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One side ended: the whole link ends, each side reading end of stream.
            for side in link.writers():
                side.close()


_LINGER_0 = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # struct linger {on, 0 s}: close sends RST


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), dropping anything not yet sent."""
    sock = writer.get_extra_info("socket")
    if sock is not None and not writer.is_closing():
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
    writer.transport.abort()


def _abort_socket(sock: socket.socket) -> None:
    """Close a socket no transport owns with a TCP reset."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
    sock.close()
