"""Retry classification, Retry-After, the rate limiter and the bounded runner (no server)."""

from __future__ import annotations

import asyncio

import pytest
from tenacity import RetryCallState

from plabdata.client._ratelimit import RateLimiter
from plabdata.client._retry import (
    MIN_BACKOFF,
    is_in_doubt,
    is_transient,
    parse_retry_after,
    surely_not_applied,
    wait_retry_after_or_backoff,
)
from plabdata.errors import NotFound, RateLimited, ServerError, TransportError
from plabdata.jobs._runner import run_bounded


def test_failure_classes():
    not_sent = TransportError("POST", "/e", "ConnectError", sent=False)
    dropped = TransportError("POST", "/e", "RemoteProtocolError", sent=True)
    assert surely_not_applied(not_sent) and not is_in_doubt(not_sent)
    assert is_in_doubt(dropped) and not surely_not_applied(dropped)
    for status in (500, 502, 504):
        assert is_in_doubt(ServerError("POST", "/e", status))
    assert surely_not_applied(ServerError("POST", "/e", 503))
    assert surely_not_applied(RateLimited("POST", "/e"))
    assert not is_transient(NotFound("GET", "/m", 404))
    assert is_transient(ServerError("GET", "/m", 500))


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("0", None), ("-3", None), ("soon", None), ("", None), (None, None)],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10)


def _state_with(exc: BaseException, attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_wait_honours_retry_after_and_a_minimum():
    wait = wait_retry_after_or_backoff()
    assert wait(_state_with(RateLimited("GET", "/", retry_after=3.0), 1)) >= 3.0
    # No or garbage Retry-After (parsed to None) still waits at least the minimum backoff.
    for attempt in range(1, 6):
        assert wait(_state_with(RateLimited("GET", "/", retry_after=None), attempt)) >= MIN_BACKOFF


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_limiter_learns_target_and_backs_off():
    clock = FakeClock()
    limiter = RateLimiter(50, clock=clock)
    limiter.on_response(200, {"ratelimit-limit": "500"})
    assert limiter.rate == pytest.approx(485)
    clock.now += 2
    limiter.on_response(429, {"ratelimit-limit": "500"})
    cut = limiter.rate
    assert cut < 485 and limiter.throttled == 1
    limiter.on_response(429, {})  # same second: one burst counts once
    assert limiter.rate == cut
    for _ in range(100):  # healthy traffic climbs back, never above the target
        clock.now += 0.1
        limiter.on_response(200, {"ratelimit-limit": "500"})
    assert cut < limiter.rate <= 485


def test_limiter_policy_window_and_ceiling():
    limiter = RateLimiter(10, ceiling=100)
    limiter.on_response(200, {"ratelimit-limit": "6000", "ratelimit-policy": "6000;w=60"})
    assert limiter.target == pytest.approx(97)
    limiter.on_response(200, {"ratelimit-limit": "50000"})
    assert limiter.rate <= 100


def test_limiter_paces_requests():
    async def go() -> float:
        limiter = RateLimiter(200)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(limiter.acquire() for _ in range(41)))
        return loop.time() - start

    # 41 slots at 200/s span 0.2 s; allow generous slack but prove spacing happens at all.
    assert asyncio.run(go()) >= 0.15


def test_an_urgent_request_goes_ahead_of_the_queue_and_the_rate_holds():
    async def go() -> tuple[float, float]:
        limiter = RateLimiter(100)
        loop = asyncio.get_running_loop()
        start = loop.time()
        queued = [asyncio.ensure_future(limiter.acquire()) for _ in range(20)]
        await asyncio.sleep(0)  # the 20 have their slots: the last one 0.19 s from now
        await limiter.acquire(urgent=True)  # a walk's next page: now, not in 0.2 s
        urgent = loop.time() - start
        await asyncio.gather(*queued)
        await limiter.acquire()  # the queue's end moved one slot later for it
        return urgent, loop.time() - start

    urgent, last = asyncio.run(go())
    assert urgent < 0.05
    assert last >= 0.2  # 22 requests at 100/s: the 22nd is at least 0.21 s after the first


def test_run_bounded_bounds_and_yields_errors():
    in_flight = 0
    peak = 0

    async def work(i: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (i % 3))
        in_flight -= 1
        if i == 7:
            raise ValueError("seven")
        return i * 2

    async def go() -> dict[int, object]:
        return {i: r async for i, r in run_bounded(iter(range(50)), work, concurrency=4)}

    results = asyncio.run(go())
    assert peak <= 4
    assert len(results) == 50
    assert isinstance(results[7], ValueError)
    assert results[8] == 16


def test_run_bounded_accepts_async_iterables():
    async def numbers():
        for i in range(5):
            yield i

    async def double(i: int) -> int:
        return 2 * i

    async def go() -> list[int]:
        return sorted([r async for _, r in run_bounded(numbers(), double, concurrency=2)])  # type: ignore[type-var]

    assert asyncio.run(go()) == [0, 2, 4, 6, 8]


def test_limiter_reads_the_emulators_policy_as_its_sustained_rate():
    limiter = RateLimiter(100)
    limiter.on_response(200, {"ratelimit-limit": "1", "ratelimit-policy": "1;w=5;burst=3"})
    assert limiter.target == pytest.approx(0.2 * 0.97)


def test_a_ceiling_bounds_the_starting_rate_too():
    # Before any response arrives, the first requests must already respect a user's cap.
    assert RateLimiter(100, ceiling=20).rate == 20


def test_settings_start_no_faster_than_max_rate():
    from plabdata.config import Settings

    assert Settings(plugin_id="p", secret="s", max_rate=20).rate_limit == 20
    env = {"PLUGINLAB_PLUGIN_ID": "p", "PLUGINLAB_SECRET": "s", "PLABDATA_RATE_LIMIT": "7"}
    settings = Settings.from_env(env)
    assert (settings.rate_limit, settings.max_rate) == (7, 7)
