"""Backfilling custom events from logs: exactly once where PluginLab allows it, honest elsewhere.

PluginLab's ``create-custom`` call has no idempotency key and no timestamp, so exactly-once
must come from this side. Every valid row gets a deterministic fingerprint
(:mod:`plabdata.events._fingerprint`) kept in a SQLite :class:`~plabdata.Journal`:

1. A row whose fingerprint the journal holds as ``sent`` is **already-done** (a re-run, or a
   later export overlapping an earlier one, sends only what is new).
2. Before a request leaves, its fingerprint is journaled ``pending`` and committed (grouped
   with the other rows starting at the same moment).
3. The answer decides: **sent**; **failed** when the request surely was not applied (refused
   with 4xx, or connect errors / 429 / 503 still failing after the client's retries) — a
   later run tries it again; **in-doubt** when it may have been applied (no answer after
   sending, 500 / 502 / 504).
4. In-doubt rows — and ``pending`` ones left by a killed run — are never re-sent with
   ``on_in_doubt="skip"`` (the default: nothing is counted twice) and are listed; with
   ``"retry"`` they are sent again and counted in ``maybe_doubled``.

A kill (SIGKILL, Ctrl-C, power cut) therefore loses at most the requests in flight, and they
come back as in-doubt, never silently lost or silently doubled.

**The report** keeps counts, the members' event totals and the quota impact in memory; the
per-row table (every input row, one outcome each) is streamed to a Parquet file
(``report_path``, or a temporary file that lives as long as the report) and the rejected rows
to a file in the input's own format, so a 5,000,000-row run stays in bounded memory.

    >>> report = backfill_events(admin, "logs/*.parquet", journal="logs.journal.sqlite")
    >>> report.counts
    {'sent': 29890, 'invalid': 110}
"""

from __future__ import annotations

import os
import tempfile
import time
import weakref
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from plabdata.client._retry import is_in_doubt
from plabdata.client._sync import Admin
from plabdata.events._datetimes import TimestampReading
from plabdata.events._fingerprint import Fingerprinter
from plabdata.events._read import (
    DEFAULT_CHUNK_ROWS,
    EventSource,
    RawChunk,
    check_input,
    count_rows,
    input_columns,
    iter_raw_chunks,
    map_columns,
    resolve_sources,
)
from plabdata.events._report import STATUSES, BackfillReport, RejectsWriter, RowsWriter
from plabdata.events._upload import Item, upload
from plabdata.events._validate import (
    UPLOAD_TIME_NOTE,
    CheckOptions,
    MemberIndex,
    UnknownMember,
    check_chunk,
    check_columns,
    quota_impact,
)
from plabdata.jobs._journal import Journal
from plabdata.jobs._open import journal_path, open_journal
from plabdata.jobs._outcomes import PENDING, EventOutcome
from plabdata.jobs._outputs import check_outputs, collect_skipped, set_aside, settle_aside
from plabdata.jobs._progress import Progress, ProgressOption, open_progress
from plabdata.members._loaders import load_members, load_quota_usage

__all__ = ["JOB", "backfill_events"]

JOB = "events"
OnInDoubt = Literal["skip", "retry"]


# --------------------------------------------------------------------------- the run


