"""backfill_events against the emulator: exactly-once bookkeeping, faults, journal, outputs.

Each test row carries its own event source (``R00000``, ``R00001``…), so the emulator's
per-source counts say exactly which rows reached it, and how many times.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from plabdata.client._sync import Admin
from plabdata.emulator import EmulatorHandle
from plabdata.errors import AuthError, JournalError, ValidationError
from plabdata.events._backfill import backfill_events
from plabdata.events._report import BackfillReport
from plabdata.jobs._journal import Journal
from plabdata.members._loaders import load_members


@pytest.fixture
def admin(emu: EmulatorHandle) -> Iterator[Admin]:
    emu.seed(12)
    with Admin(emu.settings.replace(rate_limit=2000, concurrency=16)) as client:
        yield client


@pytest.fixture
def members(admin: Admin) -> pd.DataFrame:
    return load_members(admin, progress=False)


def make_log(members: pd.DataFrame, n: int, start: int = 0) -> pd.DataFrame:
    """n rows, row i with source R<i>, so the server's per-source count identifies it."""
    emails = members["email"].tolist()
    index = range(start, start + n)
    return pd.DataFrame(
        {
            "timestamp": [f"2026-10-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z" for i in index],
            "email": [emails[i % len(emails)] for i in index],
            "source": [f"R{i:05d}" for i in index],
            "country": ["US" if i % 3 else "DE" for i in index],
            "region": ["CA" if i % 3 else "" for i in index],
        }
    )


def server_counts(emu: EmulatorHandle) -> dict[str, int]:
    by_source = emu.stats()["eventsBySource"]
    return {k: v for k, v in by_source.items() if re.fullmatch(r"R\d{5}", k)}


@contextlib.contextmanager
def _other_job_hammering(emu: EmulatorHandle) -> Iterator[None]:
    """Another job sharing the plugin's rate limit: it drains the bucket (until the server
    answers it 429, however slow this machine) before the block starts, then keeps asking
    for a short storm while the block runs."""
    settings = emu.settings
    stop = threading.Event()
    drained = threading.Event()

    def hammer() -> None:
        limited = 0
        with httpx.Client(headers=settings.headers(), timeout=5) as client:
            while not stop.is_set() and limited < 40:
                answer = client.get(f"{settings.members_url}/members", params={"limit": 1})
                if answer.status_code == 429:
                    limited += 1
                    drained.set()

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    drained.wait(timeout=30)
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def run(admin: Admin, source: object, journal: Path | Journal, **options: Any) -> BackfillReport:
    return backfill_events(
        admin,
        source,
        journal=journal,
        progress=False,
        **options,
    )


def test_sends_each_row_once_and_a_rerun_sends_nothing(
    admin: Admin, emu: EmulatorHandle, members: pd.DataFrame, tmp_path: Path
) -> None:
    log = tmp_path / "log.csv"
    make_log(members, 40).to_csv(log, index=False)
    journal = tmp_path / "log.journal.sqlite"
    report = run(admin, log, journal, members=members)
    assert report.counts == {"sent": 40}
    assert server_counts(emu) == {f"R{i:05d}": 1 for i in range(40)}
    rows = report.rows()
    assert rows["row"].tolist() == list(range(2, 42))
    assert set(rows["status"]) == {"sent"} and rows["fingerprint"].is_unique
    assert rows["member_id"].notna().all()
    # The events carry the member and the location, in PluginLab's short subdivision form.
    event = emu.events(source="R00001")[0]
    assert (event["countryCode"], event["subdivisionCode"]) == ("US", "CA")
    again = run(admin, log, journal, members=members)
    assert again.counts == {"already-done": 40}
    assert sum(server_counts(emu).values()) == 40
    with Journal(journal, plugin_id=admin.settings.plugin_id, job="events") as j:
        assert j.counts() == {"sent": 40}


