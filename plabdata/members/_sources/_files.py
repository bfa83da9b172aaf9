"""Reading a platform's user export into :class:`Records`: one column per field path.

An export is NDJSON (Auth0's user export job, Auth0's password-hash export), a JSON document
(Firebase's ``{"users": […]}``, an array of users, Memberstack's ``{"data": […]}``), or CSV
(with a header, or Firebase's header-less one); gzipped or not. Nested objects are flattened
to dotted paths (``user_metadata.prefs.theme``); lists stay lists.

NDJSON is read in blocks of :data:`BLOCK_BYTES`, never whole: each block goes through
pyarrow's JSON reader (C++, ~10x faster than ``json.loads`` per line) and, when that refuses
it — a bad line, a field whose type changes between users, a date-like string pyarrow would
turn into a timestamp — through ``json.loads`` line by line, which reads the same values and
names the bad lines. Either way a user's ``row`` is its line number in the file.

    >>> for records in read_records("users.ndjson", sniff("users.ndjson")):
    ...     records.frame.columns
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from plabdata.errors import ValidationError
from plabdata.members._readers import SheetSource, Table, _decode, read_table

#: NDJSON is parsed this many bytes at a time (bounded memory whatever the file's size).
BLOCK_BYTES = 8 * 1024 * 1024
#: How much of a file :func:`sniff` looks at to recognise it.
SNIFF_BYTES = 256 * 1024

#: ``(row, column, value, problem, severity)``.
Issue = tuple[int | None, str, str, str, str]


@dataclass
class Records:
    """Users as read: ``frame`` has one object column per field path (Python str, bool, int,
    float, list or None), ``rows`` the row number of each user (NDJSON and header-less CSV:
    the line; CSV with a header: the spreadsheet row, header = 1; JSON: the user's position,
    from 1), ``issues`` what could not be read (those users are not in ``frame``)."""

    frame: pd.DataFrame
    rows: np.ndarray
    issues: list[Issue] = field(default_factory=list)
    #: List columns pyarrow read, kept as arrow arrays: turned into Python lists only when a
    #: preset asks for the values (:meth:`values`); flags come from :meth:`list_any`.
    arrow_lists: dict[str, pa.ChunkedArray] = field(default_factory=dict)
    #: Scalar columns pyarrow read (text, booleans, numbers), besides ``frame``: made Python
    #: values only when a preset asks (:meth:`values`, so a field no preset maps costs
    #: nothing), and mapped at C speed where a preset can (:meth:`arrow`).
    arrow_scalars: dict[str, pa.ChunkedArray] = field(default_factory=dict)
    _made: dict[str, pd.Series] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def names(self) -> list[str]:
        """Every field path present in these users."""
        return [*map(str, self.frame.columns), *self.arrow_scalars, *self.arrow_lists]

    def has(self, name: str) -> bool:
        return name in self.frame.columns or name in self.arrow_scalars or name in self.arrow_lists

    def values(self, name: str) -> pd.Series:
        """The values of one field path (None where a user lacks it)."""
        if name in self.arrow_lists:
            items = [_drop_nulls(v) for v in self.arrow_lists[name].to_pylist()]
            return pd.Series(items, dtype=object, index=self.frame.index)
        if name in self.arrow_scalars:
            if name not in self._made:
                made = _python_values(self.arrow_scalars[name])
                self._made[name] = pd.Series(made, dtype=object, index=self.frame.index)
            return self._made[name]
        if name in self.frame.columns:
            return self.frame[name]
        return pd.Series([None] * len(self.rows), dtype=object, index=self.frame.index)

    def arrow(self, name: str) -> pa.ChunkedArray | None:
        """The column as pyarrow read it, when it did (None: use :meth:`values`)."""
        return self.arrow_scalars.get(name)

    def replace(self, name: str, columns: dict[str, list[Any]]) -> None:
        """Put ``columns`` in place of the field ``name`` (a preset that parses a field)."""
        for other in list(self.arrow_scalars):  # every field in frame, in the file's order
            self.frame[other] = self.values(other)
        self.arrow_scalars.clear()
        self._made.clear()
        frame = self.frame.drop(columns=name)
        extra = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})
        extra.index = frame.index
        self.frame = pd.concat([frame, extra], axis=1)

    def list_any(self, name: str, key: str, accept: Callable[[Any], bool]) -> np.ndarray:
        """Per user: does any object of the list at ``name`` have ``accept(object[key])``
        (an ``accept`` with an ``arrow_mask`` method answers for a whole arrow array)."""
        out = np.zeros(len(self.rows), dtype=bool)
        if name in self.arrow_lists:
            array = self.arrow_lists[name].combine_chunks()
            items = pc.list_flatten(array)
            if not pa.types.is_struct(items.type) or items.type.get_field_index(key) < 0:
                return out
            fast = getattr(accept, "arrow_mask", None)
            field_values = items.field(key)
            wanted = fast(field_values) if fast is not None else None
            if wanted is None:
                wanted = np.array([accept(v) for v in field_values.to_pylist()], dtype=bool)
            parents = pc.list_parent_indices(array).to_numpy()
            out[np.unique(parents[wanted])] = True
            return out
        for index, value in enumerate(self.values(name).tolist()):
            if isinstance(value, list):
                out[index] = any(isinstance(v, dict) and accept(v.get(key)) for v in value)
        return out


@dataclass(frozen=True)
class Sniffed:
    """The start of an export file (decompressed), for recognising its format and platform."""

    name: str
    head: bytes
    kind: str  # "ndjson" | "json" | "csv" | "frame"
    gzipped: bool = False


def _name(source: SheetSource) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    if isinstance(source, pd.DataFrame):
        return "<DataFrame>"
    return str(getattr(source, "name", "<file>"))


def _open(source: SheetSource) -> IO[bytes]:
    """The export as a binary stream, decompressed when gzipped (a file object is read
    whole once: :func:`as_rereadable`)."""
    name = _name(source)
    raw: IO[bytes]
    if isinstance(source, str | os.PathLike):
        try:
            opened = open(source, "rb")  # noqa: SIM115 - closed by the caller
        except OSError as exc:
            raise ValidationError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
        raw, magic = opened, opened.peek(2)[:2]
    else:
        reader: Any = source
        data: bytes = reader.getvalue() if isinstance(source, io.BytesIO) else reader.read()
        raw, magic = io.BytesIO(data), data[:2]
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def as_rereadable(source: SheetSource) -> SheetSource:
    """A path or DataFrame as it is; a file object read once into memory (it is read twice:
    to recognise it, then to read it)."""
    if isinstance(source, str | os.PathLike | pd.DataFrame | io.BytesIO):
        return source
    return io.BytesIO(source.read())


def sniff(source: SheetSource) -> Sniffed:
    """The start of the export and its format (NDJSON, a JSON document, CSV).

    Raises:
        ValidationError: the file is missing, empty, or not readable as text.
    """
    name = _name(source)
    if isinstance(source, pd.DataFrame):
        return Sniffed(name, b"", "frame")
    stream = _open(source)
    try:
        head = stream.read(SNIFF_BYTES)
        gzipped = isinstance(stream, gzip.GzipFile)
    except (OSError, EOFError) as exc:
        raise ValidationError(f"{name}: not a readable export ({exc})") from None
    finally:
        stream.close()
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        raise ValidationError(f"{name}: the file is empty")
    if text[:1] == b"[":
        return Sniffed(name, head, "json", gzipped)
    if text[:1] == b"{":
        first = text.split(b"\n", 1)[0]
        try:
            value = json.loads(first)
        except ValueError:
            return Sniffed(name, head, "json", gzipped)  # one document over many lines
        is_document = isinstance(value, dict) and any(
            isinstance(value.get(k), list) for k in ("users", "data")
        )
        return Sniffed(name, head, "json" if is_document else "ndjson", gzipped)
    return Sniffed(name, head, "csv", gzipped)


def read_bytes(source: SheetSource) -> bytes:
    """The whole export, decompressed (JSON documents and CSV; NDJSON is streamed)."""
    stream = _open(source)
    try:
        return stream.read()
    except (OSError, EOFError) as exc:
        raise ValidationError(f"{_name(source)}: not a readable export ({exc})") from None
    finally:
        stream.close()


# ---------------------------------------------------------------------------- flattening


def flatten(
    record: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1]}`` → ``{"a.b": 1, "c": [1]}`` (empty objects and nulls
    leave no key, as in pyarrow's reading of the same line)."""
    out = {} if out is None else out
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flatten(value, path + ".", out)
        elif value is not None:
            out[path] = value
    return out


