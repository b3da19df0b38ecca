"""A real MQTT broker on 127.0.0.1 for tests: Mosquitto when installed, else amqtt.

* :class:`MosquittoBroker` — a Mosquitto 2.x child process with a generated
  config (``listener <port> 127.0.0.1``, anonymous clients, persistence off
  unless asked); :meth:`~MosquittoBroker.stop` / :meth:`~MosquittoBroker.start`
  restart it on the same port, so a test can cause a broker outage. With
  ``persistence=True`` sessions and queued QoS 1/2 messages survive the
  restart (Mosquitto saves its database on SIGTERM).
* :func:`serve_amqtt` — the fallback when Mosquitto is missing: the
  pure-Python amqtt broker, run as a child process from a virtual environment
  of its own (:func:`amqtt_venv_dir`, set up by ``scripts/setup``) so that its
  ``websockets==15.0.1`` pin never touches this environment.
* :func:`serve_mqtt_broker` — whichever of the two can run, or a
  ``RuntimeError`` naming what to install.

Every broker runs in a process group of its own and in a temporary folder;
both are gone when the block ends (or, given a
:class:`~agenticaiframework.communication.testing.reaper.ChildReaper`, when
this process dies).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ._process import (
    LoopbackServer,
    free_port,
    stop_child,
    tied_child,
    tied_folder,
    wait_listening,
)
from .reaper import ChildReaper

__all__ = [
    "AMQTT_INSTALL_HINT",
    "AMQTT_VENV_ENV",
    "AMQTT_VERSION",
    "MOSQUITTO_INSTALL_HINT",
    "MQTTBroker",
    "MosquittoBroker",
    "amqtt_venv_dir",
    "find_amqtt",
    "find_mosquitto",
    "serve_amqtt",
    "serve_mqtt_broker",
]

MOSQUITTO_INSTALL_HINT = (
    "install Mosquitto 2.x (apt-get install -y mosquitto, brew install mosquitto)"
)

#: The amqtt release the fallback broker environment holds.
AMQTT_VERSION = "0.12.1"
#: Environment variable naming the amqtt virtual environment (see :func:`amqtt_venv_dir`).
AMQTT_VENV_ENV = "AGENTCOMM_AMQTT_VENV"
AMQTT_INSTALL_HINT = (
    "run scripts/setup, which puts the pure-Python amqtt broker in an environment of its own "
    f"(python3 -m venv DIR && DIR/bin/pip install amqtt=={AMQTT_VERSION}, DIR = ${AMQTT_VENV_ENV} "
    "or ~/.cache/agenticaiframework/amqtt-venv)"
)


def find_mosquitto() -> str | None:
    """Locate the ``mosquitto`` broker binary.

    Returns:
        Its path, or None when it is not installed.
    """
    for candidate in (
        shutil.which("mosquitto"),
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
        "/opt/homebrew/sbin/mosquitto",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def amqtt_venv_dir() -> Path:
    """Where the amqtt broker's own virtual environment lives.

    ``$AGENTCOMM_AMQTT_VENV`` when set, else
    ``${XDG_CACHE_HOME:-~/.cache}/agenticaiframework/amqtt-venv`` (the same
    rule as ``scripts/setup``, which creates it).

    Returns:
        The environment's directory (it may not exist).
    """
    override = os.environ.get(AMQTT_VENV_ENV)
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "agenticaiframework" / "amqtt-venv"


def find_amqtt(venv: str | os.PathLike[str] | None = None) -> str | None:
    """Locate the Python interpreter of an environment that has amqtt installed.

    The environment counts when its interpreter is executable and pip has
    installed amqtt's ``amqtt`` console script there (pip writes scripts
    last, so a half-finished install does not count).

    Args:
        venv: The environment's directory; :func:`amqtt_venv_dir` when None.

    Returns:
        The interpreter's path, or None when the environment is not there.
    """
    root = Path(venv) if venv is not None else amqtt_venv_dir()
    for scripts, python, amqtt in (
        ("bin", "python", "amqtt"),
        ("Scripts", "python.exe", "amqtt.exe"),
    ):
        interpreter = root / scripts / python
        if os.access(interpreter, os.X_OK) and (root / scripts / amqtt).is_file():
            return str(interpreter)
    return None


class MosquittoBroker(LoopbackServer):
    """One Mosquitto broker child process on 127.0.0.1.

    ``async with MosquittoBroker() as broker`` starts it and waits until it
    accepts connections; the block's end stops it and removes its folder.

    Args:
        binary: The broker binary; :func:`find_mosquitto` when None.
        port: The port; a free one by default.
        persistence: Keep sessions and queued messages across restarts.
        extra_config: More lines for ``mosquitto.conf``.
        reaper: A watchdog that ends the broker and removes its folder if this
            process is killed before the block ends.
        folder_prefix: The name prefix of its temporary folder.

    Raises:
        RuntimeError: Mosquitto is not installed (the message says how to install it).
    """

    def __init__(
        self,
        binary: str | None = None,
        port: int | None = None,
        *,
        persistence: bool = False,
        extra_config: str = "",
        reaper: ChildReaper | None = None,
        folder_prefix: str = "agentcomm-mosquitto-",
    ) -> None:
        found = binary or find_mosquitto()
        if found is None:
            raise RuntimeError(f"mosquitto not found: {MOSQUITTO_INSTALL_HINT}")
        self.binary = found
        self.port = port or free_port()
        self.persistence = persistence
        self.extra_config = extra_config
        self._reaper = reaper
        self._prefix = folder_prefix
        self._dir: str | None = None
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

    def _listener_ports(self) -> list[int]:
        """Our port, then every ``listener <port>`` that ``extra_config`` adds."""
        ports = [self.port]
        for line in (self.extra_config or "").splitlines():
            fields = line.split()
            # Port 0 is a unix socket listener: nothing to connect to on TCP.
            port = fields[1] if fields[:1] == ["listener"] and len(fields) > 1 else ""
            if port.isdigit() and int(port):
                ports.append(int(port))
        return ports

    def _write_config(self, directory: str) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # Started as root, Mosquitto would switch to user "mosquitto" and lose
            # access to the temporary folder; stay the current user.
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
        path = Path(directory) / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    async def start(self, timeout: float = 10.0) -> MosquittoBroker:
        """Start the broker and wait until it accepts connections.

        Args:
            timeout: Seconds to wait for the port.

        Returns:
            Self.

        Raises:
            RuntimeError: The broker exited (its stderr is quoted) or never listened.
        """
        if self.running:
            return self
        if self._dir is None:
            self._dir = await asyncio.to_thread(tempfile.mkdtemp, prefix=self._prefix)
            if self._reaper is not None:
                self._reaper.watch_dir(self._dir)
        config = await asyncio.to_thread(self._write_config, self._dir)
        proc = self._proc = await asyncio.create_subprocess_exec(
            self.binary,
            "-c",
            config,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        if self._reaper is not None:
            self._reaper.watch_group(proc.pid)

        async def stderr() -> bytes:
            return await proc.stderr.read() if proc.stderr else b""

        try:
            # Mosquitto opens its listeners one after another: wait for every
            # one, not only the first, or a TLS listener may not be up yet.
            for port in self._listener_ports():
                await wait_listening(proc, port, name="mosquitto", timeout=timeout, stderr=stderr)
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        """Stop the broker (SIGTERM, so a persistent database is saved) and reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        await stop_child(proc)
        if self._reaper is not None:
            self._reaper.forget_group(proc.pid)

    async def restart(self) -> None:
        """Stop, then start again on the same port."""
        await self.stop()
        await self.start()

    async def close(self) -> None:
        """Stop the broker and remove its folder."""
        try:
            await self.stop()
        finally:
            directory, self._dir = self._dir, None
            if directory is not None:
                await asyncio.to_thread(shutil.rmtree, directory, True)
                if self._reaper is not None:
                    self._reaper.forget_dir(directory)


