"""Reading event logs: CSV, Parquet (a file, a folder or a glob) or a DataFrame, streamed.

Files are read in bounded chunks through pyarrow (``pyarrow.csv.open_csv``,
``ParquetFile.iter_batches``), and only the recognised columns are read, so memory stays flat
whatever the file size. CSV files are read in their sniffed encoding and delimiter, as
bytes (:mod:`._csv`), so a stray value deep in a file never breaks type inference and a byte
that is not text rejects its row, not the file; Parquet and DataFrame column types are
checked and converted by :mod:`._columns`. :func:`check_input` runs the whole-input checks
(types, then the one timestamp reading of :mod:`._timestamps`) before any row is used.

**Row numbers** are spreadsheet-style for every input: the header is row 1, so record ``i``
(0-based) is row ``i + 2``. For a CSV file that is the line number a text editor shows (as
long as no quoted field spans lines); for Parquet and DataFrames it is the same numbering, so
a log converted between formats keeps its row numbers (record ``i`` is ``df.iloc[i]``).

Recognised columns (names are matched case- and separator-insensitively, camelCase too;
``columns=`` maps anything else): ``timestamp``, ``member_id``, ``email``, ``event_source``,
``country_code``, ``subdivision_code``, ``is_in_quota``.

    >>> for chunk in read_events("data/web_ui_events.csv"):
    ...     chunk.groupby("event_source").size()
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from plabdata.errors import ValidationError
from plabdata.events import _csv
from plabdata.events._columns import (
    CANONICAL_COLUMNS,
    check_types,
    frame_column,
    map_columns,
    normalise,
)
from plabdata.events._datetimes import TimestampReading, parse_timestamps
from plabdata.events._timestamps import decide_reading
from plabdata.jobs._outputs import own_output, skip_own_outputs
from plabdata.tables._text import TextDialect

__all__ = ["CANONICAL_COLUMNS", "EventSource", "map_columns", "read_events"]

Format = Literal["csv", "parquet", "frame"]
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_FIRST_ROW = 2  # see "Row numbers" above
DEFAULT_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class EventSource:
    """One input: a file (CSV or Parquet) or an in-memory DataFrame.

    Attributes:
        name: What reports show in their ``file`` column (the path as given, or ``<frame>``).
        format: ``"csv"``, ``"parquet"`` or ``"frame"``.
        path: The file, or None for a DataFrame.
    """

    name: str
    format: Format
    path: Path | None = None
    frame: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return f"EventSource({self.name!r}, {self.format})"

    @cached_property
    def dialect(self) -> TextDialect:
        """A CSV file's encoding and delimiter, sniffed once (see :mod:`._csv`).

        Raises:
            ValidationError: The file is not text (binary, a workbook, an archive).
        """
        assert self.path is not None
        return _csv.sniff(self.path, self.name)

    @cached_property
    def csv_header(self) -> tuple[str, ...]:
        """A CSV file's column names, read once (each open parses a first block)."""
        assert self.path is not None
        return _csv.header(self.path, self.dialect)


@dataclass(frozen=True)
class RawChunk:
    """A bounded slice of one input: its recognised columns as read, with row numbers.

    Text is decoded (``table`` never holds bytes); ``unreadable`` marks, per canonical
    column, the rows whose bytes were not text (shown with ``\\x..`` escapes).
    ``timestamps`` is the input's timestamp reading (None without a timestamp column).
    """

    source: EventSource
    first_row: int
    table: pa.Table
    mapping: dict[str, str]  # canonical name -> column name in the input
    timestamps: TimestampReading | None = None
    unreadable: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)

    def column(self, canonical: str) -> pa.ChunkedArray | None:
        name = self.mapping.get(canonical)
        return None if name is None else self.table.column(name)


# -------------------------------------------------------------------------- inputs


def resolve_sources(source: object) -> list[EventSource]:
    """The inputs named by ``source``: a DataFrame, a path, a folder, a glob, or a list of those.

    Raises:
        ValidationError: Nothing matches, or a path does not exist.
    """
    if isinstance(source, pd.DataFrame):
        return [EventSource("<frame>", "frame", frame=source)]
    if isinstance(source, pa.Table):
        return [EventSource("<table>", "frame", frame=source.to_pandas())]
    if isinstance(source, str | os.PathLike):
        return _resolve_path(os.fspath(source))
    if isinstance(source, Sequence):
        found: list[EventSource] = []
        for item in source:
            found.extend(resolve_sources(item))
        if not found:
            raise ValidationError("no event logs given")
        return found
    raise TypeError(f"cannot read events from {type(source).__name__}")


