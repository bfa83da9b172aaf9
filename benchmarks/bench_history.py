"""Member history: appending a snapshot, and the history queries against the obvious pandas way.

A store of 26 weekly snapshots of ~100,000 synthetic members (``synthetic_history.py``: the
member base's columns and dtypes, weekly churn like the emulator's) is written with
``write_snapshot`` — each append timed, beyond the load. Then each query runs in a fresh child
process (its peak memory is its own: interpreter, pandas and pyarrow included), side by side:

- plabdata's (pyarrow compute, one or two snapshots in memory at a time);
- the obvious pandas way: read the whole store into one frame, sort, ``groupby().shift()``
  and compare (member_changes), ``crosstab`` per snapshot (member_timeline) — the
  ``official_s`` column of the table, as the comparison row;
- the same queries in DuckDB SQL, when ``duckdb`` is installed (to choose the engine by
  measurement: rows ``… (duckdb)``).

Both ways must agree (counts of each kind of change, the timeline's columns), or the run fails.

Targets (issue 15): append < 2 s; member_changes and member_timeline < 5 s each with peak
memory < 1 GB.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import row
from benchmarks.synthetic_history import weekly_bases
from plabdata.members._snapshots import write_snapshot

ROOT = Path(__file__).resolve().parents[1]
APPEND_TARGET_S = 2.0
QUERY_TARGET_S = 5.0
PEAK_TARGET_MB = 1024.0

# Each child prints one JSON line: {"seconds", "peak_mb", "result"}.
_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
store, what = sys.argv[1], sys.argv[2]
from benchmarks import bench_history as bench
run = getattr(bench, "_" + what)
start = time.perf_counter()
result = run(store)
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries a parent's ru_maxrss across fork + exec.
status = open("/proc/self/status").read().split("VmHWM:")
peak = int(status[1].split()[0]) / 1024 if len(status) > 1 else (
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps({{"seconds": seconds, "peak_mb": peak, "result": result}}))
"""


def _in_child(store: Path, what: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT)), str(store), what],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------ the queries, each three ways


def _plabdata_changes(store: str) -> dict[str, int]:
    import plabdata

    changes = plabdata.member_changes(store)
    counts = changes["change"].astype(str).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def _plabdata_timeline(store: str) -> dict[str, int]:
    import plabdata

    timeline = plabdata.member_timeline(store)
    return _timeline_digest(timeline)


def _timeline_digest(timeline: Any) -> dict[str, int]:
    keep = ["members", "joined", "left", "verified", "with_usage", "over_quota"]
    keep += [c for c in timeline.columns if str(c).startswith(("plan.", "sign_in."))]
    return {str(c): int(timeline[c].astype("int64").sum()) for c in keep}


def _plabdata_retention(store: str) -> dict[str, int]:
    import plabdata

    retention = plabdata.cohort_retention(store)
    return {"cohorts": len(retention), "columns": retention.shape[1]}


def _plabdata_transitions(store: str) -> dict[str, int]:
    import plabdata

    return {"members": int(plabdata.plan_transitions(store, 0, -1).to_numpy().sum())}


def _pandas_all(store: str) -> Any:
    """The obvious start: every snapshot, every column, in one frame."""
    import pandas as pd

    frame = pd.read_parquet(store)  # pyarrow reads the hive partitions
    return frame.sort_values(["member_id", "snapshot_at"], kind="stable", ignore_index=True)


def _pandas_changes(store: str) -> dict[str, int]:
    import numpy as np

    frame = _pandas_all(store)
    times = np.sort(frame["snapshot_at"].unique())
    position = np.searchsorted(times, frame["snapshot_at"].to_numpy())
    frame["position"] = position
    by_member = frame.groupby("member_id", sort=False)
    prev = by_member["position"].shift(1)
    nxt = by_member["position"].shift(-1)
    counts: dict[str, int] = {}
    # joined: first seen after the first snapshot, or back after a gap
    joined = (prev.isna() & (frame["position"] > 0)) | (
        prev.notna() & (frame["position"] - prev > 1)
    )
    left = (nxt.isna() & (frame["position"] < len(times) - 1)) | (
        nxt.notna() & (nxt - frame["position"] > 1)
    )
    counts["joined"], counts["left"] = int(joined.sum()), int(left.sum())
    consecutive = prev.notna() & (frame["position"] - prev == 1)

    def changed(column: str) -> Any:
        before = by_member[column].shift(1)
        now = frame[column]
        differs = (before.astype(object) != now.astype(object)) & ~(before.isna() & now.isna())
        return consecutive & differs

    counts["plan"] = int(changed("plan").sum())
    verified_before = by_member["is_verified"].shift(1).fillna(False).astype(bool)
    verified_now = frame["is_verified"].fillna(False).astype(bool)
    counts["verified"] = int((consecutive & ~verified_before & verified_now).sum())
    counts["unverified"] = int((consecutive & verified_before & ~verified_now).sum())
    names = changed("name") | changed("given_name") | changed("family_name")
    counts["name"] = int(names.sum())
    metadata = [c for c in frame.columns if str(c).startswith("metadata.")]
    edited = np.zeros(len(frame), dtype=bool)
    for column in metadata:
        edited |= changed(column).to_numpy()
    counts["metadata"] = int(edited.sum())
    old = by_member["providers"].shift(1).fillna("")
    new = frame["providers"].fillna("")
    moved = consecutive & (old != new)
    added = removed = 0
    for o, n in zip(old[moved], new[moved], strict=True):
        o_set, n_set = set(filter(None, o.split(","))), set(filter(None, n.split(",")))
        added += len(n_set - o_set)
        removed += len(o_set - n_set)
    counts["provider_added"], counts["provider_removed"] = added, removed
    return counts


