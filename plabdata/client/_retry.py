"""Retry policy (tenacity values), failure classes and per-call tracing.

What is retried depends on whether a repeat is safe: reads and idempotent writes retry every
transient failure; a non-idempotent write (an event) retries only failures that prove the
request was not applied. Backoff is exponential with full jitter, capped by attempts and by
total time, and never shorter than the server's ``Retry-After``.

    >>> is_transient(RateLimited("GET", "/members"))
    True
"""

import asyncio
import contextlib
import contextvars
import email.utils
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from plabdata.errors import ApiError, RateLimited, ServerError, TransportError

T = TypeVar("T")
R = TypeVar("R")

#: Statuses that mean "the server did not act on this request": safe to repeat any request.
NOT_APPLIED_STATUSES = frozenset({408, 429, 503})
#: Statuses where a write may or may not have been applied.
IN_DOUBT_STATUSES = frozenset({500, 502, 504})

MIN_BACKOFF = 0.05
MAX_BACKOFF = 10.0


# --------------------------------------------------------------------------- call tracing


@dataclass
class CallTrace:
    """What happened during one logical call: HTTP attempts, last status, in-doubt resolution."""

    attempts: int = 0
    last_status: int | None = None
    in_doubt_resolved: bool = False
    #: Attempts that failed in doubt (sent, then no answer or 500/502/504): a success after
    #: one of them may have been applied twice, for a request that is not idempotent.
    in_doubt_attempts: int = 0
    statuses: list[int] = field(default_factory=list)


_trace: contextvars.ContextVar[CallTrace | None] = contextvars.ContextVar(
    "plabdata_trace", default=None
)


@contextlib.contextmanager
def track() -> Iterator[CallTrace]:
    """Record the attempts of the calls made inside the block (per task: contextvars).

    Example:
        >>> with track() as trace:
        ...     pass  # await aio.create_member(...)
        >>> trace.attempts
        0
    """
    trace = CallTrace()
    token = _trace.set(trace)
    try:
        yield trace
    finally:
        _trace.reset(token)


def note_attempt(status: int | None) -> None:
    trace = _trace.get()
    if trace is not None:
        trace.attempts += 1
        trace.last_status = status
        if status is not None:
            trace.statuses.append(status)


def note_in_doubt_resolved() -> None:
    trace = _trace.get()
    if trace is not None:
        trace.in_doubt_resolved = True


def note_in_doubt_attempt() -> None:
    trace = _trace.get()
    if trace is not None:
        trace.in_doubt_attempts += 1


# --------------------------------------------------------------------------- classification


def is_in_doubt(exc: BaseException) -> bool:
    """True when a write failed in a way that leaves its outcome unknown.

    The request may have reached the server and been applied: a dropped connection or timeout
    after sending, or a 500 / 502 / 504.
    """
    if isinstance(exc, TransportError):
        return exc.sent
    return isinstance(exc, ServerError) and exc.status in IN_DOUBT_STATUSES


def surely_not_applied(exc: BaseException) -> bool:
    """True when the failure proves the request was not applied (safe to send again)."""
    if isinstance(exc, TransportError):
        return not exc.sent
    return isinstance(exc, ApiError) and exc.status in NOT_APPLIED_STATUSES


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying for reads and idempotent writes."""
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, ApiError) and (exc.status in NOT_APPLIED_STATUSES or exc.status >= 500)


# --------------------------------------------------------------------------- retry-after


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date), else None.

    Garbage, negative and zero values give None: the caller then waits its own backoff.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return min(seconds, 300.0)


class wait_retry_after_or_backoff:
    """tenacity wait: full-jitter exponential backoff, never shorter than Retry-After."""

    def __init__(self, initial: float = 0.1, maximum: float = MAX_BACKOFF) -> None:
        self._backoff = wait_random_exponential(multiplier=initial, max=maximum)

    def __call__(self, retry_state: RetryCallState) -> float:
        backoff = max(MIN_BACKOFF, float(self._backoff(retry_state)))
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, RateLimited) and exc.retry_after:
            return max(exc.retry_after, backoff)
        return backoff


#: Attempts at most when the last one failed this way: configuration errors (a certificate
#: that does not verify, a name that does not resolve) fail fast, a server that accepts and
#: never answers is given up after a few deadlines instead of the whole retry budget.
ATTEMPTS_BY_KIND = {"tls": 1, "dns": 2, "refused": 5, "connect-timeout": 3, "timeout": 3}


class stop_by_failure_kind(stop_base):
    """tenacity stop: end once the last failure's kind has used its attempts
    (:data:`ATTEMPTS_BY_KIND`)."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if not isinstance(exc, TransportError):
            return False
        limit = ATTEMPTS_BY_KIND.get(exc.kind)
        return limit is not None and retry_state.attempt_number >= limit


def retrying(
    should_retry: Callable[[BaseException], bool],
    *,
    max_attempts: int,
    max_seconds: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncRetrying:
    """A tenacity retry loop: ``async for attempt in retrying(...): with attempt: ...``."""
    return AsyncRetrying(
        retry=retry_if_exception(should_retry),
        wait=wait_retry_after_or_backoff(),
        stop=(
            stop_after_attempt(max_attempts)
            | stop_after_delay(max_seconds)
            | stop_by_failure_kind()
        ),
        sleep=sleep,
        reraise=True,
    )


# --------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures one kind of request retries; waits and stops are shared (see
    :func:`retrying`). Policies are values: the client picks one per request.

    Example:
        >>> READ.retry_if(RateLimited("GET", "/members"))
        True
        >>> NON_IDEMPOTENT_WRITE.retry_if(ServerError("POST", "/events/create-custom", 500))
        False
    """

    name: str
    retry_if: Callable[[BaseException], bool]

    def attempts(
        self,
        *,
        max_attempts: int,
        max_seconds: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> AsyncRetrying:
        """The tenacity loop: ``async for attempt in policy.attempts(...): with attempt: ...``."""
        return retrying(
            self.retry_if, max_attempts=max_attempts, max_seconds=max_seconds, sleep=sleep
        )


#: GETs: every transient failure (drops, timeouts, 5xx, 429).
READ = RetryPolicy("read", is_transient)
#: PATCH, and creates and deletes with an in-doubt resolver: repeating them is harmless, or
#: the resolver finds out first whether the earlier attempt was applied.
IDEMPOTENT_WRITE = RetryPolicy("idempotent write", is_transient)
#: An event: no idempotency key, so only failures proving nothing was recorded are retried.
NON_IDEMPOTENT_WRITE = RetryPolicy("non-idempotent write", surely_not_applied)
#: An event sent again after an in-doubt attempt (``on_in_doubt="retry"``): at least once,
#: with the same backoff as every other retry.
AT_LEAST_ONCE = RetryPolicy("at-least-once write", is_transient)
