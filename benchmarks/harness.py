"""Side-by-side measurement: our client vs the raw library, same work, one run.

Each workload gives two coroutine functions doing the same work, one through
our client and one through the raw library; each returns the number of
operations it did. :func:`compare` runs them interleaved (A B A B ...), reports
the median throughput of each and the ratio ours/raw, then measures each
side's peak traced memory in one extra run apiece (tracemalloc slows code, so
it is kept out of the timed rounds). The traced run may do a tenth of the work
(``slices``): the workloads are steady loops whose peak is reached early, and
the traced run is what dominated the suite's wall time. :func:`compare_rows`
runs several rows that share a side (one raw baseline for two of our
variants) so the shared side is timed once per round, not once per row.
After two rounds it stops early when the per-round ratios ours/raw already
agree within 5% (at the issue's counts one round of every workload takes
about two minutes on 2 cores, so a third round everywhere cannot fit in the
5-minute budget); workloads whose ratio moves get the third round.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
    memory_fraction: float = 1.0

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
    slices: tuple[Work, Work] | None = None,
    fraction: float = 0.1,
    min_rounds: int = 2,
    settled: float = 0.05,
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
        slices: ``(ours, raw)`` doing ``fraction`` of the work, used for the
            traced memory run instead of the full work.
        fraction: The share of the work ``slices`` do (shown under the table).
        min_rounds: Stop early, after this many rounds, when the per-round
            ratios are already within ``settled`` (relative spread) of each other.
        settled: The relative spread counted as settled.

    Returns:
        The result row.
    """
    rows = await compare_rows(
        [(name, ours, raw)],
        rounds=rounds,
        memory=memory,
        warmup=warmup,
        slices=dict(zip((ours, raw), slices, strict=True)) if slices else None,
        fraction=fraction,
        min_rounds=min_rounds,
        settled=settled,
    )
    return rows[0]


async def compare_rows(
    rows: Sequence[tuple[str, Work, Work]],
    *,
    rounds: int = 3,
    memory: bool = True,
    warmup: bool = False,
    slices: Mapping[Work, Work] | None = None,
    fraction: float = 0.1,
    min_rounds: int = 2,
    settled: float = 0.05,
) -> list[Result]:
    """Like :func:`compare` for rows that share works, each distinct work timed once a round.

    Args:
        rows: ``(name, ours, raw)`` per row; the same callable may appear in
            several rows (e.g. one raw baseline for two of our variants).
        rounds: Timed rounds per work.
        memory: Measure peak traced memory in one run of each work.
        warmup: Run each work once untimed first (else each slice, when
            memory is traced on one).
        slices: For some works, a smaller work to trace memory on instead.
        fraction: The share of the work the ``slices`` do.
        min_rounds: Stop after this many rounds (fewer than ``rounds``) when
            every row's per-round ratios ours/raw are within ``settled`` of
            each other (drift that slows both sides alike does not count).
        settled: The relative spread (max - min) / median counted as settled.

    Returns:
        One result per row, in order.
    """
    works = list(dict.fromkeys(work for _, ours, raw in rows for work in (ours, raw)))
    slices = slices or {}
    if warmup:
        for work in works:
            await work()
    elif memory:
        # An untimed slice first, so that one-time costs (lazy imports,
        # caches, connections) are not counted as the workload's peak.
        for work in works:
            if work in slices:
                await slices[work]()
    peaks: dict[Work, float] = {}
    for work in works:
        if memory:
            peaks[work] = await _peak(slices.get(work, work))
        else:
            await slices.get(work, work)()
            peaks[work] = 0.0
    rates: dict[Work, list[float]] = {work: [] for work in works}
    for i in range(rounds):
        # Rotate who goes first so drift does not favour one side.
        shift = i % len(works)
        for work in works[shift:] + works[:shift]:
            rates[work].append(await _timed(work))
        if i + 1 >= min(min_rounds, rounds) and all(
            _spread([o / r for o, r in zip(rates[ours], rates[raw], strict=True)]) <= settled
            for _, ours, raw in rows
        ):
            break  # the per-round ratios already agree: more rounds add minutes, not signal
    medians = {work: statistics.median(r) for work, r in rates.items()}
    return [
        Result(
            name,
            medians[ours],
            medians[raw],
            peaks[ours],
            peaks[raw],
            memory_fraction=fraction if memory and ours in slices else 1.0,
        )
        for name, ours, raw in rows
    ]


def _spread(rates: list[float]) -> float:
    return (max(rates) - min(rates)) / statistics.median(rates)


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
    sliced = {r.memory_fraction for r in results if r.memory_fraction != 1.0}
    if sliced:
        lines.append("")
        lines.append(
            "Peak memory: one traced run per side doing "
            + " / ".join(f"{f:g}" for f in sorted(sliced))
            + " of the work (after it, the timed rounds run the full work)."
        )
    return "\n".join(lines)
