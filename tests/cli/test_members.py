"""The CLI mirrors the library: plan a sheet and save it, apply the saved plan, refresh
identities, look into a journal, verify a token — each one command, each against the
emulator as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

import plabdata
from plabdata.cli import main
from plabdata.emulator import EmulatorHandle


def _env(emu: EmulatorHandle) -> dict[str, str]:
    return dict(line.removeprefix("export ").split("=", 1) for line in emu.settings.export_lines())


def _run(emu: EmulatorHandle, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args], env=_env(emu))
    return result.exit_code, result.output


def _sheet(tmp_path: Path, emails: list[str]) -> Path:
    path = tmp_path / "members.csv"
    frame = pd.DataFrame(
        {
            "email": [*emails, "new.one@example.org", "new.two@example.org"],
            "name": [f"Name {i}" for i in range(len(emails) + 2)],
            "password": ["" for _ in emails] + ["sheet-pass-1", ""],
        }
    )
    frame.to_csv(path, index=False)
    return path


def test_plan_save_then_apply_the_saved_plan(emu: EmulatorHandle, tmp_path: Path) -> None:
    emu.seed(12)
    with plabdata.connect(emu.settings) as admin:
        emails = plabdata.load_members(admin, progress=False)["email"].head(5).tolist()
    sheet = _sheet(tmp_path, emails)
    saved = tmp_path / "plan.json"
    code, output = _run(emu, "members", "plan", str(sheet), "--save", str(saved), "--no-progress")
    assert code == 0, output
    assert "2 creates, 5 updates" in output and saved.exists()
    assert "sheet-pass-1" not in saved.read_text()
    # A create takes the sheet's password: without the sheet again, the apply is refused.
    code, output = _run(emu, "members", "apply", str(saved), "--no-progress")
    assert code == 1 and "with_passwords" in output
    assert emu.stats()["members"] == 12
    code, output = _run(
        emu, "members", "apply", str(saved), "--sheet-passwords", str(sheet), "--no-progress"
    )
    assert code == 0, output
    assert "results:" in output and "done" in output
    assert emu.stats()["members"] == 14
    code, output = _run(emu, "members", "plan", str(sheet), "--no-progress")
    assert code == 0 and "Nothing to do" in output
    # The saved plan again, same journal: each op is found done (one read), none redone.
    code, output = _run(
        emu, "members", "apply", str(saved), "--sheet-passwords", str(sheet), "--no-progress"
    )
    assert code == 0 and "failed" not in output, output
    assert emu.stats()["members"] == 14 and emu.stats()["responsesByStatus"].get("409") is None


def test_a_saved_plan_cannot_be_written_over_the_sheet(emu: EmulatorHandle, tmp_path: Path):
    sheet = _sheet(tmp_path, [])
    before = sheet.read_bytes()
    code, output = _run(emu, "members", "plan", str(sheet), "--save", str(sheet))
    assert code != 0 and "would destroy the input" in output
    assert sheet.read_bytes() == before


def test_refresh_identities_reports_reauth_needed(emu: EmulatorHandle, tmp_path: Path) -> None:
    emu.seed(60)
    with plabdata.connect(emu.settings) as admin:
        identities = plabdata.load_identities(admin, progress=False)
    google = identities[identities["provider"] == "google"]["member_id"].tolist()
    # Seeded refresh tokens are sometimes revoked or expired: make google[0]'s a good one.
    emu.set_identity(
        google[0],
        "google",
        accessTokenExpiresAtMs=0,
        refreshTokenExpiresAtMs=4_102_444_800_000,
        refreshTokenRevoked=False,
    )
    emu.set_identity(google[1], "google", accessTokenExpiresAtMs=0, refreshTokenRevoked=True)
    out = tmp_path / "refresh.csv"
    code, output = _run(emu, "members", "refresh-identities", "--out", str(out), "--no-progress")
    assert code == 1, output  # one member must sign in again
    assert "reauth-needed" in output and google[1] in output
    result = pd.read_csv(out)
    mine = (result["member_id"] == google[0]) & (result["provider"] == "google")
    assert set(result.loc[mine, "status"]) == {"refreshed"}


def test_journal_show_lists_what_needs_a_look(emu: EmulatorHandle, tmp_path: Path) -> None:
    code, output = _run(emu, "journal", "show", "members")
    assert code == 0 and "no journal yet" in output
    sheet = _sheet(tmp_path, [])
    code, output = _run(emu, "members", "import", str(sheet), "--apply", "--no-progress")
    assert code == 0, output
    code, output = _run(emu, "journal", "show", "members", "--status", "done")
    assert code == 0, output
    assert f"bound to plugin {emu.plugin_id}, job members" in output
    assert "2 entries: 2 done" in output and "new.one@example.org" in output


def test_tokens_verify_accepts_an_emulator_token(emu: EmulatorHandle) -> None:
    member = emu.seed(1)[0]
    token = emu.mint_token(member)
    code, output = _run(emu, "tokens", "verify", token)
    assert code == 0, output
    assert f"valid token for member {member}" in output
    code, output = _run(emu, "tokens", "verify", token[:-4] + "AAAA")
    assert code == 1 and "TokenSignatureError" in output


def test_python_dash_m_plabdata_is_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "plabdata", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for group in ("members", "events", "journal", "tokens", "emulator", "demo"):
        assert group in result.stdout


def test_import_from_another_platform_auto_then_nothing_on_a_second_run(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    from importlib.resources import files

    exports = sorted(files("plabdata.samples").joinpath("exports").iterdir(), key=str)
    platforms = {p.name.split("_")[0] for p in exports}
    assert platforms == {"auth0", "firebase", "clerk", "supabase", "memberstack"}
    for export in exports:
        emu.reset()
        path = tmp_path / export.name
        path.write_bytes(export.read_bytes())
        code, output = _run(
            emu, "members", "import", str(path), "--from", "auto", "--apply", "--no-progress"
        )
        assert code == 1 and "1 invalid row(s)" in output, output  # each sample has one
        assert "auto chose" in output and "members to tell:" in output, output
        assert "results:" in output and "Traceback" not in output, output
        created = emu.stats()["members"]
        assert created > 0, output
        again = CliRunner().invoke(
            main, ["members", "import", str(path), "--from", "auto", "--no-progress"], env=_env(emu)
        )
        assert "Nothing to do" in again.output, again.output
        assert emu.stats()["members"] == created
