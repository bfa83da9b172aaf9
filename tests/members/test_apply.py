"""apply_plan and ``plabdata members import`` against the emulator: end state, faults, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plabdata.cli import main
from plabdata.client._sync import Admin
from plabdata.emulator import EmulatorHandle
from plabdata.jobs._journal import Journal
from plabdata.members._apply import RESULT_COLUMNS, apply_plan, failed_rows
from plabdata.members._loaders import load_members
from plabdata.members._plan import Plan, plan_member_changes
from plabdata.members._sheet import read_member_sheet

DATA = Path(__file__).resolve().parents[2] / "data"
SAMPLES = Path(__file__).resolve().parents[2] / "plabdata" / "samples"
FIELDS = ("name", "given_name", "family_name")
EMAILS = [f"user{i}@example.com" for i in range(10)]


@pytest.fixture
def admin(emu: EmulatorHandle) -> Iterator[Admin]:
    with Admin(emu.settings) as client:
        yield client


def _members(admin: Admin) -> pd.DataFrame:
    return load_members(admin, progress=False)


def _created(emu: EmulatorHandle) -> int:
    return int(emu.stats()["responsesByStatus"].get("201", 0))


def _conflicts(emu: EmulatorHandle) -> int:
    return int(emu.stats()["responsesByStatus"].get("409", 0))


def _sheet(n_new: int, members: pd.DataFrame, n_changed: int, tag: str = "v2") -> pd.DataFrame:
    new = pd.DataFrame(
        {
            "Email": [f"new{i}@example.org" for i in range(n_new)],
            "Name": [f"New Member {i}" for i in range(n_new)],
            "Password": [f"pw-{i:06d}" if i % 2 else "" for i in range(n_new)],
            "metadata.team": ["blue"] * n_new,
        }
    )
    changed = pd.DataFrame(
        {
            "Email": members["email"].head(n_changed).str.upper().tolist(),
            "Name": [f"Changed {tag} {i}" for i in range(n_changed)],
        }
    )
    changed["metadata.team"] = tag
    return pd.concat([new, changed], ignore_index=True)


def _assert_state(admin: Admin, sheet: pd.DataFrame) -> None:
    """Every sheet row's member exists once with the sheet's name and team."""
    members = _members(admin).set_index("email")
    assert members.index.is_unique
    for email, name, team in sheet[["Email", "Name", "metadata.team"]].itertuples(index=False):
        member = members.loc[email.lower()]
        assert member["name"] == name and member["metadata.team"] == team, email


# ---------------------------------------------------------------------------- end state


def _trim(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value).strip() or None


@st.composite
def _states(draw: st.DrawFn) -> tuple[Any, ...]:
    text = st.one_of(st.none(), st.sampled_from(["Ann", "Bo", "Zoë", " Cy "]))
    meta = st.dictionaries(
        st.sampled_from(["plan", "team"]), st.sampled_from(["x", "y"]), max_size=2
    )
    person = st.fixed_dictionaries(
        {
            "name": text,
            "given_name": text,
            "family_name": text,
            "metadata": meta,
            "is_verified": st.booleans(),
        }
    )
    current = draw(st.dictionaries(st.sampled_from(EMAILS), person, max_size=6))
    desired = draw(st.dictionaries(st.sampled_from(EMAILS), person, min_size=1, max_size=6))
    return current, desired, draw(st.booleans()), draw(st.sampled_from(["keep", "clear"]))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(state=_states())
def test_applied_plan_reaches_the_desired_state(
    emu: EmulatorHandle, admin: Admin, state: tuple[Any, ...]
) -> None:
    current, desired, delete_missing, blank_means = state
    emu.reset()
    for email, fields in current.items():
        member = admin.create_member(
            email,
            "initial-pw",
            is_verified=fields["is_verified"],
            metadata=fields["metadata"] or None,
        )
        admin.update_member(member.id, **{f: fields[f] for f in FIELDS})
    rows = []
    for email, fields in desired.items():
        row = {"email": email, **{f: fields[f] or "" for f in FIELDS}}
        row["is_verified"] = "" if email in current else fields["is_verified"]
        row.update({f"metadata.{k}": v for k, v in fields["metadata"].items()})
        rows.append(row)
    sheet = read_member_sheet(pd.DataFrame(rows), strict=True)
    columns = {c.removeprefix("metadata.") for c in sheet.rows.columns if c.startswith("meta")}
    plan = plan_member_changes(
        sheet,
        _members(admin),
        delete_missing=delete_missing,
        blank_means=blank_means,
        plugin_id=emu.plugin_id,
    )
    results = apply_plan(admin, plan, progress=False)
    assert results["status"].isin(["done", "skipped"]).all(), results
    after = _members(admin).set_index("email")
    clear = blank_means == "clear"
    for email, fields in desired.items():
        before = current.get(email)
        member = after.loc[email]
        for name in FIELDS:  # the sheet trims cells, and the plan compares trimmed values
            kept = None if clear or before is None else _trim(before[name])
            assert _trim(member[name]) == (_trim(fields[name]) or kept), (email, name)
        old = dict(before["metadata"]) if before else {}
        if clear:  # a blank cell in a metadata column removes that key
            old = {k: v for k, v in old.items() if k not in columns}
        merged = {**old, **fields["metadata"]}
        for key in ("plan", "team"):
            value = member.get(f"metadata.{key}")
            assert (None if value is None or pd.isna(value) else value) == merged.get(key)
        verified = before["is_verified"] if before else fields["is_verified"]
        assert bool(member["is_verified"]) == verified
    kept_emails = set(desired) | (set() if delete_missing else set(current))
    assert set(after.index) == kept_emails
    again = plan_member_changes(
        sheet, _members(admin), delete_missing=delete_missing, blank_means=blank_means
    )
    assert again.is_empty, again


def test_faults_same_end_state_and_no_duplicates(emu: EmulatorHandle, admin: Admin) -> None:
    emu.seed(20, random_seed=4)
    sheet = _sheet(30, _members(admin), 15)
    plan = plan_member_changes(read_member_sheet(sheet), _members(admin), plugin_id=emu.plugin_id)
    emu.set_faults(error_rate=0.1, drop_rate=0.15, rate_limit=60, random_seed=11)
    with httpx.Client(headers=emu.settings.headers()) as other_job:  # empties the 429 bucket
        for _ in range(500):
            if other_job.get(f"{emu.settings.members_url}/members?limit=1").status_code == 429:
                break
    results = apply_plan(admin, plan, concurrency=8, progress=False)
    faults = emu.stats()
    emu.clear_faults()
    assert faults["injectedErrors"] > 0 and faults["drops"] > 0
    assert admin.aio.limiter.throttled > 0, "our own requests met 429s"
    done = results[results["op"].isin(["create", "update"])]
    assert done["status"].isin(["done", "in-doubt-resolved"]).all(), done
    assert (done["attempts"] >= 1).all() and (done["attempts"] > 1).any()
    assert emu.stats()["members"] == 50
    _assert_state(admin, sheet)
    assert plan_member_changes(read_member_sheet(sheet), _members(admin)).is_empty


# ---------------------------------------------------------------------------- journal


def test_same_plan_again_with_the_journal_redoes_nothing(
    emu: EmulatorHandle, admin: Admin, tmp_path: Path
) -> None:
    emu.seed(10, random_seed=2)
    sheet = read_member_sheet(_sheet(6, _members(admin), 4))
    plan = plan_member_changes(sheet, _members(admin), plugin_id=emu.plugin_id)
    journal = tmp_path / "members.journal"
    first = apply_plan(admin, plan, journal=journal, progress=False)
    assert (first.loc[first["op"].isin(["create", "update"]), "status"] == "done").all()
    created = _created(emu)
    stamps = _members(admin).set_index("member_id")["updated_at"]
    second = apply_plan(admin, plan, journal=journal, progress=False)
    ops = second[second["op"].isin(["create", "update"])]
    # Each op is checked against the member as it is now, and nothing is written: a create by
    # one GET of its email, an update by one GET of its member or, when the read-back judges
    # one walk of the pages sooner (a fast loopback), by that shared walk (no request of its own).
    assert (ops["status"] == "done").all()
    assert (ops.loc[ops["op"] == "create", "attempts"] == 1).all()
    assert ops.loc[ops["op"] == "update", "attempts"].isin([0, 1]).all()
    assert ops["error"].str.contains("earlier run").all()
    assert _created(emu) == created == 6 and _conflicts(emu) == 0
    assert _members(admin).set_index("member_id")["updated_at"].equals(stamps)  # no write
    with Journal(journal, plugin_id=emu.plugin_id, job="members") as opened:
        entries = opened.frame()
    assert len(entries) == 10 and entries["key"].is_unique
    assert set(entries["status"]) == {"done"}


def test_a_journal_from_another_state_of_the_base_does_not_skip_needed_ops(
    emu: EmulatorHandle, admin: Admin, tmp_path: Path
) -> None:
    """The journal says the creates were done, but the base was reset since (an emulator
    reset, or the members deleted): applying the same plan again creates them."""
    sheet = read_member_sheet(_sheet(5, _members(admin), 0))
    plan = plan_member_changes(sheet, _members(admin), plugin_id=emu.plugin_id)
    journal = tmp_path / "members.journal"
    apply_plan(admin, plan, journal=journal, progress=False)
    emu.reset()
    again = apply_plan(admin, plan, journal=journal, progress=False)
    assert (again.loc[again["op"] == "create", "status"] == "done").all(), again
    assert emu.stats()["members"] == 5
    assert plan_member_changes(sheet, _members(admin)).is_empty
    assert "pw-" not in journal.read_bytes().decode("utf-8", "replace")


def test_failed_rows_come_back_in_the_sheet_columns_then_finish(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    emu.seed(5, random_seed=1)
    with Admin(emu.settings.replace(max_attempts=2, max_retry_seconds=2)) as admin:
        raw = _sheet(4, _members(admin), 2)
        sheet = read_member_sheet(raw)
        plan = plan_member_changes(sheet, _members(admin), plugin_id=emu.plugin_id)
        journal = tmp_path / "j.sqlite"
        emu.set_faults(error_rate=1.0)
        results = apply_plan(admin, plan, journal=journal, progress=False, verify=False)
        emu.clear_faults()
        ops = results[results["op"].isin(["create", "update"])]
        assert (ops["status"] == "failed").all() and ops["error"].str.contains("->").all()
        assert ops["http_status"].isin([500, 502, 503]).all()
        to_fix = failed_rows(results, sheet)
        assert list(to_fix.columns) == ["Email", "Name", "metadata.team", "problem"]
        assert to_fix.index.tolist() == sorted(ops["row"].tolist())
        assert to_fix["problem"].str.startswith(("create: ", "update: ")).all()
        retried = apply_plan(admin, plan, journal=journal, progress=False)
        assert (
            retried.loc[retried["op"].isin(["create", "update"]), "status"]
            .isin(["done", "in-doubt-resolved"])
            .all()
        )
        assert _created(emu) == 4 and _conflicts(emu) == 0
        _assert_state(admin, raw)


def test_stale_rows_are_refused_and_the_rest_applied(
    emu: EmulatorHandle, admin: Admin, tmp_path: Path
) -> None:
    emu.seed(12, random_seed=5)
    members = _members(admin)
    sheet = read_member_sheet(_sheet(2, members, 6))
    plan = plan_member_changes(sheet, members, plugin_id=emu.plugin_id, delete_missing=True)
    plan.save(tmp_path / "plan.json")
    targets = plan.updates.sort_values("row")["member_id"].tolist()
    admin.update_member(targets[0], name="Edited meanwhile")
    admin.delete_member(targets[1])
    victim = plan.deletes["member_id"].iloc[0]
    admin.update_member(victim, given_name="Touched")
    loaded = Plan.load(tmp_path / "plan.json").with_passwords(sheet)
    results = apply_plan(admin, loaded, progress=False).set_index("member_id", drop=False)
    assert results.loc[targets[0], "status"] == "stale"
    assert "changed since the plan was made" in results.loc[targets[0], "error"]
    assert results.loc[targets[1], "status"] == "stale"
    assert results.loc[victim, "status"] == "stale"
    others = results[
        results["op"].isin(["create", "update", "delete"])
        & ~results["member_id"].isin([targets[0], targets[1], victim])
    ]
    assert (others["status"] == "done").all() and len(others) == 2 + 4 + 5
    after = _members(admin).set_index("member_id")
    assert after.loc[targets[0], "name"] == "Edited meanwhile"
    assert victim in after.index


def test_a_loaded_plan_needs_the_sheet_passwords(
    emu: EmulatorHandle, admin: Admin, tmp_path: Path
) -> None:
    sheet = read_member_sheet(_sheet(2, _members(admin), 0))
    plan = plan_member_changes(sheet, _members(admin), plugin_id=emu.plugin_id)
    loaded = Plan.load(plan.save(tmp_path / "p.json"))
    with pytest.raises(Exception, match="with_passwords"):
        apply_plan(admin, loaded, progress=False)
    other = plan_member_changes(sheet, _members(admin), plugin_id="another-plugin")
    with pytest.raises(Exception, match="made for plugin 'another-plugin'"):
        apply_plan(admin, other, progress=False)
    assert emu.stats()["members"] == 0


def test_dry_run_sends_nothing(emu: EmulatorHandle, admin: Admin) -> None:
    emu.seed(8, random_seed=3)
    sheet = read_member_sheet(
        _sheet(3, _members(admin), 3).assign(
            Email=lambda f: f["Email"].where(f.index != 0, "not-an-email")
        )
    )
    plan = plan_member_changes(sheet, _members(admin), plugin_id=emu.plugin_id)
    before = emu.stats()["requests"]
    results = apply_plan(admin, plan, dry_run=True, progress=False)
    assert emu.stats()["requests"] == before
    assert dict(results.dtypes.astype(str)) == {k: str(v) for k, v in RESULT_COLUMNS.items()}
    ops = results[results["op"].isin(["create", "update"])]
    assert len(ops) == 5 and (ops["status"] == "planned").all()
    invalid = results[results["op"] == "invalid"]
    assert invalid["row"].tolist() == [2] and invalid["status"].tolist() == ["invalid"]
    applied = apply_plan(admin, plan, progress=False)
    assert "not-an-email" not in set(_members(admin)["email"])
    assert applied.loc[applied["op"] == "invalid", "attempts"].tolist() == [0]


# ---------------------------------------------------------------------------- CLI


def _env(emu: EmulatorHandle) -> dict[str, str]:
    pairs = (line.removeprefix("export ").split("=", 1) for line in emu.settings.export_lines())
    return dict(pairs)


def test_cli_plans_applies_and_then_has_nothing_to_do(emu: EmulatorHandle, tmp_path: Path) -> None:
    emu.seed(500, random_seed=0)
    sheet = tmp_path / "members_import.xlsx"
    sheet.write_bytes((SAMPLES / "members_import.xlsx").read_bytes())
    runner = CliRunner()
    env = _env(emu)
    shown = runner.invoke(main, ["members", "import", str(sheet), "--no-progress"], env=env)
    assert shown.exit_code == 1, shown.output
    assert (
        "89 creates, 50 updates, 0 deletes, 160 unchanged, 2 unsupported, 6 invalid" in shown.output
    )
    assert "Nothing was changed" in shown.output and "6 invalid row(s)" in shown.output
    assert emu.stats()["members"] == 500
    out = tmp_path / "results.csv"
    applied = runner.invoke(
        main,
        [
            "members",
            "import",
            str(sheet),
            "--apply",
            "--no-progress",
            "--out",
            str(out),
            "--concurrency",
            "16",
        ],
        env=env,
    )
    assert applied.exit_code == 1, applied.output
    # The plugin's default journal, never one named after the sheet.
    home = Path(os.environ["PLABDATA_HOME"])
    assert (home / "journals" / emu.plugin_id / "members.journal").exists()
    assert not list(tmp_path.glob("*journal*"))
    results = pd.read_csv(out)
    outcomes = {op: set(part["status"]) for op, part in results.groupby("op")}
    assert outcomes == {
        "create": {"done"},
        "update": {"done"},
        "unchanged": {"skipped"},
        "unsupported": {"skipped"},
        "invalid": {"invalid"},
    }
    assert emu.stats()["members"] == 589
    again = runner.invoke(
        main, ["members", "import", str(sheet), "--apply", "--no-progress"], env=env
    )
    assert "Nothing to do" in again.output and "0 creates, 0 updates" in again.output


def test_cli_killed_mid_apply_resumes_exactly(
    emu: EmulatorHandle, admin: Admin, tmp_path: Path
) -> None:
    emu.seed(20, random_seed=6)
    raw = _sheet(40, _members(admin), 20)
    sheet = tmp_path / "sheet.csv"
    raw.to_csv(sheet, index=False)
    journal = tmp_path / "j.sqlite"
    command = [
        sys.executable,
        "-c",
        "from plabdata.cli import main; main()",
        "members",
        "import",
        str(sheet),
        "--apply",
        "--journal",
        str(journal),
        "--concurrency",
        "4",
        "--no-progress",
    ]
    env = {**os.environ, **_env(emu)}
    emu.set_faults(latency_ms=60)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while _created(emu) < 12 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    with Journal(journal, plugin_id=emu.plugin_id, job="members") as opened:
        interrupted = opened.counts()
    assert interrupted.get("pending", 0) > 0, interrupted
    assert 12 <= _created(emu) < 40
    emu.clear_faults()
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _assert_state(admin, raw)
    assert emu.stats()["members"] == 60
    assert _created(emu) == 40 and _conflicts(emu) == 0
    with Journal(journal, plugin_id=emu.plugin_id, job="members") as opened:
        entries = opened.frame()
    assert "pending" not in set(entries["status"])
    assert entries["key"].is_unique and (entries["attempts"] <= 2).all()


# ---------------------------------------------------------------------------- weak passwords


def test_a_short_password_is_sent_and_the_apis_refusal_is_that_rows_result(
    emu: EmulatorHandle, admin: Admin, tmp_path: Path
) -> None:
    path = tmp_path / "members.csv"
    path.write_text(
        "email,name,password\n"
        "short@example.com,Short,12345\n"
        "long@example.com,Long,long-enough-1\n"
        "bad-email,Bad,long-enough-2\n"
    )
    sheet = read_member_sheet(path)
    assert sheet.warnings["row"].tolist() == [2] and sheet.invalid_rows == [4]
    plan = plan_member_changes(sheet, _members(admin), plugin_id=emu.plugin_id)
    assert sorted(plan.creates["email"]) == ["long@example.com", "short@example.com"]
    results = apply_plan(admin, plan, journal=tmp_path / "j.sqlite", progress=False)
    by_row = results.set_index("row")
    assert by_row.loc[2, "status"] == "failed" and by_row.loc[2, "http_status"] == 400
    assert "weak-password" in by_row.loc[2, "error"] or "at least 6" in by_row.loc[2, "error"]
    assert "12345" not in results.to_string()
    assert by_row.loc[3, "status"] == "done" and by_row.loc[4, "status"] == "invalid"
    assert set(_members(admin)["email"]) == {"long@example.com"}
    assert int(emu.stats()["responsesByStatus"].get("400", 0)) == 1, "sent once, not retried"


def test_the_read_back_walks_when_that_is_sooner_by_measured_latency_and_rate() -> None:
    from types import SimpleNamespace

    from plabdata.members._readback import prefer_walk

    def client(latency: float | None) -> Any:
        return SimpleNamespace(page_size=50, latency=latency, limiter=SimpleNamespace(rate=485.0))

    # 5,000 updates in a base of 11,000 (220 pages of 50): the walk (11 s at 50 ms) overlaps
    # the 5,000 PATCHes (10.3 s); 5,000 GETs more would double the writes' 10.3 s.
    assert prefer_walk(client(0.05), 11_000, 5_000, 40, beside=5_000)
    # Not timed yet: round trips decide, as before (220 pages against 5,000 / 40 = 125).
    assert not prefer_walk(client(None), 11_000, 5_000, 40, beside=5_000)
    # Ten updates in a big base: ten GETs, not a walk of 220 pages.
    assert not prefer_walk(client(0.05), 11_000, 10, 40, beside=10)
    # A slow server (1 s per answer): 220 sequential pages lose to 5,000 GETs, 40 at a time.
    assert not prefer_walk(client(1.0), 11_000, 5_000, 40, beside=5_000)
