"""Validating, resolving and fingerprinting event rows, vectorised one chunk at a time.

Everything here is pure (Arrow / numpy in, Arrow out) and works per chunk, so a file of any
size validates in bounded memory; only the fingerprint ordinals carry state across chunks.

**Checks.** ``event_source`` 1–10 characters (upper-cased); ``country_code`` an ISO 3166-1
alpha-2 code and ``subdivision_code`` an ISO 3166-2 subdivision *of that country* (``CA`` or
``US-CA``; sent in PluginLab's short form ``CA``), both from pycountry; ``is_in_quota`` one of
yes/no/true/false/1/0 (blank: the default); ``timestamp`` read one way per input
(:mod:`plabdata.events._timestamps`; naive times are taken as UTC; a present but blank or
unreadable timestamp is rejected); emails resolved to member ids through their canonical key
(:mod:`plabdata.events._resolve`) from one members frame, never one lookup per row; a value
whose bytes are not text is rejected.

**Fingerprints.** A row's fingerprint is 128 bits (32 hex digits) computed from its normalised
fields — timestamp (UTC, milliseconds), member (``member_id`` if the row has one, else its
canonical email key, so two spellings of one address are one event), event source,
country, subdivision — plus ``#k`` when it is the k-th
repeat (k ≥ 1) of an identical valid row in the same input. Strings are hashed with SipHash-2-4
(fixed keys) and the parts combined with the splitmix64 finaliser, so fingerprints are
stable across runs and machines. ``is_in_quota`` is not part of the event's identity: running
the same log again with another quota flag does not send it twice.

    >>> checked = validate_events("data/web_ui_events.csv", members=load_members(admin))
    >>> checked[checked.status == "invalid"][["row", "problem"]]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from plabdata.errors import ValidationError
from plabdata.events._datetimes import TIMESTAMP, TimestampReading, parse_timestamps
from plabdata.events._fingerprint import LANES, U64, Fingerprinter, splitmix
from plabdata.events._location import check_location
from plabdata.events._parse import Problems, Text, as_numpy, parse_booleans
from plabdata.events._read import (
    DEFAULT_CHUNK_ROWS,
    RawChunk,
    check_input,
    input_columns,
    iter_raw_chunks,
    map_columns,
    resolve_sources,
)
from plabdata.events._resolve import MemberIndex, email_key_values
from plabdata.events._timestamps import check_window, normalise_format, parse_time_bound

__all__ = [
    "UPLOAD_TIME_NOTE",
    "CheckOptions",
    "MemberIndex",
    "quota_impact",
    "validate_events",
]

UnknownMember = Literal["reject", "anonymous"]
MAX_SOURCE_LENGTH = 10
UPLOAD_TIME_NOTE = (
    "PluginLab records a backfilled event when it is uploaded, not at the time in the log: "
    "every event counts toward the member's current quota interval and shows up in "
    "dashboards on the day of the upload."
)


# -------------------------------------------------------------------------- options


@dataclass(frozen=True)
class CheckOptions:
    """What a run validates against (resolved once, used for every chunk)."""

    source_name: str | None = None
    in_quota: bool | None = None
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    unknown_member: UnknownMember = "reject"
    timestamp_format: str | None = None

    @classmethod
    def build(
        cls,
        *,
        source_name: str | None,
        in_quota: bool | None,
        since: object,
        until: object,
        unknown_member: str,
        timestamp_format: str | None = None,
    ) -> CheckOptions:
        """The options checked once, before any input is read.

        Raises:
            ValidationError: A bad source name or ``timestamp_format``; ``since`` / ``until``
                not a date/time, ambiguous (``03/04/2024``), or not in order.
        """
        if unknown_member not in ("reject", "anonymous"):
            raise ValueError("unknown_member must be 'reject' or 'anonymous'")
        if source_name is not None:
            source_name = source_name.strip().upper()
            if not 1 <= len(source_name) <= MAX_SOURCE_LENGTH:
                raise ValidationError(
                    f"event source {source_name!r} must be 1 to {MAX_SOURCE_LENGTH} characters"
                )
        start, end = check_window(
            parse_time_bound(since, name="since"), parse_time_bound(until, name="until")
        )
        return cls(
            source_name,
            in_quota,
            start,
            end,
            unknown_member,  # type: ignore[arg-type]
            normalise_format(timestamp_format),
        )


def check_columns(mapping: Mapping[str, str], options: CheckOptions, name: str) -> None:
    """Whole-input problems, raised once before any row is read.

    Raises:
        ValidationError: No event source, no member column (when unknown members are
            rejected), or ``since`` / ``until`` without a timestamp column.
    """
    if "event_source" not in mapping and options.source_name is None:
        raise ValidationError(
            f"{name}: no event source column (event_source, source); "
            "map one with columns= / --column, or give one source for the run (--source)"
        )
    if not {"email", "member_id"} & set(mapping) and options.unknown_member == "reject":
        raise ValidationError(
            f"{name}: no email or member_id column; map one (--email-column, "
            "--member-id-column) or send anonymous events (--unknown-member anonymous)"
        )
    if "timestamp" not in mapping and (options.since is not None or options.until is not None):
        raise ValidationError(f"{name}: since/until need a timestamp column")


# -------------------------------------------------------------------------- one chunk


def _unreadable(chunk: RawChunk, canonical: str) -> np.ndarray:
    """Rows whose ``canonical`` value was not text (all False when none)."""
    rows = chunk.unreadable.get(canonical)
    return rows if rows is not None else np.zeros(chunk.num_rows, bool)


def _text(chunk: RawChunk, canonical: str, n: int, case: str | None = None) -> Text:
    """A text column with its unreadable values left out (they have a reason of their own)."""
    text = Text.of(chunk.column(canonical), n, case=case)
    rows = chunk.unreadable.get(canonical)
    if rows is None:
        return text
    return Text(text.values, np.where(rows, -1, text.codes).astype(np.int32))


def check_chunk(
    chunk: RawChunk,
    options: CheckOptions,
    members: MemberIndex | None,
    fingerprints: Fingerprinter,
) -> pa.Table:
    """Validate, resolve and fingerprint one chunk.

    Returns a table with ``file``, ``row``, ``timestamp``, ``email``, ``member_id``,
    ``event_source``, ``country_code``, ``subdivision_code`` (short form), ``is_in_quota``,
    ``fingerprint``, ``status`` (``valid`` / ``invalid`` / ``filtered`` / ``duplicate``) and
    ``problem`` (why a row is invalid or filtered). Text columns are dictionary-encoded.
    """
    n = chunk.num_rows
    problems = Problems(n)
    # Values whose bytes are not text: one reason, and no other check looks at them.
    for canonical, rows in chunk.unreadable.items():
        shown = Text.of(chunk.column(canonical), n)
        problems.add(
            rows, f"{canonical} '{{value}}' is not UTF-8 text (bytes shown as \\x..)", shown
        )
    has_ts = "timestamp" in chunk.mapping
    if has_ts:
        ts_column = chunk.column("timestamp")
        assert ts_column is not None
        reading = chunk.timestamps or TimestampReading("iso", strict=True)
        timestamps, blank_ts, bad_ts = parse_timestamps(ts_column, reading)
        bad_ts &= ~_unreadable(chunk, "timestamp")
        if bad_ts.any():
            problems.add(
                bad_ts,
                f"unparsable timestamp {{value!r}} (the column is read as {reading.describe()})",
                Text.of(ts_column, n),
            )
        problems.add(blank_ts, "blank timestamp")
    else:
        timestamps = pa.nulls(n, TIMESTAMP)

    # Member: the row's member_id when it has one, else its email resolved through the index.
    given = _text(chunk, "member_id", n)
    typed = _text(chunk, "email", n)
    email = Text(email_key_values(typed.values), typed.codes)  # canonical keys
    if "email" in chunk.mapping and members is None:
        raise ValidationError(f"{chunk.source.name}: emails need the members frame to resolve")
    unknown_id = np.zeros(n, bool)
    shared = np.zeros(n, bool)
    resolved = Text(pa.array([], pa.string()), np.full(n, -1, np.int32))
    if members is not None:
        unknown_id = given.present & ~given.rows(as_numpy(members.known_ids(given.values)))
        ids, ambiguous = members.resolve_emails(email.values)
        shared = ~given.present & email.rows(ambiguous)
        if shared.any():  # rare: only then is a text built per distinct email
            owners = Text(members.owners(email.values), email.codes)
            message = "email {value} belongs to several members; give the row a member_id"
            problems.add(shared, message, owners)
        found = email.rows(as_numpy(pc.is_valid(ids)) & ~ambiguous)
        resolved = Text(pc.fill_null(ids, ""), np.where(found, email.codes, -1))
    unknown_email = ~given.present & email.present & ~resolved.present & ~shared
    unreadable = _unreadable(chunk, "member_id") | _unreadable(chunk, "email")
    blank = ~given.present & ~email.present & ~unreadable
    if options.unknown_member == "reject":
        problems.add(unknown_id, "unknown member id {value!r}", given)
        problems.add(unknown_email, "unknown email {value!r}", email)
        if {"email", "member_id"} & set(chunk.mapping):
            problems.add(blank, "blank email / member id")
    # One member id column: the given id (when known), else the email's.
    offset = len(given.values)
    member_codes = np.where(
        given.present & ~unknown_id,
        given.codes,
        np.where(resolved.present, resolved.codes + offset, -1),
    )
    member_id = Text(
        pa.concat_arrays([given.values, resolved.values]), member_codes.astype(np.int32)
    )

    source = _text(chunk, "event_source", n, case="upper")
    if options.source_name is not None:  # the run's source fills rows whose log gives none
        fallback = len(source.values)
        source = Text(
            pa.concat_arrays([source.values, pa.array([options.source_name], pa.string())]),
            np.where(source.present, source.codes, fallback).astype(np.int32),
        )
    length = pc.utf8_length(source.values).to_numpy(zero_copy_only=False)
    problems.add(~source.present & ~_unreadable(chunk, "event_source"), "blank event source")
    problems.add(
        source.rows(length > MAX_SOURCE_LENGTH),
        f"event source {{value!r}} is longer than {MAX_SOURCE_LENGTH} characters",
        source,
    )

    country = _text(chunk, "country_code", n, case="upper")
    sub = _text(chunk, "subdivision_code", n, case="upper")
    country, sub = check_location(country, sub, n, problems)

    in_quota, bad_bool, quota_text = parse_booleans(chunk.column("is_in_quota"), n)
    bad_bool &= ~_unreadable(chunk, "is_in_quota")
    if options.in_quota is None:
        problems.add(bad_bool, "is_in_quota {value!r} is not yes/no/true/false/1/0", quota_text)
    else:  # the run decides; the column is not even looked at
        in_quota = np.full(n, int(options.in_quota), np.int8)

    valid = ~problems.mask
    millis = pc.fill_null(timestamps.cast(pa.int64()), -(2**63)).to_numpy(zero_copy_only=False)
    (key_a, seed_a), (key_b, seed_b) = LANES
    if has_ts:
        ts_part = (splitmix(millis.view(U64) ^ seed_a), splitmix(millis.view(U64) ^ seed_b))
    else:
        ts_part = (np.full(n, _NO_TIME, U64), np.full(n, _NO_TIME, U64))
    # The member part: the given member id, else the email (salted so they never collide).
    ident = [
        np.where(given.present, given.hashes(key), email.hashes(key, _EMAIL_SALT))
        for key in (key_a, key_b)
    ]
    parts = [ts_part, (ident[0], ident[1])] + [
        (text.hashes(key_a), text.hashes(key_b)) for text in (source, country, sub)
    ]
    fingerprint, earlier = fingerprints(parts, valid)

    filtered = np.zeros(n, bool)
    if options.since is not None or options.until is not None:
        stamps = pd.Series(timestamps.to_pandas(), dtype="datetime64[ms, UTC]")
        if options.since is not None:
            early = valid & (stamps < options.since).to_numpy()
            problems.add(early, f"before since ({options.since.isoformat()})")
            filtered |= early
        if options.until is not None:
            late = valid & (stamps >= options.until).to_numpy()
            problems.add(late, f"not before until ({options.until.isoformat()})")
            filtered |= late
    duplicate = valid & ~filtered & earlier
    problems.add(duplicate, "same event as a row of an earlier input in this run")
    status = np.where(~valid, 0, np.where(filtered, 2, np.where(duplicate, 3, 1))).astype(np.int8)
    return pa.table(
        {
            "file": Text.constant(chunk.source.name, n).array(),
            "row": np.arange(chunk.first_row, chunk.first_row + n, dtype=np.int64),
            "timestamp": timestamps,
            "email": email.array(),
            "member_id": member_id.array(),
            "event_source": source.array(),
            "country_code": country.array(),
            "subdivision_code": sub.array(),
            "is_in_quota": pa.array(in_quota != 0),  # blank: PluginLab's default, true
            "fingerprint": fingerprint,
            "status": pa.DictionaryArray.from_arrays(pa.array(status, pa.int8()), _STATUSES),
            "problem": pa.array(problems.texts, pa.string()),
        }
    )


_STATUSES = pa.array(["invalid", "valid", "filtered", "duplicate"])
_NO_TIME = U64(0xA5A5A5A5A5A5A5A5)
_EMAIL_SALT = U64(0x452821E638D01377)


# -------------------------------------------------------------------------- public


def validate_events(
    source: object,
    *,
    members: pd.DataFrame | None = None,
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    in_quota: bool | None = None,
    since: object = None,
    until: object = None,
    unknown_member: UnknownMember = "reject",
    timestamp_format: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> pd.DataFrame:
    """Validate, resolve and fingerprint event logs into one DataFrame (no network).

    For inputs that fit in memory; :func:`plabdata.backfill_events` streams any size.

    Args:
        source: What :func:`plabdata.read_events` accepts (paths, folder, glob, DataFrame).
        members: A ``load_members`` frame (columns ``member_id``, ``email``): resolves emails
            and checks member ids. Needed when the logs have emails.
        columns: Column choices, e.g. ``{"email": "user_mail"}``.
        source_name: The event source of rows whose log gives none (no ``event_source``
            column, or a blank value); a log's own source wins.
        in_quota: Force ``is_in_quota`` for every row (None: the column, default True).
        since: Keep rows at or after this time (ISO 8601, naive: UTC; see
            :func:`~plabdata.events._timestamps.parse_time_bound`); others are ``filtered``.
        until: Keep rows strictly before this time (after ``since``).
        unknown_member: ``"reject"`` rows whose member is unknown or blank, or send them as
            ``"anonymous"`` events (no member id, no quota).
        timestamp_format: How text timestamps are written, when the data cannot say:
            ``"day-first"``, ``"month-first"``, ``"iso"`` or a strptime pattern
            (``"%d/%m/%Y %H:%M"``). None: decided per input from its whole column.
        chunk_rows: Rows validated at a time.

    Returns:
        One row per input row; the columns of :func:`check_chunk` (``status`` valid /
        invalid / filtered / duplicate, ``problem`` saying why).

    Raises:
        ValidationError: A whole-input problem (unreadable file, missing columns, a column
            type that cannot be read, dates whose day/month order is ambiguous), found for
            every input before any row is checked.

    Example:
        >>> checked = validate_events(logs, members=members, source_name="WEB_UI")
        >>> checked.status.value_counts()
    """
    options = CheckOptions.build(
        source_name=source_name,
        in_quota=in_quota,
        since=since,
        until=until,
        unknown_member=unknown_member,
        timestamp_format=timestamp_format,
    )
    index = MemberIndex(members) if members is not None else None
    fingerprints = Fingerprinter()
    inputs = []
    for src in resolve_sources(source):
        names = input_columns(src)
        if names is None:
            continue
        mapping = map_columns(names, columns)
        check_columns(mapping, options, src.name)
        inputs.append(
            (src, mapping, check_input(src, mapping, timestamp_format, chunk_rows=chunk_rows))
        )
    tables = []
    for src, mapping, reading in inputs:
        fingerprints.start_input()
        for chunk in iter_raw_chunks(src, mapping, chunk_rows=chunk_rows, timestamps=reading):
            tables.append(check_chunk(chunk, options, index, fingerprints))
    return checked_frame(tables)


def checked_frame(tables: list[pa.Table]) -> pd.DataFrame:
    """Checked chunks as one DataFrame with plain dtypes (string, boolean, datetime UTC)."""
    if not tables:
        tables = [empty_checked()]
    columns = {}
    for name in tables[0].column_names:
        parts = [_decoded(t.column(name)) for t in tables]
        columns[name] = pa.chunked_array(parts, type=parts[0].type)
    frame: pd.DataFrame = pa.table(columns).to_pandas(types_mapper=_pandas_type)
    return frame


def _decoded(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks()
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def empty_checked() -> pa.Table:
    """A zero-row table with the columns of :func:`check_chunk`."""
    schema = pa.schema(
        [
            ("file", pa.string()),
            ("row", pa.int64()),
            ("timestamp", TIMESTAMP),
            ("email", pa.string()),
            ("member_id", pa.string()),
            ("event_source", pa.string()),
            ("country_code", pa.string()),
            ("subdivision_code", pa.string()),
            ("is_in_quota", pa.bool_()),
            ("fingerprint", pa.string()),
            ("status", pa.string()),
            ("problem", pa.string()),
        ]
    )
    return schema.empty_table()


def _pandas_type(kind: pa.DataType) -> Any:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pd.StringDtype()
    if pa.types.is_boolean(kind):
        return pd.BooleanDtype()
    return None


def quota_impact(events_per_member: pd.DataFrame, quota: pd.DataFrame) -> pd.DataFrame:
    """Which members a backfill would push over their quota.

    Args:
        events_per_member: ``member_id`` and ``in_quota_events`` (events that will count).
        quota: A ``load_quota_usage`` frame: ``member_id``, ``usage_count``, ``usage_limit``,
            ``is_unlimited``, ``interval``.

    Returns:
        One row per member with in-quota events: ``member_id``, ``in_quota_events``,
        ``interval``, ``usage_count``, ``usage_limit``, ``is_unlimited``, ``usage_after``,
        ``over_limit_before``, ``pushed_over_limit``; those pushed over first. All the events
        land in the *current* interval (see :data:`UPLOAD_TIME_NOTE`).

    Example:
        >>> impact = quota_impact(report.events_per_member, load_quota_usage(admin))
        >>> impact[impact.pushed_over_limit]
    """
    wanted = ["member_id", "usage_count", "usage_limit", "is_unlimited", "interval"]
    counts = events_per_member[["member_id", "in_quota_events"]]
    counts = counts[counts["in_quota_events"] > 0]
    joined = counts.merge(quota[wanted], on="member_id", how="left")
    unlimited = joined["is_unlimited"].astype("boolean").fillna(False)
    used = joined["usage_count"].astype("Int64")
    limit = joined["usage_limit"].astype("Int64")
    joined["usage_after"] = used + joined["in_quota_events"].astype("Int64")
    joined["over_limit_before"] = (~unlimited & (used > limit)).fillna(False).astype(bool)
    joined["pushed_over_limit"] = (
        (~unlimited & (used <= limit) & (joined["usage_after"] > limit)).fillna(False).astype(bool)
    )
    order = [
        "member_id",
        "in_quota_events",
        "interval",
        "usage_count",
        "usage_limit",
        "is_unlimited",
        "usage_after",
        "over_limit_before",
        "pushed_over_limit",
    ]
    joined = joined[order].sort_values(
        ["pushed_over_limit", "in_quota_events", "member_id"], ascending=[False, False, True]
    )
    return joined.reset_index(drop=True)
