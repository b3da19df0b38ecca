"""FaultProxy: every fault caused for real between a loopback TCP echo server and a client."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import warnings
from collections.abc import AsyncIterator

import pytest

from agenticaiframework.communication.core.errors import ConfigError
from agenticaiframework.communication.testing import FaultProxy


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A TCP echo server on 127.0.0.1; yields its port."""
    writers: set[asyncio.StreamWriter] = set()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            writers.discard(writer)

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    for writer in list(writers):
        writer.transport.abort()
    await server.wait_closed()


async def _connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass


async def _round_trip(proxy: FaultProxy, data: bytes = b"ping") -> bytes:
    reader, writer = await _connect(proxy)
    try:
        writer.write(data)
        async with asyncio.timeout(5):
            return await reader.readexactly(len(data))
    finally:
        await _close(writer)


async def test_forwards_both_ways_and_counts_bytes(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy:
        assert await _round_trip(proxy, b"hello") == b"hello"
        assert await _round_trip(proxy, b"abc") == b"abc"
        assert (proxy.bytes_to_server, proxy.bytes_to_client) == (8, 8)
        assert proxy.accepted == 2


async def test_cut_closes_live_connections_and_new_ones_still_work(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy:
        reader, writer = await _connect(proxy)
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        assert proxy.connections == 1
        await proxy.cut()
        async with asyncio.timeout(5):
            assert await reader.read(10) == b""  # end of stream, not an error
        await _close(writer)
        assert await _round_trip(proxy) == b"ping"


async def test_reset_aborts_with_rst(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy:
        reader, writer = await _connect(proxy)
        writer.write(b"x")
        await reader.readexactly(1)
        await proxy.reset()
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await reader.read(10)
        writer.close()
        assert await _round_trip(proxy) == b"ping"


async def test_stall_holds_everything_until_resume(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy:
        live_reader, live_writer = await _connect(proxy)
        live_writer.write(b"a")
        await live_reader.readexactly(1)
        proxy.stall()
        assert proxy.stall
        live_writer.write(b"b")
        new_reader, new_writer = await _connect(proxy)  # accepted while stalled
        new_writer.write(b"c")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await live_reader.read(1)
        assert proxy.bytes_to_client == 1
        proxy.resume()
        async with asyncio.timeout(5):
            assert await live_reader.readexactly(1) == b"b"
            assert await new_reader.readexactly(1) == b"c"
        await _close(live_writer)
        await _close(new_writer)


async def test_delay_holds_each_chunk(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy:
        proxy.delay(0.2)
        start = time.monotonic()
        assert await _round_trip(proxy) == b"ping"
        assert time.monotonic() - start >= 0.4  # 0.2 s each way
        proxy.delay(0)
        assert proxy.latency == 0
        with pytest.raises(ConfigError, match="delay"):
            proxy.delay(-1)


async def test_refuse_resets_new_connections_until_resume(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy:
        proxy.refuse()
        reader, writer = await _connect(proxy)
        writer.write(b"x")
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await reader.read(10)
        writer.close()
        assert proxy.bytes_to_server == 0
        proxy.resume()
        assert not proxy.refuse
        assert await _round_trip(proxy) == b"ping"


async def test_attribute_switches_of_the_old_api_still_work(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy:
        proxy.refuse = True
        assert proxy.refuse == True  # noqa: E712 - the switch compares as a bool
        proxy.refuse = False
        proxy.stall = True
        proxy.stall = False
        proxy.latency = 0.0
        assert await _round_trip(proxy) == b"ping"


async def test_target_as_url_or_host_port_and_bad_targets(echo_port: int) -> None:
    async with FaultProxy(f"mqtt://127.0.0.1:{echo_port}/path?q=1") as proxy:
        assert proxy.url == f"mqtt://127.0.0.1:{proxy.port}/path?q=1"
        assert await _round_trip(proxy) == b"ping"
    async with FaultProxy(f"127.0.0.1:{echo_port}") as proxy:
        assert proxy.url == f"127.0.0.1:{proxy.port}"
        assert await _round_trip(proxy) == b"ping"
    for bad in ("no-port", "mqtt://127.0.0.1/x", ":80"):
        with pytest.raises(ConfigError, match="FaultProxy target"):
            FaultProxy(bad)


async def test_unreachable_target_resets_the_client() -> None:
    from agenticaiframework.communication.testing import free_port

    async with FaultProxy(free_port()) as proxy:
        reader, writer = await _connect(proxy)
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await reader.read(10)
        writer.close()


async def test_close_ends_every_connection_and_task(echo_port: int) -> None:
    proxy = await FaultProxy(echo_port).start()
    reader, writer = await _connect(proxy)
    writer.write(b"x")
    await reader.readexactly(1)
    proxy.stall()
    _, held = await _connect(proxy)
    await proxy.close()
    assert proxy.connections == 0
    assert not proxy._tasks
    with pytest.raises(OSError):
        await _connect(proxy)
    writer.close()
    held.close()


async def test_a_connection_accepted_while_the_proxy_closes_is_closed_too(echo_port: int) -> None:
    # A client connects just before the proxy closes (as a test's last act before its fixtures
    # end): whatever moment close() lands on, the client's connection ends and nothing leaks.
    loop = asyncio.get_running_loop()
    for turns in range(8):
        proxy = await FaultProxy(echo_port).start()
        client = socket.create_connection(("127.0.0.1", proxy.port))  # the kernel completes it
        client.setblocking(False)
        for _ in range(turns):
            await asyncio.sleep(0)  # let the loop run that many turns before close() lands
        await proxy.close()
        try:
            async with asyncio.timeout(5):
                assert await loop.sock_recv(client, 1) == b"", turns
        except ConnectionResetError:
            pass  # ended with a reset: as good, the client is not left hanging
        finally:
            client.close()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)], turns
