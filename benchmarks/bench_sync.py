"""Member sync vs the official client: bulk creates, bulk updates, planning 100,000 rows.

Emulator (its own process): 5,000 seeded members, 50 ms latency, a 500 req/s limit.

- **5,000 creates** (email + metadata: one POST each) and **5,000 updates** (a new name: one
  PATCH each, after the stale check's walk of the member pages, which overlaps the PATCHes) via
  ``apply_plan(concurrency=40, verify=False)``; the read-back verification is timed on its own.
- The official ``pluginlab_admin`` loop (one call at a time) would take minutes: it is timed on
  a sample of 1,000 calls of each kind and compared as calls/s (extrapolated to 5,000).
- **Planning** 100,000 desired rows against 100,000 current members, no I/O; the peak memory
  the planning itself allocates is measured with ``tracemalloc``.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import numpy as np
import pandas as pd

import plabdata
from benchmarks.common import LATENCY_MS, RATE_LIMIT, official_app, row, time_calls
from plabdata.emulator import Faults, running
from plabdata.members._apply import _verify, apply_plan
from plabdata.members._apply_ops import _Op
from plabdata.members._plan import plan_member_changes
from plabdata.members._sheet import read_member_sheet

CONCURRENCY = 40


def _apply(admin: plabdata.Admin, plan: Any) -> tuple[float, int, int, pd.DataFrame]:
    sent, throttled = admin.aio.requests_sent, admin.aio.limiter.throttled
    start = time.perf_counter()
    results = apply_plan(admin, plan, concurrency=CONCURRENCY, progress=False, verify=False)
    seconds = time.perf_counter() - start
    return (
        seconds,
        admin.aio.requests_sent - sent,
        admin.aio.limiter.throttled - throttled,
        results,
    )


def _official(call: Any, items: list[Any], total: int) -> tuple[float, str]:
    timed = time_calls(call, items)
    if len(items) >= total:
        return timed.seconds, f"all {timed.calls:,} calls"
    return total / timed.rate, f"sampled {timed.calls:,} calls ({timed.rate:.1f}/s), extrapolated"


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 500 if quick else 5_000
    sample = 50 if quick else 1_000
    rows: list[dict[str, Any]] = []
    faults = Faults(latency_ms=LATENCY_MS, rate_limit=RATE_LIMIT)
    with (
        running(seed=n, mode="process", faults=faults) as emu,
        plabdata.connect(emu.settings) as admin,
    ):
        auth = official_app(emu).get_auth()
        current = plabdata.load_members(admin, progress=False)
        desired = pd.DataFrame(
            {"email": [f"bulk{i}@example.net" for i in range(n)], "metadata.source": "bench"}
        )
        plan = plan_member_changes(read_member_sheet(desired), current, plugin_id=emu.plugin_id)
        seconds, sent, n429, results = _apply(admin, plan)
        assert (results["status"] == "done").all() and len(results) == n
        official_s, note = _official(
            lambda i: auth.create_member(
                f"official{i}@example.net", "bench-password", metadata={"source": "bench"}
            ),
            list(range(sample)),
            n,
        )
        rows.append(
            row(
                "apply creates",
                f"{n:,} creates",
                plabdata_s=seconds,
                official_s=official_s,
                official_note=note,
                requests=sent,
                limit_rps=RATE_LIMIT,
                ideal_s=n / RATE_LIMIT,
                n429=n429,
                notes=f"concurrency {CONCURRENCY}; ops/s {n / seconds:.0f}",
            )
        )

        current = plabdata.load_members(admin, progress=False)
        targets = current[~current["email"].str.startswith("official")].head(n)
        changed = targets[["email"]].assign(name=[f"Renamed {i}" for i in range(len(targets))])
        plan = plan_member_changes(changed, current, plugin_id=emu.plugin_id)
        seconds, sent, n429, results = _apply(admin, plan)
        assert (results["status"] == "done").all() and len(results) == len(targets)
        ids = targets["member_id"].tolist()
        official_s, note = _official(
            lambda member_id: auth.update_member(member_id, name="Official rename"),
            ids[:sample],
            len(ids),
        )
        pages = -(-len(current) // admin.aio.page_size)
        rows.append(
            row(
                "apply updates",
                f"{len(ids):,} updates (+{pages} pages read)",
                plabdata_s=seconds,
                official_s=official_s,
                official_note=note,
                requests=sent,
                limit_rps=RATE_LIMIT,
                # The walk overlaps the PATCHes: the longer of the two sets the floor.
                ideal_s=max(pages * LATENCY_MS / 1000, (len(ids) + pages) / RATE_LIMIT),
                n429=n429,
                notes=f"stale check walks the pages alongside the PATCHes; "
                f"ops/s {len(ids) / seconds:.0f}",
            )
        )
        rows.append(_verify_row(admin, results, len(current)))
    rows.append(_planning(20_000 if quick else 100_000))
    return rows


def _verify_row(admin: plabdata.Admin, results: pd.DataFrame, count: int) -> dict[str, Any]:
    """Time the read-back that ``verify=True`` adds after the updates.

    ``_verify`` reads the members back with one GET each or one walk of every page, whichever
    takes fewer round trips; the row says which it did and takes the matching ideal.
    """
    ops = [_Op("update", "k", None, None, str(m), {}, None, None) for m in results["member_id"]]
    sent = admin.aio.requests_sent
    start = time.perf_counter()
    admin.run(_verify(admin.aio, ops, count, CONCURRENCY, None))
    seconds = time.perf_counter() - start
    requests = admin.aio.requests_sent - sent
    assert all(op.error is None for op in ops)
    if requests >= len(ops):
        how, ideal, limit = f"{requests:,} GETs", requests / RATE_LIMIT, RATE_LIMIT
    else:
        how, ideal, limit = f"{requests} pages", requests * LATENCY_MS / 1000, None
    return row(
        "verify read-back",
        f"{len(ops):,} members ({how})",
        plabdata_s=seconds,
        official_s=None,
        official_note="no equivalent",
        requests=requests,
        limit_rps=limit,
        ideal_s=ideal,
        notes="apply_plan(verify=True)'s read-back",
    )


def _planning(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    ids = pd.array([f"mem_{i:040x}" for i in range(n)], dtype="string")
    current = pd.DataFrame(
        {
            "member_id": ids,
            "email": pd.array([f"user{i}@example.com" for i in range(n)], dtype="string"),
            "is_verified": pd.array(rng.random(n) < 0.5, dtype="boolean"),
            "name": pd.array([f"User {i}" for i in range(n)], dtype="string"),
            "given_name": pd.array(["User"] * n, dtype="string"),
            "family_name": pd.array([str(i) for i in range(n)], dtype="string"),
            "updated_at": pd.to_datetime(np.arange(n) + 1_700_000_000_000, unit="ms", utc=True),
            "metadata.plan": pd.array(rng.choice(["free", "pro"], n), dtype="string"),
        }
    )
    shift = n // 10  # 10 % new, 10 % of the current not in the sheet
    desired = pd.DataFrame(
        {
            "row": np.arange(2, n + 2),
            "email": pd.array([f"user{i + shift}@example.com" for i in range(n)], dtype="string"),
            "name": pd.array(
                [f"User {i + shift}" if i % 4 else f"Renamed {i}" for i in range(n)], dtype="string"
            ),
            "metadata.plan": pd.Series(rng.choice(["free", "pro"], n), dtype="string"),
            "metadata.team": pd.Series(rng.choice(["a", "b", ""], n), dtype="string").replace(
                "", None
            ),
        }
    )
    start = time.perf_counter()
    plan = plan_member_changes(desired, current)
    seconds = time.perf_counter() - start
    tracemalloc.start()  # a second run, traced: tracing slows it down several times
    plan_member_changes(desired, current)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    counts = plan.counts()
    return row(
        "plan member changes",
        f"{n:,} desired vs {n:,} current",
        plabdata_s=seconds,
        official_s=None,
        official_note="no equivalent",
        notes=f"target < 2 s; {counts['create']:,} creates, {counts['update']:,} "
        f"updates, {counts['unchanged']:,} unchanged; planning allocates "
        f"{peak / 2**20:.0f} MB at peak",
    )
