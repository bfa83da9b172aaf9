"""The member base over time: per-snapshot counts, cohort retention, plan transitions.

Queries over a snapshot store (or a frame of snapshots), as in
:mod:`plabdata.members._history`: each reads only its columns, one snapshot at a time
where it can, with pyarrow's compute kernels.

    >>> timeline = member_timeline(store)                          # doctest: +SKIP
    >>> timeline.filter(regex=r"^plan\\.").plot.area()
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from plabdata.errors import ConfigError
from plabdata.members._align import align_ids
from plabdata.members._history import (
    JOINED,
    LEFT,
    Source,
    SourceSnapshot,
    When,
    arrow_frame,
    as_time,
    between,
    plan_order,
    read_ahead,
    source_snapshots,
)
from plabdata.members._store import AT_COLUMN
from plabdata.tables._dtypes import INT, STRING, TIMESTAMP
from plabdata.wire import SIGN_IN_METHODS

__all__ = ["cohort_retention", "member_timeline", "plan_transitions"]

_TIMELINE_COLUMNS = [
    "member_id",
    "plan",
    "sign_in_method",
    "is_verified",
    "quota_usage_count",
    "quota_usage_limit",
    "quota_is_unlimited",
    "quota_is_over_limit",
]


# --------------------------------------------------------------------------- over time


def _counts(column: pa.ChunkedArray) -> dict[str, int]:
    counts = pc.value_counts(column.combine_chunks()).to_pylist()
    return {str(c["values"]): int(c["counts"]) for c in counts if c["values"] is not None}


def _true(column: pa.ChunkedArray) -> int:
    return int(pc.sum(pc.fill_null(column, False).cast(pa.int64())).as_py() or 0)


def member_timeline(source: Source, *, since: When = None, until: When = None) -> pd.DataFrame:
    """Per snapshot (indexed by ``snapshot_at``): how many members, and how they split.

    Columns: ``snapshot`` (id), ``members``, ``joined`` and ``left`` (since the previous
    snapshot; 0 for the first), ``verified`` and ``verified_share``, ``with_usage`` (members
    with usage in their current quota interval) and ``over_quota``, then ``plan.<label>``
    (members per plan, plans by limit) and ``sign_in.<method>`` (members per sign-in method).

    Args:
        source: a snapshot store folder, or a frame of snapshots (``snapshot_at`` column).
        since: only snapshots taken at or after this time (or snapshot id).
        until: ... and at or before this one.

    Example:
        >>> timeline = member_timeline(store)
        >>> timeline.filter(regex=r"^plan\\.").plot.area()
    """
    rows = []
    ranks: dict[str, float] = {}
    previous: pa.Array | None = None
    chosen = between(source_snapshots(source), since, until)
    for snapshot, table in read_ahead(chosen, lambda _: _TIMELINE_COLUMNS):
        ids = table["member_id"].combine_chunks()
        members = len(table)
        joined = left = 0
        if previous is not None:
            stayed = int((align_ids(previous, ids) >= 0).sum())  # ids are unique in each
            joined, left = members - stayed, len(previous) - stayed
        previous = ids
        verified = _true(table["is_verified"])
        row: dict[str, object] = {
            AT_COLUMN: snapshot.at,
            "snapshot": snapshot.id,
            "members": members,
            "joined": joined,
            "left": left,
            "verified": verified,
            "verified_share": verified / members if members else np.nan,
            "with_usage": _true(pc.greater(pc.fill_null(table["quota_usage_count"], 0), 0)),
            "over_quota": _true(table["quota_is_over_limit"]),
        }
        plans = _counts(table["plan"])
        _note_ranks(ranks, table)
        row.update({f"plan.{plan}": n for plan, n in plans.items()})
        methods = _counts(table["sign_in_method"])
        row.update({f"sign_in.{method}": n for method, n in methods.items()})
        rows.append(row)
    return _typed_timeline(rows, ranks)


def _note_ranks(ranks: dict[str, float], table: pa.Table) -> None:
    """Each plan's highest rank seen (its limit; unlimited = inf), to order the columns."""
    per_plan = table.group_by("plan").aggregate(
        [("quota_usage_limit", "max"), ("quota_is_unlimited", "any")]
    )
    for plan, limit, unlimited in zip(
        per_plan["plan"].to_pylist(),
        per_plan["quota_usage_limit_max"].to_pylist(),
        per_plan["quota_is_unlimited_any"].to_pylist(),
        strict=True,
    ):
        if plan is None:
            continue
        rank = np.inf if unlimited else float(-1 if limit is None else limit)
        ranks[str(plan)] = max(ranks.get(str(plan), -np.inf), rank)


def _typed_timeline(rows: list[dict[str, object]], ranks: dict[str, float]) -> pd.DataFrame:
    fixed = [
        "snapshot",
        "members",
        "joined",
        "left",
        "verified",
        "verified_share",
        "with_usage",
        "over_quota",
    ]
    plans = sorted(ranks, key=lambda p: (ranks[p], p))
    seen = {k for row in rows for k in row if k.startswith("sign_in.")}
    methods = [f"sign_in.{m}" for m in SIGN_IN_METHODS]
    methods += sorted(seen - set(methods))
    columns = [*fixed, *(f"plan.{p}" for p in plans), *methods]
    frame = pd.DataFrame(rows, columns=[AT_COLUMN, *columns])
    frame[AT_COLUMN] = pd.to_datetime(frame[AT_COLUMN], utc=True).astype(TIMESTAMP)
    frame = frame.set_index(AT_COLUMN)
    for name in columns:
        if name == "snapshot":
            frame[name] = frame[name].astype(STRING)
        elif name == "verified_share":
            frame[name] = frame[name].astype("float64")
        else:
            frame[name] = frame[name].fillna(0).astype(INT)
    return frame