class Run:
    """State of one backfill: journal, writers, counters, progress."""

    def __init__(
        self,
        *,
        journal: Journal | None,
        options: CheckOptions,
        members: MemberIndex | None,
        on_in_doubt: OnInDoubt,
        dry_run: bool,
        rows: RowsWriter,
        rejects: RejectsWriter,
        bar: Progress,
        across_inputs: bool,
    ) -> None:
        self.journal = journal
        self.options = options
        self.members = members
        self.on_in_doubt = on_in_doubt
        self.dry_run = dry_run
        self.rows = rows
        self.rejects = rejects
        self.bar = bar
        self.counts: Counter[str] = Counter()
        self.maybe_doubled = 0
        self.per_member: list[pa.Table] = []
        self.sent_members: Counter[tuple[str, bool]] = Counter()
        self.per_source: Counter[str] = Counter()
        self.notes: list[str] = []
        self.fingerprints = Fingerprinter(across_inputs=across_inputs)
        self.journal_empty = journal is None or not journal.counts()

    def chunks(
        self,
        sources: list[EventSource],
        mappings: list[dict[str, str]],
        chunk_rows: int,
        readings: list[TimestampReading | None] | None = None,
    ) -> Iterator[tuple[RawChunk, pa.Table]]:
        """Checked chunks of every input, in order (``readings``: from ``check_input``)."""
        readings = readings or [None] * len(sources)
        for src, mapping, reading in zip(sources, mappings, readings, strict=True):
            self.fingerprints.start_input()
            if not mapping:
                self.notes.append(f"{src.name}: empty, no rows")
                continue
            for raw in iter_raw_chunks(src, mapping, chunk_rows=chunk_rows, timestamps=reading):
                yield raw, check_chunk(raw, self.options, self.members, self.fingerprints)
                # Hand freed chunk buffers back to the OS: keeps the peak flat on long runs.
                pa.default_memory_pool().release_unused()

    def triage(self, raw: RawChunk, checked: pa.Table) -> pa.Table:
        """Settle every row that needs no request; return the rows to send (or would send)."""
        status = np.asarray(checked.column("status").combine_chunks().indices, dtype=np.int8)
        # check_chunk's codes: 0 invalid, 1 valid, 2 filtered, 3 duplicate of an earlier input;
        # outcome codes index _OUTCOMES (0: still to send).
        outcome = _CHECK_TO_OUTCOME[status]
        doubt = np.zeros(len(status), bool)
        notes: dict[int, str] = {}
        valid = np.flatnonzero(status == 1)
        if valid.size and not self.journal_empty and self.journal is not None:
            keys = checked.column("fingerprint").take(pa.array(valid)).to_pylist()
            known = self.journal.statuses(keys)
            for i, key in zip(valid.tolist(), keys, strict=True):
                previous = known.get(key)
                if previous == EventOutcome.SENT:
                    outcome[i] = _ALREADY_DONE
                elif previous in (PENDING, EventOutcome.IN_DOUBT):
                    doubt[i] = True
                    if self.on_in_doubt == "skip":
                        outcome[i] = _IN_DOUBT
                        notes[i] = _SKIPPED_DOUBT
        invalid = np.flatnonzero(status == 0)
        problems = checked.column("problem")
        if invalid.size:
            self.rejects.write(raw, invalid, problems.take(pa.array(invalid)))
        settled = np.flatnonzero(outcome != _TO_SEND)
        if settled.size:
            errors = problems.take(pa.array(settled))
            if notes:
                texts = errors.to_pylist()
                for j, i in enumerate(settled.tolist()):
                    texts[j] = notes.get(i, texts[j])
                errors = pa.array(texts, pa.string())
            self.rows.write_checked(checked, settled, _labels(outcome[settled]), errors)
            counted = np.bincount(outcome[settled], minlength=len(_OUTCOMES))
            self.counts.update({_OUTCOMES[k]: int(v) for k, v in enumerate(counted) if v})
            self.bar.update(settled.size)
        to_send = np.flatnonzero(outcome == _TO_SEND)
        table = checked if to_send.size == len(outcome) else checked.take(pa.array(to_send))
        table = table.append_column("was_in_doubt", pa.array(doubt[to_send]))
        if self.dry_run and to_send.size:
            label = _labels(np.full(to_send.size, _WOULD_SEND, np.int8))
            self.rows.write_checked(table, None, label, pa.nulls(to_send.size, pa.string()))
            self.counts[EventOutcome.WOULD_SEND] += int(to_send.size)
            self.bar.update(to_send.size)
            # Fold into running totals: memory stays at one row per member, not per chunk.
            self.per_member = [_fold([*self.per_member, _per_member(table)])]
            for value, n in _value_counts(table.column("event_source")):
                self.per_source[value] += n
        return table

    def record(self, item: Item, result: object, doubled: bool) -> None:
        """One sent row's outcome: journal, report, counters."""
        http_status = getattr(result, "status", None) if isinstance(result, BaseException) else 200
        if not isinstance(result, BaseException):
            status, error = EventOutcome.SENT, None
            self.sent_members[(item.member_id or "", item.is_in_quota)] += 1
            self.per_source[item.event_source] += 1
        elif is_in_doubt(result):
            status, error = EventOutcome.IN_DOUBT, f"in doubt (sent, no answer): {result}"
        else:
            status, error = EventOutcome.FAILED, f"{type(result).__name__}: {result}"
        assert self.journal is not None
        self.journal.finish(
            item.fingerprint, status, http_status=http_status, error=error, member_id=item.member_id
        )
        if doubled and status == EventOutcome.SENT:
            self.maybe_doubled += 1
        self.rows.write_item(item, status, error, doubled)
        self.counts[status] += 1
        self.bar.update(1)

    def members_frame(self) -> pd.DataFrame:
        if self.dry_run:
            parts = [t for t in self.per_member if t.num_rows]
            if not parts:
                return _empty_members()
            frame = pa.concat_tables(parts).to_pandas()
            frame = frame.groupby("member_id", as_index=False)[["events", "in_quota_events"]].sum()
        else:
            records = [(m, n, n if q else 0) for (m, q), n in self.sent_members.items() if m]
            if not records:
                return _empty_members()
            frame = pd.DataFrame.from_records(
                records, columns=["member_id", "events", "in_quota_events"]
            )
            frame = frame.groupby("member_id", as_index=False).sum()
        frame["member_id"] = frame["member_id"].astype("string")
        ordered: pd.DataFrame = frame.sort_values("events", ascending=False, ignore_index=True)
        return ordered


