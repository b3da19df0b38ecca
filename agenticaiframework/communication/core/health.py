"""Health verdicts, and the one helper that times a probe.

Every client's ``health_check()`` runs its protocol's own probe through
:func:`run_probe`, which bounds it by a timeout and turns any failure into an
unhealthy :class:`HealthStatus` instead of an exception. Details are redacted:
a URL's password or secret query values never reach a health report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from .security import redact_text

__all__ = ["HealthCheckable", "HealthStatus", "run_probe"]


@dataclass(frozen=True)
class HealthStatus:
    """The outcome of one health check.

    Attributes:
        is_healthy: Whether the probe succeeded in time.
        latency_ms: How long the probe took, in milliseconds.
        detail: What was checked, or what went wrong.
        checked_at: When the check finished (UTC).
    """

    is_healthy: bool
    latency_ms: float
    detail: str = ""
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@runtime_checkable
class HealthCheckable(Protocol):
    """Anything with an async ``health_check()`` returning a HealthStatus."""

    async def health_check(self) -> HealthStatus:
        """Probe the peer."""
        ...


async def run_probe(
    probe: Callable[[], Awaitable[str | None]], *, timeout: float, what: str
) -> HealthStatus:
    """Run ``probe`` within ``timeout`` and report the verdict.

    Args:
        probe: Coroutine function that raises on failure and may return a detail.
        timeout: Seconds the probe may take.
        what: Name of the probe for the detail text ("HTTP GET /health", ...).

    Returns:
        Healthy with the probe's detail, or unhealthy with the reason (both
        passed through :func:`~agenticaiframework.communication.core.security.redact_text`).
    """
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            detail = await probe()
    except TimeoutError:
        elapsed = (time.perf_counter() - start) * 1000
        return HealthStatus(False, elapsed, f"{what}: no answer within {timeout:g}s")
    except Exception as exc:
        elapsed = (time.perf_counter() - start) * 1000
        return HealthStatus(False, elapsed, redact_text(f"{what}: {exc}"))
    elapsed = (time.perf_counter() - start) * 1000
    return HealthStatus(True, elapsed, redact_text(detail or f"{what}: ok"))
