"""``plabdata events backfill``: preview, apply, re-run, exit codes, the plugin's default journal,
outputs that may not destroy inputs, plabdata's own files skipped, and two runs at once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from plabdata.cli import main
from plabdata.client._sync import Admin
from plabdata.emulator import EmulatorHandle
from plabdata.jobs._journal import Journal

DATA = Path(__file__).resolve().parents[2] / "data"


def _env(emu: EmulatorHandle, *, faults: bool = True) -> dict[str, str]:
    # A announced server limit lets the client go straight to speed (no slow start).
    if faults:
        emu.set_faults(rate_limit=3000)
    pairs = (line.removeprefix("export ").split("=", 1) for line in emu.settings.export_lines())
    return {**dict(pairs), "PLABDATA_RATE_LIMIT": "3000"}


def _backfill(emu: EmulatorHandle, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["events", "backfill", *args, "--no-progress"], env=_env(emu))
    return result.exit_code, result.output


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """The sample log's first 2,100 rows (two of them bad: an unknown and a blank email)."""
    path = tmp_path / "web_ui_events.csv"
    sample = pd.read_csv(DATA / "web_ui_events.csv", dtype=str, keep_default_na=False)
    sample.head(2_100).to_csv(path, index=False)
    return path


@pytest.fixture
def emails(emu: EmulatorHandle) -> list[str]:
    emu.seed(20)
    with Admin(emu.settings) as admin:
        return [member.email for member in admin.list_members_page(limit=20).items]


