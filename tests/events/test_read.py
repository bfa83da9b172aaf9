"""read_events: formats, folders and globs, column recognition, row numbers, streaming."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plabdata.errors import ValidationError
from plabdata.events._read import (
    count_rows,
    input_columns,
    iter_raw_chunks,
    map_columns,
    read_events,
    resolve_sources,
)

DATA = Path(__file__).resolve().parents[2] / "data"
SAMPLES = Path(__file__).resolve().parents[2] / "plabdata" / "samples"


def _log(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Time": [f"2026-10-01T00:{i // 60:02d}:{i % 60:02d}Z" for i in range(n)],
            "userEmail": [f"u{i % 7}@example.com" for i in range(n)],
            "Country": ["US"] * n,
            "path": ["/chat"] * n,
        }
    )


def test_map_columns_recognises_aliases_and_explicit_choices() -> None:
    names = ["Time", "userEmail", "Country", "Region Code", "isInQuota", "source", "path"]
    assert map_columns(names) == {
        "timestamp": "Time",
        "email": "userEmail",
        "event_source": "source",
        "country_code": "Country",
        "subdivision_code": "Region Code",
        "is_in_quota": "isInQuota",
    }
    # Both directions are accepted; the explicit choice wins over recognition.
    assert map_columns(names, {"userEmail": "member_id"})["member_id"] == "userEmail"
    assert map_columns(names, {"path": "event_source"})["event_source"] == "path"
    with pytest.raises(ValidationError, match=r"'mail' .*not in the input"):
        map_columns(names, {"email": "mail"})
    with pytest.raises(ValidationError, match="neither is one of"):
        map_columns(names, {"foo": "bar"})


def test_csv_rows_are_numbered_like_a_spreadsheet_and_streamed(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    _log(250).to_csv(path, index=False)
    chunks = list(read_events(path, columns={"email": "userEmail"}, chunk_rows=100))
    assert [len(c) for c in chunks] == [100, 100, 50]
    first = chunks[0]
    # Header is line 1, so the first record is row 2 — the line number an editor shows.
    assert first["row"].iloc[0] == 2
    assert chunks[-1]["row"].iloc[-1] == 251
    assert list(first.columns) == ["file", "row", "timestamp", "email", "country_code"]
    assert first["email"].dtype == "string"
    assert str(first["timestamp"].dtype) == "datetime64[ms, UTC]"  # read, one way per input
    lines = path.read_text().splitlines()
    text = lines[first["row"].iloc[3] - 1].split(",")[0]
    assert first["timestamp"].iloc[3] == pd.Timestamp(text)


def test_parquet_folder_glob_and_frame_inputs(tmp_path: Path) -> None:
    frame = _log(30)
    frame.iloc[:10].to_parquet(tmp_path / "a.parquet")
    frame.iloc[10:].to_csv(tmp_path / "b.csv", index=False)
    (tmp_path / "notes.txt").write_text("ignored")
    folder = list(read_events(tmp_path, columns={"email": "userEmail"}))
    assert [c["file"].iloc[0] for c in folder] == [
        str(tmp_path / "a.parquet"),
        str(tmp_path / "b.csv"),
    ]
    assert sum(len(c) for c in folder) == 30
    assert folder[1]["row"].iloc[0] == 2  # numbering restarts per file
    globbed = list(read_events(str(tmp_path / "*.csv"), columns={"email": "userEmail"}))
    assert sum(len(c) for c in globbed) == 20
    in_memory = pd.concat(read_events(frame, columns={"email": "userEmail"}, source_name="WEB"))
    assert (in_memory["event_source"] == "WEB").all()
    assert in_memory["row"].tolist() == list(range(2, 32))


def test_parquet_is_read_in_bounded_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pandas(_log(1_000)), path, row_group_size=1_000)
    src = resolve_sources(path)[0]
    mapping = map_columns(input_columns(src) or [])
    sizes = [chunk.num_rows for chunk in iter_raw_chunks(src, mapping, chunk_rows=128)]
    assert max(sizes) == 128 and sum(sizes) == 1_000
    # Unrecognised columns are never read.
    chunk = next(iter_raw_chunks(src, mapping, chunk_rows=128))
    assert "path" not in chunk.table.column_names


def test_row_counts_for_the_eta(tmp_path: Path) -> None:
    frame = _log(123)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet")
    (tmp_path / "no_newline.csv").write_text("a,b\n1,2\n3,4")
    counts = {p.name: count_rows(resolve_sources(p)[0]) for p in sorted(tmp_path.iterdir())}
    assert counts == {"a.csv": 123, "a.parquet": 123, "no_newline.csv": 2}
    assert count_rows(resolve_sources(SAMPLES / "web_ui_events.parquet")[0]) == 30_000


def test_whole_file_problems_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no such file"):
        resolve_sources(tmp_path / "missing.csv")
    with pytest.raises(ValidationError, match="no files match"):
        resolve_sources(str(tmp_path / "*.parquet"))
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1" + b"\x00garbage" * 100)
    with pytest.raises(ValidationError, match=r"corrupt\.parquet: not a readable parquet file"):
        list(read_events(corrupt))


def test_empty_files_have_no_rows(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header_only.csv").write_text("timestamp,email\n")
    assert list(read_events(tmp_path / "empty.csv")) == []
    assert sum(len(c) for c in read_events(tmp_path / "header_only.csv")) == 0
