"""The history queries: what changed, the base over time, cohorts, plan transitions — and a
store any Parquet reader opens without plabdata."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import plabdata
from plabdata.demo import PLAN_NAMES, emulator_admin
from plabdata.emulator import EmulatorHandle
from plabdata.members._history import CHANGE_COLUMNS, JOINED, LEFT
from plabdata.members._snapshots import write_snapshot
from plabdata.tables._dtypes import BOOLEAN, INT, SIGN_IN_METHOD, STRING, TIMESTAMP

T0, T1, T2 = (pd.Timestamp(f"2026-{m}-01T06:00:00Z") for m in ("09", "10", "11"))
LIMITS = {"free": 100, "pro": 5000, "unlimited": 0}


def _member(member_id: str, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "member_id": member_id,
        "email": f"{member_id}@example.com",
        "is_verified": False,
        "sign_in_method": "email-and-password",
        "name": None,
        "given_name": None,
        "family_name": None,
        "created_at": pd.Timestamp("2026-08-15T00:00:00Z"),
        "providers": "",
        "plan": "free",
        "quota_usage_count": 0,
        "quota_is_over_limit": False,
        "metadata.company": None,
    }
    row.update(fields)
    plan = str(row["plan"])
    row["quota_usage_limit"] = LIMITS[plan]
    row["quota_is_unlimited"] = plan == "unlimited"
    return row


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    return frame.astype(
        {
            "member_id": STRING,
            "email": STRING,
            "is_verified": BOOLEAN,
            "sign_in_method": SIGN_IN_METHOD,
            "name": STRING,
            "given_name": STRING,
            "family_name": STRING,
            "created_at": TIMESTAMP,
            "providers": STRING,
            "plan": "category",
            "quota_usage_count": INT,
            "quota_usage_limit": INT,
            "quota_is_unlimited": BOOLEAN,
            "quota_is_over_limit": BOOLEAN,
            "metadata.company": STRING,
        }
    )


BEFORE = _frame(
    [
        _member("a"),  # upgrades to pro, verifies
        _member("b", plan="unlimited", providers="google", sign_in_method="google"),
        _member("c", quota_usage_count=120, quota_is_over_limit=True),  # leaves
        _member("d", name="Ada L"),
        _member("e", **{"metadata.company": "Acme"}, created_at=pd.Timestamp("2026-09-20T00:00Z")),
    ]
)
AFTER = _frame(
    [
        _member("a", plan="pro", is_verified=True, quota_usage_count=7),
        _member("b", plan="pro", providers="github,google", sign_in_method="google"),
        _member("d", name="Ada Lovelace"),
        _member(
            "e", **{"metadata.company": "Globex"}, created_at=pd.Timestamp("2026-09-20T00:00Z")
        ),
        _member("f", created_at=pd.Timestamp("2026-10-01T00:00Z")),  # joins
    ]
)


def _pairs(changes: pd.DataFrame) -> set[tuple[str, str, object, object, object]]:
    def value(v: object) -> object:
        return None if pd.isna(v) else v  # type: ignore[arg-type]

    return {
        (r.member_id, r.change, value(r.before), value(r.after), value(r.direction))
        for r in changes.itertuples()
    }


def test_changes_between_two_member_bases() -> None:
    changes = plabdata.changes_between(BEFORE, AFTER, before_at=T0, after_at=T1)
    assert _pairs(changes) == {
        ("a", "plan", "free", "pro", "upgrade"),
        ("a", "verified", "no", "yes", None),
        ("b", "plan", "unlimited", "pro", "downgrade"),
        ("b", "provider_added", None, "github", None),
        ("c", "left", "free", None, None),
        ("d", "name", "Ada L", "Ada Lovelace", None),
        ("e", "metadata", "company=Acme", "company=Globex", None),
        ("f", "joined", None, "free", None),
    }
    assert dict(changes.dtypes) == CHANGE_COLUMNS
    assert (changes["before_at"] == T0).all() and (changes["after_at"] == T1).all()
    assert changes["email"].tolist()[0] == "a@example.com"
    back = plabdata.changes_between(AFTER, BEFORE, before_at=T1, after_at=T0)
    assert ("b", "provider_removed", "github", None, None) in _pairs(back)
    assert ("a", "unverified", "yes", "no", None) in _pairs(back)
    assert plabdata.changes_between(BEFORE, BEFORE).empty


def _store(tmp_path: Path) -> Path:
    third = AFTER[AFTER.member_id != "f"].astype({"plan": STRING})
    third.loc[third.member_id == "a", "plan"] = "unlimited"
    third.loc[third.member_id == "a", ["quota_usage_limit", "quota_is_unlimited"]] = [0, True]
    for frame, at in ((BEFORE, T0), (AFTER, T1), (third, T2)):
        write_snapshot(frame, tmp_path, at=at, plugin_id="plg_test")
    return tmp_path


def test_member_changes_over_a_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    changes = plabdata.member_changes(store)
    assert dict(changes.dtypes) == CHANGE_COLUMNS
    assert set(changes["before_at"]) == {T0, T1} and set(changes["after_at"]) == {T1, T2}
    last = changes[changes.after_at == T2]
    assert _pairs(last) == {
        ("a", "plan", "pro", "unlimited", "upgrade"),
        ("f", "left", "free", None, None),
    }
    # since / until pick the snapshots compared (times or snapshot ids).
    assert _pairs(plabdata.member_changes(store, since=T1)) == _pairs(last)
    first = plabdata.member_changes(store, until="2026-10-01T06-00-00Z")
    assert set(first["after_at"]) == {T1} and len(first) == 8
    assert plabdata.member_changes(store, since=T2).empty
    # Frames in, frame out: the same snapshots as one long frame give the same changes.
    frames = [plabdata.read_snapshot(store, i) for i in range(3)]
    long = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(plabdata.member_changes(long), changes)


def test_member_timeline(tmp_path: Path) -> None:
    timeline = plabdata.member_timeline(_store(tmp_path))
    assert timeline.index.tolist() == [T0, T1, T2] and timeline.index.name == "snapshot_at"
    assert timeline["members"].tolist() == [5, 5, 4]
    assert timeline["joined"].tolist() == [0, 1, 0] and timeline["left"].tolist() == [0, 1, 1]
    assert timeline["verified"].tolist() == [0, 1, 1]
    assert timeline["verified_share"].tolist() == [0.0, 0.2, 0.25]
    assert timeline["with_usage"].tolist() == [1, 1, 1]
    assert timeline["over_quota"].tolist() == [1, 0, 0]
    plans = [c for c in timeline.columns if c.startswith("plan.")]
    assert plans == ["plan.free", "plan.pro", "plan.unlimited"]  # by limit, unlimited last
    assert timeline[plans].to_numpy().tolist() == [[4, 0, 1], [3, 2, 0], [2, 1, 1]]
    assert timeline["sign_in.google"].tolist() == [1, 1, 1]
    assert timeline["sign_in.email-and-password"].tolist() == [4, 4, 3]
    assert timeline["snapshot"].tolist()[0] == "2026-09-01T06-00-00Z"
    assert str(timeline["members"].dtype) == "Int64"
    assert len(plabdata.member_timeline(tmp_path, since=T1)) == 2


def test_cohort_retention(tmp_path: Path) -> None:
    store = _store(tmp_path)
    retention = plabdata.cohort_retention(store)
    assert retention.index.tolist() == ["2026-08", "2026-09", "2026-10"]
    august = retention.loc["2026-08"]  # a, b, c, d: c leaves after the first snapshot
    assert august[0] == 1.0 and august[1] == 0.75 and august[2] == 0.75
    assert retention.loc["2026-10"].tolist()[:2] == [1.0, 0.0]  # f: first seen at T1, gone at T2
    assert np.isnan(retention.loc["2026-10", 2])  # no snapshot two after T1
    counts = plabdata.cohort_retention(store, counts=True)
    assert counts.loc["2026-08"].tolist() == [4, 3, 3]


def test_plan_transitions(tmp_path: Path) -> None:
    store = _store(tmp_path)
    matrix = plabdata.plan_transitions(store, 0, 1)
    assert matrix.index.tolist() == ["free", "pro", "unlimited", JOINED]
    assert matrix.columns.tolist() == ["free", "pro", "unlimited", LEFT]
    assert matrix.loc["free", "pro"] == 1 and matrix.loc["free", LEFT] == 1
    assert matrix.loc["unlimited", "pro"] == 1 and matrix.loc[JOINED, "free"] == 1
    assert int(matrix.to_numpy().sum()) == 6
    whole = plabdata.plan_transitions(store)  # first → latest
    assert whole.loc["free", "unlimited"] == 1 and whole.loc[JOINED].sum() == 0
    assert plabdata.plan_transitions(store, "2026-10-15", T2).equals(
        plabdata.plan_transitions(store, 1, 2)
    )
    with pytest.raises(plabdata.ConfigError):
        plabdata.plan_transitions(store, 5, 0)


def test_history_built_from_the_emulator(emu: EmulatorHandle, tmp_path: Path) -> None:
    lines: list[str] = []
    with emulator_admin(emu) as admin:
        history = plabdata.build_history(
            emu,
            admin,
            tmp_path,
            weeks=3,
            members=120,
            random_seed=4,
            plan_names=PLAN_NAMES,
            echo=lines.append,
        )
    assert len(history.snapshots) == 4 and len(lines) == 4 and len(history.churn) == 3
    times = [s.at for s in history.snapshots]
    gaps = {round((b - a) / pd.Timedelta(days=1)) for a, b in itertools.pairwise(times)}
    assert gaps == {7}
    assert abs(times[-1] - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=5)  # ends today
    assert history.summary().startswith("4 snapshots, ")
    timeline = plabdata.member_timeline(tmp_path)
    changes = plabdata.member_changes(tmp_path)
    counts = {str(k): int(v) for k, v in changes["change"].value_counts().items()}
    # Each week is one step of the emulator's churn, so the snapshots show exactly what it
    # did (whatever the session's random plugin id, hence member ids, made it draw). Rare
    # kinds may be 0 in a week; signups never are (a few a week at least).
    churn = {key: sum(week[key] for week in history.churn) for key in history.churn[0]}
    assert churn["signups"] > 0
    assert {
        kind: counts.get(kind, 0)
        for kind in ("joined", "left", "plan", "provider_added", "provider_removed", "verified")
    } == {
        "joined": churn["signups"],
        "left": churn["deletions"],
        "plan": churn["upgrades"] + churn["downgrades"],
        "provider_added": churn["identitiesAdded"],
        "provider_removed": churn["identitiesRemoved"],
        "verified": churn["verified"],
    }
    assert timeline["joined"].sum() == counts["joined"]
    assert timeline["left"].sum() == counts["left"]
    assert timeline["members"].iloc[-1] == 120 + counts["joined"] - counts["left"]
    plan_moves = changes[changes.change == "plan"]
    upgrades = int((plan_moves["direction"] == "upgrade").sum())
    assert (upgrades, len(plan_moves) - upgrades) == (churn["upgrades"], churn["downgrades"])


_READERS = textwrap.dedent(
    """
    import json, sys
    import pyarrow.dataset as ds
    store = sys.argv[1]
    dataset = ds.dataset(store, format="parquet", partitioning="hive")
    table = dataset.to_table(columns=["snapshot", "member_id", "plan"])
    counts = table.group_by("snapshot").aggregate([("member_id", "count")]).to_pylist()
    out = {"pyarrow": sorted([r["snapshot"], r["member_id_count"]] for r in counts)}
    try:
        import duckdb
    except ImportError:
        out["duckdb"] = None
    else:
        rows = duckdb.sql(
            f"SELECT snapshot, count(*) FROM read_parquet('{store}/snapshot=*/*.parquet', "
            "hive_partitioning = true, union_by_name = true) GROUP BY snapshot ORDER BY 1"
        ).fetchall()
        out["duckdb"] = [list(r) for r in rows]
    out["plabdata_imported"] = any(m.startswith("plabdata") for m in sys.modules)
    print(json.dumps(out))
    """
)


def test_a_store_is_read_without_plabdata(tmp_path: Path) -> None:
    store = _store(tmp_path)
    (store / ".tmp-snapshot=2026-12-01T00-00-00Z-1-0000abcd").mkdir()  # a dead writer's
    write_snapshot(AFTER, store / ".tmp-snapshot=2026-12-01T00-00-00Z-1-0000abcd", at=T2)
    done = subprocess.run(
        [sys.executable, "-I", "-c", _READERS, str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    expected = [
        ["2026-09-01T06-00-00Z", 5],
        ["2026-10-01T06-00-00Z", 5],
        ["2026-11-01T06-00-00Z", 4],
    ]
    assert [list(r) for r in out["pyarrow"]] == expected
    assert out["plabdata_imported"] is False
    if out["duckdb"] is None:
        pytest.skip("duckdb is not installed (pyarrow.dataset read the store)")
    assert out["duckdb"] == expected
