"""Odd inputs: CSV encodings and delimiters, files that are not text, Arrow column types.

Each either reads correctly or is refused with one ``ValidationError`` naming the file, the
column, its type and what to do — never a pyarrow traceback. The committed samples are in
``data/bad_logs/`` (see its ``make_bad_logs.py``); type matrices are written per test.
"""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plabdata.client._sync import Admin
from plabdata.emulator import EmulatorHandle
from plabdata.errors import ValidationError
from plabdata.events._backfill import backfill_events
from plabdata.events._read import read_events
from plabdata.events._validate import validate_events
from plabdata.members._loaders import load_members
from plabdata.tables._text import decode_text, sniff_text

BAD = Path(__file__).resolve().parents[2] / "data" / "bad_logs"
MEMBERS = pd.DataFrame(
    {
        "member_id": ["mem_ada", "mem_jose", "mem_zoe", "1001"],
        "email": ["ada@example.com", "josé@exemple.fr", "zoë@example.com", "n@example.com"],
    }
)
AT = pd.Timestamp("2026-10-01T10:00:00Z")


def _check(source: object, **options: Any) -> pd.DataFrame:
    return validate_events(source, members=MEMBERS, **options)


# -------------------------------------------------------------------------- text files


@pytest.mark.parametrize("name", ["cp1252_semicolon.csv", "utf16_tab.csv", "utf8_bom_pipe.csv"])
def test_csv_in_any_common_encoding_and_delimiter_reads_like_utf8(name: str) -> None:
    frame = pd.concat(read_events(BAD / name))
    assert list(frame.columns) == [
        "file", "row", "timestamp", "email", "event_source", "country_code",
    ]  # fmt: skip
    assert frame["email"].tolist() == ["josé@exemple.fr", "zoë@example.com", "ada@example.com"]
    assert frame["row"].tolist() == [2, 3, 4]
    checked = _check(BAD / name)
    assert checked["status"].tolist() == ["valid"] * 3
    assert checked["member_id"].tolist() == ["mem_jose", "mem_zoe", "mem_ada"]
    assert checked["timestamp"].iloc[0] == AT


def test_files_that_are_not_text_are_one_clear_refusal() -> None:
    with pytest.raises(ValidationError, match=r"not_text\.csv: not a readable text file"):
        _check(BAD / "not_text.csv")
    with pytest.raises(ValidationError, match=r"workbook\.csv: not a text file: .*xlsx"):
        list(read_events(BAD / "workbook.csv"))


def test_windows_1252_reads_every_byte(tmp_path: Path) -> None:
    # 0x81 and 0x9D are undefined in Python's cp1252: a strict decoder would stop mid-file.
    path = tmp_path / "log.csv"
    path.write_bytes(
        b"timestamp;email;source\r\n"
        b"2026-10-01T10:00:00Z;jos\xe9@exemple.fr;WEB\r\n"
        b"2026-10-01T10:00:01Z;ada@example.com;W\x81\x9d\r\n"
    )
    checked = _check(path)
    assert checked["status"].tolist() == ["valid", "valid"]
    assert checked["event_source"].tolist() == ["WEB", "W\x81\x9d"]
    assert decode_text("é;€\n".encode("cp1252"), "x.csv")[0] == "é;€\n"


