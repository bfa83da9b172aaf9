"""Every job, end to end, against each documented reading of PluginLab's API (issue: work
against PluginLab as it documents itself): pages capped at 50 and refused above, capped at
50 and silently short above, or pages of 100 — with and without faults on.

What a user does first is what runs here: the CLI with default options (no ``--journal``,
no page size), the library with its defaults.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import plabdata
from plabdata.cli import main
from plabdata.emulator import EmulatorHandle, Faults, Profile

DATA = Path(__file__).resolve().parents[1] / "data"

READINGS = {
    "cap50-reject": Profile(page_cap=50, over_cap="reject"),
    "cap50-short": Profile(page_cap=50, over_cap="short"),
    "cap100": Profile(page_cap=100),
}
FAULTS = Faults(error_rate=0.05, drop_rate=0.03, jitter_ms=2, random_seed=11)


def _env(emu: EmulatorHandle) -> dict[str, str]:
    pairs = (line.removeprefix("export ").split("=", 1) for line in emu.settings.export_lines())
    return dict(pairs)


@pytest.fixture(params=list(READINGS), ids=list(READINGS))
def reading(request: pytest.FixtureRequest, emu: EmulatorHandle) -> EmulatorHandle:
    emu.set_profile(READINGS[request.param])
    return emu


@pytest.mark.parametrize("faults", [None, FAULTS], ids=["clean", "faults"])
def test_member_base_loads_whole(reading: EmulatorHandle, faults: Faults | None) -> None:
    reading.seed(260)
    if faults is not None:
        reading.set_faults(faults)
    with plabdata.connect(reading.settings) as admin:
        base = plabdata.load_member_base(admin, progress=False)
    reading.clear_faults()
    assert len(base) == base["member_id"].nunique() == 260
    assert base["quota_usage_limit"].notna().all()


def test_members_export_with_identities_and_quota(reading: EmulatorHandle, tmp_path: Path):
    reading.seed(130)
    out = tmp_path / "members.parquet"
    result = CliRunner().invoke(
        main,
        ["members", "export", str(out), "--with", "identities,quota", "--no-progress"],
        env=_env(reading),
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 130 and {"providers", "quota_usage_count", "plan"} <= set(frame.columns)


@pytest.mark.parametrize("faults", [None, FAULTS], ids=["clean", "faults"])
def test_members_import_apply_with_its_read_back(
    reading: EmulatorHandle, tmp_path: Path, faults: Faults | None
) -> None:
    reading.seed(120, random_seed=3)
    with plabdata.connect(reading.settings) as admin:
        members = plabdata.load_members(admin, progress=False)
    sheet = pd.DataFrame(
        {
            "email": [*members["email"].head(70), *(f"new{i}@example.org" for i in range(30))],
            "name": [f"Imported {i}" for i in range(100)],
        }
    )
    path = tmp_path / "members.csv"
    sheet.to_csv(path, index=False)
    if faults is not None:
        reading.set_faults(faults)
    env, runner = _env(reading), CliRunner()
    applied = runner.invoke(
        main, ["members", "import", str(path), "--apply", "--no-progress"], env=env
    )
    reading.clear_faults()
    assert applied.exit_code == 0, applied.output
    again = runner.invoke(main, ["members", "import", str(path), "--no-progress"], env=env)
    assert again.exit_code == 0, again.output
    assert "Nothing to do" in again.output
    with plabdata.connect(reading.settings) as admin:
        after = plabdata.load_members(admin, progress=False).set_index("email")
    assert len(after) == 150
    assert (after.loc[sheet["email"], "name"].tolist()) == sheet["name"].tolist()


def test_backfill_with_default_options(reading: EmulatorHandle, tmp_path: Path) -> None:
    reading.seed(500)  # the sample log is made for the demo's 500 members
    log = tmp_path / "logs.csv"
    sample = pd.read_csv(DATA / "web_ui_events.csv", dtype=str, keep_default_na=False)
    sample.head(600).to_csv(log, index=False)
    env, runner = _env(reading), CliRunner()
    command = ["events", "backfill", str(log), "--source", "WEB_UI", "--no-progress"]
    applied = runner.invoke(main, [*command, "--apply"], env=env)
    sent = reading.stats()["events"]
    assert sent > 500 and ": sent" in applied.output, applied.output
    again = runner.invoke(main, [*command, "--apply"], env=env)
    assert "already-done" in again.output or "already done" in again.output, again.output
    assert reading.stats()["events"] == sent  # nothing twice
