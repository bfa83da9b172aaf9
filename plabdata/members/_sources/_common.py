"""What every preset shares: turning one block of an export's users into sheet columns.

A preset reads field paths of :class:`~plabdata.members._sources._files.Records` with a
:class:`Mapper` and names, for each, the sheet field it fills. The result is the plain table
``read_member_sheet`` validates like any sheet — a header per export field (so an issue names
the export's own field, e.g. ``user_metadata.tier``), the field it means, and the values.

The rules every preset follows (``docs/migrations.md`` has the table):

- ``metadata.migrated_from`` is the preset's name, ``metadata.original_user_id`` the user's id
  there, ``metadata.original_created_at`` the sign-up time in ISO 8601 UTC with milliseconds
  (``2020-10-06T15:28:39.652Z``) — stable values, so a second import of the same export plans
  nothing.
- Metadata values become text, as PluginLab's maps require: ``true``/``false``, numbers in
  their shortest form (``1.0`` → ``1``), nested objects as dotted keys, lists as compact JSON.
  A list holding objects or lists is kept as JSON text with a warning; a value longer than
  :data:`MAX_METADATA_CHARS` is left out with a warning.
- Password hashes are read only to learn that the user had a password: the value never
  reaches the table. Such users, and users with a password sign-in the export has no hash for,
  get ``password_note`` ``"reset-needed"``; users with social sign-ins only ``"oauth-only"``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from plabdata.errors import ValidationError
from plabdata.members._sources._files import Issue, Records, flatten

MAX_METADATA_CHARS = 2048
#: ``column_map`` targets only a migration has (besides the sheet's fields).
MIGRATION_TARGETS = ("original_user_id", "original_created_at", "password_hash")
RESET_NEEDED, OAUTH_ONLY = "reset-needed", "oauth-only"
_CANONICAL_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
_CANONICAL_TIME = re.compile(_CANONICAL_PATTERN)
_WARNING = "warning"
#: How a sign-up time is written: None for text, ``"ms"`` for milliseconds since 1970.
Unit = Literal["ms"] | None


@dataclass
class Mapped:
    """One block of users as sheet columns: header → (field, values)."""

    columns: dict[str, tuple[str, np.ndarray]]
    rows: np.ndarray
    issues: list[Issue] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)


class Mapper:
    """Builds the sheet columns of one block of users for one preset.

    Example:
        >>> m = Mapper(records, "auth0")
        >>> m.text("email", "email"); m.metadata("user_metadata.")
        >>> mapped = m.finish()
    """

    def __init__(self, records: Records, preset: str | None) -> None:
        self.records = records
        self.columns: dict[str, tuple[str, np.ndarray]] = {}
        self.issues: list[Issue] = []
        self.used: set[str] = set()
        self.had_password = np.zeros(len(records), dtype=bool)
        self.had_social = np.zeros(len(records), dtype=bool)
        if preset is not None:
            self.put("migrated_from", "metadata.migrated_from", np.full(len(records), preset))

    # -- building ---------------------------------------------------------------------------

    def put(self, header: str, target: str, values: Any) -> None:
        """Set one column (replacing a header already set)."""
        array = np.asarray(values, dtype=object)
        self.columns[header] = (target, array)

    def take(self, path: str) -> pd.Series | None:
        """The values of an export field (None when no user in the block has it)."""
        if not self.records.has(path):
            return None
        self.used.add(path)
        return self.records.values(path)

    def first(self, *paths: str) -> str | None:
        """The first of these field paths the block has."""
        return next((p for p in paths if self.records.has(p)), None)

    def text(self, path: str, target: str) -> None:
        """A member field taken as it is (the sheet's checks say when it is not text)."""
        values = self.take(path)
        if values is not None:
            self.put(path, target, values.to_numpy(dtype=object))

    def verified(self, path: str) -> None:
        """``is_verified`` from a boolean (or ``"true"``/``"false"``) field."""
        values = self.take(path)
        if values is None:
            return
        column = self.records.arrow(path)
        if column is not None and pa.types.is_boolean(column.type):
            self.put(path, "is_verified", _arrow_objects(pc.cast(column, pa.string())))
        elif column is not None and pa.types.is_string(column.type):
            self.put(path, "is_verified", values.to_numpy(dtype=object))
        else:
            self.put(path, "is_verified", [_yes_no(v) for v in values.tolist()])

    def verified_if_set(self, path: str) -> None:
        """``is_verified`` from a timestamp that is set once the address was confirmed."""
        values = self.take(path)
        if values is not None:
            self.put(path, "is_verified", np.where(values.isna(), "false", "true"))

    def user_id(self, path: str, prefix: str = "") -> None:
        """``metadata.original_user_id`` from the platform's user id."""
        values = self.take(path)
        if values is None:
            return
        text = _arrow_text(self.records.arrow(path))
        if text is not None:  # C speed: text, integers and booleans read by pyarrow
            if prefix:
                text = pc.binary_join_element_wise(prefix, text, "")
            self.put(path, "metadata.original_user_id", _arrow_objects(text))
            return
        ids = [None if v is None else f"{prefix}{_scalar_text(v)}" for v in values.tolist()]
        self.put(path, "metadata.original_user_id", ids)

    def created_at(self, path: str, *, unit: Unit = None) -> None:
        """``metadata.original_created_at``: the sign-up time, ISO 8601 UTC (``unit="ms"``:
        milliseconds since 1970, as Firebase and Clerk write it)."""
        values = self.take(path)
        if values is None:
            return
        if unit is None and _all_canonical(self.records.arrow(path)):
            stamps = values.to_numpy(dtype=object).copy()
            stamps[stamps == ""] = None
            self.put(path, "metadata.original_created_at", stamps)
            return
        stamps, bad = iso_times(values, unit)
        for row, value in zip(self.records.rows[bad], values[bad].tolist(), strict=True):
            self.issues.append(
                (int(row), path, str(value), "not a date and time: sign-up time left out", _WARNING)
            )
        self.put(path, "metadata.original_created_at", stamps)

    def metadata(self, prefix: str, dest: str = "", skip: tuple[str, ...] = ()) -> None:
        """Every field under ``prefix`` (``user_metadata.``) as ``metadata.<dest><key>``."""
        for name in self.records.names:
            if not name.startswith(prefix) or name in self.used:
                continue
            key = name[len(prefix) :]
            if not key or key.split(".")[0] in skip:
                continue
            self.used.add(name)
            self.meta_value(
                name, f"metadata.{dest}{key}", self.records.values(name), self.records.arrow(name)
            )

    def meta_value(
        self, header: str, target: str, values: pd.Series, arrow: pa.ChunkedArray | None = None
    ) -> None:
        """One metadata column: every value as text (see the module's rules); ``arrow``, the
        column as pyarrow read it, lets text, integers and booleans go at C speed."""
        text = _arrow_text(arrow)
        if text is not None and (pc.max(pc.utf8_length(text)).as_py() or 0) <= MAX_METADATA_CHARS:
            # text read as text: the frame's values are the ones to keep
            kept = values.to_numpy(dtype=object) if text is arrow else _arrow_objects(text)
            self.put(header, target, kept)
            return
        items = values.tolist()
        kinds = set(map(type, items))
        longest = max((len(v) for v in items if type(v) is str), default=0)
        if kinds <= {str, type(None)} and longest <= MAX_METADATA_CHARS:
            self.put(header, target, items)
            return
        if kinds <= {int, str, type(None)} and longest <= MAX_METADATA_CHARS:  # counts, ids
            self.put(header, target, [v if v is None or type(v) is str else str(v) for v in items])
            return
        out: list[str | None] = []
        for row, value in zip(self.records.rows.tolist(), items, strict=True):
            text, problem = metadata_text(value)
            if problem:
                self.issues.append((row, header, _short(value), problem, _WARNING))
            out.append(text)
        self.put(header, target, out)

    def json_text_metadata(
        self, path: str, dest: str, what: str = "not a JSON object: left out"
    ) -> None:
        """A metadata object written as JSON text in one cell (a CSV export's
        ``public_metadata``, Firebase's ``customAttributes``): each key as
        ``metadata.<dest><key>``; a cell that is not a JSON object is a warning (``what``)."""
        values = self.take(path)
        if values is None:
            return
        keys: dict[str, list[Any]] = {}
        items = values.tolist()
        for index, (row, text) in enumerate(zip(self.records.rows.tolist(), items, strict=True)):
            if not isinstance(text, str) or not text.strip():
                continue
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                self.issues.append((row, path, text[:80], what, _WARNING))
                continue
            for key, value in flatten(parsed).items():
                keys.setdefault(key, [None] * len(items))[index] = value
        for key, column in keys.items():
            self.meta_value(
                f"{path}.{key}", f"metadata.{dest}{key}", pd.Series(column, dtype=object)
            )

    def password_hash(self, *paths: str) -> None:
        """Users with a value in any of these fields had a password there (never read on)."""
        for path in paths:
            values = self.take(path)
            if values is not None:
                self.had_password |= _filled(values)

    # -- finishing --------------------------------------------------------------------------

    def finish(self, overrides: Mapping[str, str | None] | None = None) -> Mapped:
        """The block's columns, after ``column_map`` and with ``password_note``."""
        for source, target in (overrides or {}).items():
            self._override(source, target)
        note = np.full(len(self.records), None, dtype=object)
        note[self.had_social] = OAUTH_ONLY
        note[self.had_password] = RESET_NEEDED
        self.put("password_note", "password_note", note)
        return Mapped(self.columns, self.records.rows, self.issues, self.used, self.records.names)

    def _override(self, source: str, target: str | None) -> None:
        if target == "password":
            raise ValidationError(
                f"column_map maps {source!r} to 'password': a migration never sends an export's "
                "values as passwords (map a hash to 'password_hash'; read a sheet of real "
                "passwords without source=)"
            )
        self.columns.pop(source, None)
        if target is None or not self.records.has(source):
            self.used.add(source)
            return
        if target == "password_hash":
            self.password_hash(source)
            return
        if target == "original_user_id":
            target = "metadata.original_user_id"
        for header in [h for h, (t, _) in self.columns.items() if t == target]:
            del self.columns[header]
        if target == "original_created_at":
            self.created_at(source)
        elif target.startswith("metadata."):
            self.used.add(source)
            self.meta_value(source, target, self.records.values(source))
        elif target == "is_verified":
            self.verified(source)
        else:
            self.text(source, target)


# ---------------------------------------------------------------------------- values


def _arrow_text(column: pa.ChunkedArray | None) -> pa.ChunkedArray | None:
    """A column pyarrow read as text, integers or booleans, as text written the way
    :func:`_scalar_text` writes it (None for any other column: floats, or no column)."""
    if column is None:
        return None
    kind = column.type
    if pa.types.is_string(kind):
        return column
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return pc.cast(column, pa.string())
    return None


def _arrow_objects(column: pa.ChunkedArray) -> np.ndarray:
    """An arrow text column as an object array of str, None where null."""
    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)  # no copy
    if column.null_count:  # pyarrow gives NaN for null text
        values[column.is_null().to_numpy(zero_copy_only=False)] = None
    return values


