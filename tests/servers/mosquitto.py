"""A real Mosquitto 2.x broker as a child process, on loopback, for tests and benchmarks.

``async with Mosquitto() as broker`` writes a config file in a temp dir
(``listener <port> 127.0.0.1``, ``allow_anonymous true``, persistence off unless
asked), starts ``mosquitto -c``, and waits until the port accepts connections.
``await broker.stop()`` / ``await broker.start()`` restart it on the same port
(the outage tests); with ``persistence=True`` sessions and queued QoS 1/2
messages survive the restart (Mosquitto saves its database on SIGTERM).

When the binary is missing this raises with the install command; it never
skips: ``apt-get install -y mosquitto``.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from agenticaiframework.communication.testing.servers import stop_child

from .ports import free_port

__all__ = ["MOSQUITTO_INSTALL_HINT", "Mosquitto", "find_mosquitto"]

MOSQUITTO_INSTALL_HINT = (
    "Mosquitto 2.x is required for the MQTT tests: apt-get install -y mosquitto"
)


def find_mosquitto() -> str:
    """Locate the ``mosquitto`` binary.

    Returns:
        Its path.

    Raises:
        RuntimeError: It is not installed (the message says how to install it).
    """
    for candidate in (
        shutil.which("mosquitto"),
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(f"mosquitto not found. {MOSQUITTO_INSTALL_HINT}")


class Mosquitto:
    """One Mosquitto broker child process on 127.0.0.1.

    Args:
        port: The port; a free one by default.
        persistence: Keep sessions and queued messages across restarts.
        extra_config: More lines for mosquitto.conf.
    """

    def __init__(
        self, port: int | None = None, *, persistence: bool = False, extra_config: str = ""
    ) -> None:
        self.binary = find_mosquitto()
        self.port = port or free_port()
        self.persistence = persistence
        self.extra_config = extra_config
        self._dir = tempfile.TemporaryDirectory(prefix="mosquitto-")
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:<port>``."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.returncode is None

    def _write_config(self) -> Path:
        directory = Path(self._dir.name)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # Started as root, Mosquitto would drop to user "mosquitto" and lose
            # access to our temp dirs; stay the user we are.
            f"user {getpass.getuser()}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {directory}/",
            "log_dest stderr",
            "log_type error",
            "max_queued_messages 100000",
            "set_tcp_nodelay true",
        ]
        if self.extra_config:
            lines.append(self.extra_config)
        path = directory / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    async def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start the broker and wait until it accepts connections.

        Args:
            timeout: Seconds to wait for the port.

        Returns:
            Self.

        Raises:
            RuntimeError: The broker exited or never listened.
        """
        if self.running:
            return self
        config = self._write_config()
        self._proc = await asyncio.create_subprocess_exec(
            self.binary,
            "-c",
            str(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._proc.returncode is not None:
                err = await self._proc.stderr.read() if self._proc.stderr else b""
                raise RuntimeError(
                    f"mosquitto exited with {self._proc.returncode}: {err.decode(errors='replace')}"
                )
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if loop.time() > deadline:
                    await self.stop()
                    raise RuntimeError(f"mosquitto did not listen on {self.port}") from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return self

    async def stop(self) -> None:
        """Stop the broker (SIGTERM, so a persistent database is saved) and reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        await stop_child(proc)

    async def restart(self) -> None:
        """Stop, then start again on the same port."""
        await self.stop()
        await self.start()

    async def __aenter__(self) -> Mosquitto:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.stop()
        finally:
            self._dir.cleanup()
