"""Run every benchmark: ``python -m benchmarks.run [--quick] [--only http,websocket]``.

Each workload runs the same work through our client and through the raw
library it wraps, interleaved, and prints ours/raw ratios and peak memory.
Ratios, not absolute numbers, are what to compare: these machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime

from .harness import format_table
from .servers import pin_client, placement

_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
"""CPUs available, counted before :func:`pin_client` narrows this process's set."""

SUITES = [
    "http",
    "websocket",
    "sse",
    "mqtt",
    "grpc",
    "stdio",
    "pool",
    "tools",
    "a2a",
    "telemetry",
    "mcp",
]


async def main(quick: bool, only: list[str]) -> int:
    """Run the selected suites and print one table per suite."""
    print(
        f"# benchmarks {'(quick) ' if quick else ''}{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{_cores()} cores ({placement()})\n",
        flush=True,
    )
    failures = 0
    for name in only:
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            results = await module.run(quick)
        except Exception:
            failures += 1
            print(f"### {name}: FAILED\n```\n{traceback.format_exc()}```\n", flush=True)
            continue
        print(format_table(f"{name} ({time.perf_counter() - started:.1f} s)", results), flush=True)
        for line in getattr(module, "overhead_lines", lambda _: [])(results):
            print(line, flush=True)
        print(flush=True)
    return 1 if failures else 0


def _cores() -> int:
    return _CORES


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="small counts: checks the benchmarks work"
    )
    parser.add_argument("--only", default=",".join(SUITES), help="comma-separated suites")
    ns = parser.parse_args()
    # The table is the output: the clients' expected warnings (a tool left out of a
    # manual, a retry) are not, so the package's loggers get a handler that drops them.
    logging.getLogger("agenticaiframework.communication").addHandler(logging.NullHandler())
    pin_client()  # before any suite starts a thread or a child
    sys.exit(asyncio.run(main(ns.quick, [s for s in ns.only.split(",") if s])))
