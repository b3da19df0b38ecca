"""Children tied to our lifetime: a watchdog that ends them even if we are killed.

A server child (Mosquitto, amqtt, an MCP server) started by the demo or the
test servers runs in a process group of its own, so a Ctrl-C on the terminal
reaches only us and we stop the child in order. If we are killed outright
(SIGKILL, or SIGTERM with no handler), nothing of ours runs: so a small
watchdog process, started in a session of its own, holds the read end of a
pipe whose write end only we hold. When that pipe reaches end-of-file, which
the kernel guarantees however we die, the watchdog sends SIGTERM and then
SIGKILL to every process group it was told about and removes every folder it
was told about. On a normal stop we forget each child after stopping it
ourselves, and closing the pipe lets the watchdog exit with nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

__all__ = ["ChildReaper", "child_reaper"]

# The watchdog's whole program: it reads "+g PGID", "-g PGID", "+d PATH", "-d PATH"
# lines until end-of-file, then ends what is left.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
groups, dirs = set(), set()
for line in sys.stdin:
    op, kind, value = line.rstrip("\n").split(" ", 2)
    target = groups if kind == "g" else dirs
    value = int(value) if kind == "g" else value
    (target.add if op == "+" else target.discard)(value)
for sig in (signal.SIGTERM, signal.SIGKILL):
    alive = set()
    for group in groups:
        try:
            os.killpg(group, sig)
            alive.add(group)
        except OSError:
            pass
    deadline = time.monotonic() + 3
    while alive and time.monotonic() < deadline:
        for group in list(alive):
            try:
                os.killpg(group, 0)
            except OSError:
                alive.discard(group)
        time.sleep(0.05)
    groups = alive
for path in dirs:
    shutil.rmtree(path, ignore_errors=True)
"""


class ChildReaper:
    """The handle on one watchdog process; see the module docstring.

    Use :func:`child_reaper` to run one for the length of a block.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    def _tell(self, line: str) -> None:
        stdin = self._process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(f"{line}\n".encode())

    def watch_group(self, pgid: int) -> None:
        """End process group ``pgid`` if we die before :meth:`forget_group`."""
        self._tell(f"+ g {pgid}")

    def forget_group(self, pgid: int) -> None:
        """We stopped group ``pgid`` ourselves: the watchdog leaves it alone."""
        self._tell(f"- g {pgid}")

    def watch_dir(self, path: str) -> None:
        """Remove folder ``path`` if we die before :meth:`forget_dir`."""
        if "\n" not in path:
            self._tell(f"+ d {path}")

    def forget_dir(self, path: str) -> None:
        """We removed folder ``path`` ourselves."""
        if "\n" not in path:
            self._tell(f"- d {path}")

    async def close(self) -> None:
        """Close the pipe and wait for the watchdog to exit (it ends what it still watches)."""
        stdin = self._process.stdin
        if stdin is not None and not stdin.is_closing():
            with contextlib.suppress(ConnectionError):
                await stdin.drain()
            stdin.close()
        try:
            async with asyncio.timeout(10):
                await self._process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()


@contextlib.asynccontextmanager
async def child_reaper() -> AsyncIterator[ChildReaper]:
    """Run a watchdog for the length of the block.

    Yields:
        The :class:`ChildReaper` to tell about each child group and folder.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WATCHDOG,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    reaper = ChildReaper(process)
    try:
        yield reaper
    finally:
        await reaper.close()
