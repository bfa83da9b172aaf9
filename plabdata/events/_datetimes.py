"""Parsing timestamp columns, vectorised, once their reading is known (:mod:`._timestamps`).

A :class:`TimestampReading` says how an input's timestamp column is written; this module
turns chunks of that column into UTC milliseconds: Arrow's own ISO 8601 parser first (the
fast path of every ISO log), pandas' ISO 8601 parser for the variants Arrow refuses, and a
regex + calendar arithmetic parser for ``dd/mm/yyyy`` / ``mm/dd/yyyy`` / ``yyyy/mm/dd`` text
(times, AM/PM and zones included) that never guesses the order value by value.

    >>> day_first = TimestampReading("day-first")
    >>> stamps, blank, bad = parse_timestamps(pa.array(["03/04/2024"]), day_first)
    >>> stamps[0].as_py().isoformat()
    '2024-04-03T00:00:00+00:00'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["NUMBER", "TIMESTAMP", "TimestampReading", "parse_timestamps", "text_values"]

TIMESTAMP = pa.timestamp("ms", "UTC")
Kind = Literal["native", "epoch", "iso", "day-first", "month-first", "pattern"]
EpochUnit = Literal["s", "ms", "us", "ns"]

# A numeric day/month date and its optional time and zone. RE2 syntax (pyarrow.compute).
_TAIL = (
    r"(?:(?:\s+|T|\s*,\s*)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,9}))?)?"
    r"\s*(?P<p>[AaPp]\.?[Mm]\.?)?)?\s*(?P<z>[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
_DAY_MONTH = r"^\s*(?P<a>\d{1,2})(?P<s>[/.\-])(?P<b>\d{1,2})[/.\-](?P<y>\d{4}|\d{2})" + _TAIL
_YEAR_FIRST = r"^\s*(?P<y>\d{4})(?P<s>[/.])(?P<a>\d{1,2})[/.](?P<b>\d{1,2})" + _TAIL
#: A number (an epoch in text).
NUMBER = r"^\s*[+-]?\d+(?:\.\d*)?\s*$"
_MONTH_NAME = r"(?i)\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


@dataclass(frozen=True)
class TimestampReading:
    """How one input's timestamp column is read (see the module docs).

    Attributes:
        kind: ``native``, ``epoch``, ``iso``, ``day-first``, ``month-first`` or ``pattern``.
        pattern: The strptime pattern (kind ``pattern``).
        unit: The epoch unit (kind ``epoch``).
        strict: The caller chose the format: nothing else is read (no month-name guesses).
        why: What decided it, for messages (``"row 7 has '13/04/2024'"``).
    """

    kind: Kind
    pattern: str | None = None
    unit: EpochUnit = "s"
    strict: bool = False
    why: str = field(default="", compare=False)

    @classmethod
    def requested(cls, fmt: str) -> TimestampReading:
        """The reading a ``timestamp_format`` value names."""
        if fmt in ("day-first", "month-first", "iso"):
            return cls(fmt, strict=True, why="timestamp_format")  # type: ignore[arg-type]
        return cls("pattern", pattern=fmt, strict=True, why="timestamp_format")

    def describe(self) -> str:
        """A few words for messages: ``day-first (dd/mm/yyyy)``."""
        text = {
            "native": "a date/time column",
            "epoch": f"epoch {self.unit}",
            "iso": "ISO 8601",
            "day-first": "day-first (dd/mm/yyyy)",
            "month-first": "month-first (mm/dd/yyyy)",
            "pattern": f"{self.pattern!r}",
        }[self.kind]
        return f"{text}, {self.why}" if self.why else text


def text_values(array: pa.Array) -> pa.Array:
    """Trimmed text with blanks as null."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not pa.types.is_string(array.type):
        array = array.cast(pa.string())
    text = pc.utf8_trim_whitespace(array)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


# -------------------------------------------------------------------------- parsing


Parsed = tuple[pa.Array, np.ndarray, np.ndarray]


