"""Staying fast and polite under failure: retry policy, a shared rate limiter, a bounded runner.

- **Retry policy** (tenacity): exponential backoff with full jitter, capped by attempts and by
  total time; ``Retry-After`` honoured as a floor. What is retried depends on whether a repeat
  is safe: reads and idempotent writes retry every transient failure; a non-idempotent write
  (an event) retries only failures that prove the request was not applied.
- **RateLimiter**: one per client, shared by every task. It paces requests evenly, learns the
  server's limit from ``RateLimit-Limit`` when sent, cuts its rate on a 429 and climbs back
  while the server is healthy.
- **run_bounded**: the concurrency runner every bulk function uses.

    >>> limiter = RateLimiter(rate=50)
    >>> limiter.rate
    50.0
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

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
        stop=stop_after_attempt(max_attempts) | stop_after_delay(max_seconds),
        sleep=sleep,
        reraise=True,
    )


# --------------------------------------------------------------------------- rate limiter


class RateLimiter:
    """Paces requests for all the tasks that share it, adapting to the server.

    - Requests are spaced ``1/rate`` apart (no bursts), so concurrency never turns into spikes.
    - ``RateLimit-Limit`` (with ``RateLimit-Policy: N;w=S`` when sent, else a one-second window)
      sets the target at ``headroom`` × the server's rate, capped by ``ceiling``.
    - A 429 cuts the rate by 30 % (at most once per second: one burst of 429s counts once).
    - Healthy responses climb the rate back by ~10 % per second of clean traffic towards the
      target (or, with no target known, keep probing up to ``ceiling``).
    """

    def __init__(
        self,
        rate: float,
        *,
        ceiling: float | None = None,
        floor: float = 1.0,
        headroom: float = 0.97,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = float(rate) if ceiling is None else min(float(rate), ceiling)
        self.ceiling = ceiling
        self.floor = floor
        self.headroom = headroom
        self.target: float | None = None
        self.throttled = 0
        self._clock = clock
        self._next_slot = 0.0
        self._last_cut = -math.inf
        self._last_climb = clock()

    async def acquire(self) -> None:
        """Wait for this request's slot."""
        now = self._clock()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)

    def on_response(self, status: int, headers: Any) -> None:
        """Learn from a response: a 429 cuts the rate; RateLimit-* headers set the target."""
        now = self._clock()
        limit = _header_rate(headers)
        if limit is not None:
            target = limit * self.headroom
            self.target = min(target, self.ceiling) if self.ceiling else target
        cap = self.target if self.target is not None else self.ceiling
        if status == 429:
            self.throttled += 1
            if now - self._last_cut >= 1.0:
                self._last_cut = now
                self.rate = max(self.floor, self.rate * 0.7)
        elif self._last_cut == -math.inf and self.target is not None:
            # The server told us its limit and has never throttled us: go straight there.
            self.rate = self.target
        elif now - self._last_cut >= 1.0:
            # Climb back ~10 % per second of clean traffic (multiplicative increase).
            elapsed = min(now - self._last_climb, 1.0)
            self.rate *= 1.0 + 0.1 * elapsed
        self._last_climb = now
        if cap is not None:
            self.rate = min(self.rate, cap)

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate:.1f}/s, target={self.target}, 429s={self.throttled})"


def _header_rate(headers: Any) -> float | None:
    """Requests per second the server allows, from RateLimit-Limit (+ -Policy window)."""
    if headers is None:
        return None
    raw = headers.get("ratelimit-limit")
    if not raw:
        return None
    try:
        limit = float(str(raw).split(",")[0].split(";")[0].strip())
    except ValueError:
        return None
    window = 1.0
    policy = headers.get("ratelimit-policy")
    if policy:
        for part in str(policy).split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key == "w":
                with contextlib.suppress(ValueError):
                    window = max(float(value), 1e-3)
    return limit / window if limit > 0 else None


# --------------------------------------------------------------------------- bounded runner


async def run_bounded(
    items: Iterable[T] | AsyncIterable[T],
    fn: Callable[[T], Awaitable[R]],
    *,
    concurrency: int,
    on_result: Callable[[T, R | BaseException], None] | None = None,
) -> AsyncIterator[tuple[T, R | BaseException]]:
    """Run ``fn`` over ``items`` with at most ``concurrency`` in flight; yield as each finishes.

    Items are pulled lazily, so a generator of millions of rows keeps memory flat. Exceptions
    from ``fn`` are yielded, never raised; cancelling the consumer cancels what is in flight.

    Example:
        >>> async def main():
        ...     return [r async for _, r in run_bounded(range(3), double, concurrency=2)]
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    iterator: Any = aiter(items) if isinstance(items, AsyncIterable) else iter(items)
    is_async = isinstance(items, AsyncIterable)
    pending: dict[asyncio.Task[R], T] = {}
    exhausted = False

    async def next_item() -> tuple[bool, T | None]:
        try:
            if is_async:
                return True, await anext(iterator)
            return True, next(iterator)
        except (StopIteration, StopAsyncIteration):
            return False, None

    try:
        while True:
            while not exhausted and len(pending) < concurrency:
                ok, item = await next_item()
                if not ok:
                    exhausted = True
                    break
                pending[asyncio.ensure_future(fn(item))] = item  # type: ignore[arg-type, assignment]
            if not pending:
                return
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                item = pending.pop(task)
                result: R | BaseException
                if task.cancelled():
                    raise asyncio.CancelledError
                exc = task.exception()
                result = exc if exc is not None else task.result()
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise exc
                if on_result is not None:
                    on_result(item, result)
                yield item, result
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
