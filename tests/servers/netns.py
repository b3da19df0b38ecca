"""Run a test scenario in a private network namespace that has a "remote" host in it.

Everything in the test suite runs on loopback, but some rules are about hosts
that are *not* this machine (a manual served from the internet may not point
tools at this machine). To test them for real without contacting anything,
:func:`run_in_netns` runs an async function in a child process inside new
user, network and mount namespaces (``unshare -rnm``), where:

- ``lo`` is up with 127.0.0.1 and also :data:`REMOTE_IP`, a public address;
  there is no other interface, so no packet can leave the namespace;
- ``/etc/hosts`` is a file of the test's (bind-mounted, so the machine's stays
  untouched): :data:`REMOTE_NAME` resolves to :data:`REMOTE_IP`,
  :data:`LOCAL_ALIAS` to 127.0.0.1 (a name that hides a local address), and
  any name a scenario adds with :func:`set_host`. Names not in the file fail
  at once (there is no DNS server to ask).

:func:`forward` makes a loopback server reachable at the remote address, so
the usual test apps can play the remote host. The scenario's assertions run in
the child; the parent fails with the child's output if it fails.

``python -m tests.servers.netns module:function`` is the child's entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from agenticaiframework.communication.testing import FaultProxy

__all__ = [
    "LOCAL_ALIAS",
    "REMOTE_IP",
    "REMOTE_NAME",
    "available",
    "forward",
    "run_in_netns",
    "set_host",
]

REMOTE_IP = "1.2.3.4"
"""A public address, given to ``lo`` inside the namespace only."""
REMOTE_NAME = "tools.remote.test"
"""Resolves to :data:`REMOTE_IP` inside the namespace."""
LOCAL_ALIAS = "sneaky.remote.test"
"""Looks remote, resolves to 127.0.0.1 inside the namespace."""

_HOSTS_ENV = "NETNS_TEST_HOSTS"
_REPO = Path(__file__).resolve().parents[2]
_SETUP = (
    'mount --bind "$1" /etc/hosts && ip link set lo up && '
    f"ip addr add {REMOTE_IP}/32 dev lo && "
    'exec "$2" -W error -m tests.servers.netns "$3"'
)


@functools.cache
def available() -> bool:
    """Tell whether this machine can make the namespace (``unshare`` and ``ip``)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    try:
        done = subprocess.run(
            ["unshare", "-rnm", "sh", "-c", "ip link set lo up"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _hosts_text(extra: dict[str, str]) -> str:
    entries = {
        "localhost": "127.0.0.1",
        REMOTE_NAME: REMOTE_IP,
        LOCAL_ALIAS: "127.0.0.1",
        **extra,
    }
    return "".join(f"{address} {name}\n" for name, address in entries.items())


def set_host(name: str, address: str) -> None:
    """Inside the namespace: make ``name`` resolve to ``address`` from now on.

    The hosts file is rewritten in place (the bind mount follows the inode),
    so a scenario can change what a name resolves to between two calls.

    Args:
        name: A host name.
        address: An IP address.
    """
    path = os.environ[_HOSTS_ENV]
    lines = [line for line in Path(path).read_text().splitlines() if line.split()[1:] != [name]]
    lines.append(f"{address} {name}")
    with open(path, "r+") as hosts:  # in place: same inode
        hosts.write("\n".join(lines) + "\n")
        hosts.truncate()


async def run_in_netns(scenario: Callable[[], Awaitable[None]], *, timeout: float = 50) -> None:
    """Run a module-level async function in the namespace and fail if it fails.

    Args:
        scenario: The function; it is imported by name in the child.
        timeout: Seconds the child may take.

    Raises:
        AssertionError: The scenario failed (its output in the message) or timed out.
    """
    target = f"{scenario.__module__}:{scenario.__qualname__}"
    with tempfile.TemporaryDirectory(prefix="netns-") as folder:
        hosts = Path(folder) / "hosts"
        hosts.write_text(_hosts_text({}))
        env = {**os.environ, _HOSTS_ENV: str(hosts), "PYTHONPATH": str(_REPO)}
        process = await asyncio.create_subprocess_exec(
            "unshare",
            "-rnm",
            "sh",
            "-c",
            _SETUP,
            "netns",
            str(hosts),
            sys.executable,
            target,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=_REPO,
            env=env,
        )
        try:
            async with asyncio.timeout(timeout):
                output, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            output, _ = await process.communicate()
            raise AssertionError(
                f"{target} took more than {timeout}s in the namespace:\n{output.decode()}"
            ) from None
        finally:
            if process.returncode is None:  # cancelled: leave no child behind
                process.kill()
                await process.wait()
        if process.returncode != 0:
            raise AssertionError(
                f"{target} failed in the namespace (exit {process.returncode}):\n{output.decode()}"
            )


@contextlib.asynccontextmanager
async def forward(port: int, *, host: str = REMOTE_IP) -> AsyncIterator[int]:
    """Inside the namespace: relay ``host:<new port>`` to ``127.0.0.1:port`` (a FaultProxy).

    Args:
        port: The loopback server's port.
        host: The address to listen on (the remote one by default).

    Yields:
        The port listened on.
    """
    async with FaultProxy(port, listen_host=host) as relay:
        yield relay.port


def _main(target: str) -> None:
    module_name, _, name = target.partition(":")
    scenario = getattr(importlib.import_module(module_name), name)
    asyncio.run(scenario())


if __name__ == "__main__":
    _main(sys.argv[1])