# Outcome codes of a chunk's rows (0: still to send), as a dictionary over these words.
_OUTCOMES = (
    "",
    EventOutcome.INVALID,
    EventOutcome.FILTERED,
    EventOutcome.ALREADY_DONE,
    EventOutcome.IN_DOUBT,
    EventOutcome.WOULD_SEND,
)
_TO_SEND, _ALREADY_DONE, _IN_DOUBT, _WOULD_SEND = 0, 3, 4, 5
_CHECK_TO_OUTCOME = np.array([1, 0, 2, 3], np.int8)  # invalid, valid, filtered, duplicate
_OUTCOME_LABELS = pa.array([str(o) for o in _OUTCOMES], pa.string())
_SKIPPED_DOUBT = (
    "in doubt since an earlier run (sent, never confirmed); not re-sent: on_in_doubt='skip'"
)


def _labels(codes: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), _OUTCOME_LABELS)


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """(codes, -1 for null; distinct values) of a dictionary-encoded text column."""
    array = column.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    codes = pc.fill_null(array.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, array.dictionary


def _value_counts(column: pa.ChunkedArray) -> list[tuple[str, int]]:
    codes, values = _codes(column)
    counts = np.bincount(codes[codes >= 0], minlength=len(values))
    names = values.to_pylist()
    return [(names[i], int(counts[i])) for i in np.flatnonzero(counts)]


def _fold(parts: list[pa.Table]) -> pa.Table:
    parts = [t for t in parts if t.num_rows]
    if len(parts) < 2:
        return parts[0] if parts else _per_member_schema().empty_table()
    grouped = (
        pa.concat_tables(parts)
        .group_by("member_id")
        .aggregate([("events", "sum"), ("in_quota_events", "sum")])
    )
    return grouped.rename_columns(["member_id", "events", "in_quota_events"]).select(
        ["member_id", "events", "in_quota_events"]
    )


def _per_member_schema() -> pa.Schema:
    return pa.schema(
        [("member_id", pa.string()), ("events", pa.int64()), ("in_quota_events", pa.int64())]
    )


def _per_member(table: pa.Table) -> pa.Table:
    """Events and in-quota events per member, counted on the dictionary codes."""
    codes, values = _codes(table.column("member_id"))
    quota = table.column("is_in_quota").combine_chunks().to_numpy(zero_copy_only=False)
    known = codes >= 0
    events = np.bincount(codes[known], minlength=len(values))
    in_quota = np.bincount(
        codes[known], weights=quota[known].astype(np.int64), minlength=len(values)
    )
    present = np.flatnonzero(events)
    return pa.table(
        {
            "member_id": values.take(pa.array(present)),
            "events": events[present].astype(np.int64),
            "in_quota_events": in_quota[present].astype(np.int64),
        }
    )


def _empty_members() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member_id": pd.Series(dtype="string"),
            "events": pd.Series(dtype="int64"),
            "in_quota_events": pd.Series(dtype="int64"),
        }
    )


# --------------------------------------------------------------------------- public