def _all_canonical(column: pa.ChunkedArray | None) -> bool:
    """Is every filled value of this text column a real time written the canonical way?"""
    if column is None or not pa.types.is_string(column.type):
        return False
    filled = pc.filter(column, pc.not_equal(column, ""))  # nulls drop out too
    if len(filled) and not pc.all(pc.match_substring_regex(filled, _CANONICAL_PATTERN)).as_py():
        return False
    try:
        pc.cast(filled, pa.timestamp("ms", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _yes_no(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _filled(values: pd.Series) -> np.ndarray:
    return np.array(
        [v is not None and not (isinstance(v, str) and not v.strip()) for v in values.tolist()],
        dtype=bool,
    )


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def _plain(value: Any) -> Any:
    """JSON-ready, with integral floats as ints (pyarrow reads ``[1, 2.5]`` as doubles)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    return value


def metadata_text(value: Any) -> tuple[str | None, str | None]:
    """A metadata value as PluginLab keeps it (text), and the warning it deserves, if any.

    Example:
        >>> metadata_text([1, 2.0]), metadata_text(True)
        (('[1,2]', None), ('true', None))
    """
    if value is None:
        return None, None
    problem = None
    if isinstance(value, list | dict):
        nested = isinstance(value, dict) or any(isinstance(v, list | dict) for v in value)
        text = json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        if nested:
            problem = (
                "a list holding objects or lists: kept as JSON text (PluginLab metadata "
                "values are text)"
            )
    elif isinstance(value, float) and not math.isfinite(value):
        return None, "not a finite number: left out"
    else:
        text = _scalar_text(value)
    if len(text) > MAX_METADATA_CHARS:
        return None, f"longer than {MAX_METADATA_CHARS:,} characters as text: left out"
    return text, problem


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(_plain(value), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def iso_times(values: pd.Series, unit: Unit = None) -> tuple[np.ndarray, np.ndarray]:
    """Sign-up times as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC; a time without an offset is read
    as UTC), and which present values could not be read.

    Example:
        >>> iso_times(pd.Series(["2024-06-29 20:25:06.126079+00"]))[0].tolist()
        ['2024-06-29T20:25:06.126Z']
    """
    items = values.tolist()
    out = np.array(items, dtype=object)
    present = np.array([v is not None and v != "" for v in items], dtype=bool)
    done = np.zeros(len(items), dtype=bool)
    if unit is None:
        done = np.array(
            [isinstance(v, str) and _CANONICAL_TIME.match(v) is not None for v in items],
            dtype=bool,
        )
    todo = present & ~done
    if done.any():  # already canonical: checked to be a real time, kept as written
        try:
            pc.cast(pa.array(out[done].tolist(), pa.string()), pa.timestamp("ms", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            todo |= done  # one is not a real time (30 February…): each one its own way
    stamps = pd.Series(out[todo])
    if unit is not None:
        parsed = pd.to_datetime(pd.to_numeric(stamps, errors="coerce"), unit=unit, utc=True)
    else:
        parsed = pd.to_datetime(
            stamps.map(lambda v: _time_text(v)), utc=True, format="ISO8601", errors="coerce"
        )
    text = parsed.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    out[todo] = [t if ok else None for t, ok in zip(text.tolist(), parsed.notna(), strict=True)]
    out[~present] = None
    bad = present & pd.isna(pd.Series(out)).to_numpy()
    return out, bad


def _time_text(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.search(r"\d:\d\d(?:\.\d+)?[+-]\d\d$", text):  # Postgres writes +00 for UTC
        text += ":00"
    return text.replace(" ", "T", 1)


def note_flags(
    mapper: Mapper, *, password: np.ndarray | None = None, social: np.ndarray | None = None
) -> None:
    """Record per user a password sign-in and a social sign-in found in the export."""
    if password is not None:
        mapper.had_password |= password
    if social is not None:
        mapper.had_social |= social


class _OneOf:
    """The value is one of a set of texts (a :meth:`Records.list_any` predicate that also
    answers for a whole arrow array)."""

    def __init__(self, accept: set[str]) -> None:
        self.accept = frozenset(accept)

    def __call__(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.accept

    def arrow_mask(self, values: pa.Array) -> np.ndarray | None:
        if not pa.types.is_string(values.type):
            return None  # numbers, lists…: value by value
        found = pc.is_in(values, value_set=pa.array(sorted(self.accept), pa.string()))
        return np.asarray(pc.fill_null(found, False), dtype=bool)


class _IsTrue:
    """The value is the JSON ``true`` (not ``"true"``, not ``1``)."""

    def __call__(self, value: Any) -> bool:
        return value is True

    def arrow_mask(self, values: pa.Array) -> np.ndarray | None:
        if pa.types.is_boolean(values.type):
            return np.asarray(pc.fill_null(values, False), dtype=bool)
        if pa.types.is_null(values.type) or pa.types.is_string(values.type):
            return np.zeros(len(values), dtype=bool)
        return None


#: A predicate for :meth:`Records.list_any`: the value is ``True``.
IS_TRUE: Callable[[Any], bool] = _IsTrue()


def any_of(accept: set[str]) -> Callable[[Any], bool]:
    """A predicate for :meth:`Records.list_any`: the value is one of ``accept``."""
    return _OneOf(accept)
