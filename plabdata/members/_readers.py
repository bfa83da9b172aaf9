"""Reading member sheets: every cell of a CSV, XLSX, Parquet file or DataFrame, as text.

I/O only, no validation (that is :mod:`plabdata.members._sheet`): decode CSV bytes (BOMs, UTF-8,
UTF-16, Windows-1252) and sniff the delimiter; read an XLSX sheet with openpyxl, noting which
cells hold formulas (reported, never evaluated); number rows as a spreadsheet shows them
(header = row 1), skipping title rows above the header.

CSV quoting is where a sheet silently goes wrong: one stray ``"`` opens a quoted cell that
swallows the following rows (or the rest of the file) into one member's name. So every CSV
record is checked against the physical lines it came from (see :func:`_quote_doubts`), and a
doubtful one becomes a ``parse_issues`` entry naming its row and its lines, never a guess.

    >>> table = read_table("members.csv", None, lambda header: header.lower() == "email")
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from plabdata.config import Secret
from plabdata.errors import ValidationError

SheetSource = str | os.PathLike[str] | IO[bytes] | pd.DataFrame
_DELIMITERS = (",", ";", "\t", "|")
#: A quoted CSV cell may hold a few line breaks (an address); more lines than this is doubted.
MAX_CELL_LINES = 3
#: No member field is longer than a picture URL (2,048): a cell far beyond it is doubted.
MAX_CELL_CHARS = 4096
#: How a CSV line break looks to the line reader (``io.StringIO(newline="")``).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_EMAIL_LIKE = re.compile(r"[^\s@\"',;|]+@[^\s@\"',;|]+\.[^\s@\"',;|]+")


def missing(value: Any) -> bool:
    """True for None, NA and NaN."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


@dataclass
class Table:
    """A sheet as read: its headers, its cells (one column per header), their row numbers."""

    name: str
    headers: list[str]
    cells: pd.DataFrame  # one object column per header, str | None (or raw objects)
    rows: Any  # numpy array of spreadsheet row numbers
    formulas: dict[str, set[int]] = field(default_factory=dict)
    #: ``(row, column, value, problem)`` for rows that cannot be read as written: more values
    #: than the header has, or (CSV) a doubtful parse. Each excludes its row.
    parse_issues: list[tuple[int, str, str, str]] = field(default_factory=list)
    #: ``(row, column)`` of the cells a doubtful parse may have filled with other rows' text
    #: (passwords included): never shown, never exported as they are.
    doubtful_cells: list[tuple[int, str]] = field(default_factory=list)


def read_table(
    source: SheetSource, sheet: str | None, is_email_header: Callable[[str], bool]
) -> Table:
    """Every cell of a CSV / XLSX / Parquet file or a DataFrame, with its sheet row number.

    Raises:
        ValidationError: the file is missing, empty, binary or corrupt (one clear message).
    """
    if isinstance(source, pd.DataFrame):
        return _from_frame(source, "<DataFrame>")
    is_path = isinstance(source, str | os.PathLike)
    name = str(source) if is_path else str(getattr(source, "name", "<file>"))
    try:
        data = Path(source).read_bytes() if is_path else source.read()  # type: ignore[arg-type,union-attr]
    except OSError as exc:
        raise ValidationError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise ValidationError(f"{name}: the file is empty")
    if data.startswith(b"PK\x03\x04"):
        return _from_xlsx(data, name, sheet, is_email_header)
    if data.startswith(b"PAR1"):
        try:
            return _from_frame(pd.read_parquet(io.BytesIO(data)), name)
        except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
            raise ValidationError(f"{name}: not a readable Parquet file ({exc})") from None
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ValidationError(
            f"{name}: old binary .xls workbooks are not supported; save it as .xlsx or CSV"
        )
    return _from_csv(_decode(data, name), name, is_email_header)


