"""The client's shared rate limiter: paces requests evenly and adapts to the server.

>>> limiter = RateLimiter(rate=50)
>>> limiter.rate
50.0
"""

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

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

    async def acquire(self, *, urgent: bool = False) -> None:
        """Wait for this request's slot.

        ``urgent``: the next page of a cursor walk, which everything after it waits for. It goes
        now, ahead of the requests already waiting their slots, and the queue's end moves one
        slot later, so the rate over any second still holds (the queued requests already
        have their times: for the next ``queue ÷ rate`` seconds one request more is in the
        window — well inside any burst a server allows)."""
        now = self._clock()
        if urgent:
            self._next_slot = max(now, self._next_slot) + 1.0 / self.rate
            return
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
