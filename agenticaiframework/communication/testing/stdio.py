"""STDIO children for tests: a JSON-lines echo and an MCP server, and a way to run any child.

* :func:`echo_command` — the command line of a child that writes back every
  line it reads on stdin (``python -m agenticaiframework.communication.testing.stdio``),
  so a newline-delimited JSON client sees each message it sends come back.
* :func:`mcp_server_command` — the command line of an MCP server over stdio
  (tools ``add(a, b)`` and ``word_count(text)``; needs the ``mcp`` package).
* :func:`run_child` — start any such child with pipes, in a process group of
  its own, and stop it completely when the block ends.

An STDIO client starts its child itself: give it one of the command lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence

from ._process import stop_child
from .reaper import ChildReaper

__all__ = ["echo_command", "main", "mcp_server_command", "run_child"]


def echo_command() -> list[str]:
    """The command line of the line-echo child (this interpreter).

    Returns:
        ``[python, "-m", "agenticaiframework.communication.testing.stdio"]``.
    """
    return [sys.executable, "-m", __name__]


def mcp_server_command() -> list[str]:
    """The command line of the MCP server child (this interpreter; needs ``mcp``).

    Returns:
        ``[python, "-m", "agenticaiframework.communication.testing.mcp_child"]``.
    """
    return [sys.executable, "-m", "agenticaiframework.communication.testing.mcp_child"]


@contextlib.asynccontextmanager
async def run_child(
    argv: Sequence[str], *, reaper: ChildReaper | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run a child with stdin, stdout and stderr piped, for the length of the block.

    At the end its stdin is closed and it is stopped (SIGTERM, then SIGKILL
    after 5 s) and reaped.

    Args:
        argv: The command line.
        reaper: A watchdog that ends the child if this process is killed.

    Yields:
        The running process.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    if reaper is not None:
        reaper.watch_group(proc.pid)
    try:
        yield proc
    finally:
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        await stop_child(proc)
        if proc.stdout is not None:
            await proc.stdout.read()
        if reaper is not None:
            reaper.forget_group(proc.pid)


def main() -> None:
    """Echo stdin to stdout line by line until stdin closes."""
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        out.write(line)
        out.flush()


if __name__ == "__main__":
    main()
