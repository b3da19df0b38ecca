"""Side-by-side measurement: our client vs the raw library, same work, one run.

A *side* is a coroutine function ``side(count) -> ops`` doing ``count``
operations through one client (ours, or the raw library it wraps) and
returning how many it did. :func:`compare` gives each side the workload's
``total`` operations, cut into ``rounds`` equal rounds and interleaved
(A B, B A, A B ...: who goes first alternates so drift favours neither),
and reports each side's median per-round throughput and the ratio
ours/raw (the median of the per-round ratios). Each side thus does the
workload once, as the issue counts it, and the interleaving is
fine-grained: these machines are shared virtual machines whose speed
drifts by 15% within seconds, so many short
interleaved rounds give a steadier ratio than a few long ones (and fit the
5-minute budget). The table also shows the range of the per-round ratios.

Peak memory is measured in one extra traced run per side
(tracemalloc slows code, so it is kept out of the timed rounds) doing
``memory_share`` of the work. Every side first runs once untimed (so
process-wide one-time costs such as lazy imports, caches and connections
land on no side's trace), and each traced run follows one more untimed run
of its own side with no garbage collection in between, so that the
interpreter's free lists do not count as the workload's peak either. The
free lists matter: a full collection empties them, and refilling them (up
to 80 dicts, for instance) then shows as ~20 KiB of "peak" for any code
that makes dicts, whatever the workload's own memory. The workloads are
steady loops whose real peak is reached early. tracemalloc sees Python's
allocator only: memory that C extensions take from malloc directly (upb's
protobuf messages, for one) is invisible to it, on either side.

:func:`compare_rows` runs several rows that share a side (one raw baseline
for two of our variants): each distinct side is timed once per round.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

Side = Callable[[int], Awaitable[int]]
"""Does ``count`` operations through one client; returns the number done."""


@dataclass
class Result:
    """One workload's numbers."""

    workload: str
    ours: float
    raw: float
    ours_peak_kib: float
    raw_peak_kib: float
    unit: str = "ops/s"
    memory_share: float = 1.0
    round_ratios: list[float] = field(default_factory=list)
    rounds: int = 1

    @property
    def ratio(self) -> float:
        """Throughput ours / raw: the median of the per-round ratios.

        Each round times ours and raw back to back, so a round's ratio is
        measured under the same machine conditions; the median of those
        paired ratios is steadier than the ratio of the two medians when
        the machine's speed drifts between rounds.
        """
        if self.round_ratios:
            return statistics.median(self.round_ratios)
        return self.ours / self.raw if self.raw else float("nan")

    @property
    def memory_ratio(self) -> float:
        """Peak memory ours / raw."""
        return self.ours_peak_kib / self.raw_peak_kib if self.raw_peak_kib else float("nan")


async def _timed(side: Side, count: int) -> float:
    gc.collect()
    start = time.perf_counter()
    ops = await side(count)
    return ops / (time.perf_counter() - start)


async def _peak(side: Side, count: int) -> float:
    await side(count)  # warm-up: no collection after it, free lists stay filled
    tracemalloc.start()
    try:
        await side(count)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1024


async def compare(
    name: str,
    ours: Side,
    raw: Side,
    *,
    total: int,
    rounds: int = 10,
    memory: bool = True,
    memory_share: float = 0.1,
    unit: str = "ops/s",
) -> Result:
    """Run ``total`` operations per side in ``rounds`` interleaved rounds.

    Args:
        name: Workload name for the table.
        ours: The work through our client.
        raw: The same work through the raw library.
        total: Operations per side, over all rounds.
        rounds: Timed rounds per side (each does ``total // rounds``).
        memory: Measure peak traced memory in one run of each side.
        memory_share: The share of ``total`` the traced run (and the warm-up
            before it) does.
        unit: Throughput unit for the table.

    Returns:
        The result row.
    """
    rows = await compare_rows(
        [(name, ours, raw)],
        total=total,
        rounds=rounds,
        memory=memory,
        memory_share=memory_share,
        unit=unit,
    )
    return rows[0]


async def compare_rows(
    rows: Sequence[tuple[str, Side, Side]],
    *,
    total: int,
    rounds: int = 10,
    memory: bool = True,
    memory_share: float = 0.1,
    unit: str = "ops/s",
) -> list[Result]:
    """Like :func:`compare` for rows that share sides, each distinct side timed once a round.

    Args:
        rows: ``(name, ours, raw)`` per row; the same side may appear in
            several rows (e.g. one raw baseline for two of our variants).
        total: Operations per side, over all rounds.
        rounds: Timed rounds per side.
        memory: Measure peak traced memory in one run of each side.
        memory_share: The share of ``total`` the warm-up and traced runs do.
        unit: Throughput unit for the table.

    Returns:
        One result per row, in order.
    """
    if total < rounds:
        raise ValueError(f"total ({total}) must be at least rounds ({rounds})")
    sides = list(dict.fromkeys(side for _, ours, raw in rows for side in (ours, raw)))
    small = max(1, int(total * memory_share))
    for side in sides:
        # Warm every side before tracing any: process-wide one-time costs
        # (about 50 KiB for the HTTP pair) would else land on whichever is traced first.
        await side(small)
    peaks = {side: await _peak(side, small) if memory else 0.0 for side in sides}
    per_round = total // rounds
    rates: dict[Side, list[float]] = {side: [] for side in sides}
    for i in range(rounds):
        order = sides if i % 2 == 0 else sides[::-1]
        for side in order:
            rates[side].append(await _timed(side, per_round))
    medians = {side: statistics.median(r) for side, r in rates.items()}
    return [
        Result(
            name,
            medians[ours],
            medians[raw],
            peaks[ours],
            peaks[raw],
            unit=unit,
            memory_share=memory_share if memory else 1.0,
            round_ratios=[o / r for o, r in zip(rates[ours], rates[raw], strict=True)],
            rounds=rounds,
        )
        for name, ours, raw in rows
    ]


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
        "| workload | ours | raw | ours/raw | per-round ours/raw | peak KiB ours "
        "| peak KiB raw | mem ours/raw |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ratios = r.round_ratios
        spread = f"{min(ratios):.2f} to {max(ratios):.2f}" if len(ratios) > 1 else ""
        lines.append(
            f"| {r.workload} | {r.ours:,.0f} {r.unit} | {r.raw:,.0f} {r.unit} | {r.ratio:.2f} | "
            f"{spread} | {r.ours_peak_kib:,.0f} | {r.raw_peak_kib:,.0f} | {r.memory_ratio:.2f} |"
        )
    notes = sorted({(r.rounds, r.memory_share) for r in results if r.round_ratios})
    for rounds, share in notes:
        lines.append("")
        lines.append(
            f"Each side does the workload once, in {rounds} interleaved rounds; ours and raw are "
            "the median per-round rates, ours/raw the median of the per-round ratios."
            + (
                f" Peak memory: one traced run per side doing {share:g} of the work."
                if share != 1.0
                else ""
            )
        )
    return "\n".join(lines)