def _resolve_path(text: str) -> list[EventSource]:
    # Folders and globs skip plabdata's own outputs (journals and their sidecars, per-row
    # reports, rejects), saying which; named explicitly, only rejects are read (fixed rows
    # fed back), a journal or a report is refused.
    if not text.strip():  # Path("") is ".": an unset $LOG would read the working directory
        raise ValidationError(
            "an empty path was given as a log (an unset variable?): name a file, folder or glob"
        )
    path = Path(text)
    if path.is_dir():
        listed = sorted(
            p for p in path.iterdir() if p.is_file() and _format_of(p, sniff=False) is not None
        )
        files = skip_own_outputs(listed)
        if not files:
            left = " (only plabdata's own outputs)" if listed else ""
            raise ValidationError(f"{text}: no .csv or .parquet files in this folder{left}")
        return [EventSource(str(p), _format_or_sniff(p), p) for p in files]
    if glob.has_magic(text):
        found = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        matches = skip_own_outputs(found)
        if not matches:
            left = " but plabdata's own outputs" if found else ""
            raise ValidationError(f"{text}: no files match{left}")
        return [EventSource(str(p), _format_or_sniff(p), p) for p in matches]
    if not path.exists():
        raise ValidationError(f"{text}: no such file")
    own = own_output(path) if path.is_file() else None
    if own is not None and own.kind != "rejects":
        raise ValidationError(f"{text} is {own.description}, not a log: name the log files")
    return [EventSource(text, _format_or_sniff(path), path)]


def _format_of(path: Path, *, sniff: bool) -> Format | None:
    name = path.name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if sniff:
        with open(path, "rb") as handle:
            return "parquet" if handle.read(4) == b"PAR1" else "csv"
    return None


def _format_or_sniff(path: Path) -> Format:
    found = _format_of(path, sniff=True)
    assert found is not None
    return found


# -------------------------------------------------------------------------- columns


def input_columns(src: EventSource) -> list[str] | None:
    """The input's column names, or None for an empty file (no header at all).

    Raises:
        ValidationError: The file cannot be read as its format (corrupt Parquet, a CSV
            that is not text).
    """
    if src.format == "frame":
        assert src.frame is not None
        return [str(c) for c in src.frame.columns]
    assert src.path is not None
    if src.path.stat().st_size == 0:
        return None
    try:
        if src.format == "parquet":
            return list(pq.ParquetFile(src.path).schema_arrow.names)
        return list(src.csv_header)
    except (pa.ArrowInvalid, OSError, UnicodeError) as exc:
        if "Empty CSV file" in str(exc):
            return None
        raise ValidationError(f"{src.name}: not a readable {src.format} file: {exc}") from exc


def input_types(src: EventSource, mapping: Mapping[str, str]) -> dict[str, pa.DataType]:
    """The Arrow type of each mapped input column (CSV: bytes, decoded while reading).

    Raises:
        ValidationError: A DataFrame column holds lists or other containers.
    """
    wanted = list(dict.fromkeys(mapping.values()))
    if src.format == "parquet":
        assert src.path is not None
        schema = pq.ParquetFile(src.path).schema_arrow
        return {name: schema.field(name).type for name in wanted}
    if src.format == "frame":
        assert src.frame is not None
        # Object columns infer their type from every value: check the whole column once
        # here, so a list on the last row cannot stop a run half-way through.
        return {name: frame_column(src.frame[name], src.name, name).type for name in wanted}
    return {name: pa.binary() for name in wanted}


