"""A fault-injection TCP proxy on loopback, driven by the test.

``async with FaultProxy(target_port) as proxy`` listens on ``proxy.port`` and
forwards every connection to ``127.0.0.1:target_port``. On command it can:

* ``proxy.latency = 0.05`` — delay every chunk in both directions;
* ``await proxy.cut()`` — abort every live connection (RST), new ones still work;
* ``proxy.refuse = True`` — close new connections at once (no upstream);
* ``proxy.stall = True`` — accept and hold connections but forward nothing;
* ``proxy.target_port = p`` — send new connections elsewhere.

``proxy.connections`` counts live connections, ``proxy.accepted`` all accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import TracebackType


class FaultProxy:
    """A TCP proxy that can add latency, cut, refuse and stall connections."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.latency = 0.0
        self.refuse = False
        self.stall = False
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def connections(self) -> int:
        """Live client-side connections."""
        return sum(1 for w in self._writers if not w.is_closing()) // 2

    async def start(self) -> FaultProxy:
        """Start listening on 127.0.0.1 on a free port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if self.refuse:
                _abort(writer)
                return
            if self.stall:
                with contextlib.suppress(ConnectionError):
                    while await reader.read(65536):
                        pass
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                _abort(writer)
                return
            self._writers.add(up_writer)
            try:
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            finally:
                self._writers.discard(up_writer)
                _abort(up_writer)
        finally:
            self._writers.discard(writer)
            _abort(writer)
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                while self.stall:
                    await asyncio.sleep(0.01)
                if self.latency:
                    await asyncio.sleep(self.latency)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass
        finally:
            _abort(writer)

    async def cut(self) -> None:
        """Abort every live connection with a TCP reset."""
        for writer in list(self._writers):
            _abort(writer)
        await asyncio.sleep(0)

    async def close(self) -> None:
        """Stop listening and abort every connection."""
        if self._server is not None:
            self._server.close()
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None and not writer.is_closing():
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    writer.transport.abort()
