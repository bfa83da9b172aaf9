"""Write the awkward event logs in ``data/bad_logs/`` (deterministic).

Each file is one way a real export differs from a clean UTF-8 CSV with ISO times;
``tests/events/test_odd_inputs.py`` and ``tests/events/test_timestamps.py`` hold what
``read_events`` / ``validate_events`` / ``backfill_events`` must make of each. The members
they name are :data:`MEMBERS` (``jurgen`` is stored with a punycode domain).

=========================== ==============================================================
cp1252_semicolon.csv        Windows-1252, ``;``, CRLF, accented emails — all valid
utf16_tab.csv               UTF-16 with BOM, tab-delimited (Excel's "Unicode text") — valid
utf8_bom_pipe.csv           UTF-8 with BOM, ``|``-delimited — valid
not_text.csv                binary bytes named .csv → one ValidationError
workbook.csv                an .xlsx workbook named .csv → one ValidationError
day_first.csv               300 rows dd/mm/yyyy HH:MM; only row 291 has a day above 12
month_first.csv             300 rows m/d/yyyy h:mm AM/PM; only row 291 has a day above 12
ambiguous_dates.csv         dd/mm or mm/dd: no part above 12 → one ValidationError
mixed_date_orders.csv       row 3 proves day-first, row 6 month-first → one ValidationError
german_dotted.csv           cp1252, ``;``, dd.mm.yyyy HH:MM:SS, ``jürgen@münchen.de``
source_binary.parquet       event_source as binary; row 4's bytes are not UTF-8
source_list.parquet         event_source as list<string> → one ValidationError
source_struct.parquet       event_source as struct<name, version> → one ValidationError
source_dictionary_ints.parquet  event_source as dictionary<int8, int64> (source numbers)
timestamps_paris.parquet    timestamp[us, tz=Europe/Paris], member ids as int64 digits
time_of_day.parquet         timestamp as time64 (no date) → one ValidationError
=========================== ==============================================================

    python data/bad_logs/make_bad_logs.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
#: The members the logs name (member_id, email as PluginLab stores it).
MEMBERS = {
    "mem_ada": "ada@example.com",
    "mem_jose": "josé@exemple.fr",
    "mem_zoe": "zoë@example.com",
    "mem_jurgen": "jürgen@xn--mnchen-3ya.de",
    "1001": "numbers@example.com",
}
DATE_ROWS = 300
#: The one row (spreadsheet numbering) of day_first.csv / month_first.csv above 12.
PROOF_ROW = 291


def _write(name: str, text: str, encoding: str = "utf-8") -> None:
    (HERE / name).write_bytes(text.encode(encoding))


def _lines(rows: list[list[str]], delimiter: str, newline: str = "\n") -> str:
    return newline.join(delimiter.join(row) for row in rows) + newline


def _dated(name: str, stamp: str) -> None:
    """DATE_ROWS rows whose dates' parts are all ≤ 12, but the PROOF_ROW's (13th of March)."""
    rows = [["timestamp", "email", "source"]]
    for row in range(2, DATE_ROWS + 2):
        day, month = 1 + row % 12, 1 + (row // 12) % 3  # both ≤ 12: either order reads
        if row == PROOF_ROW:
            day, month = 13, 3
        rows.append(
            [stamp.format(day=day, month=month, hour=1 + row % 12), "ada@example.com", "WEB"]
        )
    _write(name, _lines(rows, ","))


def text_files() -> None:
    valid = [
        ["timestamp", "email", "source", "country"],
        ["2026-10-01T10:00:00Z", "josé@exemple.fr", "WEB_UI", "FR"],
        ["2026-10-01T10:05:00Z", "zoë@example.com", "WEB_UI", "GB"],
        ["2026-10-01T10:10:00Z", "ada@example.com", "API", "US"],
    ]
    _write("cp1252_semicolon.csv", _lines(valid, ";", "\r\n"), "cp1252")
    _write("utf16_tab.csv", _lines(valid, "\t", "\r\n"), "utf-16")
    _write("utf8_bom_pipe.csv", _lines(valid, "|"), "utf-8-sig")
    (HERE / "not_text.csv").write_bytes(bytes(range(256)) * 8)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in valid:
        sheet.append(row)
    book.save(HERE / "workbook.csv")
    _dated("day_first.csv", "{day:02d}/{month:02d}/2026 {hour:02d}:30")
    _dated("month_first.csv", "{month}/{day}/2026 {hour}:30 PM")
    _write(
        "ambiguous_dates.csv",
        _lines(
            [["timestamp", "email", "source"]]
            + [[f"0{d}/04/2026 10:00", "ada@example.com", "WEB"] for d in range(1, 10)],
            ",",
        ),
    )
    _write(
        "mixed_date_orders.csv",
        _lines(
            [
                ["timestamp", "email", "source"],
                ["03/04/2026", "ada@example.com", "WEB"],
                ["13/04/2026", "ada@example.com", "WEB"],
                ["05/04/2026", "ada@example.com", "WEB"],
                ["06/04/2026", "ada@example.com", "WEB"],
                ["04/13/2026", "ada@example.com", "WEB"],
            ],
            ",",
        ),
    )
    _write(
        "german_dotted.csv",
        _lines(
            [
                ["Zeitpunkt", "E-Mail", "Quelle", "Land"],
                ["03.04.2026 10:00:00", "jürgen@münchen.de", "WEB_UI", "DE"],
                ["25.04.2026 18:30:00", "Jürgen@MÜNCHEN.de", "WEB_UI", "DE"],
                ["01.05.2026 08:15:00", "ada@example.com", "WEB_UI", "DE"],
            ],
            ";",
            "\r\n",
        ),
        "cp1252",
    )


def parquet_files() -> None:
    stamps = pa.array(
        [dt.datetime(2026, 10, 1, 10, m, tzinfo=dt.UTC) for m in range(4)],
        pa.timestamp("ms", "UTC"),
    )
    emails = pa.array(["ada@example.com"] * 4)
    pq.write_table(
        pa.table(
            {
                "timestamp": stamps,
                "email": emails,
                "event_source": pa.array([b"WEB_UI", b"API", b"WEB_UI", b"WEB\xff"], pa.binary()),
            }
        ),
        HERE / "source_binary.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "timestamp": stamps,
                "email": emails,
                "event_source": pa.array([["WEB_UI"], ["API", "WEB_UI"], [], None]),
            }
        ),
        HERE / "source_list.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "timestamp": stamps,
                "email": emails,
                "event_source": pa.array([{"name": "WEB_UI", "version": 2}] * 4),
            }
        ),
        HERE / "source_struct.parquet",
    )
    numbers = (
        pa.array([7, 42, 7, 42], pa.int64())
        .dictionary_encode()
        .cast(pa.dictionary(pa.int8(), pa.int64()))
    )
    pq.write_table(
        pa.table({"timestamp": stamps, "email": emails, "event_source": numbers}),
        HERE / "source_dictionary_ints.parquet",
    )
    paris = [dt.datetime(2026, 10, 1, 12, m, tzinfo=ZoneInfo("Europe/Paris")) for m in (0, 30)]
    pq.write_table(
        pa.table(
            {
                # 12:00 in Paris (CEST, UTC+2) is 10:00 UTC.
                "timestamp": pa.array(paris, pa.timestamp("us", "Europe/Paris")),
                "member_id": pa.array([1001, 1001], pa.int64()),
                "event_source": pa.array(["WEB_UI", "WEB_UI"]),
            }
        ),
        HERE / "timestamps_paris.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "timestamp": pa.array([dt.time(10, 0), dt.time(11, 0)], pa.time64("us")),
                "email": pa.array(["ada@example.com"] * 2),
                "event_source": pa.array(["WEB_UI"] * 2),
            }
        ),
        HERE / "time_of_day.parquet",
    )


def main() -> None:
    text_files()
    parquet_files()


if __name__ == "__main__":
    main()
