"""The Arrow types a log's columns may have, and their conversion to what validation reads.

Parquet files and DataFrames come with types of their own: ``event_source`` as binary,
member ids as integers, dictionary-encoded numbers, timestamps in every unit with or
without a zone. Each recognised column's type is checked once per input, before any row is
read, and each chunk is then converted:

- text columns (``member_id``, ``email``, ``event_source``, ``country_code``,
  ``subdivision_code``): text as is; binary decoded as UTF-8 (values that are not UTF-8 are
  shown with ``\\x..`` escapes and marked, so validation rejects those rows and no other);
  integers, decimals and floats as their digits (``840``, ``12``);
- ``timestamp``: Arrow timestamps (any unit, any zone; naive means UTC) and dates as they
  are, numbers as epochs, text (or UTF-8 binary) parsed by :mod:`._timestamps`;
- ``is_in_quota``: booleans, numbers (0/1) or text.

Any other type (lists, structs, maps, booleans as text, times of day, durations) is a
whole-input :class:`~plabdata.errors.ValidationError` naming the file, the column, its type
and what to do.

    >>> normalise("event_source", pa.array([b"WEB_UI", b"\\xff"]))[1].tolist()
    [False, True]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from plabdata.errors import ValidationError

__all__ = [
    "CANONICAL_COLUMNS",
    "TEXT_COLUMNS",
    "check_types",
    "frame_column",
    "map_columns",
    "normalise",
    "type_problem",
]

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

#: The canonical columns validated as text.
TEXT_COLUMNS: tuple[str, ...] = (
    "member_id",
    "email",
    "event_source",
    "country_code",
    "subdivision_code",
)


# -------------------------------------------------------------------------- names


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


# -------------------------------------------------------------------------- types


def _is_text(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _is_bytes(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
        or pa.types.is_binary_view(kind)
    )


def _is_number(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _is_nested(kind: pa.DataType) -> str | None:
    if pa.types.is_struct(kind):
        return (
            "a struct (several fields per row): put the field you mean in a column of its own "
            "(pyarrow.compute.struct_field, or df[col].str[field] in pandas)"
        )
    if pa.types.is_map(kind):
        return "a map (key/value pairs per row): put the value you mean in a column of its own"
    if (
        pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_fixed_size_list(kind)
        or pa.types.is_list_view(kind)
        or pa.types.is_large_list_view(kind)
    ):
        return (
            "a list (several values per row): keep one value per row (e.g. explode the "
            "list into rows, or take its first element)"
        )
    if pa.types.is_union(kind):
        return "a union of types: convert it to one type"
    return None


def type_problem(canonical: str, kind: pa.DataType) -> str | None:
    """Why a column of Arrow type ``kind`` cannot hold ``canonical``; None when it can.

    Example:
        >>> type_problem("timestamp", pa.time64("us"))
        'a time of day without a date: combine it with its date into one timestamp column'
    """
    base = kind.value_type if pa.types.is_dictionary(kind) else kind
    if pa.types.is_null(base) or _is_text(base) or _is_bytes(base):
        return None
    nested = _is_nested(base)
    if nested is not None:
        return nested
    if canonical == "timestamp":
        if pa.types.is_timestamp(base) or pa.types.is_date(base) or _is_number(base):
            return None
        if pa.types.is_time(base):
            return (
                "a time of day without a date: combine it with its date into one timestamp column"
            )
        if pa.types.is_duration(base) or pa.types.is_interval(base):
            return "a duration, not a point in time: convert it to timestamps"
        return "expected timestamps, dates, epoch numbers or text"
    if canonical == "is_in_quota":
        if pa.types.is_boolean(base) or _is_number(base):
            return None
        return "expected booleans, 0/1 or yes/no text"
    if _is_number(base):
        return None
    if pa.types.is_boolean(base):
        return "booleans, where text is expected"
    return "expected text"


def check_types(name: str, mapping: Mapping[str, str], types: Mapping[str, pa.DataType]) -> None:
    """Refuse the input when a recognised column's type cannot hold what it should.

    Args:
        name: The input, for messages.
        mapping: ``{canonical: input column}``.
        types: ``{input column: Arrow type}``.

    Raises:
        ValidationError: The first column whose type is refused (file, column, type, remedy).
    """
    for canonical, column in mapping.items():
        kind = types.get(column)
        problem = None if kind is None else type_problem(canonical, kind)
        if problem is not None:
            raise ValidationError(
                f"{name}: column {column!r} ({canonical}) has type {kind}, {problem}; "
                f"or map another column with columns={{{canonical!r}: ...}}"
            )


def _decode(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Binary values as UTF-8 text, and which were not UTF-8 (shown with ``\\x..`` escapes)."""
    if pa.types.is_fixed_size_binary(values.type) or pa.types.is_binary_view(values.type):
        values = values.cast(pa.binary())
    try:  # Arrow checks UTF-8 for the whole array at C speed: the common case
        return values.cast(pa.string()), np.zeros(len(values), bool)
    except pa.ArrowInvalid:
        pass
    texts: list[str | None] = []
    bad = np.zeros(len(values), bool)
    for i, raw in enumerate(values.to_pylist()):
        if raw is None:
            texts.append(None)
            continue
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(raw.decode("utf-8", "backslashreplace"))
            bad[i] = True
    return pa.array(texts, pa.string()), bad


