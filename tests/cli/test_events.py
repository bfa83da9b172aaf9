"""``plabdata events backfill``: preview, apply, re-run, exit codes, files next to the logs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from plabdata.cli import main
from plabdata.emulator import EmulatorHandle

DATA = Path(__file__).resolve().parents[2] / "data"


def _env(emu: EmulatorHandle) -> dict[str, str]:
    # A announced server limit lets the client go straight to speed (no slow start).
    emu.set_faults(rate_limit=3000)
    pairs = (line.removeprefix("export ").split("=", 1) for line in emu.settings.export_lines())
    return {**dict(pairs), "PLABDATA_RATE_LIMIT": "3000"}


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """The sample log's first 2,100 rows (two of them bad: an unknown and a blank email)."""
    path = tmp_path / "web_ui_events.csv"
    sample = pd.read_csv(DATA / "web_ui_events.csv", dtype=str, keep_default_na=False)
    sample.head(2_100).to_csv(path, index=False)
    return path


def test_preview_then_apply_then_nothing_left_to_send(
    emu: EmulatorHandle, log: Path, tmp_path: Path
) -> None:
    emu.seed(200)
    env, runner = _env(emu), CliRunner()
    before = emu.stats()["events"]
    command = ["events", "backfill", str(log), "--source", "WEB_UI", "--no-progress"]

    preview = runner.invoke(main, command, env=env)
    assert preview.exit_code == 0, preview.output
    assert "2,100 rows: would send 2,098, invalid 2" in preview.output
    assert "unknown email 'former.user@example.org'" in preview.output
    assert "members pushed over their quota" in preview.output
    assert "uploaded, not at the time in the log" in preview.output
    assert "nothing was sent" in preview.output
    assert emu.stats()["events"] == before
    rejected = pd.read_csv(tmp_path / "web_ui_events.csv.rejected.csv", dtype=str)
    assert rejected["row"].tolist() == ["139", "2050"]
    assert "problem" in rejected.columns

    report = tmp_path / "report.parquet"
    applied = runner.invoke(main, [*command, "--apply", "--report", str(report)], env=env)
    assert applied.exit_code == 1, applied.output
    assert "2,100 rows: sent 2,098, invalid 2" in applied.output
    assert "not clean: 2 invalid rows" in applied.output
    assert emu.stats()["events"] == before + 2_098
    assert (tmp_path / "web_ui_events.csv.journal.sqlite").exists()
    table = pd.read_parquet(report)
    assert len(table) == 2_100 and table["status"].value_counts().to_dict() == {
        "sent": 2_098,
        "invalid": 2,
    }

    again = runner.invoke(main, [*command, "--apply"], env=env)
    assert "sent 0, already-done 2,098, invalid 2" in again.output
    assert emu.stats()["events"] == before + 2_098


def test_clean_apply_exits_zero_and_the_journal_path_can_be_chosen(
    emu: EmulatorHandle, log: Path, tmp_path: Path
) -> None:
    emu.seed(200)
    frame = pd.read_csv(log, dtype=str, keep_default_na=False).iloc[150:400]
    clean = tmp_path / "clean.csv"
    frame.to_csv(clean, index=False)
    journal = tmp_path / "elsewhere.sqlite"
    result = CliRunner().invoke(
        main,
        [
            "events",
            "backfill",
            str(clean),
            "--apply",
            "--no-progress",
            "--journal",
            str(journal),
            "--not-in-quota",
            "--concurrency",
            "8",
        ],
        env=_env(emu),
    )
    assert result.exit_code == 0, result.output
    assert "250 rows: sent 250" in result.output
    assert journal.exists() and not (tmp_path / "clean.csv.journal.sqlite").exists()
    backfilled = emu.events()[-250:]
    assert {e["eventSource"] for e in backfilled} <= {"WEB_UI", "MOBILE", "API", "EXTENSION"}
    assert not any(e["isInQuota"] for e in backfilled)


def test_help_and_bad_usage(emu: EmulatorHandle, log: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["events", "backfill", "--help"])
    assert shown.exit_code == 0
    assert "<LOG>.journal.sqlite" in shown.output and "--apply" in shown.output
    bad = runner.invoke(main, ["events", "backfill", str(log), "--since", "someday"], env=_env(emu))
    assert bad.exit_code == 2 and "not a date/time" in bad.output
    missing = runner.invoke(main, ["events", "backfill", "nope.csv"], env=_env(emu))
    assert missing.exit_code == 1 and "no such file" in missing.output