def parse_timestamps(column: pa.ChunkedArray | pa.Array, reading: TimestampReading) -> Parsed:
    """(timestamps in ms UTC, mask of blank values, mask of values the reading cannot read).

    Example:
        >>> parse_timestamps(pa.array([1727740800]), TimestampReading("epoch", unit="s"))[0]
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    if pa.types.is_dictionary(kind):
        array, kind = array.dictionary_decode(), kind.value_type
    n = len(array)
    if pa.types.is_null(kind):
        return pa.nulls(n, TIMESTAMP), np.ones(n, bool), np.zeros(n, bool)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if pa.types.is_date(kind) or kind.tz is None:  # naive: taken as UTC
            array = array.cast(pa.timestamp("ms"), safe=False).cast(pa.int64()).cast(TIMESTAMP)
        stamps = array.cast(TIMESTAMP, safe=False)
        return stamps, ~_mask(pc.is_valid(stamps)), np.zeros(n, bool)
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    if numeric and reading.kind == "pattern":  # digits read by a pattern: 20240403 as %Y%m%d
        array, kind = array.cast(pa.string()), pa.string()
    elif numeric:
        return _epoch(array.cast(pa.float64()), reading.unit)
    text = text_values(array)
    blank = ~_mask(pc.is_valid(text))
    if reading.kind == "epoch":
        numeric = _mask(pc.match_substring_regex(text, NUMBER))
        values = pc.if_else(pa.array(numeric), text, pa.scalar(None, pa.string()))
        stamps, _, bad = _epoch(values.cast(pa.float64()), reading.unit)
        return stamps, blank, bad | (~blank & ~numeric)
    if reading.kind == "pattern":
        assert reading.pattern is not None
        series = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
        parsed = pd.to_datetime(series, format=reading.pattern, utc=True, errors="coerce")
        stamps = _from_pandas(parsed)
        return stamps, blank, ~blank & ~_mask(pc.is_valid(stamps))
    millis = np.zeros(n, np.int64)
    done = blank.copy()
    if reading.kind in ("day-first", "month-first"):
        matched, values = _components(text, _DAY_MONTH, day_first=reading.kind == "day-first")
        millis[matched] = values[matched]
        done |= matched
    if not done.all():
        _iso(text, millis, done, lenient=reading.kind == "iso" and not reading.strict)
    parsed_mask = done & ~blank
    bad = ~blank & ~parsed_mask
    # Rows of the date pattern that failed the calendar (31/02) are bad, not parsed.
    bad |= ~blank & (millis == _INVALID)
    good = parsed_mask & (millis != _INVALID)
    stamps = pa.array(millis, pa.int64(), mask=~good).cast(TIMESTAMP)
    return stamps, blank, bad


_INVALID = np.iinfo(np.int64).min


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    filled = pc.fill_null(values, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


def _from_pandas(stamps: pd.Series) -> pa.Array:
    return pa.array(stamps.astype("datetime64[ms, UTC]"), type=TIMESTAMP)


def _epoch(values: pa.Array, unit: EpochUnit) -> Parsed:
    numbers = pd.Series(values.to_numpy(zero_copy_only=False), dtype="float64")
    stamps = pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce")
    blank = numbers.isna().to_numpy()
    # Out of range for the unit (e.g. milliseconds in a seconds column): unreadable, not blank.
    return _from_pandas(stamps), blank, (stamps.isna().to_numpy() & ~blank)


def _matched(text: pa.Array, pattern: str) -> np.ndarray:
    return _mask(pc.match_substring_regex(text, pattern))


def _iso(text: pa.Array, millis: np.ndarray, done: np.ndarray, *, lenient: bool) -> None:
    """ISO 8601 for the rows not ``done`` (in place); ``_INVALID`` marks calendar errors."""
    rows = np.flatnonzero(~done)
    todo = text if rows.size == len(text) else text.take(pa.array(rows))
    for target in (pa.timestamp("ns", "UTC"), pa.timestamp("ns")):
        try:  # Arrow's own ISO 8601 parser: the fast path of every ISO log
            parsed = todo.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        millis[rows] = np.asarray(parsed.cast(pa.int64()).to_numpy(zero_copy_only=False)) // 10**6
        done[rows] = True
        return
    series = pd.Series(todo.to_numpy(zero_copy_only=False), dtype=object)
    stamps = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
    ok = stamps.notna().to_numpy()
    millis[rows[ok]] = stamps[ok].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    done[rows[ok]] = True
    left = rows[~ok]
    if not left.size:
        return
    rest = text.take(pa.array(left))
    year_first, values = _components(rest, _YEAR_FIRST, day_first=False)
    millis[left[year_first]] = values[year_first]
    done[left[year_first]] = True
    if lenient:
        # Month names say which part is the month: safe to hand to pandas' guesser.
        named = _matched(rest, _MONTH_NAME) & ~year_first
        if named.any():
            guessed = pd.to_datetime(
                pd.Series(rest.filter(pa.array(named)).to_numpy(zero_copy_only=False)),
                utc=True,
                errors="coerce",
                format="mixed",
            )
            good = guessed.notna().to_numpy()
            picked = left[named][good]
            millis[picked] = guessed[good].astype("datetime64[ms, UTC]").astype("int64")
            done[picked] = True


def _ints(struct: pa.StructArray, name: str, default: int) -> np.ndarray:
    part = struct.field(name)
    part = pc.if_else(pc.equal(part, ""), pa.scalar(None, pa.string()), part)
    return np.asarray(
        pc.fill_null(part.cast(pa.int64()), default).to_numpy(zero_copy_only=False), np.int64
    )


def _per_value(struct: pa.StructArray, name: str, parse: Callable[[str], int]) -> np.ndarray:
    """A small per-row field (AM/PM, zone) parsed once per distinct value."""
    encoded = pc.dictionary_encode(pc.fill_null(struct.field(name), ""))
    mapped = np.array([parse(v) for v in encoded.dictionary.to_pylist()], dtype=np.int64)
    spread: np.ndarray = mapped[encoded.indices.to_numpy(zero_copy_only=False)]
    return spread


def _offset_minutes(zone: str) -> int:
    if zone in ("", "Z", "z", "UTC", "GMT"):
        return 0
    digits = zone[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
    return -minutes if zone[0] == "-" else minutes


def _meridiem(mark: str) -> int:
    return {"": -1, "a": 0, "p": 1}[mark[:1].lower()]


def _components(text: pa.Array, pattern: str, *, day_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """(rows matching ``pattern``, their ms since the epoch), vectorised over the rows.

    ``a`` is the day when ``day_first``, else the month (``b`` the other); rows that match
    the pattern but not the calendar (31/02, 25:00) get ``_INVALID``.
    """
    n = len(text)
    struct = pc.extract_regex(text, pattern=pattern)
    matched = _mask(struct.is_valid())
    if not matched.any():
        return np.zeros(n, bool), np.zeros(n, np.int64)
    a, b = _ints(struct, "a", 0), _ints(struct, "b", 0)
    year = _ints(struct, "y", 0)
    two_digit = year < 100
    dash = _mask(pc.equal(struct.field("s"), "-"))
    year = np.where(two_digit, 2000 + year, year)
    day, month = (a, b) if day_first else (b, a)
    hour, minute = _ints(struct, "H", 0), _ints(struct, "M", 0)
    second, fraction = _ints(struct, "S", 0), _fraction(struct)
    pm = _per_value(struct, "p", _meridiem)
    zone = _per_value(struct, "z", _offset_minutes)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    longest = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    hour_ok = np.where(pm >= 0, (hour >= 1) & (hour <= 12), hour <= 23)
    valid = (
        matched
        & month_ok
        & (day >= 1)
        & (day <= longest)
        & hour_ok
        & (minute <= 59)
        & (second <= 59)
        & ~(dash & two_digit)  # 24-04-03 could be yy-mm-dd: not read as a day/month date
    )
    hour = np.where(pm >= 0, hour % 12 + 12 * (pm == 1), hour)
    days = _days_from_civil(year, np.clip(month, 1, 12), day)
    millis = ((days * 24 + hour) * 60 + minute - zone) * 60_000 + second * 1000 + fraction
    return matched, np.where(valid, millis, _INVALID)


def _fraction(struct: pa.StructArray) -> np.ndarray:
    digits = pc.utf8_rpad(pc.utf8_slice_codeunits(struct.field("F"), 0, 3), width=3, padding="0")
    return np.asarray(
        pc.fill_null(digits.cast(pa.int64()), 0).to_numpy(zero_copy_only=False), np.int64
    )


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: np.ndarray = era * 146097 + doe - 719468
    return days
