"""A hostile HTTP/1.1 server on loopback, written on raw asyncio streams.

``async with HostileHTTPServer() as server`` listens on ``server.url``
(127.0.0.1, free port) and answers by path:

* ``/bomb``: a gzip bomb, ``bomb_size`` bytes of zeros compressed (about 0.1%
  of that on the wire), sent with ``Content-Encoding: gzip``;
* ``/endless``: a chunked body that never ends (a chunk every few ms until the
  client goes away);
* ``/small``: ``b"ok"``, to prove a client still works after a refusal;
* anything else: 404.

``server.accepted`` counts connections and ``server.sent_bytes`` the body
bytes written, so a test can tell the client stopped reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from functools import lru_cache

from agenticaiframework.communication.testing import LoopbackServer

__all__ = ["HostileHTTPServer", "gzip_bomb"]


@lru_cache(maxsize=2)
def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed (a ~1000:1 ratio).

    Args:
        size: Decompressed size in bytes.

    Returns:
        The gzip stream.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    parts.append(compressor.compress(bytes(size % len(block))))
    parts.append(compressor.flush())
    return b"".join(parts)


class HostileHTTPServer(LoopbackServer):
    """Serves a gzip bomb and an endless chunked body."""

    def __init__(self, bomb_size: int = 64 * 1024 * 1024) -> None:
        self.bomb = gzip_bomb(bomb_size)
        self.accepted = 0
        self.sent_bytes = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> HostileHTTPServer:
        """Listen on 127.0.0.1 on a free port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and end every connection."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                await self._answer(path, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, path: str, writer: asyncio.StreamWriter) -> None:
        if path.startswith("/bomb"):
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(self.bomb)
            )
            for i in range(0, len(self.bomb), 16384):
                writer.write(self.bomb[i : i + 16384])
                self.sent_bytes += min(16384, len(self.bomb) - i)
                await writer.drain()
        elif path.startswith("/endless"):
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b"x" * 8192
            while True:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.sent_bytes += len(chunk)
                await writer.drain()
                await asyncio.sleep(0.001)
        elif path.startswith("/small"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        else:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
