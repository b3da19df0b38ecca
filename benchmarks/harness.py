"""Side-by-side measurement: our client vs the raw library, same work, one run.

Each workload gives two coroutine functions doing the same work, one through
our client and one through the raw library; each returns the number of
operations it did. :func:`compare` runs them interleaved (A B A B ...), reports
the median throughput of each and the ratio ours/raw, then measures each
side's peak traced memory in one extra run apiece (tracemalloc slows code, so
it is kept out of the timed rounds).
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Work = Callable[[], Awaitable[int]]


@dataclass
class Result:
    """One workload's numbers."""

    workload: str
    ours: float
    raw: float
    ours_peak_kib: float
    raw_peak_kib: float
    unit: str = "ops/s"

    @property
    def ratio(self) -> float:
        """Throughput ours / raw."""
        return self.ours / self.raw if self.raw else float("nan")

    @property
    def memory_ratio(self) -> float:
        """Peak memory ours / raw."""
        return self.ours_peak_kib / self.raw_peak_kib if self.raw_peak_kib else float("nan")


async def _timed(work: Work) -> float:
    gc.collect()
    start = time.perf_counter()
    ops = await work()
    return ops / (time.perf_counter() - start)


async def _peak(work: Work) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        await work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1024


async def compare(
    name: str,
    ours: Work,
    raw: Work,
    *,
    rounds: int = 3,
    memory: bool = True,
    warmup: bool = False,
) -> Result:
    """Run both sides interleaved ``rounds`` times and return the medians.

    Args:
        name: Workload name for the table.
        ours: The work through our client.
        raw: The same work through the raw library.
        rounds: Timed rounds per side.
        memory: Measure peak traced memory in one run of each side (after the warm-up).
        warmup: Run each side once untimed first. Off by default: the traced
            memory run already warms connections and caches before the timed rounds.

    Returns:
        The result row.
    """
    if warmup:
        await ours()
        await raw()
    ours_peak = await _peak(ours) if memory else (await ours(), 0.0)[1]
    raw_peak = await _peak(raw) if memory else (await raw(), 0.0)[1]
    ours_rates: list[float] = []
    raw_rates: list[float] = []
    for i in range(rounds):
        # Alternate who goes first so drift does not favour one side.
        if i % 2 == 0:
            ours_rates.append(await _timed(ours))
            raw_rates.append(await _timed(raw))
        else:
            raw_rates.append(await _timed(raw))
            ours_rates.append(await _timed(ours))
    return Result(
        name, statistics.median(ours_rates), statistics.median(raw_rates), ours_peak, raw_peak
    )


def format_table(title: str, results: list[Result]) -> str:
    """Render results as a Markdown table.

    Args:
        title: The table heading.
        results: Rows.

    Returns:
        The table text.
    """
    lines = [
        f"### {title}",
        "",
        "| workload | ours | raw | ours/raw | peak KiB ours | peak KiB raw | mem ours/raw |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.workload} | {r.ours:,.0f} {r.unit} | {r.raw:,.0f} {r.unit} | {r.ratio:.2f} | "
            f"{r.ours_peak_kib:,.0f} | {r.raw_peak_kib:,.0f} | {r.memory_ratio:.2f} |"
        )
    return "\n".join(lines)