def test_bytes_that_are_not_utf8_past_the_sniffed_start_reject_their_row_only(
    tmp_path: Path,
) -> None:
    # UTF-8 (with an é early on) for more than the first MiB, then one Latin-1 byte.
    lines = [b"timestamp,email,source"]
    for i in range(30_000):
        email = b"jos\xc3\xa9@exemple.fr" if i == 0 else b"ada@example.com"
        if i == 29_000:  # ~1.19 MB in
            email = b"zo\xeb@example.com"  # Latin-1, not UTF-8
        lines.append(b"2026-10-01T10:%02d:%02dZ,%s,WEB" % (i // 60 % 60, i % 60, email))
    path = tmp_path / "big.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert path.stat().st_size > 1 << 20
    checked = _check(path, chunk_rows=10_000)
    bad = checked[checked["status"] == "invalid"]
    assert bad["row"].tolist() == [29_002]
    assert (
        bad["problem"].iloc[0]
        == "email 'zo\\xeb@example.com' is not UTF-8 text (bytes shown as \\x..)"
    )
    assert checked.loc[0, "member_id"] == "mem_jose"
    assert (checked["status"] == "valid").sum() == 29_999


def test_compressed_csv_is_sniffed_on_its_text(tmp_path: Path) -> None:
    path = tmp_path / "log.csv.gz"
    path.write_bytes(gzip.compress((BAD / "cp1252_semicolon.csv").read_bytes()))
    assert _check(path)["member_id"].tolist() == ["mem_jose", "mem_zoe", "mem_ada"]


def test_sniffing_rules() -> None:
    assert sniff_text(b"a|b|c\n1|2|3\n", "x").delimiter == "|"
    assert sniff_text(b"a\tb\n", "x").delimiter == "\t"
    assert sniff_text("a;b\n".encode("utf-16-le"), "x").encoding == "utf-16-le"
    assert sniff_text(b"\xef\xbb\xbfa,b\n", "x").encoding == "utf-8-sig"
    assert sniff_text(b"single\n", "x").delimiter == ","
    with pytest.raises(ValidationError, match="gzip-compressed"):
        sniff_text(gzip.compress(b"a,b\n"), "log.csv")


# -------------------------------------------------------------------------- Parquet types


def test_parquet_text_columns_of_other_types() -> None:
    binary = _check(BAD / "source_binary.parquet")
    assert binary["event_source"].tolist()[:3] == ["WEB_UI", "API", "WEB_UI"]
    assert binary["status"].tolist() == ["valid"] * 3 + ["invalid"]
    assert "event_source 'WEB\\xff' is not UTF-8 text" in binary["problem"].iloc[3]
    numbers = _check(BAD / "source_dictionary_ints.parquet")
    assert numbers["event_source"].tolist() == ["7", "42", "7", "42"]
    assert (numbers["status"] == "valid").all()
    paris = _check(BAD / "timestamps_paris.parquet")  # int64 member ids, Paris times
    assert paris["member_id"].tolist() == ["1001", "1001"]
    assert paris["timestamp"].tolist() == [AT, AT + pd.Timedelta(minutes=30)]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("source_list.parquet", r"'event_source' \(event_source\) has type list<.*a list"),
        ("source_struct.parquet", r"'event_source' \(event_source\) has type struct<.*field"),
        ("time_of_day.parquet", r"'timestamp' \(timestamp\) has type time64\[us\], a time of day"),
    ],
)
def test_parquet_columns_that_cannot_hold_their_values_are_refused(name: str, message: str) -> None:
    with pytest.raises(ValidationError, match=rf"{name}: column {message}"):
        _check(BAD / name)
    with pytest.raises(ValidationError, match="columns="):
        list(read_events(BAD / name))


def _stamps(kind: pa.DataType) -> pa.Array:
    if pa.types.is_date(kind):
        return pa.array([dt.date(2026, 10, 1)], kind)
    if kind.tz is None:  # naive: taken as UTC
        return pa.array([dt.datetime(2026, 10, 1, 10)], kind)
    return pa.array([dt.datetime(2026, 10, 1, 10, tzinfo=dt.UTC)], kind)


@pytest.mark.parametrize(
    "kind",
    [
        pa.timestamp(unit, tz)
        for unit in ("s", "ms", "us", "ns")
        for tz in (None, "UTC", "Europe/Paris", "+05:30", "America/New_York")
    ]
    + [pa.date32(), pa.date64()],
    ids=str,
)
def test_every_arrow_time_type_reads_as_the_same_instant(tmp_path: Path, kind: pa.DataType) -> None:
    path = tmp_path / "log.parquet"
    table = pa.table({"ts": _stamps(kind), "email": ["ada@example.com"], "source": ["WEB"]})
    pq.write_table(table, path)
    checked = _check(path)
    assert checked["status"].tolist() == ["valid"]
    expected = pd.Timestamp("2026-10-01", tz="UTC") if pa.types.is_date(kind) else AT
    assert checked["timestamp"].iloc[0] == expected
    assert next(read_events(path))["timestamp"].iloc[0] == expected