def frame_of(flat: list[dict[str, Any]]) -> pd.DataFrame:
    """Flattened records as a frame of object columns (missing → None)."""
    columns: dict[str, list[Any]] = {}
    for index, record in enumerate(flat):
        for key, value in record.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * len(flat)
            column[index] = value
    return pd.DataFrame(
        {k: pd.Series(v, dtype=object) for k, v in columns.items()}, index=range(len(flat))
    )


def _arrow_records(table: pa.Table, rows: np.ndarray) -> Records | None:
    """Leaf columns of an arrow table, or None when pyarrow read a value otherwise than
    ``json.loads`` would (a date-like string it made a timestamp)."""
    while any(pa.types.is_struct(t) for t in table.schema.types):
        table = table.flatten()
    lists: dict[str, pa.ChunkedArray] = {}
    scalars: dict[str, pa.ChunkedArray] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_null(kind):
            continue
        if (
            pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
        ):
            scalars[name] = column
        elif pa.types.is_list(kind) and not _has_timestamps(kind):
            lists[name] = column
        else:  # timestamps, dates: pyarrow's reading, not the file's text
            return None
    frame = pd.DataFrame(index=range(table.num_rows))
    return Records(frame, rows, arrow_lists=lists, arrow_scalars=scalars)


def _python_values(column: pa.ChunkedArray) -> np.ndarray:
    """An arrow scalar column as Python values (str, bool, int, float; None where null)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        values: np.ndarray = column.to_numpy(zero_copy_only=False)
        if column.null_count:  # pyarrow gives NaN for null text
            values[column.is_null().to_numpy(zero_copy_only=False)] = None
        return values
    return np.array(column.to_pylist(), dtype=object)


def _has_timestamps(kind: pa.DataType) -> bool:
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        return True
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _has_timestamps(kind.value_type)
    if pa.types.is_struct(kind):
        return any(_has_timestamps(kind.field(i).type) for i in range(kind.num_fields))
    return False


def _drop_nulls(value: Any) -> Any:
    """Lists of objects read by pyarrow carry every key of every object (null where absent)."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


