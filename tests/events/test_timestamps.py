"""Timestamps: one reading per column, day/month order decided from the whole column.

The sample logs are ``data/bad_logs/`` (see its ``make_bad_logs.py``): ``day_first.csv`` and
``month_first.csv`` have 300 rows whose dates read either way but for row 291's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plabdata.client._sync import Admin
from plabdata.emulator import EmulatorHandle
from plabdata.errors import ValidationError
from plabdata.events import _read
from plabdata.events._backfill import backfill_events
from plabdata.events._read import decide_timestamps, map_columns, read_events, resolve_sources
from plabdata.events._timestamps import check_window, parse_time_bound
from plabdata.events._validate import validate_events
from plabdata.members._loaders import load_members

BAD = Path(__file__).resolve().parents[2] / "data" / "bad_logs"
MEMBERS = pd.DataFrame({"member_id": ["mem_ada"], "email": ["ada@example.com"]})


def _check(source: object, **options: Any) -> pd.DataFrame:
    return validate_events(source, members=MEMBERS, **options)


def _log(tmp_path: Path, stamps: list[str], name: str = "log.csv") -> Path:
    path = tmp_path / name
    pd.DataFrame({"timestamp": stamps, "email": "ada@example.com", "source": "WEB"}).to_csv(
        path, index=False
    )
    return path


@pytest.mark.parametrize(
    ("name", "row_2", "proof"),
    [
        ("day_first.csv", "2026-01-03T03:30Z", "2026-03-13T04:30Z"),  # 03/01/2026 03:30
        ("month_first.csv", "2026-01-03T15:30Z", "2026-03-13T16:30Z"),  # 1/3/2026 3:30 PM
    ],
)
def test_the_whole_column_decides_the_order_even_across_chunks(
    name: str, row_2: str, proof: str
) -> None:
    # The only proof of the order is row 291, in the third chunk; the first chunk's dates
    # (all parts <= 12) must be read the way that row proves, not guessed value by value.
    checked = _check(BAD / name, chunk_rows=100)
    assert (checked["status"] == "valid").all()
    stamps = checked.set_index("row")["timestamp"]
    assert stamps[2] == pd.Timestamp(row_2)
    assert stamps[291] == pd.Timestamp(proof)
    assert stamps.dt.month.isin([1, 2, 3]).all()  # no row read with its parts swapped
    chunks = list(read_events(BAD / name, chunk_rows=100))
    assert chunks[0]["timestamp"].iloc[0] == pd.Timestamp(row_2)


def test_since_and_until_keep_the_rows_of_the_column_reading() -> None:
    # 03/01/2026 is 3 January in this day-first log: a month-first guess would keep it.
    checked = _check(BAD / "day_first.csv", since="2026-01-04", until="2026-02-01")
    kept = checked[checked["status"] == "valid"]
    assert len(kept) and kept["timestamp"].between("2026-01-04", "2026-02-01").all()
    assert checked.set_index("row").loc[2, "status"] == "filtered"
    expected = sum(pd.Timestamp("2026-01-04", tz="UTC") <= t < pd.Timestamp("2026-02-01", tz="UTC")
                   for t in checked["timestamp"])  # fmt: skip
    assert len(kept) == expected


def test_an_ambiguous_column_is_one_error_asking_for_the_format() -> None:
    with pytest.raises(ValidationError) as caught:
        _check(BAD / "ambiguous_dates.csv")
    message = str(caught.value)
    assert "ambiguous_dates.csv" in message and "'timestamp'" in message
    assert "timestamp_format='day-first' or 'month-first'" in message
    day_first = _check(BAD / "ambiguous_dates.csv", timestamp_format="day-first")
    assert day_first["timestamp"].iloc[0] == pd.Timestamp("2026-04-01T10:00Z")
    month_first = _check(BAD / "ambiguous_dates.csv", timestamp_format="Month_First")
    assert month_first["timestamp"].iloc[0] == pd.Timestamp("2026-01-04T10:00Z")
    pattern = _check(BAD / "ambiguous_dates.csv", timestamp_format="%d/%m/%Y %H:%M")
    assert pattern["timestamp"].tolist() == day_first["timestamp"].tolist()


def test_an_inconsistent_column_is_one_error_and_a_format_rejects_the_other_rows() -> None:
    with pytest.raises(ValidationError, match=r"mixes date orders: row 3 '13/04/2026'.*row 6"):
        _check(BAD / "mixed_date_orders.csv")
    checked = _check(BAD / "mixed_date_orders.csv", timestamp_format="day-first")
    assert checked["status"].tolist() == ["valid"] * 4 + ["invalid"]
    assert "unparsable timestamp '04/13/2026'" in checked["problem"].iloc[4]
    assert "day-first" in checked["problem"].iloc[4]


def test_a_named_format_is_strict(tmp_path: Path) -> None:
    as_iso = _check(BAD / "day_first.csv", timestamp_format="iso")
    assert (as_iso["status"] == "invalid").all()
    assert "read as ISO 8601" in as_iso["problem"].iloc[0]
    log = _log(tmp_path, ["03/04/2026 10:00", "3.4.2026 10:00", "2026-04-03T10:00:00Z"])
    pattern = _check(log, timestamp_format="%d/%m/%Y %H:%M")
    assert pattern["status"].tolist() == ["valid", "invalid", "invalid"]
    with pytest.raises(ValidationError, match="give 'day-first', 'month-first', 'iso'"):
        _check(log, timestamp_format="european")
    with pytest.raises(ValidationError, match="not a usable pattern"):
        _check(log, timestamp_format="%d/%m/%Y %Q")


def test_an_iso_log_never_guesses_a_stray_day_month_date(tmp_path: Path) -> None:
    stamps = [f"2026-04-{d:02d}T10:00:00Z" for d in range(1, 30)] + ["03/04/2026 10:00"]
    checked = _check(_log(tmp_path, stamps), chunk_rows=10)
    assert checked["status"].tolist() == ["valid"] * 29 + ["invalid"]
    assert "read as ISO 8601" in checked["problem"].iloc[-1]


def test_day_month_times_zones_and_calendar_errors(tmp_path: Path) -> None:
    stamps = [
        "13/04/2026",  # proves day-first
        " 3.4.26 1:05:07.5 PM +05:30",
        "03-04-2026T10:00Z",
        "31/02/2026",  # no such day
        "03/04/2026 25:00",  # no such hour
        "2026-04-03 10:00",  # ISO in a day-first column: unambiguous, read as ISO
    ]
    checked = _check(_log(tmp_path, stamps))
    assert checked["status"].tolist() == ["valid", "valid", "valid", "invalid", "invalid", "valid"]
    assert checked["timestamp"][:3].tolist() == [
        pd.Timestamp("2026-04-13T00:00Z"),
        pd.Timestamp("2026-04-03T07:35:07.5Z"),
        pd.Timestamp("2026-04-03T10:00Z"),
    ]


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        (["1775210400", "1775214000"], "2026-04-03T10:00Z"),
        (["1775210400000", "1775214000000"], "2026-04-03T10:00Z"),
    ],
)
def test_epoch_numbers_in_text_keep_one_unit(
    tmp_path: Path, stamps: list[str], expected: str
) -> None:
    checked = _check(_log(tmp_path, stamps))
    assert checked["status"].tolist() == ["valid", "valid"]
    assert checked["timestamp"].iloc[0] == pd.Timestamp(expected)


def test_the_whole_column_scan_runs_only_for_day_month_dates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[int] = []  # rows of the timestamp column looked at, chunk by chunk
    chunks = _read._column_chunks

    def counting(*args: Any, **kwargs: Any) -> Iterator[tuple[int, pa.Array]]:
        for first, array in chunks(*args, **kwargs):
            read.append(len(array))
            yield first, array

    monkeypatch.setattr(_read, "_column_chunks", counting)

    def decide(path: Path) -> str:
        read.clear()
        src = resolve_sources(path)[0]
        names = _read.input_columns(src) or []
        reading = decide_timestamps(src, map_columns(names), chunk_rows=50)
        assert reading is not None
        return reading.kind

    iso = _log(tmp_path, [f"2026-04-01T00:00:{i % 60:02d}Z" for i in range(300)], "iso.csv")
    assert decide(iso) == "iso" and read == [50]  # the first chunk only
    native = tmp_path / "native.parquet"
    pq.write_table(pa.table({"timestamp": pa.array([0] * 300, pa.timestamp("ms", "UTC"))}), native)
    assert decide(native) == "native" and read == []  # the schema says it all
    assert decide(BAD / "day_first.csv") == "day-first"
    assert read == [50] + [50] * 6  # the first chunk, then the whole column


def test_since_and_until_are_read_by_the_same_rules() -> None:
    assert parse_time_bound("2026-10-01", name="since") == pd.Timestamp("2026-10-01", tz="UTC")
    assert parse_time_bound("2026-10-01T12:00+02:00") == pd.Timestamp("2026-10-01T10:00Z")
    assert parse_time_bound("13/04/2026") == pd.Timestamp("2026-04-13", tz="UTC")
    assert parse_time_bound(pd.Timestamp("2026-10-01")) == pd.Timestamp("2026-10-01", tz="UTC")
    assert parse_time_bound(None) is None
    with pytest.raises(ValidationError, match=r"since '03/04/2026' reads as two dates.*ISO 8601"):
        parse_time_bound("03/04/2026", name="since")
    with pytest.raises(ValidationError, match="a number is not a date/time"):
        parse_time_bound("1775210400", name="until")
    with pytest.raises(ValidationError, match="not a date/time"):
        parse_time_bound("next tuesday", name="since")
    with pytest.raises(ValidationError, match="not a int"):
        parse_time_bound(5, name="since")
    with pytest.raises(ValidationError, match="is not before until"):
        check_window(parse_time_bound("2026-10-02"), parse_time_bound("2026-10-01"))
    log = pd.DataFrame([{"timestamp": "2026-10-01", "email": "ada@example.com", "source": "W"}])
    with pytest.raises(ValidationError, match="is not before until"):
        _check(log, since="2026-10-01", until="2026-10-01")
    with pytest.raises(ValidationError, match="reads as two dates"):
        _check(log, until="03/04/2026")


# -------------------------------------------------------------------------- backfill


@pytest.fixture
def admin(emu: EmulatorHandle) -> Iterator[Admin]:
    emu.set_profile(page_cap=100)  # until load_members asks for pages of 50
    emu.seed(3)
    with Admin(emu.settings.replace(rate_limit=2000, concurrency=8)) as client:
        yield client


def _sent(emu: EmulatorHandle) -> set[str]:
    """The test rows' sources (R00000…) the server received (seeded events aside)."""
    return {k for k in emu.stats()["eventsBySource"] if k.startswith("R0")}


