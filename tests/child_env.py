"""The environment for a child Python (a user's pytest run, a fresh venv) started by a test."""

from __future__ import annotations

import os


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would make the child run as part of this run.

    PYTHONPATH/PYTHONHOME would import this checkout instead of what the child
    should import; pytest-xdist's PYTEST_XDIST_* variables would make plugins in
    the child believe they run under xdist (pytest-benchmark then warns, and the
    child's ``filterwarnings = error`` fails it).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME") and not key.startswith("PYTEST_")
    }
    env.update(extra)
    return env
