"""What changed, and how the member base moves over time: queries over a snapshot store.

Every query takes a snapshot store (a folder written by :func:`plabdata.snapshot_member_base`)
or the same snapshots as one long frame (a ``snapshot_at`` column telling them apart), reads
only the columns it needs, one or two snapshots at a time (memory follows one snapshot, not
the history), and returns a frame with plabdata's dtypes:

- :func:`member_changes` — one row per member change between consecutive snapshots (here);
- ``member_timeline``, ``cohort_retention``, ``plan_transitions`` — the base over time
  (:mod:`plabdata.members._timeline`, built on this module's sources).

The engine is pyarrow's compute kernels on Arrow tables (hash joins by member id, vectorised
comparisons); only the changed rows become Python objects. Measured against concatenating
every snapshot in pandas and diffing, it is faster and its memory follows two snapshots
(``benchmarks/bench_history.py``).

Plans are ordered by their limits (unlimited last): a move to a higher limit is an upgrade.

    >>> changes = member_changes(store, since="2026-11-01")       # doctest: +SKIP
    >>> changes.groupby("change", observed=True).size()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from plabdata.members._align import align_ids
from plabdata.members._store import AT_COLUMN, partitions, read_table, snapshot_id
from plabdata.tables._dtypes import BOOLEAN, INT, STRING, TIMESTAMP

__all__ = [
    "CHANGES",
    "CHANGE_COLUMNS",
    "JOINED",
    "LEFT",
    "Source",
    "SourceSnapshot",
    "When",
    "arrow_frame",
    "as_time",
    "between",
    "changes_between",
    "member_changes",
    "plan_order",
    "plan_rank",
    "read_ahead",
    "source_snapshots",
]

Source = str | PathLike[str] | pd.DataFrame
When = datetime | str | pd.Timestamp | None

#: The kinds of change, in the order a member's changes are listed.
CHANGES = (
    "joined",
    "left",
    "plan",
    "provider_added",
    "provider_removed",
    "verified",
    "unverified",
    "name",
    "metadata",
)
CHANGE = pd.CategoricalDtype(list(CHANGES), ordered=True)
DIRECTION = pd.CategoricalDtype(["upgrade", "downgrade"])
#: Columns of :func:`member_changes`: ``before`` / ``after`` hold the plan (joined, left,
#: plan), the provider (provider_*), the name, or ``key=value`` pairs of changed metadata.
CHANGE_COLUMNS = {
    "before_at": TIMESTAMP,
    "after_at": TIMESTAMP,
    "member_id": STRING,
    "email": STRING,
    "change": CHANGE,
    "before": STRING,
    "after": STRING,
    "direction": DIRECTION,
}
JOINED, LEFT = "(joined)", "(left)"
_CHANGE_COLUMNS = [
    "member_id",
    "email",
    "plan",
    "quota_usage_limit",
    "quota_is_unlimited",
    "providers",
    "is_verified",
    "name",
    "given_name",
    "family_name",
]
_TO_PANDAS = {pa.string(): STRING, pa.large_string(): STRING, pa.bool_(): BOOLEAN, pa.int64(): INT}


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class SourceSnapshot:
    """One snapshot of a source: its id, its time and a reader of some of its columns."""

    id: str
    at: pd.Timestamp
    names: tuple[str, ...]
    read: Callable[[Sequence[str] | None], pa.Table]


def source_snapshots(source: Source) -> list[SourceSnapshot]:
    if isinstance(source, pd.DataFrame):
        if AT_COLUMN not in source.columns:
            raise ValueError(f"a frame of snapshots needs a {AT_COLUMN!r} column")
        found = []
        for at, group in source.groupby(AT_COLUMN, sort=True):
            stamp = pd.Timestamp(at)  # type: ignore[arg-type]
            names = tuple(str(c) for c in group.columns)
            found.append(SourceSnapshot(snapshot_id(stamp), stamp, names, _frame_reader(group)))
        return found
    return [
        SourceSnapshot(name, at, tuple(pq.read_schema(path).names), _file_reader(path))
        for name, at, path in partitions(source)
    ]


def _file_reader(path: Path) -> Callable[[Sequence[str] | None], pa.Table]:
    return lambda columns: read_table(path, columns)


def _frame_reader(group: pd.DataFrame) -> Callable[[Sequence[str] | None], pa.Table]:
    group = group.reset_index(drop=True)

    def read(columns: Sequence[str] | None) -> pa.Table:
        wanted = [str(c) for c in group.columns] if columns is None else list(columns)
        frame = pd.DataFrame(
            {
                c: group[c].astype(STRING) if _is_text(group[c]) else group[c]
                for c in wanted
                if c in group.columns
            }
        )
        table = pa.Table.from_pandas(frame, preserve_index=False)
        for name in wanted:
            if name not in table.column_names:
                table = table.append_column(name, pa.nulls(len(table), pa.string()))
        return table.select(wanted)

    return read


def _is_text(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.CategoricalDtype) or column.dtype == object


def read_ahead(
    snapshots: Sequence[SourceSnapshot], columns: Callable[[SourceSnapshot], Sequence[str]]
) -> Iterator[tuple[SourceSnapshot, pa.Table]]:
    """Each snapshot with its ``columns``, the next one read in a background thread while
    the caller works on this one: Parquet decoding releases the GIL, so on two cores the
    reading mostly hides behind the comparing (at most two snapshots read ahead in memory).
    """
    if not snapshots:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="plabdata-read") as pool:
        pending = pool.submit(snapshots[0].read, columns(snapshots[0]))
        for position, snapshot in enumerate(snapshots):
            table = pending.result()
            if position + 1 < len(snapshots):
                following = snapshots[position + 1]
                pending = pool.submit(following.read, columns(following))
            yield snapshot, table


def as_time(value: When) -> pd.Timestamp | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) >= 20 and value[13] == "-":
        value = value[:10] + " " + value[11:19].replace("-", ":") + "+00:00"  # a snapshot id
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def between(snapshots: list[SourceSnapshot], since: When, until: When) -> list[SourceSnapshot]:
    low, high = as_time(since), as_time(until)
    return [s for s in snapshots if (low is None or s.at >= low) and (high is None or s.at <= high)]


def arrow_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a frame with plabdata's nullable dtypes (no categories)."""
    frame: pd.DataFrame = table.to_pandas(types_mapper=_TO_PANDAS.get)
    return frame


