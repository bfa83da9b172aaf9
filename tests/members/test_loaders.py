"""Loaders against the emulator: completeness, dtypes, faults, exports."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

import plabdata
from plabdata.cli import main
from plabdata.tables._export import export_frame
from plabdata.tables._frames import IDENTITY_COLUMNS, MEMBER_COLUMNS, QUOTA_COLUMNS

SEED = 150


@pytest.fixture
def seeded(emu):
    emu.seed(SEED, random_seed=3)
    with plabdata.connect(emu.settings) as admin:
        yield emu, admin


def _load_all(admin: plabdata.Admin) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    members = plabdata.load_members(admin, page_size=40, progress=False)
    identities = plabdata.load_identities(admin, members, progress=False)
    quota = plabdata.load_quota_usage(admin, members, progress=False)
    return members, identities, quota


def test_members_complete_with_documented_dtypes(seeded):
    emu, admin = seeded
    members = plabdata.load_members(admin, page_size=17, progress=False)
    assert len(members) == SEED == emu.stats()["members"]
    assert members.member_id.is_unique
    for name, dtype in MEMBER_COLUMNS.items():
        assert members[name].dtype == dtype, name
    assert members.created_at.dt.tz is not None
    assert members.member_id.str.match(r"^mem_[0-9a-f]{40}$").all()
    flattened = [c for c in members.columns if c.startswith(("metadata.", "custom_fields."))]
    assert flattened and all(members[c].dtype == "string" for c in flattened)
    assert set(members.sign_in_method.dropna()) <= set(MEMBER_COLUMNS["sign_in_method"].categories)


def test_identities_and_quota_dtypes(seeded):
    _, admin = seeded
    members, identities, quota = _load_all(admin)
    for name, dtype in IDENTITY_COLUMNS.items():
        assert identities[name].dtype == dtype, name
    for name, dtype in QUOTA_COLUMNS.items():
        assert quota[name].dtype == dtype, name
    assert "access_token" not in identities.columns
    oauth = members[members.sign_in_method.isin(["google", "github", "gitlab", "microsoft"])]
    assert set(oauth.member_id) <= set(identities.member_id)
    assert len(quota) == len(members)


def test_tokens_only_on_request(seeded):
    _, admin = seeded
    members = plabdata.load_members(admin, progress=False)
    with_tokens = plabdata.load_identities(admin, members, include_tokens=True, progress=False)
    without = plabdata.load_identities(admin, members, progress=False)
    tokens = set(with_tokens.access_token.dropna())
    assert tokens
    assert not tokens & set(without.astype(str).to_numpy().ravel())


def test_faults_do_not_change_the_result(seeded):
    emu, admin = seeded
    clean = _load_all(admin)
    emu.set_faults(
        error_rate=0.3, latency_ms=2, jitter_ms=5, rate_limit=400, burst=50, random_seed=11
    )
    faulty = _load_all(admin)
    stats = emu.stats()
    assert stats["injectedErrors"] > 0
    for before, after in zip(clean, faulty, strict=True):
        pd.testing.assert_frame_equal(before, after)


def test_member_base_one_row_per_member(seeded):
    _, admin = seeded
    base = plabdata.load_member_base(admin, plan_names={100: "free", 5000: "pro"}, progress=False)
    assert len(base) == SEED and base.member_id.is_unique
    assert {"providers", "n_identities", "quota_usage_count", "plan"} <= set(base.columns)
    assert set(base.plan.astype(str)) <= {"free", "pro", "unlimited"}
    google = base[base.sign_in_method == "google"]
    assert google.providers.str.contains("google").all()


def test_parquet_round_trip_keeps_dtypes(seeded, tmp_path):
    _, admin = seeded
    base = plabdata.load_member_base(admin, progress=False)
    path = export_frame(base, tmp_path / "base.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path), base)


def test_csv_and_xlsx_exports_neutralise_formulas(seeded, tmp_path):
    _, admin = seeded
    members = plabdata.load_members(admin, progress=False)
    victim = members.member_id.iloc[0]
    admin.update_member(
        victim, name='=HYPERLINK("http://evil","x")', given_name="+1 555", family_name="-minus"
    )
    members = plabdata.load_members(admin, progress=False)
    export_frame(members, tmp_path / "m.csv")
    export_frame(members, tmp_path / "m.xlsx")
    csv = pd.read_csv(tmp_path / "m.csv", dtype=str)
    xlsx = pd.read_excel(tmp_path / "m.xlsx", dtype=str)
    for frame in (csv, xlsx):
        row = frame[frame.member_id == victim].iloc[0]
        assert row["name"].startswith("'=")
        assert row["given_name"] == "'+1 555"
        assert row["family_name"] == "'-minus"


def test_cli_export(seeded, tmp_path, monkeypatch):
    emu, _ = seeded
    for line in emu.settings.export_lines():
        name, _, value = line.removeprefix("export ").partition("=")
        monkeypatch.setenv(name, value)
    out = tmp_path / "members.parquet"
    result = CliRunner().invoke(
        main, ["members", "export", str(out), "--with", "identities,quota", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == SEED and "plan" in frame.columns and "providers" in frame.columns
    bad = CliRunner().invoke(main, ["members", "export", str(out), "--with", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output
