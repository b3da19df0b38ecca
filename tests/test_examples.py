"""Every script in examples/ runs to completion (exit 0) against local servers it starts.

Each example is run as its own process with this interpreter and warnings as
errors, under a timeout; its output is shown when it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))
TIMEOUT = 45


def test_there_are_examples() -> None:
    names = {path.stem for path in EXAMPLES}
    expected = {
        f"{name}_example"
        for name in ("http", "websocket", "sse", "mqtt", "grpc", "stdio", "pool", "manager")
    }
    assert expected | {"discovery_example"} <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_runs(script: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{script.name} did not finish within {TIMEOUT}s:\n{exc.stdout!r}\n{exc.stderr!r}"
        )
    assert done.returncode == 0, (
        f"{script.name} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    assert done.stdout.strip(), f"{script.name} printed nothing"