def cohort_retention(
    source: Source,
    *,
    since: When = None,
    until: When = None,
    counts: bool = False,
    min_members: int = 1,
) -> pd.DataFrame:
    """Members by signup month still present k snapshots after they were first seen.

    Rows are signup months (``"2026-09"``…, the ``cohort`` index), columns ``k`` = 0, 1, …
    (snapshots later), values the share of the cohort still present — or, with
    ``counts=True``, how many. A cell is missing where no member of the cohort has k
    snapshots after its first yet. Column 0 with ``counts=True`` is the cohort's size.

    Example:
        >>> cohort_retention(store).iloc[-6:, :8].style.format("{:.0%}")
    """
    chosen = between(source_snapshots(source), since, until)
    if not chosen:
        return pd.DataFrame(index=pd.Index([], name="cohort", dtype=str))
    tables = [s.read(["member_id", "created_at"]) for s in chosen]
    sizes = np.array([len(t) for t in tables])
    ids = pa.chunked_array([t["member_id"].combine_chunks() for t in tables]).combine_chunks()
    encoded = pc.dictionary_encode(ids)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    n_members, n_snapshots = len(encoded.dictionary), len(chosen)
    where = np.repeat(np.arange(n_snapshots), sizes)
    present = np.zeros((n_members, n_snapshots), dtype=bool)
    present[codes, where] = True
    created = pa.chunked_array([t["created_at"] for t in tables]).combine_chunks()
    millis = pc.fill_null(created.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    signup = np.zeros(n_members, dtype=np.int64)
    signup[codes] = millis  # a member's signup time is the same in every snapshot
    months = signup.astype("datetime64[ms]").astype("datetime64[M]")
    labels, cohort = np.unique(months, return_inverse=True)
    first = present.argmax(axis=1)
    table: dict[int, np.ndarray] = {}
    for k in range(n_snapshots):
        later = first + k
        valid = later < n_snapshots
        still = present[np.flatnonzero(valid), later[valid]]
        kept = np.bincount(cohort[valid], weights=still, minlength=len(labels))
        base = np.bincount(cohort[valid], minlength=len(labels)).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            table[k] = np.where(
                base >= max(1, min_members), kept if counts else kept / base, np.nan
            )
    frame = pd.DataFrame(table, index=pd.Index([str(m) for m in labels], name="cohort"))
    frame.columns.name = "k"
    return frame.astype("Int64") if counts else frame


def _pick(snapshots: list[SourceSnapshot], which: int | When) -> SourceSnapshot:
    if not snapshots:
        raise ConfigError("no snapshots to compare")
    if isinstance(which, int | np.integer) and not isinstance(which, bool):
        if not -len(snapshots) <= which < len(snapshots):
            raise ConfigError(f"no snapshot at position {which} of {len(snapshots)}")
        return snapshots[int(which)]
    if isinstance(which, str):
        for snapshot in snapshots:
            if snapshot.id == which:
                return snapshot
    at = as_time(which)  # type: ignore[arg-type]
    earlier = [s for s in snapshots if at is not None and s.at <= at]
    if not earlier:
        raise ConfigError(f"no snapshot at or before {which}")
    return earlier[-1]


def plan_transitions(
    source: Source, before: int | When = 0, after: int | When = -1
) -> pd.DataFrame:
    """Members per (plan in ``before``, plan in ``after``): the plan-transition matrix.

    ``before`` and ``after`` pick snapshots by position (``0`` the first, ``-1`` the latest),
    id, or time (the last snapshot at or before it). Rows are the plan before plus
    ``(joined)``, columns the plan after plus ``(left)``, plans ordered by their limits.

    Example:
        >>> plan_transitions(store, "2026-09-01", -1)
    """
    snapshots = source_snapshots(source)
    first, last = _pick(snapshots, before), _pick(snapshots, after)
    wanted = ["member_id", "plan", "quota_usage_limit", "quota_is_unlimited"]
    old, new = arrow_frame(first.read(wanted)), arrow_frame(last.read(wanted))
    order = plan_order(pd.concat([old, new], ignore_index=True))
    merged = old[["member_id", "plan"]].merge(
        new[["member_id", "plan"]], on="member_id", how="outer", suffixes=("_before", "_after")
    )
    rows = merged["plan_before"].astype("object").fillna(JOINED)
    cols = merged["plan_after"].astype("object").fillna(LEFT)
    matrix = pd.crosstab(rows, cols)
    matrix = matrix.reindex(index=[*order, JOINED], columns=[*order, LEFT], fill_value=0)
    matrix.loc[JOINED, LEFT] = 0
    matrix.index.name = f"plan on {first.at:%Y-%m-%d %H:%M} UTC"
    matrix.columns.name = f"plan on {last.at:%Y-%m-%d %H:%M} UTC"
    return matrix.astype("int64")
