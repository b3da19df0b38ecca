"""Child-process servers for the benchmarks, on 127.0.0.1 free ports only.

CPU placement: on a machine with two or more CPUs, :func:`pin_client` keeps
the benchmark process (both clients, timed in turn) off the last CPU and
:func:`pin_server` puts every server child there. Without it the scheduler
moves the client, its library threads (grpc's poller, the child watcher)
and the server between the cores, and the same work swings by 30% from one
round to the next; pinned, both sides run on the same core in turn, which
is what the comparison needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence

from agenticaiframework.communication.testing._process import (
    free_port,
    stop_child,
    wait_listening,
)

__all__ = [
    "canned_http_server",
    "child_server",
    "free_port",
    "pin_client",
    "pin_server",
    "placement",
    "uvicorn_server",
]


def _cpus() -> tuple[set[int], set[int]] | None:
    """(client CPUs, server CPUs), or None when there is one CPU or no affinity API."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return set(cpus[:-1]), {cpus[-1]}


_PLACEMENT = _cpus()


def placement() -> str:
    """Where clients and servers run, for the report header."""
    if _PLACEMENT is None:
        return "clients and servers share the CPUs"
    clients, servers = _PLACEMENT
    return f"clients on CPU {','.join(map(str, sorted(clients)))}, servers on CPU {min(servers)}"


def pin_client() -> None:
    """Keep this process (and threads it starts later) off the servers' CPU."""
    if _PLACEMENT is not None:
        os.sched_setaffinity(0, _PLACEMENT[0])


def pin_server(pid: int | None) -> None:
    """Move a server child process onto the servers' CPU."""
    if _PLACEMENT is not None and pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(pid, _PLACEMENT[1])


async def _no_output() -> bytes:
    return b""


@contextlib.asynccontextmanager
async def child_server(args: Sequence[str], port: int) -> AsyncIterator[int]:
    """Run ``python args...`` as a child process and yield once ``port`` accepts."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    pin_server(proc.pid)
    try:
        await wait_listening(proc, port, name=" ".join(args), timeout=15, stderr=_no_output)
        yield port
    finally:
        await stop_child(proc)


@contextlib.asynccontextmanager
async def uvicorn_server(tls: tuple[str, str] | None = None) -> AsyncIterator[str]:
    """The benchmark ASGI app under uvicorn in a child process; yields its URL.

    Args:
        tls: ``(key file, certificate file)`` to serve HTTPS instead of HTTP.
    """
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
    if tls is not None:
        args += ["--ssl-keyfile", tls[0], "--ssl-certfile", tls[1]]
    async with child_server(args, port):
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def canned_http_server(tls: tuple[str, str] | None = None) -> AsyncIterator[str]:
    """:mod:`benchmarks.canned_http_server` in a child process; yields its URL.

    Args:
        tls: ``(key file, certificate file)`` to serve HTTPS instead of HTTP.
    """
    port = free_port()
    args = ["-m", "benchmarks.canned_http_server", str(port), *(tls or ())]
    async with child_server(args, port):
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
