"""Reading event logs: CSV, Parquet (a file, a folder or a glob) or a DataFrame, streamed.

Files are read in bounded chunks through pyarrow (``pyarrow.csv.open_csv``,
``ParquetFile.iter_batches``), and only the recognised columns are read, so memory stays flat
whatever the file size. CSV columns are read as text (types are parsed by the validator), so
a stray value deep in a file never breaks type inference half-way through.

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
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from plabdata.errors import ValidationError

__all__ = ["CANONICAL_COLUMNS", "EventSource", "read_events"]

#: The columns the backfill understands, in output order.
CANONICAL_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "member_id",
    "email",
    "event_source",
    "country_code",
    "subdivision_code",
    "is_in_quota",
)

# Normalised header names recognised for each canonical column (first match wins).
_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp",
        "time",
        "ts",
        "event_time",
        "event_timestamp",
        "datetime",
        "occurred_at",
        "created_at",
        "date",
    ),
    "member_id": ("member_id", "memberid", "member", "pluginlab_member_id"),
    "email": ("email", "member_email", "user_email", "e_mail", "email_address", "mail"),
    "event_source": ("event_source", "eventsource", "source"),
    "country_code": ("country_code", "countrycode", "country", "country_iso"),
    "subdivision_code": (
        "subdivision_code",
        "subdivisioncode",
        "subdivision",
        "region_code",
        "region",
        "state",
    ),
    "is_in_quota": ("is_in_quota", "isinquota", "in_quota", "counts_toward_quota"),
}

Format = Literal["csv", "parquet", "frame"]
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_FIRST_ROW = 2  # see "Row numbers" above
_DICT_TEXT = pa.dictionary(pa.int32(), pa.string())
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


@dataclass(frozen=True)
class RawChunk:
    """A bounded slice of one input: its recognised columns as read, with row numbers."""

    source: EventSource
    first_row: int
    table: pa.Table
    mapping: dict[str, str]  # canonical name -> column name in the input

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
    path = Path(text)
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and _format_of(p, sniff=False) is not None
        )
        if not files:
            raise ValidationError(f"{text}: no .csv or .parquet files in this folder")
        return [EventSource(str(p), _format_or_sniff(p), p) for p in files]
    if glob.has_magic(text):
        matches = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        if not matches:
            raise ValidationError(f"{text}: no files match")
        return [EventSource(str(p), _format_or_sniff(p), p) for p in matches]
    if not path.exists():
        raise ValidationError(f"{text}: no such file")
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


def _normalise_name(name: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", snake.lower()).strip("_")


def map_columns(names: Sequence[str], columns: Mapping[str, str] | None = None) -> dict[str, str]:
    """Which input column holds each canonical column.

    Args:
        names: The input's column names.
        columns: Explicit choices, either ``{canonical: input_name}`` (``{"email":
            "user_mail"}``) or pandas-rename style ``{input_name: canonical}``.

    Returns:
        ``{canonical: input_name}`` for the canonical columns found.

    Raises:
        ValidationError: An explicitly named column is not in the input.

    Example:
        >>> map_columns(["Time", "userEmail", "Country"], {"email": "userEmail"})
        {'email': 'userEmail', 'timestamp': 'Time', 'country_code': 'Country'}
    """
    mapping: dict[str, str] = {}
    for key, value in (columns or {}).items():
        canonical, name = (key, value) if key in _ALIASES else (value, key)
        if canonical not in _ALIASES:
            raise ValidationError(
                f"columns={{{key!r}: {value!r}}}: neither is one of {', '.join(CANONICAL_COLUMNS)}"
            )
        if name not in names:
            raise ValidationError(
                f"column {name!r} (for {canonical}) is not in the input; "
                f"its columns are: {', '.join(map(str, names))}"
            )
        mapping[canonical] = name
    taken = set(mapping.values())
    normalised = {name: _normalise_name(str(name)) for name in names}
    for canonical, aliases in _ALIASES.items():
        if canonical in mapping:
            continue
        for alias in aliases:
            match = next((n for n in names if normalised[n] == alias and n not in taken), None)
            if match is not None:
                mapping[canonical] = match
                taken.add(match)
                break
    return mapping


def input_columns(src: EventSource) -> list[str] | None:
    """The input's column names, or None for an empty file (no header at all).

    Raises:
        ValidationError: The file cannot be read as its format (corrupt Parquet, binary CSV).
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
        reader = pacsv.open_csv(src.path, read_options=pacsv.ReadOptions(block_size=1 << 20))
        names = list(reader.schema.names)
        reader.close()
        return names
    except (pa.ArrowInvalid, OSError) as exc:
        if "Empty CSV file" in str(exc):
            return None
        raise ValidationError(f"{src.name}: not a readable {src.format} file: {exc}") from exc


