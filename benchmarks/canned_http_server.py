"""An HTTP/1.1 server that answers every request with the same small JSON body.

The HTTP client benchmarks time clients, so the server must cost as little as
possible: under uvicorn (pure-Python h11 here, no httptools) a keep-alive GET
spent more time in the server than in the fastest client, and every ratio
between clients shrank towards 1 (raw aiohttp measured 2.0-2.4x raw httpx
behind uvicorn). This server parses only what it must: the end of each
request head, and a ``Content-Length`` body to skip. Run as a child process::

    python -m benchmarks.canned_http_server PORT [KEY_FILE CERT_FILE]
"""

from __future__ import annotations

import asyncio
import ssl
import sys

from .asgi_app import BODY, HEADERS

# The same body and headers as the uvicorn benchmark app's.
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    + b"".join(name + b": " + value + b"\r\n" for name, value in HEADERS)
    + b"\r\n"
    + BODY
)
_END_OF_HEAD = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"


class CannedHTTP(asyncio.Protocol):
    """One connection: answer each complete request, in order, with ``RESPONSE``."""

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to write responses to."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        """Answer every request whose head (and body, if any) has arrived."""
        buffer = self._buffer + data if self._buffer else data
        answers = 0
        while True:
            end = buffer.find(_END_OF_HEAD)
            if end < 0:
                break
            size = end + 4
            at = buffer[:end].lower().find(_LENGTH)  # the head only, not what follows
            if at >= 0:
                line_end = buffer.find(b"\r\n", at + 2)
                size += int(buffer[at + len(_LENGTH) : line_end])
            if len(buffer) < size:
                break
            buffer = buffer[size:]
            answers += 1
        self._buffer = buffer
        if answers and self._transport is not None:
            self._transport.write(RESPONSE * answers)


async def serve(port: int, tls: tuple[str, str] | None) -> None:
    """Serve on 127.0.0.1:``port`` until killed."""
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls[1], tls[0])
    server = await asyncio.get_running_loop().create_server(
        CannedHTTP, "127.0.0.1", port, ssl=context, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    asyncio.run(
        serve(int(arguments[0]), (arguments[1], arguments[2]) if len(arguments) == 3 else None)
    )