@pytest.mark.parametrize(
    ("column", "values", "expected"),
    [
        ("email", pa.array(["ada@example.com"], pa.large_string()), "ada@example.com"),
        ("email", pa.array(["ada@example.com"], pa.string_view()), "ada@example.com"),
        ("email", pa.array([b"ada@example.com"], pa.large_binary()), "ada@example.com"),
        ("member_id", pa.array([1001.0], pa.float64()), "1001"),
        ("ts", pa.array([1_790_848_800_000], pa.int64()), AT),
        ("ts", pa.array(["2026-10-01T10:00:00Z"]).dictionary_encode(), AT),
        ("ts", pa.array([b"2026-10-01T10:00:00Z"], pa.binary()), AT),
        ("in_quota", pa.array([0], pa.int8()), False),
        ("in_quota", pa.array([None], pa.null()), True),  # blank: PluginLab's default
    ],
    ids=lambda v: str(getattr(v, "type", v)),
)
def test_other_column_types_read_as_what_they_mean(
    tmp_path: Path, column: str, values: pa.Array, expected: object
) -> None:
    columns: dict[str, pa.Array] = {
        "ts": pa.array([AT.to_pydatetime()], pa.timestamp("ms", "UTC")),
        "email": pa.array(["ada@example.com"]),
        "source": pa.array(["WEB"]),
        "in_quota": pa.array([True]),
    }
    if column == "member_id":
        del columns["email"]
    columns[column] = values
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table(columns), path)
    checked = _check(path)
    assert checked["status"].tolist() == ["valid"], checked["problem"].tolist()
    field = {"ts": "timestamp", "in_quota": "is_in_quota"}.get(column, column)
    assert checked[field].iloc[0] == expected


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("source", pa.array([True]), "type bool, booleans, where text is expected"),
        ("ts", pa.array([dt.timedelta(hours=1)]), "a duration, not a point in time"),
        ("in_quota", pa.array([AT.to_pydatetime()]), "expected booleans"),
        ("email", pa.array([{"a": 1}]), "a struct"),
        ("email", pa.array([{"k": "v"}], pa.map_(pa.string(), pa.string())), "a map"),
    ],
    ids=lambda v: str(getattr(v, "type", v)),
)
def test_other_column_types_are_refused_by_name(
    tmp_path: Path, column: str, values: pa.Array, message: str
) -> None:
    columns = {
        "ts": pa.array([AT.to_pydatetime()]),
        "email": pa.array(["ada@example.com"]),
        "source": pa.array(["WEB"]),
        "in_quota": pa.array([True]),
    }
    columns[column] = values
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table(columns), path)
    with pytest.raises(ValidationError, match=rf"odd\.parquet: column '{column}'.*{message}"):
        _check(path)


def test_dataframe_columns_mixing_types(tmp_path: Path) -> None:
    mixed = pd.DataFrame(
        {
            "timestamp": ["2026-10-01T10:00:00Z", AT],
            "member_id": ["mem_ada", 1001],  # an object column of str and int
            "source": ["WEB", "WEB"],
        }
    )
    checked = _check(mixed)
    assert checked["member_id"].tolist() == ["mem_ada", "1001"]
    assert (checked["status"] == "valid").all()
    lists = mixed.assign(source=[["WEB"], "WEB"])
    with pytest.raises(ValidationError, match=r"<frame>: column 'source' holds list values"):
        _check(lists)


# -------------------------------------------------------------------------- backfill


@pytest.fixture
def admin(emu: EmulatorHandle) -> Iterator[Admin]:
    emu.set_profile(page_cap=100)  # until load_members asks for pages of 50
    emu.seed(2)
    with Admin(emu.settings.replace(rate_limit=2000, concurrency=8)) as client:
        yield client


def test_backfill_reads_a_windows_export_and_refuses_a_bad_type_before_sending(
    admin: Admin, emu: EmulatorHandle, tmp_path: Path
) -> None:
    members = load_members(admin, progress=False)
    rows = [f"2026-10-01T10:00:0{i}Z;{e};R0000{i}" for i, e in enumerate(members["email"])]
    log = tmp_path / "export.csv"
    log.write_bytes("\r\n".join(["time;email;source", *rows]).encode("utf-16"))
    listed = tmp_path / "listed.parquet"
    listed_table = {"timestamp": [AT.to_pydatetime()], "email": [["x"]], "source": ["R9"]}
    pq.write_table(pa.table(listed_table), listed)
    journal = tmp_path / "j.sqlite"
    with pytest.raises(ValidationError, match=r"listed\.parquet: column 'email'"):
        backfill_events(admin, [log, listed], journal=journal, members=members, progress=False)
    assert not [k for k in emu.stats()["eventsBySource"] if k.startswith("R0")]
    report = backfill_events(admin, log, journal=journal, members=members, progress=False)
    assert report.counts == {"sent": len(members)}
    assert sorted(k for k in emu.stats()["eventsBySource"] if k.startswith("R0")) == [
        f"R0000{i}" for i in range(len(members))
    ]
    sent = emu.events(source="R00000")[0]
    assert sent["memberId"] == members["member_id"].iloc[0]


def test_paris_timestamps_filter_on_the_instant() -> None:
    paris = ZoneInfo("Europe/Paris")
    frame = pd.DataFrame(
        {
            "timestamp": [dt.datetime(2026, 10, 1, h, tzinfo=paris) for h in (11, 12, 13)],
            "email": "ada@example.com",
            "source": "WEB",
        }
    )
    checked = _check(frame, since="2026-10-01T10:00:00Z")  # 12:00 in Paris
    assert checked["status"].tolist() == ["filtered", "valid", "valid"]