def count_rows(src: EventSource) -> int | None:
    """Records in the input: Parquet metadata, a fast newline count for CSV, len for frames.

    The CSV count is exact unless quoted fields span lines; compressed CSV gives None.

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
        if not src.path.name.lower().endswith((".csv", ".tsv")):
            return None
        lines, last = 0, b"\n"
        with open(src.path, "rb") as handle:
            while block := handle.read(1 << 24):
                lines += block.count(b"\n")
                last = block[-1:]
        if last != b"\n":
            lines += 1
        return max(lines - 1, 0)
    except (pa.ArrowInvalid, OSError):
        return None


# -------------------------------------------------------------------------- streaming


def iter_raw_chunks(
    src: EventSource, mapping: dict[str, str], *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[RawChunk]:
    """The recognised columns of one input, ``chunk_rows`` records (at most) at a time.

    Raises:
        ValidationError: The file turns out unreadable part-way (rows before it were yielded).
    """
    wanted = list(dict.fromkeys(mapping.values()))
    dense = frozenset(name for key, name in mapping.items() if key == "timestamp")
    first = _FIRST_ROW
    try:
        for batch in _batches(src, wanted, chunk_rows, dense):
            for start in range(0, batch.num_rows, chunk_rows):
                piece = batch.slice(start, chunk_rows)
                yield RawChunk(src, first, pa.Table.from_batches([piece]), mapping)
                first += piece.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(
            f"{src.name}: unreadable from row {first} on ({type(exc).__name__}: {exc}); "
            f"rows before it were processed"
        ) from exc


def _batches(
    src: EventSource, wanted: list[str], chunk_rows: int, dense: frozenset[str] = frozenset()
) -> Iterator[pa.RecordBatch]:
    """Record batches of the wanted columns; ``dense`` columns (timestamps) stay plain text."""
    if src.format == "frame":
        assert src.frame is not None
        frame = src.frame[wanted] if wanted else pd.DataFrame(index=src.frame.index)
        for start in range(0, len(frame), chunk_rows):
            piece = frame.iloc[start : start + chunk_rows]
            table = pa.Table.from_pandas(piece, preserve_index=False)
            if not wanted:
                table = pa.table({"__rows__": pa.nulls(len(piece))})
            yield from table.to_batches()
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
            if name not in dense and pa.types.is_string(schema.field(name).type)
        ]
        # pre_buffer=False: read column chunks as batches need them, not whole row groups ahead.
        parquet = pq.ParquetFile(src.path, read_dictionary=texts, pre_buffer=False)
        yield from parquet.iter_batches(batch_size=chunk_rows, columns=wanted or schema.names[:1])
        return
    header = input_columns(src)
    if header is None:
        return
    include = wanted or header[:1]
    reader = pacsv.open_csv(
        src.path,
        read_options=pacsv.ReadOptions(block_size=max(1 << 20, min(chunk_rows * 96, 1 << 26))),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() if name in dense else _DICT_TEXT for name in include},
            include_columns=include,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
        ),
    )
    try:
        yield from reader
    finally:
        reader.close()


def _strings(kind: pa.DataType) -> pd.StringDtype | None:
    return pd.StringDtype() if pa.types.is_string(kind) else None


def read_events(
    source: object,
    *,
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """Stream event logs as DataFrames of at most ``chunk_rows`` rows, values as in the input.

    Each chunk has ``file`` and ``row`` (see "Row numbers" in the module docs), then the
    recognised columns present, named canonically. Values are not validated here (see
    :func:`plabdata.validate_events`).

    Args:
        source: A CSV or Parquet path, a folder of them, a glob, a list of those, or a DataFrame.
        columns: Column choices (``{"email": "user_mail"}``); see :func:`map_columns`.
        source_name: The event source of rows whose log gives none (fills blanks in
            ``event_source``, or the whole column when the log has none).
        chunk_rows: Records per chunk; memory is bounded by it, not by the file size.

    Raises:
        ValidationError: A file is unreadable or a named column is missing.

    Example:
        >>> chunks = read_events("logs/*.parquet", columns={"email": "user"}, source_name="WEB_UI")
        >>> sum(len(c) for c in chunks)
    """
    for src in resolve_sources(source):
        names = input_columns(src)
        if names is None:
            continue
        mapping = map_columns(names, columns)
        for chunk in iter_raw_chunks(src, mapping, chunk_rows=chunk_rows):
            out = {
                "file": pd.Series([src.name] * chunk.num_rows, dtype="string"),
                "row": pd.Series(range(chunk.first_row, chunk.first_row + chunk.num_rows)),
            }
            for canonical in CANONICAL_COLUMNS:
                column = chunk.column(canonical)
                if canonical == "event_source" and column is None and source_name is not None:
                    out[canonical] = pd.Series([source_name] * chunk.num_rows, dtype="string")
                elif column is not None:
                    array = column.combine_chunks()
                    if pa.types.is_dictionary(array.type):
                        array = array.dictionary_decode()
                    out[canonical] = array.to_pandas(types_mapper=_strings).reset_index(drop=True)
            frame = pd.DataFrame(out)
            if source_name is not None and "event_source" in frame:
                frame["event_source"] = frame["event_source"].fillna(source_name)
            yield frame
