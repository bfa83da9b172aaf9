"""Loaders vs the official client: the member walk, all identities, all quota usage, the
whole member base (pipelined vs one part after the other), flattening.

Emulator: 10,000 members, 50 ms latency, a 500 req/s limit, pages capped at 50 (PluginLab's
RESTful API article; the emulator's default). The official client loops one call at a time,
so it is latency-bound near 20 calls/s; its identity and quota loops are timed on a sample of
1,000 calls and compared as calls/s.
"""

from __future__ import annotations

import time
from typing import Any

import plabdata
from benchmarks.common import LATENCY_MS, RATE_LIMIT, official_app, row, time_calls
from plabdata.client._records import Member
from plabdata.emulator import Faults, running
from plabdata.tables._frames import members_frame
from plabdata.wire import PAGE_SIZE


def _official_walk(auth: Any) -> tuple[float, int]:
    start = time.perf_counter()
    cursor: str | None = None
    count = pages = 0
    while True:
        page = auth.get_members(PAGE_SIZE, cursor)
        pages += 1
        count += len(page.items)
        cursor = page.next_page_cursor
        if not cursor or not page.items:
            return time.perf_counter() - start, count


def _sampled(call: Any, ids: list[str], sample: int) -> tuple[float, str]:
    timed = time_calls(call, ids[:sample])
    if sample >= len(ids):
        return timed.seconds, f"all {timed.calls:,} calls"
    return len(
        ids
    ) / timed.rate, f"sampled {timed.calls:,} calls ({timed.rate:.1f}/s), extrapolated"


def run(quick: bool = False) -> list[dict[str, Any]]:
    n_members = 1_000 if quick else 10_000
    sample = 60 if quick else 1_000
    faults = Faults(latency_ms=LATENCY_MS, rate_limit=RATE_LIMIT)
    rows: list[dict[str, Any]] = []
    with running(seed=n_members, mode="process", faults=faults) as emu:
        auth = official_app(emu).get_auth()
        monetization = official_app(emu).get_monetization()

        official_walk_s, official_count = _official_walk(auth)
        with plabdata.connect(emu.settings) as admin:
            start = time.perf_counter()
            members = plabdata.load_members(admin, progress=False)
            walk_s = time.perf_counter() - start
        pages = -(-n_members // PAGE_SIZE)
        assert len(members) == official_count == n_members
        rows.append(
            row(
                "list all members",
                f"{n_members:,} members, {pages} pages",
                plabdata_s=walk_s,
                official_s=official_walk_s,
                official_note="full walk",
                requests=pages,
                ideal_s=pages * LATENCY_MS / 1000,
                notes="sequential cursor walk: ideal = pages x latency",
            )
        )
        ids = members.member_id.tolist()
        for name, official_call, load in (
            ("all identities", auth.get_member_identities, plabdata.load_identities),
            ("all quota usage", monetization.get_member_quota_usage, plabdata.load_quota_usage),
        ):
            official_s, note = _sampled(official_call, ids, sample)
            with plabdata.connect(emu.settings) as admin:
                start, cpu = time.perf_counter(), time.process_time()
                frame = load(admin, members, progress=False)
                seconds = time.perf_counter() - start
                cpu_ms = (time.process_time() - cpu) * 1000
                throttled = admin.aio.limiter.throttled
                sent = admin.aio.requests_sent
            assert len(frame) > 0
            rows.append(
                row(
                    name,
                    f"{n_members:,} calls",
                    plabdata_s=seconds,
                    official_s=official_s,
                    official_note=note,
                    requests=sent,
                    limit_rps=RATE_LIMIT,
                    ideal_s=n_members / RATE_LIMIT,
                    n429=throttled,
                    notes=f"client CPU {cpu_ms / max(sent, 1):.2f} ms per request",
                )
            )
        rows.extend(_member_base(emu, n_members, pages))
    rows.append(_flatten(20_000 if quick else 100_000))
    return rows


def _member_base(emu: Any, n_members: int, pages: int) -> list[dict[str, Any]]:
    """The whole base (members + identities + quota): each part after the other, then
    pipelined (each page's calls start while the walk goes on), in the same run."""
    calls = 2 * n_members
    ideal = max(pages * LATENCY_MS / 1000, (calls + pages) / RATE_LIMIT)
    out = []
    for name, pipelined in (("member base, sequential", False), ("member base, pipelined", True)):
        with plabdata.connect(emu.settings) as admin:
            start = time.perf_counter()
            if pipelined:
                base = plabdata.load_member_base(admin, progress=False)
            else:
                members = plabdata.load_members(admin, progress=False)
                identities = plabdata.load_identities(admin, members, progress=False)
                quota = plabdata.load_quota_usage(admin, members, progress=False)
                base = plabdata.join_member_base(members, identities, quota)
            seconds = time.perf_counter() - start
            sent, throttled = admin.aio.requests_sent, admin.aio.limiter.throttled
        assert len(base) == n_members and base["quota_usage_limit"].notna().all()
        target = 1.1 * ideal
        verdict = "met" if seconds <= target else "MISSED"
        out.append(
            row(
                name,
                f"{n_members:,} members + {calls:,} calls, {pages} pages",
                plabdata_s=seconds,
                official_s=None,
                official_note="see the rows above",
                requests=sent,
                limit_rps=RATE_LIMIT,
                ideal_s=ideal,
                n429=throttled,
                notes=(
                    f"ideal = max(pages x latency, requests / limit); target <= {target:.1f} s "
                    f"({verdict})"
                    if pipelined
                    else "walk, then identities, then quota: ideal as for the pipelined row"
                ),
            )
        )
    return out


def _flatten(n: int) -> dict[str, Any]:
    records = [
        Member(
            id=f"mem_{i:040x}",
            email=f"user{i}@example.com",
            is_verified=i % 5 != 0,
            has_password=i % 2 == 0,
            sign_in_method=("google", "email-and-password", "github")[i % 3],
            name=f"User {i}",
            given_name="User",
            family_name=str(i),
            metadata={"company": f"c{i % 50}", "source": "import"} if i % 2 else {},
            custom_fields={"role": "dev"} if i % 7 == 0 else {},
            created_at_ms=1_700_000_000_000 + i,
            updated_at_ms=1_700_000_000_000 + 2 * i,
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    frame = members_frame(records)
    seconds = time.perf_counter() - start
    assert len(frame) == n
    return row(
        "flatten member records",
        f"{n:,} records -> DataFrame",
        plabdata_s=seconds,
        official_s=None,
        official_note="no equivalent",
        notes="target < 1 s for 100,000",
    )