def _decode(data: bytes, name: str) -> str:
    """Decode CSV bytes: BOMs first, then strict UTF-8, then Windows-1252 / Latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        encodings = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ["utf-16"]
    elif len(data) > 3 and data[1] == 0 and data[3] == 0:
        encodings = ["utf-16-le"]
    elif len(data) > 3 and data[0] == 0 and data[2] == 0:
        encodings = ["utf-16-be"]
    else:
        encodings = ["utf-8", "cp1252", "latin-1"]
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text
    raise ValidationError(
        f"{name}: not a readable text file (binary content, or an "
        "encoding other than UTF-8, UTF-16 or Windows-1252)"
    )


def _sniff_delimiter(text: str) -> str:
    """The candidate delimiter that splits one of the first lines into the most fields (the
    header is not always the first line: exports often start with a title row)."""
    head = [line for line in text.splitlines()[:50] if line.strip()][:10] or [""]
    counts = {
        d: max(len(next(csv.reader([line], delimiter=d))) for line in head) for d in _DELIMITERS
    }
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 1 else ","


def _from_csv(text: str, name: str, is_email_header: Callable[[str], bool]) -> Table:
    delimiter = _sniff_delimiter(text)
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines, delimiter=delimiter)
    records: list[list[Any]] = []
    doubts: dict[int, list[tuple[int | None, str]]] = {}
    first = 1  # the physical line the next record starts on
    try:
        for record in reader:
            found = _quote_doubts(record, lines[first - 1 : reader.line_num], first, delimiter)
            if found:
                doubts[len(records)] = found
            records.append(record)
            first = reader.line_num + 1
    except csv.Error as exc:  # e.g. a quoted cell past the csv module's 131,072-character cap
        doubts[len(records)] = [
            (
                None,
                f"{_lines(first, len(lines))} cannot be read as CSV ({exc}): a stray quote? "
                f"the {len(lines) - first + 1:,} line(s) from here on were not read",
            )
        ]
        records.append([])
    table = _from_records(records, name, lambda v: v if v != "" else None, is_email_header, doubts)
    for header in table.headers:  # CSV has no formulas: '=' text is a formula pasted as text
        table.formulas[header] = set()
    return table


def _quote_doubts(
    record: list[str], raw: list[str], first: int, delimiter: str
) -> list[tuple[int | None, str]]:
    """Why one CSV record may not be what its author wrote: ``(cell index or None, problem)``.

    ``raw`` is the physical lines the reader consumed for it, starting on line ``first``. A
    record is doubted when its quotes do not balance or are malformed (a stray ``"``), when a
    cell spans more than :data:`MAX_CELL_LINES` lines, holds what looks like another row's
    email on a later line, or is longer than :data:`MAX_CELL_CHARS`, and when the lines it
    took disagree with the line breaks its cells hold (the file's line count and the parse
    disagree).
    """
    if len(raw) == 1 and '"' not in raw[0] and len(raw[0]) <= MAX_CELL_CHARS:
        return []  # the common case: one short line, nothing quoted
    where = _lines(first, first + len(raw) - 1)
    found: list[tuple[int | None, str]] = []
    for index, cell in enumerate(record):
        if len(cell) > MAX_CELL_CHARS:
            found.append(
                (
                    index,
                    f"a cell of {len(cell):,} characters ({where}; more than "
                    f"{MAX_CELL_CHARS:,}): a stray quote may have joined rows into it",
                )
            )
            continue
        cell_lines = _LINE_BREAK.split(cell)
        if len(cell_lines) > MAX_CELL_LINES:
            found.append(
                (
                    index,
                    f"a quoted cell runs over {where} (more than {MAX_CELL_LINES} lines): a "
                    "stray quote may have joined the rows below into it",
                )
            )
        elif any(_EMAIL_LIKE.search(line) for line in cell_lines[1:]):
            found.append(
                (
                    index,
                    f"a quoted cell over {where} holds another email on a later line: a "
                    "stray quote may have joined the rows below into it",
                )
            )
    text = "".join(raw)
    if '"' in text and not found:
        # The parsed cells may have lost the quote: find it in the line as written.
        pieces = raw[0].split(delimiter)
        quoted = next((i for i, c in enumerate(pieces) if '"' in c), None)
        if text.count('"') % 2:
            found.append((quoted, f'unbalanced quotes on {where}: a stray " character?'))
        else:
            try:
                list(csv.reader(io.StringIO(text, newline=""), strict=True))
            except csv.Error as exc:
                found.append((quoted, f'malformed quotes on {where} ({exc}): a stray "?'))
    breaks = sum(len(_LINE_BREAK.findall(c)) for c in record)
    if not found and len(raw) != breaks + 1:
        found.append(
            (
                None,
                f"the record on {where} holds {breaks} line break(s) in its cells: the file's "
                "lines and the CSV parse disagree",
            )
        )
    return found


def _lines(first: int, last: int) -> str:
    return f"line {first}" if last <= first else f"lines {first}–{last}"


def _from_xlsx(
    data: bytes, name: str, sheet: str | None, is_email_header: Callable[[str], bool]
) -> Table:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # zipfile / lxml / openpyxl each raise their own
        raise ValidationError(f"{name}: not a readable XLSX workbook ({exc})") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ValidationError(
                f"{name}: no sheet named {sheet!r} (sheets: {', '.join(book.sheetnames)})"
            )
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        ws.reset_dimensions()  # some writers store a wrong <dimension>; read what is there
        records: list[list[Any]] = []
        formula_cells: list[tuple[int, int]] = []
        for number, cells in enumerate(ws.iter_rows(min_row=1), start=1):
            record = []
            for col, cell in enumerate(cells):
                if getattr(cell, "data_type", None) == "f":
                    formula_cells.append((number, col))
                record.append(cell.value)
            records.append(record)
    finally:
        book.close()
    table = _from_records(
        records, f"{name}" + (f" [{sheet}]" if sheet else ""), _cell_text, is_email_header
    )
    for number, col in formula_cells:
        if col < len(table.headers):
            table.formulas.setdefault(table.headers[col], set()).add(number)
    for header in table.headers:
        table.formulas.setdefault(header, set())
    return table


def _cell_text(value: Any) -> str | None:
    """An XLSX cell as the text a person sees (1.0 → '1', TRUE → 'true')."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    text = str(value)
    return text if text != "" else None


def _from_records(
    records: list[list[Any]],
    name: str,
    convert: Any,
    is_email_header: Callable[[str], bool],
    doubts: dict[int, list[tuple[int | None, str]]] | None = None,
) -> Table:
    """The header is the first row naming an email column among the first rows with content
    (title rows above it are skipped), else the first row with content.

    ``doubts`` (CSV only) holds, per record index, why its parse is doubtful: a doubtful
    header refuses the file; a doubtful data row becomes a parse issue that excludes it.
    """
    doubts = doubts or {}
    filled = list(
        itertools.islice(
            (i for i, r in enumerate(records) if any(v not in (None, "") for v in r)), 10
        )
    )
    if not filled:
        raise ValidationError(f"{name}: the file is empty")
    start = next(
        (i for i in filled if any(is_email_header(v) for v in records[i] if isinstance(v, str))),
        filled[0],
    )
    if start in doubts:
        raise ValidationError(
            f"{name}: the header row (row {start + 1}) cannot be trusted: {doubts[start][0][1]}"
        )
    header_cells = [convert(v) for v in records[start]]
    keep = [i for i, h in enumerate(header_cells) if h is not None and str(h).strip()]
    headers = [str(header_cells[i]).strip() for i in keep]
    names = dict(zip(keep, _dedupe(headers), strict=True))
    width = len(header_cells)
    body = records[start + 1 :]
    numbers = list(range(start + 2, start + 2 + len(body)))
    issues: list[tuple[int, str, str, str]] = []
    doubtful: list[tuple[int, str]] = []
    for index, (number, record) in enumerate(zip(numbers, body, strict=True), start=start + 1):
        for cell, problem in doubts.get(index, ()):
            column = names.get(cell, "") if cell is not None else ""
            # No value: a swallowed cell may hold other rows' passwords.
            issues.append((number, column, "", problem))
            doubtful += (
                [(number, h) for h in names.values()] if cell is None else [(number, column)]
            )
        extra = [v for v in record[width:] if v not in (None, "")]
        if extra:
            issues.append(
                (
                    number,
                    "",
                    "",
                    f"row has {width + len(extra)} values "
                    f"but the header has {len(keep)} columns (a stray delimiter?)",
                )
            )
    columns = {h: [convert(r[i]) if i < len(r) else None for r in body] for i, h in names.items()}
    cells = pd.DataFrame(columns, dtype=object)
    return Table(
        name,
        list(columns),
        cells,
        np.asarray(numbers, dtype=np.int64),
        parse_issues=issues,
        doubtful_cells=[(r, c) for r, c in doubtful if c],
    )


def _from_frame(frame: pd.DataFrame, name: str) -> Table:
    frame = frame.reset_index(drop=True)
    if (
        "metadata" in frame.columns
        and frame["metadata"].map(lambda v: isinstance(v, dict) or v is None).all()
    ):
        flat = pd.DataFrame([v or {} for v in frame["metadata"]], index=frame.index)
        flat.columns = [f"metadata.{k}" for k in flat.columns]
        frame = pd.concat([frame.drop(columns="metadata"), flat], axis=1)
    if frame.columns.empty:
        raise ValidationError(f"{name}: the table has no columns")
    numbers: Any = np.arange(2, len(frame) + 2, dtype=np.int64)
    if "row" in frame.columns:  # already a sheet's rows: keep the numbers people saw
        given = pd.to_numeric(frame["row"], errors="coerce")
        if given.notna().all() and given.is_unique:
            numbers = given.astype("int64").to_numpy()
        frame = frame.drop(columns="row")
    cells = pd.DataFrame(
        {str(c): [_frame_cell(v) for v in frame[c]] for c in frame.columns}, dtype=object
    )
    table = Table(name, list(cells.columns), cells, numbers)
    for header in table.headers:
        table.formulas[header] = set()
    return table


def _frame_cell(value: Any) -> Any:
    if missing(value):
        return None
    if isinstance(value, Secret | dict | list | tuple):
        return value.reveal() if isinstance(value, Secret) else value
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, str):
        return value if value != "" else None
    return _cell_text(value.item() if hasattr(value, "item") else value)


def _dedupe(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for h in headers:
        seen[h] = seen.get(h, 0) + 1
        out.append(h if seen[h] == 1 else f"{h} ({seen[h]})")
    return out
