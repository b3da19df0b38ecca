"""Waiting and trying again, for every client, on tenacity.

One policy (:class:`~agenticaiframework.communication.core.config.RetryConfig`)
becomes one tenacity ``AsyncRetrying``: exponential backoff from
``retry_delay`` multiplied by ``retry_backoff`` per attempt, capped at
``max_delay``, with ``jitter``. A server's ``Retry-After`` (seconds or an HTTP
date) replaces the computed wait when given, capped at ``max_delay`` too.

Use::

    async for attempt in retrying(policy, retry_if=is_transient):
        with attempt:
            await connect()
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_any,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_never,
)
from tenacity.wait import wait_base

from .config import RetryConfig

T = TypeVar("T")

__all__ = [
    "PolicyWait",
    "backoff_delay",
    "parse_retry_after",
    "retry_after_first",
    "retrying",
]


def backoff_delay(
    policy: RetryConfig, attempt: int, *, rand: Callable[[], float] = random.random
) -> float:
    """The wait before retry number ``attempt`` (1 = the first retry).

    Args:
        policy: The retry policy.
        attempt: 1-based retry number.
        rand: Source of randomness in [0, 1) (for tests).

    Returns:
        Seconds to wait: ``retry_delay * retry_backoff**(attempt-1)``, capped at
        ``max_delay``, then spread by +/- ``jitter``.
    """
    base = policy.retry_delay * policy.retry_backoff ** max(attempt - 1, 0)
    base = min(base, policy.max_delay)
    if policy.jitter:
        base *= 1 + policy.jitter * (2 * rand() - 1)
    return max(base, 0.0)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delay-seconds or an HTTP date.

    Args:
        value: The header value, or None.
        now: The current time (seconds since the epoch), for tests.

    Returns:
        Seconds to wait (never negative), or None when absent or unparseable.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


class PolicyWait(wait_base):
    """A tenacity wait computed from a :class:`RetryConfig`, honouring hints.

    Args:
        policy: The retry policy.
        hint: Given the retry state, return a server-sent wait (Retry-After,
            SSE ``retry:``) in seconds, or None to use the computed backoff.
    """

    def __init__(
        self,
        policy: RetryConfig,
        hint: Callable[[RetryCallState], float | None] | None = None,
    ) -> None:
        self.policy = policy
        self.hint = hint

    def __call__(self, retry_state: RetryCallState) -> float:
        """Seconds to sleep before the next attempt."""
        if self.hint is not None:
            hinted = self.hint(retry_state)
            if hinted is not None:
                return min(hinted, self.policy.max_delay)
        return backoff_delay(self.policy, retry_state.attempt_number)


def retrying(
    policy: RetryConfig,
    *,
    retry_if: Callable[[BaseException], bool],
    retry_result: Callable[[Any], bool] | None = None,
    hint: Callable[[RetryCallState], float | None] | None = None,
    before_sleep: Callable[[RetryCallState], Any] | None = None,
    forever: bool = False,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
) -> AsyncRetrying:
    """Build the ``AsyncRetrying`` for a policy.

    Args:
        policy: The retry policy (``max_retries`` retries after the first try).
        retry_if: Whether an exception is worth another attempt.
        retry_result: Whether a returned value is worth another attempt (the
            last value is returned when attempts run out, not an error).
        hint: Server-sent wait, see :class:`PolicyWait`.
        before_sleep: Called before each wait (logging, "reconnect" events).
        forever: Ignore ``max_retries`` and keep trying (MQTT reconnect with 0).
        sleep: The coroutine function that waits (default ``asyncio.sleep``);
            a client passes one that ``close()`` can cut short.

    Returns:
        A configured ``AsyncRetrying``; exceptions are re-raised as themselves
        when attempts run out.
    """
    condition: Any = retry_if_exception(retry_if)
    if retry_result is not None:
        condition = retry_any(condition, retry_if_result(retry_result))
    extra: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
    return AsyncRetrying(
        stop=stop_never if forever else stop_after_attempt(policy.max_retries + 1),
        wait=PolicyWait(policy, hint),
        retry=condition,
        reraise=True,
        before_sleep=before_sleep,
        retry_error_callback=_last_outcome if retry_result is not None else None,
        **extra,
    )


def _last_outcome(retry_state: RetryCallState) -> Any:
    # Attempts ran out on a retryable *result*: hand it back (e.g. the last 503).
    assert retry_state.outcome is not None
    return retry_state.outcome.result()


async def retry_after_first(
    policy: RetryConfig,
    first: Any,
    call: Callable[[], Awaitable[T]],
    *,
    retry_if: Callable[[BaseException], bool],
    retry_result: Callable[[Any], bool] | None = None,
    hint: Callable[[RetryCallState], float | None] | None = None,
    before_sleep: Callable[[RetryCallState], Any] | None = None,
) -> T:
    """Go on retrying an operation whose first attempt already ran.

    Clients make the first attempt on their fast path, without tenacity; only
    when it fails (or returns a retryable result) do they come here, so the
    first outcome counts as attempt 1 and the policy's waits and limits apply
    exactly as if tenacity had made it.

    Args:
        policy: The retry policy.
        first: The first attempt's outcome: the exception it raised, or its result.
        call: Makes one more attempt.
        retry_if: Whether an exception is worth another attempt.
        retry_result: Whether a result is worth another attempt (the last
            result is returned when attempts run out).
        hint: Server-sent wait, see :class:`PolicyWait`.
        before_sleep: Called before each wait.

    Returns:
        The first result nobody wants retried, or the last one.

    Raises:
        BaseException: The last exception when attempts run out on errors.
    """
    pending: list[Any] = [first]
    result: Any = None
    async for attempt in retrying(
        policy, retry_if=retry_if, retry_result=retry_result, hint=hint, before_sleep=before_sleep
    ):
        with attempt:
            if pending:
                outcome = pending.pop()
                if isinstance(outcome, BaseException):
                    raise outcome
                result = outcome
            else:
                result = await call()
        state = attempt.retry_state
        if state.outcome is not None and not state.outcome.failed:
            state.set_result(result)
    return result  # type: ignore[no-any-return]
