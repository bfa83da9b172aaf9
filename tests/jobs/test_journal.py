"""The journal: binding, the one-run lock, durable begins, batched outcomes, crash recovery."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from plabdata.errors import JournalError
from plabdata.jobs import _journal as journal_module
from plabdata.jobs._journal import Journal, JournalEntry
from tests.jobs.holders import hold, kill


def test_binds_to_plugin_and_job(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path, plugin_id="p1", job="events").close()
    with pytest.raises(JournalError, match=r"'p1'.*'p2'"):
        Journal(path, plugin_id="p2", job="events")
    with pytest.raises(JournalError, match=r"'events'.*'members'"):
        Journal(path, plugin_id="p1", job="members")
    # A refused open does not keep the lock: the rightful owner still gets in.
    with Journal(path, plugin_id="p1", job="events") as journal:
        assert journal.counts() == {}


def test_second_opener_in_same_process_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    held = rf"held by another run \(pid {os.getpid()}\)"
    with Journal(path, plugin_id="p1", job="events"), pytest.raises(JournalError, match=held):
        Journal(path, plugin_id="p1", job="events")
    Journal(path, plugin_id="p1", job="events").close()  # released on close


def test_second_opener_in_other_process_refused_then_lock_taken_over_afterkill(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite"
    child = hold(path, "")
    try:
        with pytest.raises(JournalError, match=rf"pid {child.pid}"):
            Journal(path, plugin_id="p1", job="events")
    finally:
        kill(child)
    with Journal(path, plugin_id="p1", job="events") as journal:
        assert journal.counts() == {}
    # No sidecar lock file: the lock is on the journal file itself.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.sqlite"]


def test_begin_is_durable_before_return(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    child = hold(path, 'journal.begin([("a", {"row": 2}), ("b", {"row": 3})])')
    kill(child)
    with Journal(path, plugin_id="p1", job="events") as journal:
        assert journal.pending_keys() == ["a", "b"]
        assert journal.get(["a"])["a"].detail == {"row": 2}


def test_unflushed_outcomes_are_lost_in_a_kill_and_leave_keys_pending(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    body = 'journal.begin([("a", {}), ("b", {})]); journal.finish("a", "sent")'
    kill(hold(path, body))
    with Journal(path, plugin_id="p1", job="events") as journal:
        # The lost outcome turns a finished key back into an in-doubt one, never the reverse.
        assert journal.pending_keys() == ["a", "b"]


def test_finish_is_batched_and_committed_by_flush_and_close(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path, plugin_id="p1", job="events")
    journal.begin([("a", {}), ("b", {})])
    journal.finish("a", "sent", http_status=200)
    outside = sqlite3.connect(path)

    def committed() -> dict[str, str]:
        return dict(outside.execute("SELECT key, status FROM entries").fetchall())

    assert committed() == {"a": "pending", "b": "pending"}
    journal.flush()
    assert committed() == {"a": "sent", "b": "pending"}
    journal.finish("b", "failed", error="boom")
    journal.close()
    assert committed() == {"a": "sent", "b": "failed"}
    outside.close()


def test_finish_commits_once_a_batch_fills(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path, plugin_id="p1", job="events") as journal:
        keys = [f"k{i}" for i in range(journal_module.FLUSH_EVERY)]
        for key in keys:
            journal.finish(key, "sent")
        with sqlite3.connect(path) as outside:
            (n,) = outside.execute("SELECT COUNT(*) FROM entries").fetchone()
        assert n == len(keys)


def test_begin_commits_buffered_outcomes_first(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite", plugin_id="p1", job="events") as journal:
        journal.begin([("a", {"try": 1})])
        journal.finish("a", "failed", error="503")
        journal.begin([("a", {"try": 2})])  # retried: the stale 'failed' must not win later
        journal.flush()
        entry = journal.get(["a"])["a"]
        assert (entry.status, entry.attempts, entry.error, entry.detail) == (
            "pending",
            2,
            None,
            {"try": 2},
        )


def test_pending_keys_after_simulated_crash(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path, plugin_id="p1", job="events")
    journal.begin([(f"k{i}", {"row": i}) for i in range(5)])
    for i in range(3):
        journal.finish(f"k{i}", "sent")
    journal.flush()
    # Simulated crash: the lock goes away with the process; nothing else is written.
    journal._file.release()
    reopened = Journal(path, plugin_id="p1", job="events")
    assert reopened.pending_keys() == ["k3", "k4"]
    assert reopened.counts() == {"pending": 2, "sent": 3}
    reopened.close()


def test_get_is_bulk_and_skips_unknown_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "_GET_CHUNK", 3)
    with Journal(tmp_path / "j.sqlite", plugin_id="p1", job="events") as journal:
        journal.begin([(f"k{i}", {}) for i in range(10)])
        journal.finish("k4", "sent", http_status=200, member_id="mem_1", detail={"row": 6})
        found = journal.get([f"k{i}" for i in range(12)])
        assert sorted(found) == [f"k{i}" for i in range(10)]
        assert found["k4"] == JournalEntry("k4", "sent", 1, 200, None, "mem_1", {"row": 6})
        assert journal.statuses(["k4", "k5", "zz"]) == {"k4": "sent", "k5": "pending"}


def test_frame_and_counts(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite", plugin_id="p1", job="events") as journal:
        assert list(journal.frame().columns) == [
            "key",
            "status",
            "attempts",
            "http_status",
            "error",
            "member_id",
            "detail",
            "first_seen",
            "updated_at",
        ]
        journal.begin([("a", {"row": 2}), ("b", {"row": 3})])
        journal.finish("a", "sent", http_status=200, member_id="mem_1")
        journal.finish("c", "invalid", error="bad country")  # never begun
        frame = journal.frame().set_index("key")
        assert journal.counts() == {"invalid": 1, "pending": 1, "sent": 1}
    assert frame.loc["a", "status"] == "sent"
    assert frame.loc["a", "http_status"] == 200
    assert frame["http_status"].isna().tolist() == [False, True, True]
    assert frame.loc["c", "attempts"] == 0
    assert frame.loc["b", "detail"] == {"row": 3}
    assert str(frame["first_seen"].dtype) == "datetime64[ms, UTC]"
    assert frame["status"].dtype == "string"
    assert frame["http_status"].dtype == "Int64"


def test_closed_journal_and_misuse(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite", plugin_id="p1", job="events")
    with pytest.raises(ValueError, match="begin"):
        journal.finish("a", "pending")
    journal.close()
    journal.close()  # idempotent
    assert journal.closed
    with pytest.raises(JournalError, match="closed"):
        journal.counts()


def test_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="not a plabdata journal"):
        Journal(path, plugin_id="p1", job="events")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(JournalError, match=r"SQLite database but not a plabdata journal.*notes"):
        Journal(other, plugin_id="p1", job="events")
    assert path.read_bytes() == b"this is not sqlite" * 100  # refused, untouched
