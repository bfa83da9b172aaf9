"""Reading a log's timestamp column: one reading per column, decided before any row is used.

A date like ``03/04/2024`` is 3 April or March 4 depending on who wrote it; guessing value by
value (as date parsers do) reads ``03/04/2024`` month-first and ``13/04/2024`` day-first in
the same column, and ``since`` / ``until`` then keep the wrong rows. So every input's
timestamp column gets one :class:`TimestampReading`:

- **native**: an Arrow timestamp or date column (Parquet, DataFrames); naive means UTC;
- **epoch**: numbers (or text that is all numbers), in the unit their magnitude shows
  (s, ms, µs, ns), decided on the first rows and held for the whole input;
- **iso**: ISO 8601 text (also ``2024/04/03``, and times with month names like
  ``Oct 5 2026 10:00``, which are unambiguous);
- **day-first** / **month-first**: ``dd/mm/yyyy`` or ``mm/dd/yyyy`` (``/``, ``.`` or ``-``
  separated, two-digit years as 20yy, an optional ``HH:MM[:SS[.fff]]`` time, AM/PM and a
  ``Z`` / ``±HH:MM`` zone); ISO values in such a column are read as ISO;
- **pattern**: an explicit strptime pattern (``"%d/%m/%Y %H:%M"``).

Without ``timestamp_format``, a column whose first rows hold slash or dot dates is scanned
whole (that column only) before anything is sent: a first part above 12 anywhere proves
day-first, a second part above 12 proves month-first; both, or neither, is a whole-input
:class:`~plabdata.errors.ValidationError` asking for the format. ISO and native columns
never pay for that scan.

    >>> decide_reading("eu.csv", "Date", pa.string(), None, lambda: chunks_of_the_column())
    TimestampReading(kind='day-first', why="row 7 has '13/04/2024'", ...)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from plabdata.errors import ValidationError
from plabdata.events._datetimes import NUMBER, TimestampReading, parse_timestamps, text_values

__all__ = [
    "TIMESTAMP_FORMATS",
    "DateOrderEvidence",
    "check_window",
    "decide_reading",
    "first_look",
    "normalise_format",
    "parse_time_bound",
]

#: The named values of ``timestamp_format`` (anything with a ``%`` is a strptime pattern).
TIMESTAMP_FORMATS: tuple[str, ...] = ("day-first", "month-first", "iso")
EpochUnit = Literal["s", "ms", "us", "ns"]
# The date part alone, for deciding the order from few distinct values.
_DATE_PREFIX = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})[/.\-](\d{4}|\d{2})(?:\D|$)")
_PREFIX_CHARS = 11
_EPOCH_LIMITS: tuple[tuple[float, EpochUnit], ...] = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))


# -------------------------------------------------------------------------- the option


def normalise_format(value: str | None) -> str | None:
    """``timestamp_format`` checked: None, ``day-first``, ``month-first``, ``iso`` or a pattern.

    Raises:
        ValidationError: Not one of those, or a pattern strptime cannot use.

    Example:
        >>> normalise_format("Day_First")
        'day-first'
    """
    if value is None:
        return None
    text = value.strip()
    named = text.lower().replace("_", "-").replace(" ", "-")
    if named in TIMESTAMP_FORMATS:
        return named
    if "%" not in text:
        raise ValidationError(
            f"timestamp_format {value!r}: give 'day-first', 'month-first', 'iso' or a "
            "strptime pattern such as '%d/%m/%Y %H:%M'"
        )
    sample = dt.datetime(2024, 4, 3, 10, 5, 6, 7000, tzinfo=dt.UTC)
    try:
        dt.datetime.strptime(sample.strftime(text), text)
    except ValueError as exc:
        raise ValidationError(
            f"timestamp_format {value!r} is not a usable pattern ({exc})"
        ) from None
    return text


def _epoch_unit(values: np.ndarray) -> EpochUnit:
    finite = np.abs(values[np.isfinite(values)])
    peak = float(finite.max()) if finite.size else 0.0
    return next((unit for limit, unit in _EPOCH_LIMITS if peak < limit), "ns")


def epoch_reading(array: pa.Array) -> TimestampReading:
    """The epoch reading of numbers (or numeric text), its unit from their magnitude."""
    if pa.types.is_string(array.type) or pa.types.is_dictionary(array.type):
        array = text_values(array)
    values = np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    unit = _epoch_unit(values)
    return TimestampReading("epoch", unit=unit, why=f"unit from the first {len(values):,} rows")


def first_look(array: pa.Array) -> TimestampReading | None:
    """The reading of a text column from its first rows; None: dates need a whole-column scan.

    Example:
        >>> first_look(pa.array(["2026-10-01T10:00:00Z"])).kind
        'iso'
    """
    text = text_values(array)
    present = pc.drop_null(text)
    if len(present) and pc.all(pc.match_substring_regex(present, NUMBER)).as_py():
        return epoch_reading(present)
    if DateOrderEvidence.matches(present):
        return None
    return TimestampReading("iso", why="from its first rows")


@dataclass
class DateOrderEvidence:
    """What a column's day/month dates prove about their order, gathered chunk by chunk.

    Only the date part's distinct values are examined (a log has few distinct dates), so a
    pass over millions of rows costs a slice and a dictionary encoding per chunk.
    """

    day_first: tuple[int, str] | None = None  # (row, value) proving dd/mm
    month_first: tuple[int, str] | None = None  # (row, value) proving mm/dd
    dates: int = 0
    example: str | None = None  # a day/month date, for messages

    @staticmethod
    def _prefixes(text: pa.Array) -> pa.DictionaryArray:
        head = pc.utf8_slice_codeunits(pc.utf8_ltrim_whitespace(text), 0, _PREFIX_CHARS)
        encoded: pa.DictionaryArray = pc.dictionary_encode(head)
        return encoded

    @classmethod
    def matches(cls, text: pa.Array) -> bool:
        """True when any value is a numeric day/month date."""
        values = cls._prefixes(text).dictionary.to_pylist()
        return any(v is not None and _DATE_PREFIX.match(v) for v in values)

    def add(self, array: pa.Array, first_row: int) -> None:
        """Examine one chunk of the column; ``first_row`` is its first row number."""
        text = text_values(array)
        encoded = self._prefixes(text)
        values = encoded.dictionary.to_pylist()
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        is_date = np.zeros(len(values) + 1, bool)
        for code, value in enumerate(values):
            match = _DATE_PREFIX.match(value) if value is not None else None
            if match is None:
                continue
            a, b = int(match[1]), int(match[3])
            is_date[code] = True
            if self.example is None:
                self.example = str(text[int(np.argmax(codes == code))])
            day_first = 13 <= a <= 31 and 1 <= b <= 12
            month_first = 13 <= b <= 31 and 1 <= a <= 12
            if not (day_first or month_first):
                continue
            row = first_row + int(np.argmax(codes == code))
            shown = str(text[row - first_row])
            if day_first and (self.day_first is None or row < self.day_first[0]):
                self.day_first = (row, shown)
            if month_first and (self.month_first is None or row < self.month_first[0]):
                self.month_first = (row, shown)
        self.dates += int(np.count_nonzero(is_date[codes]))

    def decide(self, name: str, column: str) -> TimestampReading:
        """The order the evidence proves.

        Raises:
            ValidationError: Both orders proven (inconsistent), or neither (ambiguous).
        """
        ask = (
            "say which with timestamp_format='day-first' or 'month-first' (or 'iso' to reject "
            "them), or a pattern such as '%d/%m/%Y %H:%M' (CLI: --timestamp-format), or "
            "export ISO 8601 times"
        )
        if self.day_first and self.month_first:
            (r1, v1), (r2, v2) = self.day_first, self.month_first
            raise ValidationError(
                f"{name}: column {column!r} mixes date orders: row {r1} {v1!r} can only be "
                f"day/month, row {r2} {v2!r} only month/day, so none of its rows is used. "
                f"Fix the log, or {ask} (rows in the other order are then rejected)"
            )
        if self.day_first:
            row, value = self.day_first
            return TimestampReading("day-first", why=f"row {row} has {value!r}")
        if self.month_first:
            row, value = self.month_first
            return TimestampReading("month-first", why=f"row {row} has {value!r}")
        example = f" like {self.example!r}" if self.example else ""
        raise ValidationError(
            f"{name}: column {column!r} has dates{example} that read either way (no day or "
            f"month above 12 in its {self.dates:,} dates), so none of its rows is used: {ask}"
        )


ColumnChunks = Callable[[], Iterable[tuple[int, pa.Array]]]


def decide_reading(
    name: str,
    column: str,
    kind: pa.DataType,
    timestamp_format: str | None,
    chunks: ColumnChunks,
) -> TimestampReading:
    """The one reading of an input's timestamp column (see the module docs).

    Args:
        name: The input, for messages.
        column: The timestamp column's name in the input.
        kind: Its Arrow type.
        timestamp_format: The caller's ``timestamp_format`` (None: decide from the data).
        chunks: Called to stream ``(first row number, values)`` of that column alone; called
            once for the first rows, and a second time for a whole-column scan only when
            those rows hold day/month dates and no format says their order.

    Raises:
        ValidationError: A bad ``timestamp_format``, or day/month dates whose order is
            ambiguous or inconsistent over the whole column.
    """
    requested = normalise_format(timestamp_format)
    base = kind.value_type if pa.types.is_dictionary(kind) else kind
    if pa.types.is_timestamp(base) or pa.types.is_date(base) or pa.types.is_null(base):
        return TimestampReading("native")
    numeric = pa.types.is_integer(base) or pa.types.is_floating(base) or pa.types.is_decimal(base)
    # A named format says how text is written; numbers are epochs, unless a pattern such
    # as %Y%m%d reads them as digits.
    if requested is not None and (not numeric or "%" in requested):
        return TimestampReading.requested(requested)
    stream = iter(chunks())
    try:  # the first chunk with a value says what the column holds
        sample = next((array for _, array in stream if array.null_count < len(array)), None)
    finally:
        getattr(stream, "close", lambda: None)()  # release the file before any rescan
    if sample is None:
        return TimestampReading("iso", why="no values")
    if numeric:
        return epoch_reading(sample)
    reading = first_look(sample)
    if reading is not None:
        return reading
    # Day/month dates: the whole column decides, before any row is used.
    evidence = DateOrderEvidence()
    for first_row, array in chunks():
        evidence.add(array, first_row)
    return evidence.decide(name, column)


# -------------------------------------------------------------------------- since / until


def parse_time_bound(value: object, *, name: str = "time") -> pd.Timestamp | None:
    """``since`` / ``until`` as a UTC timestamp, read by the rules logs are read by.

    ISO 8601 (naive means UTC), datetimes, and day/month dates that read only one way
    (``13/04/2024``); ``03/04/2024`` could be either and is refused, as are bare numbers.

    Raises:
        ValidationError: Not a date/time, or an ambiguous one (the message asks for ISO 8601).

    Example:
        >>> parse_time_bound("2026-10-01", name="since")
        Timestamp('2026-10-01 00:00:00+0000', tz='UTC')
    """
    if value is None:
        return None
    example = "e.g. 2026-10-01 or 2026-10-01T12:00:00Z"
    if isinstance(value, dt.datetime | dt.date | np.datetime64 | pd.Timestamp):
        stamp = pd.Timestamp(value)
        if pd.isna(stamp):
            raise ValidationError(f"{name}: not a date/time ({value!r})")
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if not isinstance(value, str):
        raise ValidationError(
            f"{name} {value!r}: give a date/time in ISO 8601 ({example}), not a "
            f"{type(value).__name__}"
        )
    text = pa.array([value.strip()], pa.string())
    if not value.strip():
        raise ValidationError(f"{name}: empty; give a date/time in ISO 8601 ({example})")
    reading = first_look(text)
    if reading is not None and reading.kind == "epoch":
        raise ValidationError(
            f"{name} {value!r}: a number is not a date/time; give ISO 8601 ({example})"
        )
    if reading is None:
        evidence = DateOrderEvidence()
        evidence.add(text, 1)
        try:
            reading = evidence.decide(name, name)
        except ValidationError:
            raise ValidationError(
                f"{name} {value!r} reads as two dates (day/month or month/day); "
                f"give it in ISO 8601 ({example})"
            ) from None
    stamps, _, bad = parse_timestamps(text, reading)
    if bad[0] or not stamps[0].is_valid:
        raise ValidationError(f"{name} {value!r} is not a date/time; give ISO 8601 ({example})")
    return pd.Timestamp(stamps[0].as_py()).tz_convert("UTC")


def check_window(
    since: pd.Timestamp | None, until: pd.Timestamp | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``(since, until)``, refusing an empty window.

    Raises:
        ValidationError: ``since`` is not before ``until``: no row could be kept.

    Example:
        >>> check_window(parse_time_bound("2026-10-02"), parse_time_bound("2026-10-01"))
        Traceback (most recent call last):
        plabdata.errors.ValidationError: since (2026-10-02T00:00:00+00:00) is not before ...
    """
    if since is not None and until is not None and since >= until:
        raise ValidationError(
            f"since ({since.isoformat()}) is not before until ({until.isoformat()}): "
            "no row could be kept; swap them?"
        )
    return since, until