def _amqtt_config(port: int) -> dict[str, Any]:
    """The amqtt broker config: one TCP listener on 127.0.0.1, anonymous clients allowed.

    amqtt's own default binds 0.0.0.0:1883 and loads the packet logger and the
    ``$SYS`` plugin; naming the listener and the plugins replaces all of that.
    """
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


def _write_amqtt_config(directory: str, port: int) -> str:
    # JSON is YAML, so amqtt reads it and this environment needs no YAML library.
    path = Path(directory) / "amqtt.yaml"
    path.write_text(json.dumps(_amqtt_config(port), indent=2) + "\n")
    return str(path)


def _read_tail(path: Path, limit: int = 4000) -> bytes:
    try:
        return path.read_bytes()[-limit:]
    except OSError:
        return b""


@contextlib.asynccontextmanager
async def serve_amqtt(
    python: str,
    *,
    timeout: float = 20.0,
    reaper: ChildReaper | None = None,
    folder_prefix: str = "agentcomm-amqtt-",
) -> AsyncIterator[str]:
    """Run the amqtt broker from its own environment on a free loopback port.

    The broker is ``python -m amqtt.scripts.broker_script`` (what amqtt's
    ``amqtt`` console script runs) with a generated config: one TCP listener
    on 127.0.0.1, anonymous clients allowed, no WebSocket listener. amqtt
    speaks MQTT 3.1.1 only (clients must use ``protocol_version=4``) and
    delivers QoS 0 publishes to QoS 1 subscribers at QoS 1. Its log goes to a
    file in the config's temporary directory, quoted when it fails to start.

    Args:
        python: The environment's interpreter (see :func:`find_amqtt`).
        timeout: Seconds to wait for the broker to listen.
        reaper: A watchdog that ends the broker and removes its folder if this
            process is killed before the block ends.
        folder_prefix: The name prefix of its temporary folder.

    Yields:
        ``mqtt://127.0.0.1:<port>``.

    Raises:
        RuntimeError: The broker exited or never listened.
    """
    async with tied_folder(folder_prefix, reaper) as directory:
        port = free_port()
        config = await asyncio.to_thread(_write_amqtt_config, directory, port)
        log_path = Path(directory) / "amqtt.log"
        log = await asyncio.to_thread(log_path.open, "wb")
        try:
            proc = await asyncio.create_subprocess_exec(
                python,
                "-m",
                "amqtt.scripts.broker_script",
                "-c",
                config,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()  # the child holds its own copy of the descriptor

        async def stderr() -> bytes:
            return await asyncio.to_thread(_read_tail, log_path)

        async with tied_child(proc, reaper):
            await wait_listening(proc, port, name="amqtt", timeout=timeout, stderr=stderr)
            yield f"mqtt://127.0.0.1:{port}"


@dataclass(frozen=True)
class MQTTBroker:
    """A running broker from :func:`serve_mqtt_broker`.

    Attributes:
        url: ``mqtt://127.0.0.1:<port>``.
        kind: ``"mosquitto"`` or ``"amqtt"`` (amqtt speaks MQTT 3.1.1 only:
            use ``protocol_version=4`` against it).
    """

    url: str
    kind: Literal["mosquitto", "amqtt"]

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``."""
        return "127.0.0.1"

    @property
    def port(self) -> int:
        """The broker's port."""
        return int(self.url.rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def serve_mqtt_broker(
    *, reaper: ChildReaper | None = None, timeout: float = 20.0
) -> AsyncIterator[MQTTBroker]:
    """Run an MQTT broker on a free loopback port for the length of the block.

    Mosquitto when it is installed; else amqtt from its own environment
    (:func:`find_amqtt`).

    Args:
        reaper: A watchdog that ends the broker if this process is killed.
        timeout: Seconds to wait for the amqtt broker to listen (Mosquitto gets 10).

    Yields:
        The running broker.

    Raises:
        RuntimeError: Neither broker can run here; the message names how to
            install either.
    """
    binary = find_mosquitto()
    if binary is not None:
        async with MosquittoBroker(binary, reaper=reaper) as broker:
            yield MQTTBroker(broker.url, "mosquitto")
        return
    python = find_amqtt()
    if python is not None:
        async with serve_amqtt(python, timeout=timeout, reaper=reaper) as url:
            yield MQTTBroker(url, "amqtt")
        return
    raise RuntimeError(
        f"no MQTT broker to run: {MOSQUITTO_INSTALL_HINT}; or, for the pure-Python "
        f"fallback, {AMQTT_INSTALL_HINT}"
    )