# ---------------------------------------------------------------------------- NDJSON


def _parse_block(block: bytes, count: int) -> pa.Table | None:
    """pyarrow's reading of one block of ``count`` whole lines (None when it refuses the block
    or reads another number of rows). Runs in the reader's parse thread: pyarrow parses
    without the GIL."""
    if not block.strip():  # blank lines make pyarrow's row count differ: line by line then
        return None
    try:
        table = pj.read_json(
            io.BytesIO(block), read_options=pj.ReadOptions(block_size=len(block) + 1)
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return table if table.num_rows == count else None


def _ndjson_block(block: bytes, first_line: int, count: int, table: pa.Table | None) -> Records:
    """One block of ``count`` whole lines, the first being line ``first_line`` of the file,
    and pyarrow's reading of it (None: line by line)."""
    if table is not None:
        rows = np.arange(first_line, first_line + count, dtype=np.int64)
        records = _arrow_records(table, rows)
        if records is not None:
            return records
    return _ndjson_lines(block, first_line)


def _ndjson_lines(block: bytes, first_line: int) -> Records:
    flat: list[dict[str, Any]] = []
    rows: list[int] = []
    issues: list[Issue] = []
    for offset, line in enumerate(block.split(b"\n")):
        if not line.strip():
            continue
        number = first_line + offset
        try:
            value = json.loads(line)
        except ValueError as exc:
            issues.append((number, "", "", f"line {number} is not valid JSON ({exc})", "error"))
            continue
        if not isinstance(value, dict):
            issues.append((number, "", "", f"line {number} is not a JSON object", "error"))
            continue
        flat.append(flatten(value))
        rows.append(number)
    return Records(frame_of(flat), np.asarray(rows, dtype=np.int64), issues)


def read_ndjson(source: SheetSource, block_bytes: int = BLOCK_BYTES) -> Iterator[Records]:
    """The users of an NDJSON export, one :class:`Records` per block of lines.

    The next block is parsed in a thread while the caller maps the one before (pyarrow's
    parse holds no GIL): about three blocks are in memory at a time, whatever the file."""
    with ThreadPoolExecutor(1, thread_name_prefix="plabdata-ndjson") as parser:
        pending: tuple[bytes, int, int, Future[pa.Table | None]] | None = None
        for block, line, count in _line_blocks(source, block_bytes):
            ahead = (block, line, count, parser.submit(_parse_block, block, count))
            if pending is not None:
                yield _ndjson_block(*pending[:3], pending[3].result())
            pending = ahead
        if pending is not None:
            yield _ndjson_block(*pending[:3], pending[3].result())


def _line_blocks(source: SheetSource, block_bytes: int) -> Iterator[tuple[bytes, int, int]]:
    """The file in blocks of whole lines of about ``block_bytes``: each block, its first line
    number and its number of lines."""
    stream = _open(source)
    try:
        line, rest = 1, b""
        while True:
            chunk = stream.read(block_bytes)
            data = rest + chunk
            if not chunk:
                if data.strip():
                    yield data, line, data.count(b"\n") + (not data.endswith(b"\n"))
                return
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            block, rest = data[: cut + 1], data[cut + 1 :]
            count = block.count(b"\n")
            yield block, line, count
            line += count
    except (OSError, EOFError) as exc:
        raise ValidationError(f"{_name(source)}: not a readable export ({exc})") from None
    finally:
        stream.close()


# ---------------------------------------------------------------------------- JSON, CSV


def read_json_document(source: SheetSource) -> Records:
    """The users of one JSON document: an array of users, ``{"users": […]}`` (Firebase) or
    ``{"data": […]}`` (Memberstack's Admin API)."""
    name = _name(source)
    text = _decode(read_bytes(source), name)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{name}: not a readable JSON document ({exc})") from None
    users: Any = document
    if isinstance(document, dict):
        key = next((k for k in ("users", "data") if isinstance(document.get(k), list)), None)
        users = document[key] if key else [document]
    if not isinstance(users, list):
        raise ValidationError(f"{name}: the JSON document holds no list of users")
    flat: list[dict[str, Any]] = []
    rows: list[int] = []
    issues: list[Issue] = []
    for number, user in enumerate(users, start=1):
        if isinstance(user, dict):
            flat.append(flatten(user))
            rows.append(number)
        else:
            issues.append((number, "", "", f"user #{number} is not a JSON object", "error"))
    return Records(frame_of(flat), np.asarray(rows, dtype=np.int64), issues)


def read_csv_export(
    source: SheetSource, is_email_header: Callable[[str], bool], *, strip_quote: bool = False
) -> Records:
    """A CSV export with a header row, read as plain sheets are (encodings, delimiters,
    doubtful quotes reported by row). ``strip_quote`` drops the ``'`` Auth0 puts before every
    text cell of its CSV exports (its CSV-injection guard)."""
    data = read_bytes(source)
    table = read_table(io.BytesIO(data), None, is_email_header)
    return _records_of_table(table, strip_quote)


def _records_of_table(table: Table, strip_quote: bool) -> Records:
    frame = table.cells.reset_index(drop=True)
    if strip_quote:
        frame.columns = [c[1:] if c.startswith("'") else c for c in map(str, frame.columns)]
        for name in frame.columns:
            frame[name] = frame[name].map(
                lambda v: v[1:] if isinstance(v, str) and v.startswith("'") else v
            )
    issues: list[Issue] = [(r, c, v, p, "error") for r, c, v, p in table.parse_issues]
    bad = {r for r, *_ in table.parse_issues}
    keep = ~np.isin(table.rows, list(bad))
    frame = frame[keep].reset_index(drop=True)
    return Records(frame, np.asarray(table.rows)[keep], issues)


def read_headerless_csv(source: SheetSource, headers: tuple[str, ...]) -> Records:
    """A CSV without a header row (Firebase's ``auth:export``): columns by position."""
    name = _name(source)
    text = _decode(read_bytes(source), name)
    flat: list[dict[str, Any]] = []
    rows: list[int] = []
    issues: list[Issue] = []
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    first = 1
    try:
        for record in reader:
            number, first = first, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if len(record) < 2:
                issues.append((number, "", "", f"line {number} has one field only", "error"))
                continue
            flat.append({h: v for h, v in zip(headers, record, strict=False) if v.strip()})
            rows.append(number)
    except csv.Error as exc:
        issues.append((first, "", "", f"line {first} cannot be read as CSV ({exc})", "error"))
    return Records(frame_of(flat), np.asarray(rows, dtype=np.int64), issues)


def read_frame(frame: pd.DataFrame) -> Records:
    """A DataFrame given as an export (e.g. already loaded): its columns are the fields."""
    flat = [
        flatten({str(k): (None if _is_na(v) else v) for k, v in rec.items()})
        for rec in frame.to_dict("records")
    ]
    return Records(frame_of(flat), np.arange(2, len(flat) + 2, dtype=np.int64))


def _is_na(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def path_of(source: SheetSource) -> Path | None:
    return Path(source) if isinstance(source, str | os.PathLike) else None