def _pandas_timeline(store: str) -> dict[str, int]:
    import pandas as pd

    frame = _pandas_all(store)
    by_time = frame.groupby("snapshot_at")
    timeline = pd.DataFrame(
        {
            "members": by_time.size(),
            "verified": by_time["is_verified"].sum(),
            "with_usage": by_time["quota_usage_count"].apply(lambda s: int((s > 0).sum())),
            "over_quota": by_time["quota_is_over_limit"].sum(),
        }
    )
    ids = by_time["member_id"].apply(set)
    joined, left = [0], [0]
    for before, after in zip(ids.iloc[:-1], ids.iloc[1:], strict=True):
        joined.append(len(after - before))
        left.append(len(before - after))
    timeline["joined"], timeline["left"] = joined, left
    plans = pd.crosstab(frame["snapshot_at"], frame["plan"].astype(str)).add_prefix("plan.")
    methods = pd.crosstab(frame["snapshot_at"], frame["sign_in_method"].astype(str))
    timeline = timeline.join(plans).join(methods.add_prefix("sign_in."))
    return _timeline_digest(timeline)


def _duckdb_timeline(store: str) -> dict[str, int]:
    import duckdb

    files = (
        f"read_parquet('{store}/snapshot=*/*.parquet', hive_partitioning=true, union_by_name=true)"
    )
    con = duckdb.connect()
    totals = con.sql(
        f"""
        WITH s AS (SELECT snapshot_at, member_id, is_verified, quota_usage_count,
                          quota_is_over_limit FROM {files}),
        t AS (SELECT DISTINCT snapshot_at FROM s),
        ordered AS (SELECT snapshot_at, lag(snapshot_at) OVER (ORDER BY snapshot_at) AS prev
                    FROM t)
        SELECT
          (SELECT count(*) FROM s),
          (SELECT count(*) FILTER (WHERE is_verified) FROM s),
          (SELECT count(*) FILTER (WHERE quota_usage_count > 0) FROM s),
          (SELECT count(*) FILTER (WHERE quota_is_over_limit) FROM s),
          (SELECT count(*) FROM ordered o JOIN s a ON a.snapshot_at = o.snapshot_at
             WHERE o.prev IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM s b WHERE b.snapshot_at = o.prev AND b.member_id = a.member_id)),
          (SELECT count(*) FROM ordered o JOIN s b ON b.snapshot_at = o.prev
             WHERE NOT EXISTS (
               SELECT 1 FROM s a WHERE a.snapshot_at = o.snapshot_at AND a.member_id = b.member_id))
        """
    ).fetchall()[0]
    digest = dict(
        zip(
            ["members", "verified", "with_usage", "over_quota", "joined", "left"],
            totals,
            strict=True,
        )
    )
    for prefix, column in (("plan.", "plan"), ("sign_in.", "sign_in_method")):
        for value, count in con.sql(
            f"SELECT {column}, count(*) FROM {files} GROUP BY 1"
        ).fetchall():
            digest[f"{prefix}{value}"] = count
    return {k: int(v) for k, v in digest.items()}


