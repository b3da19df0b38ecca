"""Shared plumbing of the test servers: free ports, waiting for a listener, stopping children."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Self

from .reaper import ChildReaper

__all__ = [
    "LoopbackServer",
    "free_port",
    "stop_accepting",
    "stop_child",
    "tied_child",
    "tied_folder",
    "wait_listening",
]


class LoopbackServer(abc.ABC):
    """A test server run by ``async with``: :meth:`start` on entry, :meth:`close` on exit.

    A start that fails part-way is closed before the error propagates, so a
    subclass's :meth:`close` must cope with a half-started server.
    """

    @abc.abstractmethod
    async def start(self) -> Self:
        """Start serving; return self."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop serving and release everything (idempotent)."""

    async def __aenter__(self) -> Self:
        try:
            return await self.start()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1.

    Returns:
        A port that was free a moment ago (bind to it soon).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def stop_accepting(listeners: Iterable[socket.socket]) -> None:
    """Stop accepting on an asyncio server's listening sockets, ready for its ``close()``.

    An asyncio server makes each accepted connection's transport in a task one
    turn of the loop after the accept; closed in between, it leaves that socket
    open with no one to close it (CPython gh-109564), which then surfaces as a
    ``ResourceWarning`` whenever the garbage collector gets to it. So the
    listeners stop being watched first, then the loop turns twice: every
    connection already accepted becomes a transport its server counts, and its
    protocol's ``connection_made`` runs (where uvicorn and websockets register
    it, so their shutdown closes it). Callbacks run in the order they were
    scheduled, so two turns are enough, whatever the load.

    Args:
        listeners: The server's listening sockets (``server.sockets``).
    """
    loop = asyncio.get_running_loop()
    for sock in listeners:
        with contextlib.suppress(OSError, ValueError):  # already closed
            loop.remove_reader(sock.fileno())
    for _ in range(2):
        await asyncio.sleep(0)  # one turn of the loop, not a wait for time to pass


async def stop_child(proc: asyncio.subprocess.Process) -> None:
    """Stop a child server: SIGTERM, up to 5 s, then SIGKILL; always reaped."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.stderr is not None:
        await proc.stderr.read()


async def wait_listening(
    proc: asyncio.subprocess.Process,
    port: int,
    *,
    name: str,
    timeout: float,
    stderr: Callable[[], Awaitable[bytes]],
) -> None:
    """Wait until ``127.0.0.1:port`` accepts a connection, or fail when ``proc`` exits.

    Raises:
        RuntimeError: The child exited (its stderr is quoted) or never listened.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if proc.returncode is not None:
            err = await stderr()
            raise RuntimeError(
                f"{name} exited with status {proc.returncode}: "
                f"{err.decode(errors='replace').strip()}"
            )
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise RuntimeError(f"{name} did not listen on port {port}") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return


@contextlib.asynccontextmanager
async def tied_folder(prefix: str, reaper: ChildReaper | None) -> AsyncIterator[str]:
    """A temporary folder, removed at the end of the block, or by ``reaper`` if we die."""
    directory = await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix)
    if reaper is not None:
        reaper.watch_dir(directory)
    try:
        yield directory
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)
        if reaper is not None:
            reaper.forget_dir(directory)


@contextlib.asynccontextmanager
async def tied_child(
    proc: asyncio.subprocess.Process, reaper: ChildReaper | None
) -> AsyncIterator[None]:
    """Stop ``proc`` (a group leader) at the end of the block, or by ``reaper`` if we die."""
    if reaper is not None:
        reaper.watch_group(proc.pid)
    try:
        yield
    finally:
        await stop_child(proc)
        if reaper is not None:
            reaper.forget_group(proc.pid)