def _values_as_text(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    kind = values.type
    if _is_bytes(kind):
        return _decode(values)
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.string()), np.zeros(len(values), bool)
    return values.cast(pa.string()), np.zeros(len(values), bool)


def normalise(canonical: str, array: pa.Array) -> tuple[pa.Array, np.ndarray | None]:
    """One chunk of a column as validation reads it, and the rows whose bytes are not UTF-8.

    Text columns become ``string`` (dictionary-encoded when they were, or when they were
    binary: decoding then runs once per distinct value). Timestamps and ``is_in_quota``
    keep their native types; only binary and large text become ``string``.

    Example:
        >>> normalise("member_id", pa.array([12, None]))[0].to_pylist()
        ['12', None]
    """
    kind = array.type
    if pa.types.is_dictionary(kind):
        if pa.types.is_string(kind.value_type):
            return array, None  # the common case: Parquet text, read as a dictionary
        if canonical not in TEXT_COLUMNS and not _is_bytes(kind.value_type):
            return array, None  # numbers / timestamps: parsed from their own type
        values, bad = _values_as_text(array.dictionary)
        text = pa.DictionaryArray.from_arrays(array.indices, values)
        if not bad.any():
            return text, None
        codes = pc.fill_null(array.indices.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
        rows = np.append(bad, False)[codes]  # the distinct values' verdict, spread to rows
        return text, rows if rows.any() else None
    if _is_bytes(kind):
        if canonical == "timestamp":  # dense values (mostly distinct): decode row by row
            text, bad = _decode(array)
            return text, bad if bad.any() else None
        return normalise(canonical, pc.dictionary_encode(array))
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return array.cast(pa.string()), None
    if canonical in TEXT_COLUMNS and (pa.types.is_null(kind) or _is_number(kind)):
        return _values_as_text(array)[0], None
    problem = type_problem(canonical, kind)
    if problem is not None:  # a DataFrame chunk whose type differs from its first rows'
        raise ValidationError(f"column ({canonical}) has type {kind}, {problem}")
    return array, None


def frame_column(series: pd.Series, name: str, column: str) -> pa.Array:
    """A DataFrame column as Arrow; object columns mixing types become text.

    Raises:
        ValidationError: The column holds lists, dicts or other containers.
    """
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    values = series.tolist()
    nested = next(
        (v for v in values if isinstance(v, list | tuple | dict | set | np.ndarray)), None
    )
    if nested is not None:
        raise ValidationError(
            f"{name}: column {column!r} holds {type(nested).__name__} values (e.g. "
            f"{str(nested)[:40]!r}); keep one value per row, or map another column with columns="
        )
    return pa.array(
        [None if v is None or v is pd.NA or v != v else str(v) for v in values], pa.string()
    )