def _duckdb_changes(store: str) -> dict[str, int]:
    import duckdb

    files = (
        f"read_parquet('{store}/snapshot=*/*.parquet', hive_partitioning=true, union_by_name=true)"
    )
    row_ = duckdb.sql(
        f"""
        WITH s AS (SELECT snapshot_at, member_id, plan, is_verified, name FROM {files}),
        t AS (SELECT snapshot_at, lag(snapshot_at) OVER (ORDER BY snapshot_at) AS prev
              FROM (SELECT DISTINCT snapshot_at FROM s)),
        pairs AS (
          SELECT a.member_id, a.plan AS plan_after, b.plan AS plan_before,
                 a.is_verified AS v_after, b.is_verified AS v_before,
                 a.name AS name_after, b.name AS name_before
          FROM t JOIN s a ON a.snapshot_at = t.snapshot_at
                 JOIN s b ON b.snapshot_at = t.prev AND b.member_id = a.member_id)
        SELECT count(*) FILTER (WHERE plan_after IS DISTINCT FROM plan_before),
               count(*) FILTER (WHERE v_after AND NOT coalesce(v_before, false)),
               count(*) FILTER (WHERE name_after IS DISTINCT FROM name_before)
        FROM pairs
        """
    ).fetchall()[0]
    return {"plan": int(row_[0]), "verified": int(row_[1]), "name": int(row_[2])}


# ------------------------------------------------------------------ the run


def _build(store: Path, n_members: int, weeks: int) -> list[float]:
    seconds = []
    for base in weekly_bases(n_members, weeks):
        result = write_snapshot(base, store, at=base.attrs["at"], plugin_id="plg_bench")
        seconds.append(result.write_seconds)
    return seconds


def _has_duckdb() -> bool:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


def run(quick: bool = False) -> list[dict[str, Any]]:
    n_members, weeks = (10_000, 6) if quick else (100_000, 26)
    work = f"{weeks} weekly snapshots of ~{n_members:,} members"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="plabdata-bench-history-") as scratch:
        store = Path(scratch) / "snapshots"
        started = time.perf_counter()
        appends = _build(store, n_members, weeks)
        build_s = time.perf_counter() - started
        size_mb = sum(p.stat().st_size for p in store.rglob("*.parquet")) / 1e6
        worst = max(appends)
        rows.append(
            row(
                "history: append a snapshot",
                f"{n_members:,} members, beyond the load",
                plabdata_s=statistics.median(appends),
                official_s=None,
                official_note="no history in PluginLab",
                notes=(
                    f"median of {weeks} appends, worst {worst:.2f} s (target < "
                    f"{APPEND_TARGET_S:.0f} s: {'met' if worst < APPEND_TARGET_S else 'MISSED'}); "
                    f"atomic (fsync + rename), zstd; store {size_mb:.0f} MB; "
                    f"synthetic build {build_s:.0f} s"
                ),
            )
        )
        for query in ("changes", "timeline"):
            mine = _in_child(store, f"plabdata_{query}")
            obvious = _in_child(store, f"pandas_{query}")
            if query == "changes":
                expected = {k: v for k, v in mine["result"].items() if v}
                assert {k: v for k, v in obvious["result"].items() if v} == expected, (
                    mine["result"],
                    obvious["result"],
                )
            else:
                assert obvious["result"] == mine["result"], (mine["result"], obvious["result"])
            met = mine["seconds"] < QUERY_TARGET_S and mine["peak_mb"] < PEAK_TARGET_MB
            entry = row(
                f"history: member_{query}",
                work,
                plabdata_s=mine["seconds"],
                official_s=obvious["seconds"],
                official_note=f"pandas concat + diff, peak {obvious['peak_mb']:,.0f} MB",
                notes=(
                    f"pyarrow compute, child-process peak {mine['peak_mb']:,.0f} MB; target < "
                    f"{QUERY_TARGET_S:.0f} s and < 1 GB: {'met' if met else 'MISSED'}; "
                    "same counts both ways"
                ),
            )
            entry["peak_mb"] = mine["peak_mb"]
            rows.append(entry)
            if _has_duckdb():
                duck = _in_child(store, f"duckdb_{query}")
                agree = all(mine["result"].get(k, 0) == v for k, v in duck["result"].items())
                entry = row(
                    f"history: member_{query} (duckdb)",
                    work,
                    plabdata_s=duck["seconds"],
                    official_s=None,
                    notes=(
                        f"DuckDB SQL over the same store, child-process peak "
                        f"{duck['peak_mb']:,.0f} MB; "
                        + ("agrees" if agree else "DISAGREES")
                        + (" (plan, verified, name only)" if query == "changes" else "")
                    ),
                )
                entry["peak_mb"] = duck["peak_mb"]
                rows.append(entry)
        for query, name in (("retention", "cohort_retention"), ("transitions", "plan_transitions")):
            mine = _in_child(store, f"plabdata_{query}")
            entry = row(
                f"history: {name}",
                work,
                plabdata_s=mine["seconds"],
                official_s=None,
                notes=f"child-process peak {mine['peak_mb']:,.0f} MB",
            )
            entry["peak_mb"] = mine["peak_mb"]
            rows.append(entry)
    return rows