def export(path: Path, emails: list[str], rows: range, *, bad: tuple[int, ...] = ()) -> Path:
    """Log rows ``rows``; row i has event source R<i>, so the server's counts name it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "timestamp": [f"2026-10-01T00:{i // 60:02d}:{i % 60:02d}Z" for i in rows],
            "email": ["nobody@nowhere.example" if i in bad else emails[i % 20] for i in rows],
            "source": [f"R{i:04d}" for i in rows],
        }
    ).to_csv(path, index=False)
    return path


def sent_per_row(emu: EmulatorHandle) -> dict[str, int]:
    return {k: v for k, v in emu.stats()["eventsBySource"].items() if k.startswith("R")}


def test_preview_then_apply_then_nothing_left_to_send(
    emu: EmulatorHandle, log: Path, tmp_path: Path, plabdata_home: Path
) -> None:
    emu.seed(200)
    env, runner = _env(emu), CliRunner()
    before = emu.stats()["events"]
    command = ["events", "backfill", str(log), "--source", "WEB_UI", "--no-progress"]
    journal = plabdata_home / "journals" / emu.plugin_id / "events.journal"

    preview = runner.invoke(main, command, env=env)
    assert preview.exit_code == 0, preview.output
    assert "2,100 rows: would send 2,098, invalid 2" in preview.output
    assert "unknown email 'former.user@example.org'" in preview.output
    assert "members pushed over their quota" in preview.output
    assert "uploaded, not at the time in the log" in preview.output
    assert "nothing was sent" in preview.output
    assert f"journal: {journal} (new: nothing was sent through it yet)" in preview.output
    assert emu.stats()["events"] == before
    assert not journal.exists()  # a preview creates no journal
    rejected = pd.read_csv(tmp_path / "web_ui_events.csv.rejected.csv", dtype=str)
    assert rejected["row"].tolist() == ["139", "2050"]
    assert "problem" in rejected.columns

    report = tmp_path / "report.parquet"
    applied = runner.invoke(main, [*command, "--apply", "--report", str(report)], env=env)
    assert applied.exit_code == 1, applied.output
    assert "2,100 rows: sent 2,098, invalid 2" in applied.output
    assert "not clean: 2 invalid rows" in applied.output
    assert emu.stats()["events"] == before + 2_098
    assert f"journal: {journal}\n" in applied.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "report.parquet",
        "web_ui_events.csv",
        "web_ui_events.csv.rejected.csv",  # rewritten with the same rows: no copy kept
    ]
    table = pd.read_parquet(report)
    assert len(table) == 2_100 and table["status"].value_counts().to_dict() == {
        "sent": 2_098,
        "invalid": 2,
    }

    again = runner.invoke(main, [*command, "--apply"], env=env)
    assert "sent 0, already-done 2,098, invalid 2" in again.output
    assert emu.stats()["events"] == before + 2_098


def test_clean_apply_exits_zero_and_the_journal_path_can_be_chosen(
    emu: EmulatorHandle, log: Path, tmp_path: Path, plabdata_home: Path
) -> None:
    emu.seed(200)
    frame = pd.read_csv(log, dtype=str, keep_default_na=False).iloc[150:400]
    clean = tmp_path / "clean.csv"
    frame.to_csv(clean, index=False)
    journal = tmp_path / "elsewhere.sqlite"
    code, output = _backfill(
        emu,
        str(clean),
        "--apply",
        "--journal",
        str(journal),
        "--not-in-quota",
        "--concurrency",
        "8",
    )
    assert code == 0, output
    assert "250 rows: sent 250" in output
    assert journal.exists() and not (plabdata_home / "journals").exists()
    backfilled = emu.events()[-250:]
    assert {e["eventSource"] for e in backfilled} <= {"WEB_UI", "MOBILE", "API", "EXTENSION"}
    assert not any(e["isInQuota"] for e in backfilled)


def test_help_and_bad_usage(emu: EmulatorHandle, log: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["events", "backfill", "--help"])
    assert shown.exit_code == 0
    text = " ".join(shown.output.split())
    assert "$PLABDATA_HOME/journals/<plugin id>/events.journal" in text and "--apply" in text
    bad = runner.invoke(main, ["events", "backfill", str(log), "--since", "someday"], env=_env(emu))
    assert bad.exit_code == 2 and "not a date/time" in bad.output
    missing = runner.invoke(main, ["events", "backfill", "nope.csv"], env=_env(emu))
    assert missing.exit_code == 1 and "no such file" in missing.output


# --------------------------------------------------------------------------- the default journal


def test_later_exports_under_other_names_and_orders_send_each_row_once(
    emu: EmulatorHandle, emails: list[str], tmp_path: Path
) -> None:
    # Two dated exports overlapping by 5 rows: with a journal named after the first log, the
    # second export re-sent its 5 overlapping rows (20 events for 15 rows).
    week1 = export(tmp_path / "web_2026-10-01.csv", emails, range(0, 10))
    week2 = export(tmp_path / "web_2026-10-08.csv", emails, range(5, 15))
    assert _backfill(emu, str(week1), "--apply")[0] == 0
    code, output = _backfill(emu, str(week2), "--apply")
    assert code == 0 and "10 rows: sent 5, already-done 5" in output, output
    assert sent_per_row(emu) == {f"R{i:04d}": 1 for i in range(15)}
    # The same files in another order, then a folder whose first file has changed.
    code, output = _backfill(emu, str(week2), str(week1), "--apply")
    assert "20 rows: sent 0, already-done 20" in output, output
    export(tmp_path / "web_2026-09-24.csv", emails, range(15, 20))
    code, output = _backfill(emu, str(tmp_path), "--apply")
    assert code == 0 and "25 rows: sent 5, already-done 20" in output, output
    assert sent_per_row(emu) == {f"R{i:04d}": 1 for i in range(20)}
    assert not list(tmp_path.glob("*journal*"))  # nothing named after a log


# --------------------------------------------------------------------------- output safety


def test_outputs_that_would_destroy_an_input_or_the_journal_are_refused(
    emu: EmulatorHandle, emails: list[str], tmp_path: Path
) -> None:
    log = export(tmp_path / "web.csv", emails, range(10), bad=(3,))
    original = log.read_bytes()
    (tmp_path / "via-symlink.csv").symlink_to(log)
    os.link(log, tmp_path / "via-link.csv")
    journal = tmp_path / "state" / "events.journal"
    journal.parent.mkdir()
    assert _backfill(emu, str(log), "--apply", "--journal", str(journal))[0] == 1  # 1 invalid
    kept = Journal(journal, plugin_id=emu.plugin_id, job="events")
    counts = kept.counts()
    kept.close()
    requests = emu.stats()["requests"]
    refused = {
        ("--rejects", str(log)): "--rejects .*web.csv is the input",
        ("--rejects", str(tmp_path / "via-symlink.csv")): "under another name",
        ("--rejects", str(tmp_path / "via-link.csv")): "under another name",
        ("--report", str(log)): "--report .* is the input",
        ("--report", str(journal)): "would destroy the journal's record",
        ("--rejects", ""): r"--rejects is an empty path \(an unset variable",
    }
    for (option, value), message in refused.items():
        for apply in ([], ["--apply"]):  # a preview writes its outputs too
            code, output = _backfill(
                emu, str(log), option, value, "--journal", str(journal), *apply
            )
            assert code == 1, output
            assert re.search(message, output), output
            assert "nothing was read or written" in output
    code, output = _backfill(emu, str(log), "--report", str(tmp_path))
    assert code == 2 and "is a directory" in output  # click's own check
    code, output = _backfill(emu, str(log), "--journal", str(log), "--apply")
    assert code == 1 and "--journal" in output and "is the input" in output
    assert log.read_bytes() == original
    with Journal(journal, plugin_id=emu.plugin_id, job="events") as after:
        assert after.counts() == counts
    assert emu.stats()["requests"] == requests  # refused before any request


def test_an_empty_log_argument_does_not_read_the_working_folder(
    emu: EmulatorHandle, emails: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export(tmp_path / "web.csv", emails, range(10))
    monkeypatch.chdir(tmp_path)  # what `plabdata events backfill "$LOG"` with LOG unset reads
    code, output = _backfill(emu, "", "--apply")
    assert code == 1 and "an empty path was given as a log" in output
    assert sent_per_row(emu) == {}
    code, output = _backfill(emu, "web.csv", "--apply", "--journal", "")
    assert code == 1 and "--journal is an empty path (an unset variable?)" in output
    assert sent_per_row(emu) == {}


def test_folders_and_globs_skip_plabdata_files_and_keep_the_operators_fixes(
    emu: EmulatorHandle, emails: list[str], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    export(logs / "a.csv", emails, range(10), bad=(4, 7))
    journal = logs / "events.journal"  # everything in one folder, as people do
    first = ["--apply", "--journal", str(journal), "--report", str(logs / "rows.parquet")]
    code, output = _backfill(emu, str(logs), *first)
    assert code == 1 and "10 rows: sent 8, invalid 2" in output, output
    rejects = logs / "a.csv.rejected.csv"
    fixed = rejects.read_text().replace("nobody@nowhere.example", emails[0])
    rejects.write_text(fixed)  # the operator fixes the rejected rows in place

    outputs = []
    for source in (str(logs), str(logs / "*")):
        code, output = _backfill(emu, source, "--apply", "--journal", str(journal))
        outputs.append(output)
        assert "10 rows: sent 0, already-done 8, invalid 2" in output, output
        for name, what in (
            ("events.journal", "an SQLite database (a plabdata journal)"),
            ("rows.parquet", "a per-row report written by plabdata"),
            ("a.csv.rejected.csv", "rejected rows written by plabdata"),
        ):
            if source.endswith("*") or name.endswith(".csv") or name.endswith(".parquet"):
                assert f"skipped {logs / name}: {what}" in output, output
    assert sent_per_row(emu) == {f"R{i:04d}": 1 for i in range(10) if i not in (4, 7)}
    # The run rewrote a.csv.rejected.csv, so the fixed file was kept aside, and said so.
    (kept,) = logs.glob("a.csv.rejected.previous-*.csv")
    assert kept.read_text() == fixed and f"were kept as {kept}" in outputs[0]
    # Named explicitly, fixed rejected rows are read (that is how they are fed back)…
    code, output = _backfill(emu, str(kept), "--apply", "--journal", str(journal))
    assert code == 0 and "2 rows: sent 2" in output, output
    assert sent_per_row(emu) == {f"R{i:04d}": 1 for i in range(10)}
    # …a journal or a per-row report is refused.
    for own in ("events.journal", "rows.parquet"):
        code, output = _backfill(emu, str(logs / own), "--apply", "--journal", str(journal))
        assert code == 1 and "not a log" in output, output


# --------------------------------------------------------------------------- processes


def _child(emu: EmulatorHandle, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", "from plabdata.cli import main; main()", "events"]
    return subprocess.Popen(
        [*command, "backfill", *args, "--no-progress", "--concurrency", "4"],
        env={**os.environ, **_env(emu, faults=False)},  # the test sets the faults
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_runs_through_a_symlink_or_a_hard_link_never_both_send(
    emu: EmulatorHandle, emails: list[str], tmp_path: Path
) -> None:
    log = export(tmp_path / "web.csv", emails, range(300))
    journal = tmp_path / "events.journal"
    emu.set_faults(rate_limit=3000, latency_ms=1000)  # keeps the first run going meanwhile
    first = _child(emu, str(log), "--apply", "--journal", str(journal))
    deadline = time.monotonic() + 60
    while not sent_per_row(emu) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent_per_row(emu), "the first run never started sending"
    (tmp_path / "via-symlink.journal").symlink_to(journal)
    os.link(journal, tmp_path / "via-link.journal")
    for other in ("via-symlink.journal", "via-link.journal"):
        second = _child(emu, str(log), "--apply", "--journal", str(tmp_path / other))
        output, _ = second.communicate(timeout=120)
        assert second.returncode == 1, output
        assert f"held by another run (pid {first.pid})" in output, output
    assert first.poll() is None, "the first run ended before the second was refused"
    emu.set_faults(rate_limit=3000)  # now let it finish
    output, _ = first.communicate(timeout=300)
    assert first.returncode == 0, output
    assert sent_per_row(emu) == {f"R{i:04d}": 1 for i in range(300)}  # not 465


def test_a_run_killed_then_resumed_from_a_copy_of_the_journal_sends_each_row_once(
    emu: EmulatorHandle, emails: list[str], tmp_path: Path
) -> None:
    log = export(tmp_path / "web.csv", emails, range(300))
    journal = tmp_path / "events.journal"
    emu.set_faults(rate_limit=3000, latency_ms=20)
    child = _child(emu, str(log), "--apply", "--journal", str(journal))
    deadline = time.monotonic() + 60
    while sum(sent_per_row(emu).values()) < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    # "Copy the journal": the main file only. All state is in it (no -wal to forget).
    copy = tmp_path / "moved" / "events.journal"
    copy.parent.mkdir()
    copy.write_bytes(journal.read_bytes())
    emu.set_faults(rate_limit=3000)
    code, output = _backfill(emu, str(log), "--apply", "--journal", str(copy))
    counts = sent_per_row(emu)
    assert max(counts.values()) == 1, "a row was sent twice"  # not 478 events for 300 rows
    head = output.splitlines()[1]
    assert head.startswith("300 rows: sent "), output

    def count(status: str) -> int:
        found = re.search(rf"{status} (\d[\d,]*)", head)
        return int(found.group(1).replace(",", "")) if found else 0

    sent, done, doubt = count("sent"), count("already-done"), count("in-doubt")
    assert sent + done + doubt == 300 and done >= 1, output  # the copy held the first run's work
    # The server holds every row reported sent (now or by the first run), and at most the rows
    # in doubt besides: requests in flight at the kill, never re-sent.
    assert sent + done <= len(counts) <= sent + done + doubt
    assert code == (1 if doubt else 0), output


def test_dates_that_read_two_ways_are_refused_until_the_format_is_said(
    emu: EmulatorHandle, emails: list[str], tmp_path: Path
) -> None:
    log = tmp_path / "slash.csv"
    pd.DataFrame(
        {"timestamp": ["03/04/2026 10:00", "05/06/2026 11:00"], "email": emails[:2]}
    ).to_csv(log, index=False)
    base = [str(log), "--source", "WEB_UI"]
    before = emu.stats()["events"]
    code, output = _backfill(emu, *base)
    assert code == 1 and "timestamp_format" in output and "Traceback" not in output
    code, output = _backfill(
        emu,
        *base,
        "--timestamp-format",
        "day-first",
        "--since",
        "2026-04-01",
        "--until",
        "2026-05-01",
    )
    assert code == 0, output
    assert "would send 1" in output and "filtered 1" in output  # 3 April in, 5 June out
    code, output = _backfill(emu, *base, "--since", "03/04/2026")
    assert code == 2 and "ISO 8601" in output
    code, output = _backfill(
        emu,
        *base,
        "--timestamp-format",
        "day-first",
        "--since",
        "2026-05-01",
        "--until",
        "2026-04-01",
    )
    assert code != 0 and "not before" in output
    assert emu.stats()["events"] == before  # previews and refusals send nothing