def test_an_overlapping_later_export_sends_only_new_rows(
    admin: Admin, emu: EmulatorHandle, members: pd.DataFrame, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    make_log(members, 30).to_parquet(tmp_path / "week1.parquet")
    make_log(members, 30, start=20).to_parquet(tmp_path / "week2.parquet")
    assert run(admin, tmp_path / "week1.parquet", journal, members=members).counts == {"sent": 30}
    report = run(admin, tmp_path / "week2.parquet", journal, members=members)
    assert report.counts == {"sent": 20, "already-done": 10}
    assert server_counts(emu) == {f"R{i:05d}": 1 for i in range(50)}
    # Given together in one run, overlapping inputs are deduplicated too.
    make_log(members, 10, start=60).to_csv(tmp_path / "a.csv", index=False)
    make_log(members, 10, start=65).to_csv(tmp_path / "b.csv", index=False)
    both = run(admin, [tmp_path / "a.csv", tmp_path / "b.csv"], journal, members=members)
    assert both.counts == {"sent": 15, "already-done": 5}
    assert max(server_counts(emu).values()) == 1


@pytest.mark.chaos
def test_under_faults_every_row_is_accounted_for_once_and_nothing_is_doubled(
    admin: Admin, emu: EmulatorHandle, members: pd.DataFrame, tmp_path: Path
) -> None:
    n = 100
    log = tmp_path / "log.parquet"
    make_log(members, n).to_parquet(log)
    journal = tmp_path / "j.sqlite"
    emu.set_faults(error_rate=0.15, drop_rate=0.1, rate_limit=150, random_seed=7)
    # Another job sharing the plugin's rate limit drains the bucket: the backfill meets 429s.
    with _other_job_hammering(emu):
        report = run(admin, log, journal, members=members)
    stats = emu.stats()
    assert stats["drops"] > 0 and stats["injectedErrors"] > 0 and stats["rateLimited"] > 0
    rows = report.rows()
    assert len(rows) == n and rows["row"].tolist() == list(range(2, n + 2))
    assert sum(report.counts.values()) == n
    assert set(report.counts) <= {"sent", "in-doubt", "failed"} and report.counts["in-doubt"] > 0
    counts = server_counts(emu)
    assert max(counts.values()) == 1  # no row reached the server twice
    # Injected 5xx happen before processing; a drop commits first. So with skip, the server
    # holds exactly the rows reported sent plus the dropped (in-doubt) ones.
    assert sum(counts.values()) == report.counts["sent"] + stats["drops"]
    sent = {f"R{r - 2:05d}" for r in rows.loc[rows["status"] == "sent", "row"]}
    assert sent <= set(counts)
    in_doubt = rows[rows["status"] == "in-doubt"]
    assert in_doubt["error"].str.contains("in doubt").all()

    # A second run, faults gone: failed rows are sent, in-doubt ones are left alone.
    emu.clear_faults()
    before = sum(server_counts(emu).values())
    second = run(admin, log, journal, members=members)
    assert second.counts.get("sent", 0) == report.counts.get("failed", 0)
    assert second.counts["in-doubt"] == report.counts["in-doubt"]
    assert second.counts["already-done"] == report.counts["sent"]
    assert sum(server_counts(emu).values()) == before + second.counts.get("sent", 0)
    assert max(server_counts(emu).values()) == 1


def test_retry_resends_in_doubt_rows_and_says_how_many_may_be_doubled(
    admin: Admin, emu: EmulatorHandle, members: pd.DataFrame, tmp_path: Path
) -> None:
    log = tmp_path / "log.csv"
    make_log(members, 60).to_csv(log, index=False)
    journal = tmp_path / "j.sqlite"
    emu.set_faults(drop_rate=0.3, random_seed=3)
    first = run(admin, log, journal, members=members)
    doubt = first.counts["in-doubt"]
    assert doubt == emu.stats()["drops"] > 0
    emu.clear_faults()
    second = run(admin, log, journal, members=members, on_in_doubt="retry")
    assert second.counts == {"sent": doubt, "already-done": 60 - doubt}
    assert second.maybe_doubled == doubt
    assert "may be counted twice" in second.summary()
    assert second.rows("sent")["maybe_doubled"].all()
    # Each dropped row was committed once before, and once now: exactly the doubles announced.
    assert sum(server_counts(emu).values()) == 60 + doubt


def test_bad_rows_are_rejected_with_reasons_and_written_back_in_the_input_format(
    admin: Admin, emu: EmulatorHandle, members: pd.DataFrame, tmp_path: Path
) -> None:
    frame = make_log(members, 10)
    frame.loc[1, "source"] = "ELEVENCHARS"
    frame.loc[2, "country"] = "XX"
    frame.loc[3, "email"] = "stranger@example.com"
    frame.loc[4, "timestamp"] = "not a time"
    frame.loc[5, "email"] = ""
    for suffix in ("csv", "parquet"):
        emu.reset()
        emu.seed(12)
        log = tmp_path / f"log.{suffix}"
        frame.to_csv(log, index=False) if suffix == "csv" else frame.to_parquet(log)
        report = run(
            admin,
            log,
            tmp_path / f"{suffix}.journal",
            members=members,
            rejects_path=tmp_path / f"rejected.{suffix}",
        )
        assert report.counts == {"sent": 5, "invalid": 5}
        assert sorted(server_counts(emu)) == [f"R{i:05d}" for i in (0, 6, 7, 8, 9)]
        rejected = report.rejected()
        assert report.rejects_path == tmp_path / f"rejected.{suffix}"
        assert list(rejected.columns) == ["row", *frame.columns, "problem"]
        assert rejected["row"].astype(int).tolist() == [3, 4, 5, 6, 7]
        problems = rejected["problem"].tolist()
        assert "longer than 10 characters" in problems[0]
        assert "unknown country code 'XX'" in problems[1]
        assert "unknown email 'stranger@example.com'" in problems[2]
        assert "unparsable timestamp 'not a time'" in problems[3]
        assert "blank email" in problems[4]

    # Fixed and fed back, the rejected rows go through.
    fixed = report.rejected().drop(columns=["row", "problem"])
    fixed["source"] = "FIXED"
    fixed["country"] = "US"
    fixed["email"] = members["email"].iloc[0]
    fixed["timestamp"] = "2026-10-05T00:00:00Z"
    again = run(admin, fixed, tmp_path / "parquet.journal", members=members)
    assert again.counts == {"sent": 5}


def test_whole_file_problems_stop_before_anything_is_sent(
    admin: Admin, emu: EmulatorHandle, members: pd.DataFrame, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    no_source = make_log(members, 5).drop(columns="source")
    no_source.to_csv(tmp_path / "no_source.csv", index=False)
    make_log(members, 5).to_csv(tmp_path / "good.csv", index=False)
    with pytest.raises(ValidationError, match=r"no_source\.csv: no event source column"):
        run(admin, [tmp_path / "good.csv", tmp_path / "no_source.csv"], journal, members=members)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(ValidationError, match="not a readable parquet file"):
        run(admin, corrupt, journal, members=members)
    assert server_counts(emu) == {}
    # An empty file is no error: it has no rows, and the others still go through.
    (tmp_path / "empty.csv").write_text("")
    report = run(admin, [tmp_path / "empty.csv", tmp_path / "good.csv"], journal, members=members)
    assert report.counts == {"sent": 5}
    assert any("empty.csv: empty" in note for note in report.notes)


def test_the_journal_is_bound_to_the_plugin_and_held_by_one_run(
    admin: Admin, members: pd.DataFrame, tmp_path: Path
) -> None:
    log = tmp_path / "log.csv"
    make_log(members, 3).to_csv(log, index=False)
    other = tmp_path / "other.sqlite"
    Journal(other, plugin_id="plg_someone_else", job="events").close()
    with pytest.raises(JournalError, match="plg_someone_else"):
        run(admin, log, other, members=members)
    held = tmp_path / "held.sqlite"
    with (
        Journal(held, plugin_id=admin.settings.plugin_id, job="events"),
        pytest.raises(JournalError, match="held by another run"),
    ):
        run(admin, log, held, members=members)
    with pytest.raises(JournalError, match="job 'members'"):
        journal = Journal(tmp_path / "m.sqlite", plugin_id=admin.settings.plugin_id, job="members")
        try:
            run(admin, log, journal, members=members)
        finally:
            journal.close()


def test_dry_run_sends_nothing_and_previews_quota(
    admin: Admin, emu: EmulatorHandle, members: pd.DataFrame, tmp_path: Path
) -> None:
    log = tmp_path / "log.csv"
    frame = make_log(members, 30)
    frame["email"] = members["email"].iloc[0]  # one heavy user
    frame.to_csv(log, index=False)
    before = emu.stats()["requests"]
    report = run(
        admin,
        log,
        tmp_path / "j.sqlite",
        members=members,
        dry_run=True,
        load_quota=True,
        since="2026-10-01T00:00:05Z",
    )
    assert report.counts == {"would-send": 25, "filtered": 5}
    assert not (tmp_path / "j.sqlite").exists()
    assert server_counts(emu) == {}
    assert emu.stats()["requests"] - before == 1  # the one quota lookup
    assert report.events_per_member["events"].tolist() == [25]
    impact = report.quota
    assert impact is not None and impact["in_quota_events"].tolist() == [25]
    assert "uploaded, not at the time" in report.summary()


def test_refused_credentials_stop_the_run_and_leave_nothing_in_doubt(
    admin: Admin, emu: EmulatorHandle, members: pd.DataFrame, tmp_path: Path
) -> None:
    log, journal = tmp_path / "log.csv", tmp_path / "j.sqlite"
    make_log(members, 200).to_csv(log, index=False)
    with (
        Admin(admin.settings.replace(secret="not-the-secret")) as wrong,
        pytest.raises(AuthError),
    ):
        run(wrong, log, journal, members=members, chunk_rows=50)
    with Journal(journal, plugin_id=admin.settings.plugin_id, job="events") as held:
        assert held.pending_keys() == []  # requests in flight finished (refused, recorded)
        assert set(held.counts()) == {"failed"}
    report = run(admin, log, journal, members=members)
    assert report.counts == {"sent": 200}
    assert max(server_counts(emu).values()) == 1
