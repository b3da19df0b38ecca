"""The demo's fallback MQTT broker: amqtt, run from an environment of its own.

The amqtt environment is created here, in a temporary directory, exactly as
``scripts/setup`` creates it when Mosquitto is missing (``python -m venv`` plus
``pip install amqtt==0.12.1``; about 10 s, PyPI is reachable in CI too). The
demo is then run with Mosquitto made to look missing.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import io
import ipaddress
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agenticaiframework.communication import MQTTClient, demo
from agenticaiframework.communication.testing import servers as _demo_servers

AMQTT_MARKER = "agentcomm-demo-amqtt-"
WEBSOCKETS_BEFORE = importlib.metadata.version("websockets")
# Creating the environment (pip install from PyPI) runs in the first test's setup.
SLOW = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def amqtt_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with amqtt, made the way scripts/setup makes it."""
    venv = tmp_path_factory.mktemp("amqtt") / "amqtt-venv"
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120
    )
    install = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            f"amqtt=={_demo_servers.AMQTT_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return venv


def _amqtt_children() -> dict[int, str]:
    """Live children of this process that run the demo's amqtt broker: pid -> command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, ppid = fields[0], int(fields[1])
        if state != "Z" and ppid == os.getpid() and AMQTT_MARKER in cmdline:
            found[int(entry.name)] = cmdline
    return found


def _decode_address(hex_addr: str) -> str:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    # /proc/net/tcp{,6} print each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return f"{ipaddress.ip_address(words)}:{int(port, 16)}"


def _listening(pid: int) -> list[str]:
    """The TCP addresses process ``pid`` listens on, IPv4 and IPv6."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                found.append(_decode_address(cols[1]))
    return found


async def _watch_amqtt(seen: dict[int, list[str]], stop: asyncio.Event) -> None:
    """Record the listening addresses of every amqtt child until ``stop`` is set."""

    def sample() -> None:
        for pid in _amqtt_children():
            try:
                addresses = _listening(pid)
            except OSError:  # it exited between the two reads
                continue
            seen.setdefault(pid, [])
            seen[pid] = sorted(set(seen[pid]) | set(addresses))

    while not stop.is_set():
        await asyncio.to_thread(sample)
        await asyncio.sleep(0.02)


@SLOW
async def test_demo_runs_mqtt_through_amqtt_when_mosquitto_is_missing(
    amqtt_venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_demo_servers, "find_mosquitto", lambda: None)
    monkeypatch.setenv(_demo_servers.AMQTT_VENV_ENV, str(amqtt_venv))
    seen: dict[int, list[str]] = {}
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_amqtt(seen, stop))
    out = io.StringIO()
    try:
        status = await demo.run_demo(out)
    finally:
        stop.set()
        await watcher
    text = out.getvalue()
    assert status == 0, text
    python = str(amqtt_venv / "bin" / "python")
    assert f"(amqtt, run by {python})" in text
    assert re.search(
        r"mqtt      round trip via amqtt: agents/\+/status got agents/demo/status "
        r"\{'state': 'ready'\} \(QoS 1\)",
        text,
    ), text
    assert re.search(r"\] +mqtt +healthy .*broker answered", text), text
    assert "health    all healthy" in text
    assert text.rstrip().endswith("all servers stopped; done")
    # The broker ran as a child of this process, from the amqtt environment's python,
    # and listened on 127.0.0.1 only: one port, the one the demo printed.
    assert len(seen) == 1, seen
    [(pid, addresses)] = seen.items()
    url = re.search(r"mqtt (mqtt://127\.0\.0\.1:\d+) \(amqtt", text)
    assert url is not None, text
    assert addresses == [url.group(1).removeprefix("mqtt://")]
    # Nothing is left behind.
    assert not _amqtt_children()
    assert not Path(f"/proc/{pid}").exists()
    # amqtt's websockets==15.0.1 pin stayed in its own environment.
    assert importlib.metadata.version("websockets") == WEBSOCKETS_BEFORE