def check_input(
    src: EventSource,
    mapping: dict[str, str],
    timestamp_format: str | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> TimestampReading | None:
    """Whole-input checks before any row is used: column types, then the timestamp reading.

    Returns:
        The input's :class:`TimestampReading` (None without a timestamp column); pass it to
        :func:`iter_raw_chunks`.

    Raises:
        ValidationError: A column type that cannot be read, or a timestamp column whose
            date order is ambiguous or inconsistent.

    Example:
        >>> reading = check_input(src, mapping, "day-first")
        >>> chunks = iter_raw_chunks(src, mapping, timestamps=reading)
    """
    types = input_types(src, mapping)
    check_types(src.name, mapping, types)
    column = mapping.get("timestamp")
    if column is None:
        return None
    return _decide(src, column, types[column], timestamp_format, chunk_rows)


def decide_timestamps(
    src: EventSource,
    mapping: dict[str, str],
    timestamp_format: str | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> TimestampReading | None:
    """How the input's timestamp column is read, for all its rows (see the module docs).

    Native timestamp columns cost nothing; text costs one chunk of that column, and the
    whole column (that column only) when its first rows hold day/month dates and no
    ``timestamp_format`` says their order.

    Raises:
        ValidationError: Day/month dates whose order is ambiguous or inconsistent.

    Example:
        >>> decide_timestamps(resolve_sources("eu.csv")[0], {"timestamp": "Date"}).kind
        'day-first'
    """
    column = mapping.get("timestamp")
    if column is None:
        return None
    kind = input_types(src, {"timestamp": column})[column]
    return _decide(src, column, kind, timestamp_format, chunk_rows)


def _decide(
    src: EventSource, column: str, kind: pa.DataType, timestamp_format: str | None, rows: int
) -> TimestampReading:
    chunks = lambda: _column_chunks(src, column, rows)  # noqa: E731 - read lazily, maybe twice
    return decide_reading(src.name, column, kind, timestamp_format, chunks)


def _column_chunks(
    src: EventSource, column: str, chunk_rows: int
) -> Iterator[tuple[int, pa.Array]]:
    """(first row number, values) of one column, text decoded, chunk by chunk."""
    first = _FIRST_ROW
    for batch in _batches(src, [column], chunk_rows, frozenset([column])):
        for start in range(0, batch.num_rows, chunk_rows):  # CSV blocks hold more rows
            array, _ = normalise("timestamp", batch.column(0).slice(start, chunk_rows))
            yield first, array
            first += len(array)


def count_rows(src: EventSource) -> int | None:
    """Records in the input: Parquet metadata, a fast newline count for CSV, len for frames.

    The CSV count is exact unless quoted fields span lines; compressed or UTF-16 CSV gives
    None.

    Example:
        >>> count_rows(EventSource("logs.csv", "csv", Path("logs.csv")))
        30000
    """
    if src.format == "frame":
        assert src.frame is not None
        return len(src.frame)
    assert src.path is not None
    try:
        if src.format == "parquet":
            return int(pq.ParquetFile(src.path).metadata.num_rows)
        return _csv.count_lines(src.path, src.dialect)
    except (pa.ArrowInvalid, OSError, ValidationError):
        return None


# -------------------------------------------------------------------------- streaming


def iter_raw_chunks(
    src: EventSource,
    mapping: dict[str, str],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    timestamps: TimestampReading | None = None,
) -> Iterator[RawChunk]:
    """The recognised columns of one input, ``chunk_rows`` records (at most) at a time.

    Args:
        src: The input.
        mapping: ``{canonical: input column}`` (:func:`map_columns`).
        chunk_rows: Records per chunk.
        timestamps: The input's timestamp reading from :func:`check_input` (decided here,
            for the whole input, when not given).

    Raises:
        ValidationError: The file turns out unreadable part-way (rows before it were yielded).
    """
    if timestamps is None and "timestamp" in mapping:
        timestamps = check_input(src, mapping, chunk_rows=chunk_rows)
    wanted = list(dict.fromkeys(mapping.values()))
    dense = frozenset(name for key, name in mapping.items() if key == "timestamp")
    canonical_of = {name: key for key, name in mapping.items()}
    first = _FIRST_ROW
    try:
        for batch in _batches(src, wanted, chunk_rows, dense):
            for start in range(0, batch.num_rows, chunk_rows):
                piece = batch.slice(start, chunk_rows)
                columns, unreadable = {}, {}
                for name, array in zip(piece.schema.names, piece.columns, strict=True):
                    canonical = canonical_of.get(name)
                    if canonical is None:  # the placeholder column of a mapping-less read
                        columns[name] = array
                        continue
                    columns[name], bad = normalise(canonical, array)
                    if bad is not None:
                        for key, column in mapping.items():
                            if column == name:
                                unreadable[key] = bad
                table = pa.table(columns)
                yield RawChunk(src, first, table, mapping, timestamps, unreadable)
                first += piece.num_rows
    except (pa.ArrowInvalid, OSError, UnicodeError) as exc:
        raise ValidationError(
            f"{src.name}: unreadable from row {first} on ({type(exc).__name__}: {exc}); "
            f"rows before it were processed"
        ) from exc
    except ValidationError as exc:  # a DataFrame chunk of another type than its first rows
        raise ValidationError(f"{src.name}: from row {first} on, {exc}") from exc


def _batches(
    src: EventSource, wanted: list[str], chunk_rows: int, dense: frozenset[str] = frozenset()
) -> Iterator[pa.RecordBatch]:
    """Record batches of the wanted columns; ``dense`` columns (timestamps) stay plain text."""
    if src.format == "frame":
        assert src.frame is not None
        frame = src.frame
        for start in range(0, len(frame), chunk_rows):
            piece = frame.iloc[start : start + chunk_rows]
            if not wanted:
                yield pa.record_batch({"__rows__": pa.nulls(len(piece))})
                continue
            arrays = [frame_column(piece[name], src.name, name) for name in wanted]
            yield pa.RecordBatch.from_arrays(arrays, names=wanted)
        return
    assert src.path is not None
    if src.path.stat().st_size == 0:
        return
    if src.format == "parquet":
        schema = pq.ParquetFile(src.path).schema_arrow
        # Text columns arrive dictionary-encoded: logs repeat the same few values endlessly.
        texts = [
            name
            for name in wanted
            if name not in dense and _dictionary_friendly(schema.field(name).type)
        ]
        # pre_buffer=False: read column chunks as batches need them, not whole row groups ahead.
        parquet = pq.ParquetFile(src.path, read_dictionary=texts, pre_buffer=False)
        yield from parquet.iter_batches(batch_size=chunk_rows, columns=wanted or schema.names[:1])
        return
    header = input_columns(src)
    if header is None:
        return
    # Bytes, decoded by normalise(): a byte that is not text rejects its row, not the file.
    yield from _csv.batches(src.path, src.dialect, wanted or header[:1], dense, chunk_rows)


def _dictionary_friendly(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_binary(kind))


def _strings(kind: pa.DataType) -> pd.StringDtype | None:
    return pd.StringDtype() if pa.types.is_string(kind) else None


def read_events(
    source: object,
    *,
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    timestamp_format: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """Stream event logs as DataFrames of at most ``chunk_rows`` rows.

    Each chunk has ``file`` and ``row`` (see "Row numbers" in the module docs), then the
    recognised columns present, named canonically: ``timestamp`` as UTC datetimes (read one
    way per input: see the module docs; NaT where blank or unreadable), the others as in
    the input (text decoded). Values are not validated here (see
    :func:`plabdata.validate_events`, which says why a row is unreadable).

    Args:
        source: A CSV or Parquet path, a folder of them, a glob, a list of those, or a DataFrame.
        columns: Column choices (``{"email": "user_mail"}``); see :func:`map_columns`.
        source_name: The event source of rows whose log gives none (fills blanks in
            ``event_source``, or the whole column when the log has none).
        timestamp_format: How text timestamps are written when their first rows do not
            settle it: ``"day-first"``, ``"month-first"``, ``"iso"`` or a strptime pattern
            (``"%d/%m/%Y %H:%M"``). None: decided from the whole column.
        chunk_rows: Records per chunk; memory is bounded by it, not by the file size.

    Raises:
        ValidationError: A file is unreadable, a named column is missing or of a type that
            cannot hold it, or the timestamps' date order is ambiguous (nothing is yielded
            for such an input).

    Example:
        >>> chunks = read_events("logs/*.parquet", columns={"email": "user"}, source_name="WEB_UI")
        >>> sum(len(c) for c in chunks)
    """
    for src in resolve_sources(source):
        names = input_columns(src)
        if names is None:
            continue
        mapping = map_columns(names, columns)
        reading = check_input(src, mapping, timestamp_format, chunk_rows=chunk_rows)
        chunks = iter_raw_chunks(src, mapping, chunk_rows=chunk_rows, timestamps=reading)
        for chunk in chunks:
            out = {
                "file": pd.Series([src.name] * chunk.num_rows, dtype="string"),
                "row": pd.Series(range(chunk.first_row, chunk.first_row + chunk.num_rows)),
            }
            for canonical in CANONICAL_COLUMNS:
                column = chunk.column(canonical)
                if canonical == "event_source" and column is None and source_name is not None:
                    out[canonical] = pd.Series([source_name] * chunk.num_rows, dtype="string")
                elif canonical == "timestamp" and column is not None:
                    assert chunk.timestamps is not None
                    stamps = parse_timestamps(column, chunk.timestamps)[0]
                    out[canonical] = pd.Series(stamps.to_pandas(), dtype="datetime64[ms, UTC]")
                elif column is not None:
                    array = column.combine_chunks()
                    if pa.types.is_dictionary(array.type):
                        array = array.dictionary_decode()
                    if canonical in chunk.unreadable:  # bytes that are not text: not a value
                        array = pc.if_else(pa.array(chunk.unreadable[canonical]), None, array)
                    out[canonical] = array.to_pandas(types_mapper=_strings).reset_index(drop=True)
            frame = pd.DataFrame(out)
            if source_name is not None and "event_source" in frame:
                frame["event_source"] = frame["event_source"].fillna(source_name)
            yield frame