def test_backfill_sends_the_rows_of_the_window_and_nothing_for_an_ambiguous_input(
    admin: Admin, emu: EmulatorHandle, tmp_path: Path
) -> None:
    members = load_members(admin, progress=False)
    email = members["email"].iloc[0]
    # Day-first dates: 02/03 is 2 March, 13/03 proves it. A month-first guess would put
    # rows 0-1 in February and send them.
    days = ["01/03/2026", "02/03/2026", "13/03/2026", "01/04/2026"]
    log = tmp_path / "eu.csv"
    frame = pd.DataFrame(
        {"timestamp": days, "email": email, "source": [f"R{i:05d}" for i in range(4)]}
    )
    frame.to_csv(log, index=False)
    ambiguous = tmp_path / "ambiguous.csv"
    frame.assign(timestamp=["01/03/2026"] * 4).to_csv(ambiguous, index=False)
    journal = tmp_path / "j.sqlite"
    with pytest.raises(ValidationError, match=r"ambiguous\.csv: column 'timestamp'"):
        backfill_events(admin, [log, ambiguous], journal=journal, members=members, progress=False)
    assert _sent(emu) == set()  # the first input was not sent either
    report = backfill_events(
        admin, log, journal=journal, members=members, progress=False,
        since="2026-03-02", until="2026-04-01",
    )  # fmt: skip
    assert report.counts == {"sent": 2, "filtered": 2}
    assert _sent(emu) == {"R00001", "R00002"}
