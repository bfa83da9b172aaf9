"""Fault injection: latency, injected 5xx errors, a token-bucket rate limit, dropped writes.

Every random choice comes from one ``random.Random(random_seed)`` owned by the injector, so a
sequential run against the same knobs sees the same faults in the same places. The draws per
contract request happen in a fixed order: jitter, then the error roll, then (for a successful
write only) the drop roll.

    >>> injector = FaultInjector(Faults(error_rate=1.0, random_seed=7))
    >>> injector.injected_error() in (500, 502, 503)
    True
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

_JSON_NAMES = {
    "latency_ms": "latencyMs",
    "jitter_ms": "jitterMs",
    "error_rate": "errorRate",
    "rate_limit": "rateLimit",
    "burst": "burst",
    "drop_rate": "dropRate",
    "random_seed": "randomSeed",
}
_INJECTED_STATUSES = (500, 502, 503)
#: Bounds that keep the arithmetic finite: a rate of 1e-320 makes ``1 / rate`` infinite (and
#: ``math.ceil`` of it an OverflowError), a latency of 1e300 ms overflows the event loop's timer.
MAX_DELAY_MS = 3_600_000.0
MIN_RATE, MAX_RATE = 0.001, 1e9


class FaultsInvalid(ValueError):
    """A fault setting is out of range or of the wrong type."""


@dataclass(frozen=True)
class Faults:
    """The fault knobs. The defaults inject nothing.

    Attributes:
        latency_ms: fixed delay added before every contract request is handled (at most an
            hour).
        jitter_ms: extra delay drawn uniformly from ``[0, jitter_ms]`` (at most an hour).
        error_rate: fraction of contract requests answered 500/502/503 before any processing.
        rate_limit: requests per second allowed per plugin id, in ``[0.001, 1e9]``; None means
            unlimited.
        burst: bucket size (requests allowed at once, ``[1, 1e9]``); defaults to
            ``rate_limit``.
        drop_rate: fraction of successful writes (POST/PATCH/DELETE) committed and then
            answered by closing the connection without a response.
        random_seed: seed of the injector's random generator.
    """

    latency_ms: float = 0
    jitter_ms: float = 0
    error_rate: float = 0.0
    rate_limit: float | None = None
    burst: float | None = None
    drop_rate: float = 0.0
    random_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("latency_ms", "jitter_ms"):
            _check_number(name, getattr(self, name), low=0, high=MAX_DELAY_MS)
        for name in ("error_rate", "drop_rate"):
            _check_number(name, getattr(self, name), low=0, high=1)
        if self.rate_limit is not None:
            _check_number("rate_limit", self.rate_limit, low=MIN_RATE, high=MAX_RATE)
        if self.burst is not None:
            _check_number("burst", self.burst, low=1, high=MAX_RATE)
            if self.rate_limit is None:
                raise FaultsInvalid("burst needs rate_limit")
        if isinstance(self.random_seed, bool) or not isinstance(self.random_seed, int):
            raise FaultsInvalid("random_seed must be an integer")

    def to_json(self) -> dict[str, Any]:
        """The control-API form (camelCase keys)."""
        return {_JSON_NAMES[key]: value for key, value in asdict(self).items()}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Faults:
        """Parse the control-API form; absent knobs take their defaults.

        Raises:
            FaultsInvalid: unknown key, wrong type or out-of-range value.
        """
        by_json = {json_name: name for name, json_name in _JSON_NAMES.items()}
        unknown = sorted(set(body) - set(by_json))
        if unknown:
            raise FaultsInvalid(f"unknown fault setting(s): {', '.join(unknown)}")
        return cls(**{by_json[key]: value for key, value in body.items()})


def _check_number(name: str, value: Any, *, low: float, high: float) -> None:
    # No float() of an int: 10**400 is a valid JSON number that float() cannot hold.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise FaultsInvalid(f"{name} must be a number")
    if not low <= value <= high:
        raise FaultsInvalid(f"{name} must be in [{low:g}, {high:g}]")


FAULT_FIELDS = tuple(f.name for f in fields(Faults))


@dataclass(frozen=True)
class RateDecision:
    """The rate limiter's answer for one request.

    ``headers`` are the ``RateLimit-*`` headers to send (empty when no limit is set);
    ``retry_after`` is set (whole seconds, at least 1) only when the request is refused.
    """

    allowed: bool
    headers: tuple[tuple[str, str], ...] = ()
    retry_after: int | None = None


class _TokenBucket:
    """Holds up to ``capacity`` tokens, refilled at ``rate`` per second; a request takes one."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.clock = clock
        self.stamp = clock()

    def take(self) -> RateDecision:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        allowed = self.tokens >= 1
        if allowed:
            self.tokens -= 1
        reset = math.ceil((self.capacity - self.tokens) / self.rate)
        # Advertise the sustained rate (quota per window), not the burst: a client pacing
        # itself by these headers must land on the refill rate.
        quota, window = (round(self.rate), 1) if self.rate >= 1 else (1, round(1 / self.rate))
        headers = (
            ("RateLimit-Limit", str(quota)),
            ("RateLimit-Remaining", str(int(self.tokens))),
            ("RateLimit-Reset", str(reset)),
            ("RateLimit-Policy", f"{quota};w={window};burst={int(self.capacity)}"),
        )
        if allowed:
            return RateDecision(True, headers)
        wait = (1 - self.tokens) / self.rate
        return RateDecision(False, headers, max(1, math.ceil(wait)))


class FaultInjector:
    """Applies one :class:`Faults` setting; replace it with :meth:`configure`.

    Args:
        faults: the knobs.
        clock: monotonic seconds (injectable so the bucket can be tested without waiting).
    """

    def __init__(
        self, faults: Faults | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self.configure(faults or Faults())

    def configure(self, faults: Faults) -> None:
        """Install new knobs: reseed the generator and refill every rate-limit bucket."""
        self.faults = faults
        self._random = random.Random(faults.random_seed)
        self._buckets: dict[str, _TokenBucket] = {}

    def delay_seconds(self) -> float:
        """How long to wait before handling this request (0 when no latency is set)."""
        delay = self.faults.latency_ms
        if self.faults.jitter_ms:
            delay += self._random.uniform(0, self.faults.jitter_ms)
        return delay / 1000

    def admit(self, plugin_id: str) -> RateDecision:
        """Take a token from ``plugin_id``'s bucket, or refuse with a ``retry_after``."""
        rate = self.faults.rate_limit
        if rate is None:
            return RateDecision(True)
        bucket = self._buckets.get(plugin_id)
        if bucket is None:
            if len(self._buckets) > 1000:  # unknown plugin ids must not grow memory forever
                self._buckets.clear()
            capacity = self.faults.burst if self.faults.burst is not None else max(1.0, rate)
            bucket = self._buckets[plugin_id] = _TokenBucket(rate, capacity, self._clock)
        return bucket.take()

    def injected_error(self) -> int | None:
        """A 5xx status to answer with instead of handling the request, or None."""
        if self.faults.error_rate and self._random.random() < self.faults.error_rate:
            return self._random.choice(_INJECTED_STATUSES)
        return None

    def should_drop(self) -> bool:
        """Whether to drop the response of a committed write."""
        return bool(self.faults.drop_rate) and self._random.random() < self.faults.drop_rate
