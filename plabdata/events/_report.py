"""The backfill's report, and its two output files, streamed: per-row table and rejected rows.

- **BackfillReport**: counts, events per member and source, quota impact — in memory — and
  the paths of the two files below.

- **Per-row table** (Parquet): one row per input row — ``file``, ``row``, ``timestamp``,
  ``fingerprint``, ``member_id``, ``event_source``, ``status``, ``error``,
  ``maybe_doubled`` — written chunk by chunk, so its size never sits in memory.
- **Rejected rows**: the invalid rows' recognised columns exactly as read (original names),
  plus ``row`` and ``problem`` (and ``file`` when there were several inputs), in the input's
  own format — CSV for CSV logs, Parquet otherwise — ready to fix and feed back.

    >>> writer = RowsWriter(Path("rows.parquet")); writer.close()
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from plabdata.errors import PlabdataError
from plabdata.jobs._outcomes import EVENT_PROBLEMS, EventOutcome
from plabdata.jobs._outputs import OUTPUT_KEY, REJECTS_MARK, ROWS_MARK

if TYPE_CHECKING:
    from plabdata.events._read import RawChunk
    from plabdata.events._upload import Item

__all__ = ["ROWS_SCHEMA", "STATUSES", "BackfillReport", "RejectsWriter", "RowsWriter", "read_rows"]

#: Report statuses, in the order summaries show them.
STATUSES = tuple(EventOutcome)

ROWS_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("row", pa.int64()),
        ("timestamp", pa.timestamp("ms", "UTC")),
        ("fingerprint", pa.string()),
        ("member_id", pa.string()),
        ("event_source", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("maybe_doubled", pa.bool_()),
    ],
    # The mark that keeps a later backfill from reading this report as a log.
    metadata={OUTPUT_KEY: ROWS_MARK},
)
_FLUSH_ITEMS = 5_000


@dataclass
class BackfillReport:
    """What a backfill did (or, dry, would do) with every input row.

    Attributes:
        dry_run: True when nothing was sent.
        counts: Rows per status: ``sent`` (``would-send`` in a dry run), ``already-done``,
            ``invalid``, ``failed``, ``in-doubt``, ``filtered`` (outside since/until).
        maybe_doubled: Rows re-sent after an in-doubt attempt (``on_in_doubt="retry"``): each
            may have been recorded twice.
        total_rows: Input rows read (the sum of ``counts``).
        inputs: The inputs, in order.
        rows_path: Parquet file of the per-row table (see :meth:`rows`).
        rejects_path: Invalid rows in the input's format with a ``problem`` column, or None.
        events_per_member: ``member_id``, ``events``, ``in_quota_events`` for the rows sent
            (would be sent, in a dry run).
        events_per_source: Events sent (would be sent) per event source, most first.
        quota: ``quota_impact`` rows when quota usage was given or loaded, else None.
        notes: Plain-language remarks (empty inputs, upload-time semantics…).
        elapsed_s: Wall time of the run.
    """

    dry_run: bool
    counts: dict[str, int]
    maybe_doubled: int
    total_rows: int
    inputs: list[str]
    rows_path: Path
    rejects_path: Path | None
    events_per_member: pd.DataFrame
    events_per_source: dict[str, int] = field(default_factory=dict)
    quota: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    _keep: Any = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when no row failed, was invalid or is in doubt."""
        return not any(self.counts.get(s) for s in EVENT_PROBLEMS)

    def rows(self, status: str | list[str] | None = None) -> pd.DataFrame:
        """The per-row table, in input order: ``file``, ``row``, ``timestamp``, ``fingerprint``,
        ``member_id``, ``event_source``, ``status``, ``error``, ``maybe_doubled``.

        Example:
            >>> report.rows("in-doubt")[["row", "fingerprint", "error"]]
        """
        wanted = [status] if isinstance(status, str) else status
        return read_rows(self.rows_path, wanted, self.inputs)

    def rejected(self) -> pd.DataFrame:
        """The rejected rows as written to :attr:`rejects_path` (empty when there are none)."""
        if self.rejects_path is None or not self.rejects_path.exists():
            return pd.DataFrame(columns=["row", "problem"])
        if self.rejects_path.suffix == ".csv":
            return pd.read_csv(self.rejects_path, dtype=str, keep_default_na=False)
        return pd.read_parquet(self.rejects_path)

    def pushed_over_limit(self) -> pd.DataFrame:
        """Members the backfill pushes over their quota (needs :attr:`quota`)."""
        if self.quota is None:
            raise PlabdataError("no quota usage in this report: pass quota= or load_quota=True")
        return self.quota[self.quota["pushed_over_limit"]].reset_index(drop=True)

    def summary(self) -> str:
        """A few plain lines: counts, in-doubt/doubled warnings, where the files are."""
        verb = "would send" if self.dry_run else "sent"
        done = self.counts.get(EventOutcome.WOULD_SEND if self.dry_run else EventOutcome.SENT, 0)
        lines = [f"{self.total_rows:,} rows: {verb} {done:,}"]
        for status in STATUSES[2:]:
            if self.counts.get(status):
                lines[0] += f", {status} {self.counts[status]:,}"
        if self.events_per_source:
            shown = ", ".join(f"{k} {v:,}" for k, v in list(self.events_per_source.items())[:8])
            lines.append(f"by event source: {shown}")
        if doubtful := self.counts.get(EventOutcome.IN_DOUBT):
            lines.append(
                f"{doubtful:,} rows are in doubt (sent, no answer): not re-sent so "
                "nothing counts twice; see rows('in-doubt'), or re-run with on_in_doubt='retry'"
            )
        if self.maybe_doubled:
            lines.append(
                f"{self.maybe_doubled:,} rows were re-sent after an in-doubt attempt "
                "and may be counted twice"
            )
        if self.quota is not None:
            over = int(self.quota["pushed_over_limit"].sum())
            lines.append(f"{over:,} members would be pushed over their quota limit")
        lines.extend(self.notes)
        if self.rejects_path is not None:
            lines.append(f"rejected rows: {self.rejects_path}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _dictionary(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Plain text: Parquet dictionary-encodes it on disk anyway, and readers get strings."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        return array.dictionary_decode()
    return array.cast(pa.string())


class RowsWriter:
    """Streams the per-row table to a Parquet file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Fingerprints are unique and random: dictionary pages and compression only cost time.
        self._writer = pq.ParquetWriter(
            os.fspath(path),
            ROWS_SCHEMA,
            use_dictionary=["file", "member_id", "event_source", "status"],
            compression={
                name: "none" if name == "fingerprint" else "snappy" for name in ROWS_SCHEMA.names
            },
        )
        self._items: list[tuple[Any, ...]] = []

    def write_checked(
        self, checked: pa.Table, rows: np.ndarray | None, status: pa.Array, errors: pa.Array
    ) -> None:
        """Rows of a checked chunk (``rows`` of it, or all) with their status and error."""
        picked = checked if rows is None else checked.take(pa.array(rows))
        if not picked.num_rows:
            return
        doubted = (
            picked.column("was_in_doubt")
            if "was_in_doubt" in picked.column_names
            else pa.array(np.zeros(picked.num_rows, bool))
        )
        table = pa.table(
            {
                "file": _dictionary(picked.column("file")),
                "row": picked.column("row"),
                "timestamp": picked.column("timestamp"),
                "fingerprint": picked.column("fingerprint"),
                "member_id": _dictionary(picked.column("member_id")),
                "event_source": _dictionary(picked.column("event_source")),
                "status": _dictionary(status),
                "error": errors,
                "maybe_doubled": doubted,
            },
            schema=ROWS_SCHEMA,
        )
        self._writer.write_table(table)

    def write_item(self, item: Item, status: str, error: str | None, doubled: bool) -> None:
        """One row that went through a request; buffered, written in batches."""
        self._items.append(
            (
                item.file,
                item.row,
                item.timestamp,
                item.fingerprint,
                item.member_id,
                item.event_source,
                status,
                error,
                doubled and status == EventOutcome.SENT,
            )
        )
        if len(self._items) >= _FLUSH_ITEMS:
            self._flush()

    def _flush(self) -> None:
        if not self._items:
            return
        columns = list(zip(*self._items, strict=True))
        self._items = []
        arrays = [
            pa.array(values, type=f.type) for f, values in zip(ROWS_SCHEMA, columns, strict=True)
        ]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=ROWS_SCHEMA))

    def close(self) -> None:
        self._flush()
        self._writer.close()


def read_rows(
    path: Path, statuses: Sequence[str] | None = None, inputs: Sequence[str] | None = None
) -> pd.DataFrame:
    """The per-row table (optionally only some statuses), in input order, plain dtypes."""
    filters = [("status", "in", list(statuses))] if statuses else None
    table = pq.read_table(path, filters=filters)
    columns = {}
    for name in table.column_names:
        column = (
            table.column(name).combine_chunks()
            if table.num_rows
            else pa.array([], type=ROWS_SCHEMA.field(name).type)
        )
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        columns[name] = column
    frame: pd.DataFrame = pa.table(columns).to_pandas(
        types_mapper=lambda t: pd.StringDtype() if pa.types.is_string(t) else None
    )
    order = {name: i for i, name in enumerate(inputs or [])}
    frame["_input"] = frame["file"].map(order).fillna(len(order)).astype("int64")
    frame = frame.sort_values(["_input", "file", "row"], kind="stable", ignore_index=True)
    return frame.drop(columns="_input").reset_index(drop=True)


class RejectsWriter:
    """Streams rejected rows in the input's format (by the path's suffix: .csv or Parquet)."""

    def __init__(self, path: Path, *, multiple_inputs: bool) -> None:
        self.path = path
        self.multiple_inputs = multiple_inputs
        self.written = 0
        path.unlink(missing_ok=True)  # a stale file from an earlier run would mislead
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    @property
    def is_csv(self) -> bool:
        return self.path.name.lower().endswith(".csv")

    def write(self, raw: RawChunk, rows: np.ndarray, problems: pa.Array | pa.ChunkedArray) -> None:
        if not len(rows):
            return
        picked = raw.table.take(pa.array(rows))
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        if self.multiple_inputs:
            columns["file"] = pa.array(
                np.full(len(rows), raw.source.name, dtype=object), pa.string()
            )
        columns["row"] = pa.array(rows + raw.first_row, pa.int64())
        for name in picked.column_names:
            column = picked.column(name).combine_chunks()
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            if self.is_csv or self.multiple_inputs:
                column = _as_text(column)
            columns[name] = column
        columns["problem"] = problems
        table = pa.table(columns)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._schema = table.schema.with_metadata({OUTPUT_KEY: REJECTS_MARK})
            if self.is_csv:
                self._writer = pacsv.CSVWriter(os.fspath(self.path), table.schema)
            else:
                self._writer = pq.ParquetWriter(os.fspath(self.path), self._schema)
        assert self._schema is not None
        table = _conform(table, self._schema)
        self._writer.write_table(table)
        self.written += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _as_text(column: pa.Array) -> pa.Array:
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_timestamp(column.type):
        return pc.strftime(
            column, format="%Y-%m-%dT%H:%M:%S.%f%z" if column.type.tz else "%Y-%m-%dT%H:%M:%S.%f"
        )
    return column.cast(pa.string())


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Align a later chunk with the first chunk's columns (absent: null; other types: text)."""
    arrays = []
    for wanted in schema:
        if wanted.name in table.column_names:
            column = table.column(wanted.name)
            if column.type != wanted.type:
                column = pc.cast(_as_text(column.combine_chunks()), wanted.type)
        else:
            column = pa.nulls(table.num_rows, wanted.type)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)