# --------------------------------------------------------------------------- plans


def plan_rank(limit: pd.Series, unlimited: pd.Series) -> np.ndarray:
    rank = pd.to_numeric(limit, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
    return np.where(unlimited.fillna(False).to_numpy(dtype=bool), np.inf, rank)


def plan_order(frame: pd.DataFrame) -> list[str]:
    """The plan labels of a member-base frame ordered by their limits, unlimited last.

    Example:
        >>> plan_order(base)
        ['free', 'pro', 'unlimited']
    """
    if frame.empty or "plan" not in frame.columns:
        return []
    ranks = pd.DataFrame(
        {
            "plan": frame["plan"].astype(str),
            "rank": plan_rank(frame["quota_usage_limit"], frame["quota_is_unlimited"])
            if "quota_usage_limit" in frame.columns
            else 0.0,
        }
    )
    ranks = ranks[frame["plan"].notna().to_numpy()]
    best = ranks.groupby("plan")["rank"].max().reset_index()
    return best.sort_values(["rank", "plan"], kind="stable")["plan"].tolist()


# --------------------------------------------------------------------------- changes


def _differs(x: pa.Array, y: pa.Array) -> pa.Array:
    """Element-wise "not the same value" (missing equals missing), as a boolean array."""
    both_missing = pc.and_(pc.is_null(x), pc.is_null(y))
    return pc.and_not(pc.fill_null(pc.not_equal(x, y), True), both_missing)


def _texts(column: pa.Array) -> list[str | None]:
    return [None if v is None else str(v) for v in column.to_pylist()]


#: Change rows of one kind, as plain lists by column (``member_id``… ``direction``).
Block = dict[str, list[object]]
_BLOCK_COLUMNS = ("member_id", "email", "change", "before", "after", "direction")


def _block(
    change: str,
    ids: pa.Table,
    before: Sequence[object] | None = None,
    after: Sequence[object] | None = None,
    direction: Sequence[object] | None = None,
) -> Block:
    n = len(ids)

    def values(given: Sequence[object] | None) -> list[object]:
        if given is None:
            return [None] * n
        return list(given) * n if len(given) == 1 else list(given)

    return {
        "member_id": ids["member_id"].to_pylist(),
        "email": ids["email"].to_pylist(),
        "change": [change] * n,
        "before": values(before),
        "after": values(after),
        "direction": values(direction),
    }


def _rank(table: pa.Table) -> np.ndarray:
    limit = pc.fill_null(table["quota_usage_limit"], -1).to_numpy(zero_copy_only=False)
    unlimited = pc.fill_null(table["quota_is_unlimited"], False).to_numpy(zero_copy_only=False)
    return np.where(unlimited, np.inf, limit.astype("float64"))


def _provider_blocks(ids: pa.Table, old: pa.Array, new: pa.Array) -> list[Block]:
    """provider_added / provider_removed rows of the (few) members whose ``providers``
    text differs: plain Python over those rows only."""
    olds = [set(filter(None, (t or "").split(","))) for t in _texts(old)]
    news = [set(filter(None, (t or "").split(","))) for t in _texts(new)]
    blocks = []
    for change, key in (("provider_added", "after"), ("provider_removed", "before")):
        rows, providers = [], []
        for row, (o, n) in enumerate(zip(olds, news, strict=True)):
            for provider in sorted(n - o if change == "provider_added" else o - n):
                rows.append(row)
                providers.append(provider)
        if rows:
            blocks.append(_block(change, ids.take(rows), **{key: providers}))
    return blocks


def _name(table: pa.Table) -> list[str | None]:
    """The member's ``name``, else ``given family``."""

    def text(column: str) -> list[str]:
        if column not in table.column_names:
            return [""] * len(table)
        return [v or "" for v in _texts(table[column].combine_chunks())]

    return [
        name or f"{given} {family}".strip() or None
        for name, given, family in zip(
            text("name"), text("given_name"), text("family_name"), strict=True
        )
    ]


def _metadata_text(table: pa.Table, keys: list[str]) -> list[str]:
    columns = [(k.removeprefix("metadata."), _texts(table[k].combine_chunks())) for k in keys]
    return [
        "; ".join(
            f"{label}={'(none)' if values[row] is None else values[row]}"
            for label, values in columns
        )
        for row in range(len(table))
    ]


def _column(table: pa.Table, name: str) -> pa.Array:
    if name in table.column_names:
        return table[name].combine_chunks()
    return pa.nulls(len(table), pa.string())


def _pair_changes(before: pa.Table, after: pa.Table) -> list[Block]:
    """The changes from ``before`` to ``after`` (unique ``member_id`` in each)."""
    position = align_ids(_column(before, "member_id"), _column(after, "member_id"))
    joined_rows = position < 0
    joined, stay = pa.array(joined_rows), pa.array(~joined_rows)
    gone_mask = np.ones(len(before), dtype=bool)
    gone_mask[position[~joined_rows]] = False
    left = pa.array(gone_mask)
    has = set(before.column_names) & set(after.column_names)
    # ``before`` row for row with ``after`` (a joined member's row all nulls), so ``after`` is
    # compared as it is; every change below is masked with ``stay``. Ids and emails come
    # from ``after``: ``b`` goes without them.
    compared = [c for c in before.column_names if c not in ("member_id", "email")]
    b = before.select(compared).take(pa.array(position, mask=joined_rows))
    a = after

    def differs(column: str) -> pa.Array:
        return pc.and_(_differs(_column(b, column), _column(a, column)), stay)

    def plans(table: pa.Table) -> list[str | None] | None:
        return _texts(_column(table, "plan")) if "plan" in has else None

    arrived, gone = after.filter(joined), before.filter(left)
    blocks = [_block("joined", arrived, after=plans(arrived)), _block("left", gone, plans(gone))]
    if {"plan", "quota_usage_limit", "quota_is_unlimited"} <= has:
        moved = differs("plan")
        old, new = b.filter(moved), a.filter(moved)
        old_rank, new_rank = _rank(old), _rank(new)
        direction = [
            "upgrade" if after > before else "downgrade" if after < before else None
            for before, after in zip(old_rank, new_rank, strict=True)
        ]
        blocks.append(_block("plan", new, plans(old), plans(new), direction))
    if "providers" in has:
        old_p = pc.fill_null(_column(b, "providers"), "")
        new_p = pc.fill_null(_column(a, "providers"), "")
        changed = pc.and_(_differs(old_p, new_p), stay)
        blocks += _provider_blocks(a.filter(changed), old_p.filter(changed), new_p.filter(changed))
    if "is_verified" in has:
        old_v = pc.fill_null(_column(b, "is_verified"), False)
        new_v = pc.and_(pc.fill_null(_column(a, "is_verified"), False), stay)
        blocks.append(_block("verified", a.filter(pc.and_not(new_v, old_v)), ["no"], ["yes"]))
        blocks.append(_block("unverified", a.filter(pc.and_not(old_v, new_v)), ["yes"], ["no"]))
    names = [c for c in ("name", "given_name", "family_name") if c in has]
    if names:
        renamed = differs(names[0])
        for column in names[1:]:
            renamed = pc.or_(renamed, differs(column))
        old, new = b.filter(renamed), a.filter(renamed)
        blocks.append(_block("name", new, _name(old), _name(new)))
    keys = sorted(
        {c for c in (*before.column_names, *after.column_names) if c.startswith("metadata.")}
    )
    if keys:
        per_key = {k: differs(k) for k in keys}
        edited = per_key[keys[0]]
        for key in keys[1:]:
            edited = pc.or_(edited, per_key[key])
        if pc.any(edited).as_py():
            changed = [k for k in keys if pc.any(pc.and_(per_key[k], edited)).as_py()]
            old = pa.table({k: _column(b, k) for k in changed}).filter(edited)
            new = pa.table({k: _column(a, k) for k in changed}).filter(edited)
            blocks.append(
                _block(
                    "metadata",
                    a.filter(edited),
                    _metadata_text(old, changed),
                    _metadata_text(new, changed),
                )
            )
    return blocks


class _Collected:
    """The change rows of consecutive snapshot pairs, kept as plain lists and typed and
    sorted once at the end: a frame per block, or per pair, costs more than the comparing."""

    def __init__(self) -> None:
        self.columns: Block = {name: [] for name in _BLOCK_COLUMNS}
        self.pairs: list[int] = []
        self.times: list[tuple[pd.Timestamp | None, pd.Timestamp | None]] = []

    def add(
        self, blocks: list[Block], before_at: pd.Timestamp | None, after_at: pd.Timestamp | None
    ) -> None:
        pair = len(self.times)
        self.times.append((before_at, after_at))
        for block in blocks:
            for name in _BLOCK_COLUMNS:
                self.columns[name].extend(block[name])
            self.pairs.extend([pair] * len(block["member_id"]))

    def frame(self) -> pd.DataFrame:
        """Columns and dtypes of :data:`CHANGE_COLUMNS`; pairs in order, then by member and
        kind of change."""
        pair = np.asarray(self.pairs, dtype=np.int64)

        def times(side: int) -> pd.DatetimeIndex:
            stamps = pd.DatetimeIndex([t[side] for t in self.times] or [], dtype=TIMESTAMP)
            return stamps[pair]

        rows = pd.DataFrame({name: self.columns[name] for name in _BLOCK_COLUMNS}, dtype=object)
        frame = rows.astype({name: CHANGE_COLUMNS[name] for name in _BLOCK_COLUMNS})
        frame.insert(0, "after_at", times(1))
        frame.insert(0, "before_at", times(0))
        frame.insert(0, "_pair", pair)
        frame = frame.sort_values(["_pair", "member_id", "change"], kind="stable")
        return frame.drop(columns="_pair").reset_index(drop=True)


def _unique(table: pa.Table) -> pa.Table:
    """The table with one row per member (the last), as a loaded member base has."""
    ids = table["member_id"]
    if len(pc.unique(ids)) == len(table):
        return table
    frame = pd.DataFrame({"id": ids.to_pylist()})
    keep = np.flatnonzero(~frame["id"].duplicated(keep="last").to_numpy())
    return table.take(keep)


def changes_between(
    before: pd.DataFrame,
    after: pd.DataFrame,
    *,
    before_at: When = None,
    after_at: When = None,
) -> pd.DataFrame:
    """The member changes from one member base to the next: the pure core of
    :func:`member_changes` (frames in, frame out; columns as in :data:`CHANGE_COLUMNS`).

    Both frames need ``member_id`` and ``email``; each other kind of change is looked for
    when both have its columns (``plan`` with ``quota_usage_limit`` /
    ``quota_is_unlimited``, ``providers``, ``is_verified``, ``name`` / ``given_name`` /
    ``family_name``, ``metadata.*``). Times default to each frame's ``snapshot_at``.

    Example:
        >>> changes = changes_between(last_week, today)
        >>> changes["change"].value_counts()
    """
    old = _unique(_frame_reader(before)(None))
    new = _unique(_frame_reader(after)(None))
    collected = _Collected()
    collected.add(
        _pair_changes(old, new),
        as_time(before_at) or _first_at(before),
        as_time(after_at) or _first_at(after),
    )
    return collected.frame()


def _first_at(frame: pd.DataFrame) -> pd.Timestamp | None:
    if AT_COLUMN in frame.columns and len(frame):
        return as_time(frame[AT_COLUMN].iloc[0])
    return None


def member_changes(source: Source, *, since: When = None, until: When = None) -> pd.DataFrame:
    """One row per member change between consecutive snapshots.

    Changes: ``joined``, ``left`` (deleted), ``plan`` (``before`` → ``after``, with
    ``direction`` upgrade or downgrade by the plans' limits), ``provider_added`` /
    ``provider_removed`` (a sign-in provider), ``verified`` / ``unverified``, ``name`` and
    ``metadata`` (the changed ``key=value`` pairs) — each with both snapshot times
    (``before_at``, ``after_at``). Columns and dtypes: :data:`CHANGE_COLUMNS`.

    Args:
        source: a snapshot store folder, or a frame of snapshots (``snapshot_at`` column).
        since: compare only snapshots taken at or after this time (or snapshot id).
        until: ... and at or before this one.

    Example:
        >>> changes = member_changes(store, since="2026-11-01")
        >>> changes[changes.change == "plan"].groupby("direction", observed=True).size()
    """
    collected = _Collected()
    previous: tuple[pa.Table, pd.Timestamp] | None = None
    chosen = between(source_snapshots(source), since, until)
    # A store's snapshots hold each member once (write_snapshot refuses duplicates).
    for snapshot, current in read_ahead(chosen, _change_columns):
        if previous is not None:
            collected.add(_pair_changes(previous[0], current), previous[1], snapshot.at)
        previous = (current, snapshot.at)
    return collected.frame()


def _change_columns(snapshot: SourceSnapshot) -> list[str]:
    return [*_CHANGE_COLUMNS, *sorted(n for n in snapshot.names if n.startswith("metadata."))]
