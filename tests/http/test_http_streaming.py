"""Responses on both engines: prompt from a server that leaves Nagle on, freed once closed.

A server whose socket keeps Nagle's algorithm on (no TCP_NODELAY) holds each
small write back until the client has acknowledged the one before. On a
kept-alive connection Linux delays the client's acknowledgement (up to 40 ms)
hoping to send it with the next request, so every response written in several
pieces (headers, then events) would arrive 40 ms late.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import weakref
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from agenticaiframework.communication import HTTPClient, SSEClient

_EVENTS = (b"event: ready\ndata: \n\n", b'data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n')
_BODY = b'{"jsonrpc":"2.0","id":1,"result":{}}'

# The kernel's shortest delayed acknowledgement is 40 ms: a round trip held
# back by it takes longer than this, one that is not takes a fraction of it.
_HELD_BACK = 0.03


class NagleServer:
    """Answers each request in separate small writes on sockets with Nagle on.

    ``/events``: an event stream (chunked), headers and each event written
    apart; any other path: a Content-Length body written after its headers.
    """

    def __init__(self) -> None:
        self.connections = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length" and int(value):
                        await reader.readexactly(int(value))
                if head.split(b" ", 2)[1] == b"/events":
                    await self._write(
                        writer,
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n",
                    )
                    for event in _EVENTS:
                        await self._write(writer, b"%x\r\n%s\r\n" % (len(event), event))
                    await self._write(writer, b"0\r\n\r\n")
                else:
                    await self._write(
                        writer,
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(_BODY),
                    )
                    await self._write(writer, _BODY)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
        """One write of its own: with Nagle on, sent once the previous one is acknowledged."""
        writer.write(data)
        await writer.drain()


@pytest.fixture
async def nagle_server() -> AsyncIterator[tuple[str, NagleServer]]:
    """A :class:`NagleServer` on a free loopback port."""
    state = NagleServer()
    server = await asyncio.start_server(state._handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", state
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.skipif(
    not hasattr(socket, "TCP_QUICKACK"), reason="acknowledging at once is a Linux socket option"
)
@pytest.mark.parametrize("path", ["/events", "/json"])
async def test_responses_written_in_pieces_are_not_held_back_by_delayed_acks(
    nagle_server: tuple[str, NagleServer], path: str
) -> None:
    url, state = nagle_server
    times: list[float] = []
    async with HTTPClient(url) as client:
        for n in range(21):
            started = time.perf_counter()
            if path == "/events":
                async with client.stream("POST", path, json={"id": n}) as response:
                    body = b"".join([chunk async for chunk in response.aiter_bytes()])
                assert body == b"".join(_EVENTS)
            else:
                response = await client.request("POST", path, json={"id": n})
                assert response.content == _BODY
            if n:  # the first one opened the connection (acknowledged at once anyway)
                times.append(time.perf_counter() - started)
    assert state.connections == 1  # one kept-alive connection, as a busy client has
    held_back = [round(t * 1000, 1) for t in times if t > _HELD_BACK]
    # Held back, every one takes 40 ms or more; a few slow ones leave room for a
    # busy machine.
    assert len(held_back) <= 5, f"{len(held_back)} of 20 round trips over 30 ms: {held_back} ms"


# -- freed once closed --------------------------------------------------------


@pytest.fixture
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector off: only reference counting frees objects."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_a_closed_streamed_response_is_freed_at_once(
    nagle_server: tuple[str, NagleServer], no_gc: None
) -> None:
    # httpx ties a response and its body stream in a reference cycle: left
    # alone, every response would wait for the next garbage collection.
    url, _ = nagle_server
    async with HTTPClient(url) as client:
        refs: list[weakref.ref[httpx.Response]] = []
        for _ in range(3):
            async with client.stream("POST", "/events", json={}) as response:
                refs.append(weakref.ref(response.raw))
                await response.aread()
            del response
        async with client.stream("GET", "/events") as response:
            refs.append(weakref.ref(response.raw))  # closed without reading it
        del response
        response = await client.request("GET", "/json")
        refs.append(weakref.ref(response.raw))
        del response
        assert [ref() for ref in refs] == [None] * len(refs)
        alive = [obj for obj in gc.get_objects() if isinstance(obj, httpx.Response)]
        assert alive == []


async def test_a_finished_event_stream_is_freed_at_once(
    nagle_server: tuple[str, NagleServer], no_gc: None
) -> None:
    url, _ = nagle_server
    async with SSEClient(f"{url}/events", method="POST", json={}, terminal_event="message") as sse:
        events = [event.event async for event in sse]
    assert events == ["ready", "message"]
    alive = [obj for obj in gc.get_objects() if isinstance(obj, httpx.Response)]
    assert alive == []
