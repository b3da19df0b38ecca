"""The README's demo command runs end to end, quickly, and leaves nothing behind."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agenticaiframework.communication import demo
from agenticaiframework.communication.testing import servers as _demo_servers

DEMO = [sys.executable, "-m", "agenticaiframework.communication", "demo"]
# Markers in the command lines of the demo's child processes: Mosquitto's
# generated config lives in an "agentcomm-demo-mqtt-" temp dir.
CHILD_MARKERS = ("agentcomm-demo-mqtt-", "agenticaiframework.communication.testing.mcp_child")


def _children() -> dict[int, str]:
    """Live (non-zombie) processes that look like the demo's children: pid -> command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(marker in cmdline for marker in CHILD_MARKERS):
            found[int(entry.name)] = cmdline
    return found


def test_demo_runs_every_step_and_leaves_no_process() -> None:
    before = _children()
    start = time.monotonic()
    proc = subprocess.Popen(
        DEMO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    seen: dict[int, str] = {}
    while proc.poll() is None and time.monotonic() - start < 30:
        seen.update((pid, cmd) for pid, cmd in _children().items() if pid not in before)
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=30)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, stdout + stderr
    assert elapsed < 30
    assert stderr == ""
    lines = stdout.splitlines()
    for step in demo.STEPS:
        assert any(step in line for line in lines), (step, stdout)
    assert "POST /tasks -> 201" in stdout
    assert "Last-Event-ID: 3" in stdout
    assert "events [1, 2, 3, 4, 5, 6]" in stdout
    assert "'result': 42" in stdout  # the MCP tool call
    for name in ("http", "sse", "websocket", "mqtt", "grpc", "stdio"):
        assert re.search(rf"\] +{name} +healthy ", stdout), (name, stdout)
    assert lines[-1].endswith("all servers stopped; done")
    # Both children (Mosquitto and the MCP server) ran, and both are gone.
    for marker in CHILD_MARKERS:
        assert any(marker in cmd for cmd in seen.values()), (marker, seen)
    assert not set(_children()) - set(before), "the demo left child processes behind"


def test_demo_help_and_module_entry() -> None:
    result = subprocess.run(
        [*DEMO, "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0
    assert "embedded servers" in result.stdout


async def test_demo_without_mosquitto_skips_mqtt_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_demo_servers, "find_mosquitto", lambda: None)
    monkeypatch.setattr(_demo_servers, "find_amqtt", lambda *args, **kwargs: None)
    out = io.StringIO()
    assert await demo.run_demo(out) == 0
    text = out.getvalue()
    assert "mqtt      SKIPPED: the mosquitto broker is not installed" in text
    assert "apt-get install -y mosquitto" in text
    assert "health    all healthy" in text
    assert " mqtt " not in text.split("health    all healthy", 1)[1]
    assert text.rstrip().endswith("all servers stopped; done")


def _demo_folders() -> set[str]:
    """Temporary folders the demo's brokers use (named agentcomm-demo-*)."""
    import tempfile

    return {p.name for p in Path(tempfile.gettempdir()).glob("agentcomm-demo-*")}


def _start_demo_and_wait_for_children(
    before: dict[int, str],
) -> tuple[subprocess.Popen[str], dict[int, str]]:
    """Start the demo in a session of its own and wait until both children run."""
    # An ignored SIGINT is inherited across exec, and a shell ignores it in the
    # background jobs it starts (`pytest ... &`): the demo would then rightly
    # ignore Ctrl-C too. A terminal's job has the default; start it with that.
    ignored = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        proc = subprocess.Popen(
            DEMO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # like a terminal's job: our signals reach its group
        )
    finally:
        signal.signal(signal.SIGINT, ignored)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        mine = {pid: cmd for pid, cmd in _children().items() if pid not in before}
        if all(any(m in cmd for cmd in mine.values()) for m in CHILD_MARKERS):
            return proc, mine
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the demo's children did not start: " + str(proc.communicate()))


def _gone_within(
    pids: set[int], folders_before: set[str], seconds: float
) -> tuple[set[int], set[str]]:
    deadline = time.monotonic() + seconds
    while True:
        left = set(_children()) & pids
        folders = _demo_folders() - folders_before
        if (not left and not folders) or time.monotonic() > deadline:
            return left, folders
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_a_signalled_demo_leaves_no_process_or_folder(sig: signal.Signals) -> None:
    folders_before = _demo_folders()
    proc, children = _start_demo_and_wait_for_children(_children())
    assert _demo_folders() - folders_before, "the broker's folder exists while it runs"
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # what Ctrl-C on a terminal does: the whole foreground group
    else:
        proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    left, folders = _gone_within(set(children), folders_before, 15)
    assert not left, f"children left after {sig.name}: {left}"
    assert not folders, f"folders left after {sig.name}: {folders}"
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        return
    expected = {signal.SIGTERM: (143, "terminated"), signal.SIGINT: (130, "interrupted")}[sig]
    assert proc.returncode == expected[0], stderr
    assert stderr.strip().splitlines() == [
        f"agentcomm demo: {expected[1]}; all it started is stopped"
    ], stderr