def backfill_events(
    admin: Admin,
    source: object,
    *,
    journal: Journal | str | os.PathLike[str] | None,
    concurrency: int | None = None,
    dry_run: bool = False,
    in_quota: bool | None = None,
    on_in_doubt: OnInDoubt = "skip",
    unknown_member: UnknownMember = "reject",
    source_name: str | None = None,
    columns: Mapping[str, str] | None = None,
    since: object = None,
    until: object = None,
    timestamp_format: str | None = None,
    progress: ProgressOption = True,
    members: pd.DataFrame | None = None,
    quota: pd.DataFrame | None = None,
    load_quota: bool = False,
    report_path: str | os.PathLike[str] | None = None,
    rejects_path: str | os.PathLike[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BackfillReport:
    """Upload log rows as PluginLab custom events, each at most once (see the module docs).

    Args:
        admin: The connection (``plabdata.connect()``).
        source: CSV / Parquet path(s), a folder, a glob, or a DataFrame; streamed.
        journal: The journal: a :class:`Journal` for job ``"events"``, a path (opened and
            closed here), or None for the default place,
            ``$PLABDATA_HOME/journals/<plugin id>/events.journal`` — the same one the CLI
            uses. A dry run reads an existing journal (what was sent counts as already
            done) and never creates one.
        concurrency: Requests in flight (default: the settings'); the client's shared rate
            limiter paces them.
        dry_run: Validate, resolve and preview; send nothing, write nothing to the journal.
        in_quota: Force ``isInQuota`` for every row; None: the ``is_in_quota`` column,
            blank meaning true.
        on_in_doubt: ``"skip"`` (never double-count) or ``"retry"`` (at-least-once).
        unknown_member: ``"reject"`` rows with an unknown or blank member, or send them
            ``"anonymous"`` (no member id, no quota).
        source_name: The event source of rows whose log gives none (no ``event_source``
            column, or a blank value); a log's own source wins.
        columns: Column choices, e.g. ``{"email": "user_mail"}``.
        since: Only rows at or after this time (naive: UTC); others are ``filtered``.
        until: Only rows strictly before this time (after ``since``; both read as
            :func:`~plabdata.events._timestamps.parse_time_bound` reads them).
        timestamp_format: How the logs' text timestamps are written when the data cannot
            say: ``"day-first"``, ``"month-first"``, ``"iso"`` or a strptime pattern
            (``"%d/%m/%Y %H:%M"``). None: decided per input from its whole column.
        progress: ``True`` for a progress bar over rows (with an ETA from the row count),
            ``False`` for none, a ``Progress`` or ``fn(done, total)`` called as rows finish.
        members: A ``load_members`` frame; loaded here when the logs have member columns.
        quota: A ``load_quota_usage`` frame for the quota-impact preview.
        load_quota: Load quota usage for the members with in-quota events (one request each).
        report_path: Where to write the per-row Parquet table (default: a temporary file).
        rejects_path: Where to write rejected rows (default: a temporary file in the input's
            format: CSV for CSV, Parquet otherwise). An existing file there is kept aside
            (``<name>.previous-<time>.<ext>``) unless this run writes the same rows again.
            Neither output may be an input or the journal.
        chunk_rows: Rows read and checked at a time (bounds memory).

    Returns:
        The :class:`BackfillReport`.

    Raises:
        ValidationError: A whole-input problem (unreadable file, missing column), or an
            output that is an input, the journal or an empty path; nothing was sent.
        JournalError: The journal belongs to another plugin, job or API, is damaged or
            emptied, or another run holds it.
        AuthError: PluginLab refused the credentials (the run stops).

    Example:
        >>> report = backfill_events(admin, "web_ui.parquet", journal="web_ui.journal.sqlite",
        ...                          source_name="WEB_UI", dry_run=True)
        >>> print(report.summary())
    """
    started = time.perf_counter()
    if on_in_doubt not in ("skip", "retry"):
        raise ValueError("on_in_doubt must be 'skip' or 'retry'")
    options = CheckOptions.build(
        source_name=source_name,
        in_quota=in_quota,
        since=since,
        until=until,
        unknown_member=unknown_member,
        timestamp_format=timestamp_format,
    )
    with collect_skipped() as skipped:
        sources = resolve_sources(source)
    # Before any work: no output may destroy an input or the journal (nor a file of the same
    # name through a link), and an empty path is refused rather than read as ".".
    check_outputs(
        [src.path for src in sources if src.path is not None],
        {"report_path": report_path, "rejects_path": rejects_path},
        journal_path(admin, journal, JOB),
    )
    mappings, readings = [], []
    for src in sources:
        names = input_columns(src)
        mapping = map_columns(names, columns) if names is not None else {}
        reading = None
        if names is not None:
            check_columns(mapping, options, src.name)
            # Column types and the timestamp reading, for every input before anything is sent.
            reading = check_input(src, mapping, timestamp_format, chunk_rows=chunk_rows)
        mappings.append(mapping)
        readings.append(reading)
    index = None
    if any({"email", "member_id"} & set(m) for m in mappings):
        if members is None:
            members = load_members(admin, progress=progress is True)
        index = MemberIndex(members)
    held, owned = _open_journal(admin, journal, dry_run)
    keep = tempfile.TemporaryDirectory(prefix="plabdata-backfill-")
    rows_file = Path(report_path) if report_path is not None else Path(keep.name) / "rows.parquet"
    rejects_format = "csv" if sources[0].format == "csv" else "parquet"
    rejects_file = (
        Path(rejects_path)
        if rejects_path is not None
        else Path(keep.name) / f"rejected.{rejects_format}"
    )
    # Rejected rows are meant to be fixed in place: an earlier file may hold those fixes.
    aside = set_aside(rejects_file)
    counted = [count_rows(src) for src in sources]
    total = None if any(c is None for c in counted) else sum(c or 0 for c in counted)
    bar = open_progress(
        progress, "dry run" if dry_run else "backfill", total, unit=" rows", smoothing=0.05
    )
    rows = RowsWriter(rows_file)
    rejects = RejectsWriter(rejects_file, multiple_inputs=len(sources) > 1)
    run = Run(
        journal=held,
        options=options,
        members=index,
        on_in_doubt=on_in_doubt,
        dry_run=dry_run,
        rows=rows,
        rejects=rejects,
        bar=bar,
        across_inputs=len(sources) > 1,
    )
    run.notes.extend(skipped)
    try:
        triaged = (
            run.triage(raw, checked)
            for raw, checked in run.chunks(sources, mappings, chunk_rows, readings)
        )
        if dry_run:
            for _ in triaged:
                pass
        else:
            admin.run(
                upload(
                    admin.aio,
                    run,
                    triaged,
                    concurrency=concurrency or admin.settings.concurrency,
                )
            )
    finally:
        bar.close()
        rows.close()
        rejects.close()
        if held is not None:
            if owned:
                held.close()
            else:
                held.flush()
    kept = settle_aside(rejects_file, aside, "rejected rows")
    if kept is not None:
        run.notes.append(kept)
    per_member = run.members_frame()
    impact = None
    if quota is None and load_quota and len(per_member):
        wanted = per_member.loc[per_member["in_quota_events"] > 0, "member_id"]
        quota = load_quota_usage(admin, wanted.tolist(), progress=progress is True)
    if quota is not None:
        impact = quota_impact(per_member, quota)
    notes = [*run.notes, UPLOAD_TIME_NOTE]
    return BackfillReport(
        dry_run=dry_run,
        counts={s: run.counts[s] for s in STATUSES if run.counts.get(s)},
        maybe_doubled=run.maybe_doubled,
        total_rows=sum(run.counts.values()),
        inputs=[src.name for src in sources],
        rows_path=rows_file,
        rejects_path=rejects_file if rejects.written else None,
        events_per_member=per_member,
        events_per_source=dict(run.per_source.most_common()),
        quota=impact,
        notes=notes,
        elapsed_s=time.perf_counter() - started,
        _keep=_Keeper(keep),
    )


class _Keeper:
    """Holds the report's temporary directory until the report is garbage-collected."""

    def __init__(self, directory: tempfile.TemporaryDirectory[str]) -> None:
        self.directory = directory
        weakref.finalize(self, directory.cleanup)


def _open_journal(
    admin: Admin, journal: Journal | str | os.PathLike[str] | None, dry_run: bool
) -> tuple[Journal | None, bool]:
    """(the journal, whether this run opened it and must close it). A dry run creates none:
    an absent journal means nothing was ever sent through it."""
    opened = open_journal(admin, journal, JOB, create=not dry_run)
    return opened, opened is not None and opened is not journal