@SLOW
async def test_serve_amqtt_speaks_mqtt_311_and_stops_the_broker(amqtt_venv: Path) -> None:
    python = _demo_servers.find_amqtt(amqtt_venv)
    assert python == str(amqtt_venv / "bin" / "python")
    async with _demo_servers.serve_amqtt(python) as url:
        [(pid, cmdline)] = _amqtt_children().items()
        assert cmdline.startswith(f"{python} -m amqtt.scripts.broker_script -c ")
        config = Path(cmdline.split(" -c ", 1)[1].strip())
        assert json.loads(config.read_text())["listeners"] == {
            "default": {"type": "tcp", "bind": url.removeprefix("mqtt://")}
        }
        async with (
            MQTTClient(url, client_id="amqtt-sub", protocol_version=4) as sub,
            MQTTClient(url, client_id="amqtt-pub", protocol_version=4) as pub,
        ):
            await sub.subscribe("agents/#", qos=1)
            await pub.publish("agents/a/status", b"\xffraw", qos=1)
            await pub.publish("agents/b/status", [1, 2], qos=1)
            async with asyncio.timeout(10):
                first = await sub.receive()
                second = await sub.receive()
            assert (first.topic, first.payload) == ("agents/a/status", b"\xffraw")
            assert (second.topic, second.payload) == ("agents/b/status", [1, 2])
            assert (await pub.health_check()).is_healthy
    assert not Path(f"/proc/{pid}").exists()
    assert not config.parent.exists()
    assert importlib.metadata.version("websockets") == WEBSOCKETS_BEFORE


def test_find_amqtt_and_the_environment_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_demo_servers.AMQTT_VENV_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _demo_servers.amqtt_venv_dir() == tmp_path / "cache/agenticaiframework/amqtt-venv"
    monkeypatch.setenv(_demo_servers.AMQTT_VENV_ENV, str(tmp_path / "venv"))
    assert _demo_servers.amqtt_venv_dir() == tmp_path / "venv"
    assert _demo_servers.find_amqtt() is None  # no such directory
    # An environment whose pip has not (yet) installed amqtt's script does not count.
    (tmp_path / "venv/bin").mkdir(parents=True)
    (tmp_path / "venv/bin/python").symlink_to(sys.executable)
    assert _demo_servers.find_amqtt() is None
    (tmp_path / "venv/bin/amqtt").write_text("#!/bin/sh\n")
    assert _demo_servers.find_amqtt() == str(tmp_path / "venv/bin/python")


def test_amqtt_config_binds_loopback_only() -> None:
    config = _demo_servers._amqtt_config(18830)
    assert config["listeners"] == {"default": {"type": "tcp", "bind": "127.0.0.1:18830"}}
    assert config["plugins"] == {
        "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
    }


async def test_serve_amqtt_says_why_the_broker_did_not_start() -> None:
    # This environment has no amqtt (it must never get it), so the broker exits at once.
    with pytest.raises(RuntimeError, match=r"amqtt exited with status 1: .*No module named"):
        async with _demo_servers.serve_amqtt(sys.executable):
            pytest.fail("the broker should not have started")
    assert not _amqtt_children()


async def test_demo_without_any_broker_names_both_ways_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_demo_servers, "find_mosquitto", lambda: None)
    monkeypatch.setenv(_demo_servers.AMQTT_VENV_ENV, str(tmp_path / "no-venv"))
    out = io.StringIO()
    assert await demo.run_demo(out) == 0
    text = out.getvalue()
    skip = next(line for line in text.splitlines() if "mqtt      SKIPPED" in line)
    assert "the mosquitto broker is not installed" in skip
    assert f"no amqtt broker environment was found at {tmp_path / 'no-venv'}" in skip
    assert "apt-get install -y mosquitto" in skip
    assert "scripts/setup" in skip
    assert "amqtt==0.12.1" in skip
    assert "health    all healthy" in text
    assert " mqtt " not in text.split("health    all healthy", 1)[1]
