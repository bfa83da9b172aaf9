"""Output safety: outputs compared with inputs and the journal as files (links, spellings,
files not yet written), plabdata's own outputs recognised by content, rows-to-fix kept."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plabdata.errors import ValidationError
from plabdata.jobs._journal import Journal
from plabdata.jobs._outputs import (
    OUTPUT_KEY,
    REJECTS_MARK,
    ROWS_MARK,
    check_outputs,
    collect_skipped,
    own_output,
    set_aside,
    settle_aside,
    skip_own_outputs,
)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "web.csv"
    path.write_text("timestamp,email\n2026-10-01T00:00:00Z,a@example.com\n")
    return path


def test_an_output_that_is_an_input_is_refused_however_it_is_spelled(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sym.csv").symlink_to(log)
    os.link(log, tmp_path / "hard.csv")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    for spelling in (log, "web.csv", "./web.csv", "sub/../web.csv", "sym.csv", "hard.csv"):
        with pytest.raises(ValidationError, match=r"--rejects .* is the input .*web.csv"):
            check_outputs([log], {"--rejects": spelling})
    with pytest.raises(ValidationError, match="under another name"):
        check_outputs([log], {"--rejects": "hard.csv"})
    check_outputs([log], {"--rejects": "web.csv.rejected.csv"})  # another file: fine


def test_an_output_that_is_the_journal_is_refused_even_before_either_exists(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "state" / "events.journal"
    (tmp_path / "state").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "state")
    with pytest.raises(ValidationError, match="would destroy the journal's record"):
        check_outputs([], {"--report": tmp_path / "alias" / "events.journal"}, journal)
    Journal(journal, plugin_id="p", job="events").close()
    with pytest.raises(ValidationError, match=r"--report .* is the --journal"):
        check_outputs([], {"--report": journal}, journal, journal_name="--journal")
    # Another journal than this run's is no output either.
    with pytest.raises(ValidationError, match="is an SQLite database"):
        check_outputs([], {"--report": journal}, tmp_path / "other.journal")


def test_the_journal_may_not_be_an_input_nor_two_outputs_one_file(
    log: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match=r"--journal .*web.csv is the input"):
        check_outputs([log], {}, log, journal_name="--journal")
    with pytest.raises(ValidationError, match="--out and --failed-out are the same file"):
        check_outputs([log], {"--out": tmp_path / "r.csv", "--failed-out": tmp_path / "r.csv"})


def test_empty_paths_and_folders_are_refused(log: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"--rejects is an empty path \(an unset variable"):
        check_outputs([log], {"--rejects": ""})
    with pytest.raises(ValidationError, match="empty path"):
        check_outputs([log], {}, "  ")
    with pytest.raises(ValidationError, match="is a folder"):
        check_outputs([log], {"--report": tmp_path})


# --------------------------------------------------------------------------- recognising


def _parquet(path: Path, mark: bytes | None) -> Path:
    schema = pa.schema([("row", pa.int64())], metadata={OUTPUT_KEY: mark} if mark else None)
    pq.write_table(pa.table({"row": [2]}, schema=schema), path)
    return path


def test_own_outputs_are_recognised_by_what_plabdata_writes(tmp_path: Path) -> None:
    journal = tmp_path / "logs.csv"  # a journal with a log's name is still a journal
    Journal(journal, plugin_id="p", job="events").close()
    (tmp_path / "logs.csv-journal").write_bytes(b"")  # a sidecar: named after a database
    (tmp_path / "logs.csv-wal").write_bytes(bytes.fromhex("377f0682") + b"\0" * 28)
    (tmp_path / "logs.csv.lock").write_text("1234")
    rows = _parquet(tmp_path / "rows.parquet", ROWS_MARK)
    rejects_pq = _parquet(tmp_path / "bad.parquet", REJECTS_MARK)
    plain_pq = _parquet(tmp_path / "plain.parquet", None)
    named = tmp_path / "web.csv.rejected.csv"
    named.write_text("row,email,problem\n3,x,bad email\n")
    chosen = tmp_path / "fix_me.csv"  # a --rejects name of the operator's choice
    chosen.write_text('"file","row","email","problem"\n"a.csv",3,"x","bad email"\n')
    log = tmp_path / "web.csv"
    log.write_text("row,email,problem_kind\n1,a@example.com,none\n")
    kinds = {
        p.name: (found.kind if (found := own_output(p)) else None)
        for p in sorted(tmp_path.iterdir())
    }
    assert kinds == {
        "bad.parquet": "rejects",
        "fix_me.csv": "rejects",
        "logs.csv": "journal",
        "logs.csv-journal": "journal",
        "logs.csv-wal": "journal",
        "logs.csv.lock": "journal",
        "plain.parquet": None,
        "rows.parquet": "rows",
        "web.csv": None,
        "web.csv.rejected.csv": "rejects",
    }
    assert rows and rejects_pq and plain_pq


def test_skipped_files_are_said_never_dropped_silently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Journal(tmp_path / "j.journal", plugin_id="p", job="events").close()
    log = tmp_path / "a.csv"
    log.write_text("timestamp\n")
    with caplog.at_level(logging.WARNING, logger="plabdata.inputs"):
        assert skip_own_outputs([log, tmp_path / "j.journal"]) == [log]
    assert "skipped" in caplog.text and "j.journal: an SQLite database" in caplog.text
    with collect_skipped() as notes:
        skip_own_outputs([tmp_path / "j.journal"])
    assert notes == [
        f"skipped {tmp_path / 'j.journal'}: an SQLite database (a plabdata journal), not a log"
    ]


# --------------------------------------------------------------------------- keeping fixes


def test_a_rows_to_fix_file_is_kept_unless_rewritten_identically(tmp_path: Path) -> None:
    path = tmp_path / "web.csv.rejected.csv"
    path.write_text("row,problem\n3,bad email\n")
    aside = set_aside(path)
    assert aside is not None and not path.exists()
    assert aside.name.startswith("web.csv.rejected.previous-") and aside.suffix == ".csv"
    assert own_output(aside) is not None  # a folder input skips the kept copy too
    path.write_text("row,problem\n3,bad email\n")
    assert settle_aside(path, aside, "rejected rows") is None and not aside.exists()
    path.write_text("row,problem\n3,fixed@example.com\n")  # the operator's fix
    aside = set_aside(path)
    path.write_text("row,problem\n3,bad email\n")
    note = settle_aside(path, aside, "rejected rows")
    assert note is not None and str(aside) in note
    assert aside is not None and "fixed@example.com" in aside.read_text()
    assert set_aside(tmp_path / "absent.csv") is None


def test_pandas_still_reads_marked_parquet(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "rows.parquet", ROWS_MARK)
    assert pd.read_parquet(path)["row"].tolist() == [2]
