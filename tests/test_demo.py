"""The README's demo command runs end to end and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agenticaiframework.communication", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "POST /tasks -> 201" in result.stdout
    assert "all servers stopped; done" in result.stdout
    assert result.stderr == ""
