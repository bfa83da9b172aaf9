"""``plabdata demo`` end to end, its read-only ``--real`` mode, and the notebooks' helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import plabdata
from plabdata import demo
from plabdata.cli import main
from plabdata.config import ENV_PLUGIN_ID, ENV_SECRET
from plabdata.demo import notebook_admin, notebook_journal, sample_path
from plabdata.emulator import EmulatorHandle

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PROMISED = [
    "members.parquet",
    "members_by_plan_and_method.csv",
    "members_by_plan_and_method.png",
    "import_issues.csv",
    "import_plan.json",
    "import_results.parquet",
    "backfill_rejected.parquet",
    "backfill_quota_impact.parquet",
    "backfill_quota_impact.png",
    "backfill_rows.parquet",
    "snapshots",
    "member_history.html",
    "summary.txt",
]


def _env_without_credentials() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PLUGINLAB_")}


def _env_for(emu: EmulatorHandle) -> dict[str, str]:
    lines = emu.settings.export_lines()
    return dict(line.removeprefix("export ").split("=", 1) for line in lines)


def test_demo_runs_the_jobs_and_writes_every_promised_file(tmp_path: Path) -> None:
    out = tmp_path / "demo out"
    run = subprocess.run(
        [sys.executable, "-c", "from plabdata.cli import main; main()", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        env=_env_without_credentials(),
        cwd=tmp_path,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(PROMISED)
    # A readable summary: no progress bars, no tracebacks, no log lines.
    assert "Traceback" not in run.stderr and "it/s" not in run.stdout + run.stderr
    assert "%|" not in run.stdout + run.stderr
    stdout = run.stdout
    assert "embedded emulator (500 demo members)" in stdout
    assert "500 members: 359 free, 117 pro, 24 unlimited" in stdout
    assert "re-plan: nothing to do" in stdout
    assert "nothing is sent twice" in stdout
    assert "done: every step succeeded" in stdout
    assert (out / "summary.txt").read_text(encoding="utf-8") == stdout

    members = pd.read_parquet(out / "members.parquet")
    assert len(members) == 500 and {"plan", "sign_in_method", "providers"} <= set(members)
    results = pd.read_parquet(out / "import_results.parquet")
    assert set(results.loc[results["op"].isin(["create", "update"]), "status"]) == {"done"}
    rows = pd.read_parquet(out / "backfill_rows.parquet")
    sent = int((rows["status"] == "sent").sum())
    assert sent > 1000 and f"backfill: {sent:,} sent" in stdout
    assert len(pd.read_parquet(out / "backfill_rejected.parquet")) == 8
    for png in ("members_by_plan_and_method.png", "backfill_quota_impact.png"):
        assert (out / png).read_bytes().startswith(PNG_MAGIC)
    # The history step: weekly snapshots of a fresh emulator base, and the report of them.
    weeks = demo.HISTORY_WEEKS
    snapshots = plabdata.list_snapshots(out / "snapshots")
    assert len(snapshots) == weeks + 1 and snapshots["members"].iloc[0] == demo.HISTORY_MEMBERS
    gaps = snapshots["snapshot_at"].diff().dropna().dt.round("D").unique().tolist()
    assert gaps == [pd.Timedelta(days=7)]
    assert f"{weeks + 1} weekly snapshots, " in stdout
    assert "(→ snapshots/, member_history.html)" in stdout
    report = (out / "member_history.html").read_text(encoding="utf-8")
    assert f"{weeks + 1} snapshots since" in report
    assert report.count('src="data:image/png;base64,') == 6 and "http://" not in report


def _own_files(tmp_path: Path, emails: list[str]) -> tuple[Path, Path]:
    sheet = tmp_path / "members.csv"
    pd.DataFrame(
        {
            "Email": ["new.one@example.org", "new.two@example.org", emails[0]],
            "Name": ["New One", "New Two", "Renamed Zero"],
        }
    ).to_csv(sheet, index=False)
    logs = tmp_path / "usage.csv"
    pd.DataFrame(
        {
            "timestamp": [f"2026-10-0{d}T10:00:00Z" for d in range(1, 7)],
            "email": [emails[1], emails[2], emails[1], emails[3], "nobody@example.org", emails[2]],
            "source": ["WEB_UI"] * 6,
        }
    ).to_csv(logs, index=False)
    return sheet, logs


@pytest.fixture
def seeded(emu: EmulatorHandle) -> list[str]:
    emu.seed(40)
    return [m["email"] for m in _list_members(emu)]


def _list_members(emu: EmulatorHandle) -> list[dict[str, str]]:
    from plabdata.client._sync import Admin
    from plabdata.members._loaders import load_members

    with Admin(emu.settings) as admin:
        frame = load_members(admin, progress=False)
    return frame[["member_id", "email"]].to_dict("records")  # type: ignore[return-value]


def test_demo_real_without_apply_writes_nothing_to_the_api(
    emu: EmulatorHandle, seeded: list[str], tmp_path: Path
) -> None:
    sheet, logs = _own_files(tmp_path, seeded)
    events_before = emu.stats()["events"]
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["demo", "--real", "--out", str(out), "--sheet", str(sheet), "--events", str(logs)],
        env=_env_for(emu),
    )
    assert result.exit_code == 0, result.output
    assert "read-only" in result.output and "not uploaded" in result.output
    stats = emu.stats()
    assert stats["members"] == 40 and stats["events"] == events_before
    assert stats["responsesByStatus"].keys() <= {"200"}  # reads only
    results = pd.read_parquet(out / "import_results.parquet")
    assert set(results.loc[results["op"].isin(["create", "update"]), "status"]) == {"planned"}
    assert not (out / "backfill_rows.parquet").exists()
    # The history: one local snapshot of the base step 1 loaded (no extra request), reported.
    assert plabdata.list_snapshots(out / "snapshots")["members"].tolist() == [40]
    assert "One snapshot so far" in (out / "member_history.html").read_text(encoding="utf-8")


def test_demo_real_with_apply_writes_once(
    emu: EmulatorHandle, seeded: list[str], tmp_path: Path
) -> None:
    sheet, logs = _own_files(tmp_path, seeded)
    events_before = emu.stats()["events"]
    args = [
        "demo",
        "--real",
        "--apply",
        "--out",
        str(tmp_path / "out"),
        "--sheet",
        str(sheet),
        "--events",
        str(logs),
    ]
    first = CliRunner().invoke(main, args, env=_env_for(emu))
    assert first.exit_code == 0, first.output
    assert "applied: 3 done" in first.output and "re-plan: nothing to do" in first.output
    assert "backfill: 5 sent" in first.output and "nothing is sent twice" in first.output
    assert emu.stats()["members"] == 42
    assert emu.stats()["events"] == events_before + 5
    # The journals are kept in the output folder: running it all again sends nothing.
    second = CliRunner().invoke(main, args, env=_env_for(emu))
    assert second.exit_code == 0, second.output
    assert "preview: 0 to send" in second.output and "5 already done" in second.output
    assert emu.stats()["events"] == events_before + 5 and emu.stats()["members"] == 42


def test_demo_help_names_the_options() -> None:
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0
    for option in ("--out", "--seed", "--real", "--apply"):
        assert option in result.output


# ------------------------------------------------------------------------------ helpers


@pytest.fixture
def notebook_session() -> Iterator[None]:
    yield
    demo._notebook_session.close()  # what the kernel's exit would do


def test_notebook_admin_starts_the_emulator_without_a_secret(
    notebook_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_SECRET, raising=False)
    said: list[str] = []
    admin, emulator = notebook_admin(seed=12, echo=said.append)
    assert emulator is not None
    assert admin.settings.auth_url == emulator.url
    assert admin.list_members_page().total == 12
    assert "embedded emulator with 12 demo members" in said[0]
    # Run again (a re-run first cell), it starts afresh and stops the previous one.
    _, second = notebook_admin(seed=3, echo=said.append)
    assert second is not None and second.url != emulator.url
    journal = notebook_journal("members", second)
    assert journal is not None
    assert journal.parent.is_dir() and not journal.is_relative_to(Path.cwd())


def test_notebook_admin_uses_the_api_the_environment_names(
    notebook_session: None, emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in _env_for(emu).items():
        monkeypatch.setenv(name, value)
    said: list[str] = []
    admin, emulator = notebook_admin(echo=said.append)
    assert emulator is None
    assert admin.settings.auth_url == emu.url
    assert "PLUGINLAB_SECRET is set" in said[0]
    # The real API: the plugin's own default journal, never a file in the working folder.
    assert notebook_journal("events", None) is None
    assert os.environ[ENV_PLUGIN_ID] == emu.plugin_id


def test_sample_path_prefers_a_copy_in_the_working_folder_then_the_shipped_sample(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shipped = (ROOT / "plabdata" / "samples" / "members_import.xlsx").resolve()
    for where in (ROOT, ROOT / "plabdata" / "notebooks", tmp_path):
        monkeypatch.chdir(where)
        assert sample_path("members_import.xlsx").resolve() == shipped
    # A copy next to the notebook (what `plabdata notebooks` writes) wins: the user edits it.
    (tmp_path / "members_import.xlsx").write_bytes(b"edited")
    assert sample_path("members_import.xlsx") == tmp_path / "members_import.xlsx"
    assert sample_path("exports/auth0_users.ndjson").name == "auth0_users.ndjson"
    with pytest.raises(FileNotFoundError, match=r"no_such_file\.csv.*members_import\.xlsx"):
        sample_path("no_such_file.csv")
    with pytest.raises(FileNotFoundError):
        sample_path("__init__.py")  # the package's code is not a sample


def test_the_readme_names_only_what_exists() -> None:
    import importlib
    import re

    import plabdata

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for module, names in re.findall(r"^from (plabdata[\w.]*) import ([\w, ]+)$", text, re.M):
        imported = importlib.import_module(module)
        for name in names.split(","):
            assert hasattr(imported, name.strip()), f"{module}.{name.strip()}"
    for name in set(re.findall(r"\bplabdata\.(\w+)\(", text)):
        assert hasattr(plabdata, name), f"plabdata.{name}"
    # Commands are quoted in inline code or stand at the start of a line in a code block.
    code = "\n".join(re.findall(r"```\w*\n(.*?)```", text, re.S))
    commands = set(re.findall(r"`plabdata ([a-z]+(?: [a-z][a-z-]*)?)", text))
    commands |= set(re.findall(r"^\$? ?plabdata ([a-z]+(?: [a-z][a-z-]*)?)", code, re.M))
    assert {"demo", "members import", "events backfill", "emulator serve"} <= commands
    for command in commands:
        result = CliRunner().invoke(main, [*command.split(), "--help"])
        assert result.exit_code == 0, command
    assert (ROOT / "docs" / "explorer.png").read_bytes().startswith(PNG_MAGIC)
