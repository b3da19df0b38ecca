"""Child-process servers for the benchmarks, on 127.0.0.1 free ports only."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, timeout: float = 15.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


@contextlib.asynccontextmanager
async def child_server(args: Sequence[str], port: int) -> AsyncIterator[int]:
    """Run ``python args...`` as a child process and yield once ``port`` accepts."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def uvicorn_server() -> AsyncIterator[str]:
    """The benchmark ASGI app under uvicorn in a child process; yields its URL."""
    port = free_port()
    args = [
        "-m",
        "uvicorn",
        "benchmarks.asgi_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--lifespan",
        "off",
        # Idle keep-alive connections must outlive the other side's rounds.
        "--timeout-keep-alive",
        "600",
        "--ws",
        "none",
    ]
    async with child_server(args, port):
        yield f"http://127.0.0.1:{port}"
