"""MCP servers written by others, run as child processes for the tests.

* the official Python ``mcp`` package's server: :data:`PYTHON_SERVER`
  (``tests/servers/mcp_full_server.py``);
* the official TypeScript SDK's server: :data:`NODE_SERVER`
  (``tests/node/mcp_server.mjs``; :func:`node_server` fails the test with a
  clear message when ``tests/node/node_modules`` is missing).

An HTTP server prints ``READY <port>`` once it listens on 127.0.0.1;
:class:`ServerProcess` starts one, reads its port and stops its process
group. It starts synchronously too (``start_sync``), for module-scoped
fixtures that share one server between the tests of a module.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = [
    "NODE_DIR",
    "PYTHON_ENV",
    "PYTHON_SERVER",
    "ROOT",
    "ServerProcess",
    "node_server",
    "python_server",
]

ROOT = Path(__file__).resolve().parents[2]
PYTHON_SERVER = [sys.executable, "-m", "tests.servers.mcp_full_server"]
PYTHON_ENV = {"PYTHONPATH": str(ROOT)}
NODE_DIR = ROOT / "tests" / "node"
_READY_TIMEOUT = 30.0


def node_server(*args: str) -> list[str]:
    """The command line of the TypeScript SDK's test server (``stdio`` or ``http PORT ...``).

    Fails the calling test (not an error deep in a child's stderr) when Node or
    the test-only packages are missing.
    """
    if not (NODE_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        pytest.fail(
            "tests/node/node_modules is missing (the official MCP TypeScript SDK): "
            "run scripts/setup (or `cd tests/node && npm ci`)",
            pytrace=False,
        )
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js 20+ and run scripts/setup", pytrace=False)
    return [node, str(NODE_DIR / "mcp_server.mjs"), *args]


def python_server(*flags: str) -> ServerProcess:
    """The Python SDK's test server over HTTP (``--legacy-sse`` first: the HTTP+SSE transport)."""
    if flags[:1] == ("--legacy-sse",):
        return ServerProcess([*PYTHON_SERVER, "sse", "{port}", *flags[1:]], "/sse", flags)
    return ServerProcess([*PYTHON_SERVER, "http", "{port}", *flags], "/mcp", flags)


class ServerProcess:
    """An MCP server in a child process that prints ``READY <port>`` (restartable on its port).

    Args:
        command: The command line, with ``{port}`` where the port goes.
        path: The MCP endpoint's path (``/mcp``, ``/sse``).
        flags: The mode flags in ``command`` (kept for the tests' checks).
    """

    def __init__(self, command: list[str], path: str = "/mcp", flags: tuple[str, ...] = ()) -> None:
        self.command = command
        self.path = path
        self.flags = flags
        self.port = 0
        self._proc: asyncio.subprocess.Process | subprocess.Popen[bytes] | None = None

    def _argv(self) -> list[str]:
        return [part.replace("{port}", str(self.port)) for part in self.command]

    def _ready(self, line: bytes) -> str:
        if not line.startswith(b"READY "):
            raise RuntimeError(f"{self.command[:3]} did not start: {line[:300]!r}")
        self.port = int(line.split()[1])
        return self.url

    @property
    def url(self) -> str:
        """The MCP endpoint's URL."""
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> str:
        """Start the server (on the same port as before, if it ran); return its URL."""
        proc = await asyncio.create_subprocess_exec(
            *self._argv(),
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **PYTHON_ENV, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
            start_new_session=True,
        )
        self._proc = proc
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), _READY_TIMEOUT)
        except TimeoutError:
            line = b"(no READY line in time)"
        return self._ready(line)

    def start_sync(self) -> str:
        """:meth:`start` for a synchronous (module-scoped) fixture."""
        proc = subprocess.Popen(
            self._argv(),
            stdout=subprocess.PIPE,
            env={**os.environ, **PYTHON_ENV},
            cwd=ROOT,
            start_new_session=True,
        )
        self._proc = proc
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            ready = selector.select(_READY_TIMEOUT)
        line = proc.stdout.readline() if ready else b"(no READY line in time)"
        return self._ready(line)

    async def stop(self) -> None:
        """Kill the server's process group and reap it."""
        proc = self._proc
        if isinstance(proc, asyncio.subprocess.Process) and proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        elif isinstance(proc, subprocess.Popen):
            await asyncio.to_thread(self.stop_sync)

    def stop_sync(self) -> None:
        """:meth:`stop` for a synchronous fixture."""
        proc = self._proc
        if isinstance(proc, subprocess.Popen) and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
