"""``plabdata members import``: the plugin's default journal whatever the sheet's name, outputs
that may not overwrite the sheet (the only copy of its passwords) or the journal, and a
rows-to-fix file that keeps the operator's fixes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from plabdata.cli import main
from plabdata.emulator import EmulatorHandle
from plabdata.jobs._journal import Journal


def _import(emu: EmulatorHandle, *args: str) -> tuple[int, str]:
    pairs = (line.removeprefix("export ").split("=", 1) for line in emu.settings.export_lines())
    result = CliRunner().invoke(
        main, ["members", "import", *args, "--no-progress"], env=dict(pairs)
    )
    return result.exit_code, result.output


def _sheet(path: Path, emails: list[str]) -> Path:
    pd.DataFrame(
        {
            "email": emails,
            "name": [f"Member {i}" for i in range(len(emails))],
            "password": [f"pw-{i}-correct-horse-battery" for i in range(len(emails))],
        }
    ).to_csv(path, index=False)
    return path


def test_the_default_journal_is_the_plugins_whatever_the_sheets_name(
    emu: EmulatorHandle, tmp_path: Path, plabdata_home: Path
) -> None:
    journal = plabdata_home / "journals" / emu.plugin_id / "members.journal"
    october = _sheet(tmp_path / "members_2026-10.csv", ["a@example.com", "b@example.com"])
    code, output = _import(emu, str(october), "--apply")
    assert code == 0, output
    assert f"applying (journal: {journal})" in output
    november = _sheet(
        tmp_path / "members_2026-11.csv", ["a@example.com", "b@example.com", "c@example.com"]
    )
    code, output = _import(emu, str(november), "--apply")
    assert code == 0 and f"applying (journal: {journal})" in output, output
    with Journal(journal, plugin_id=emu.plugin_id, job="members") as held:
        assert held.counts() == {"done": 3}  # both sheets' work in the plugin's one journal
        assert held.api_url == emu.settings.auth_url
    assert sorted(p.name for p in tmp_path.iterdir()) == [october.name, november.name]
    assert "pw-" not in journal.read_bytes().decode("utf-8", "replace")


def test_outputs_may_not_overwrite_the_sheet_or_the_journal(
    emu: EmulatorHandle, tmp_path: Path, plabdata_home: Path
) -> None:
    sheet = _sheet(tmp_path / "members.csv", ["a@example.com", "not-an-email"])
    original = sheet.read_bytes()
    os.link(sheet, tmp_path / "linked.csv")
    (tmp_path / "alias.csv").symlink_to(sheet)
    journal = tmp_path / "members.journal"
    Journal(journal, plugin_id=emu.plugin_id, job="members").close()
    refused = {
        ("--out", str(sheet)): "--out .*members.csv is the input",
        ("--out", str(tmp_path / "linked.csv")): "under another name",
        ("--out", str(tmp_path / "alias.csv")): "under another name",
        ("--failed-out", str(sheet)): "--failed-out .* is the input",
        ("--failed-out", str(journal)): "would destroy the journal.s record",
        ("--failed-out", ""): r"--failed-out is an empty path",
    }
    for (option, value), message in refused.items():
        for apply in ([], ["--apply"]):
            code, output = _import(
                emu, str(sheet), option, value, "--journal", str(journal), *apply
            )
            assert code == 1, output
            assert re.search(message, output), output
    code, output = _import(
        emu, str(sheet), "--out", str(tmp_path / "r.csv"), "--failed-out", str(tmp_path / "r.csv")
    )
    assert code == 1 and "--out and --failed-out are the same file" in output
    code, output = _import(emu, str(sheet), "--journal", str(sheet), "--apply")
    assert code == 1 and "--journal" in output and "is the input" in output
    code, output = _import(emu, str(sheet), "--journal", "", "--apply")
    assert code == 1 and "--journal is an empty path (an unset variable?)" in output
    assert sheet.read_bytes() == original  # the only copy of its passwords
    assert emu.stats()["members"] == 0  # refused before anything was sent
    with Journal(journal, plugin_id=emu.plugin_id, job="members") as held:
        assert held.counts() == {}
    assert not (plabdata_home / "journals").exists()


def test_an_edited_rows_to_fix_file_is_kept_when_a_run_rewrites_it(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    sheet = _sheet(tmp_path / "members.csv", ["a@example.com", "not-an-email"])
    to_fix = tmp_path / "to_fix.csv"
    code, output = _import(emu, str(sheet), "--apply", "--failed-out", str(to_fix))
    assert code == 1 and f"rows to fix: {to_fix}" in output, output
    written = to_fix.read_text()
    assert "not-an-email" in written
    code, output = _import(emu, str(sheet), "--apply", "--failed-out", str(to_fix))
    assert to_fix.read_text() == written and "kept as" not in output  # same rows: no copy
    to_fix.write_text(written.replace("not-an-email", "fixed@example.com"))  # the operator
    code, output = _import(emu, str(sheet), "--apply", "--failed-out", str(to_fix))
    (kept,) = tmp_path.glob("to_fix.previous-*.csv")
    assert "fixed@example.com" in kept.read_text() and f"were kept as {kept}" in output
    assert to_fix.read_text() == written
