"""The journal's file: the lock follows the file, one file at rest, atomic creation, and the
refusals — empty, schema-less, damaged, swapped, deleted — each a JournalError, never sqlite3."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from plabdata.errors import JournalError
from plabdata.jobs import _journal as journal_module
from plabdata.jobs._journal import Journal
from tests.jobs.holders import hold, kill


def _open(path: Path) -> Journal:
    return Journal(path, plugin_id="p1", job="events")


# --------------------------------------------------------------------------- the run lock


def test_the_lock_follows_the_file_through_a_symlink_and_a_hard_link(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    symlink, hard_link = tmp_path / "via-symlink.journal", tmp_path / "via-link.journal"
    child = hold(path, 'journal.begin([("a", {})])')
    try:
        symlink.symlink_to(path)
        os.link(path, hard_link)
        for other in (symlink, hard_link, tmp_path / "." / "events.journal"):
            with pytest.raises(JournalError, match=rf"held by another run \(pid {child.pid}\)"):
                _open(other)
    finally:
        kill(child)
    with _open(hard_link) as journal:  # released by the kill, and the same file
        assert journal.pending_keys() == ["a"]


def test_one_process_cannot_hold_one_file_twice_under_two_names(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    (tmp_path / "link.journal").symlink_to(path)
    with _open(path), pytest.raises(JournalError, match="held by another run"):
        _open(tmp_path / "link.journal")


# --------------------------------------------------------------------------- one file at rest


def test_after_kill_9_the_main_file_alone_holds_every_committed_entry(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    body = (
        'journal.begin([(f"k{i}", {"row": i}) for i in range(300)])\n'
        'for i in range(120): journal.finish(f"k{i}", "sent")\n'
        "journal.flush()\n"
        'journal.begin([("late", {"row": 301})])'
    )
    kill(hold(path, body))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.journal"]  # no -wal, no -shm
    copy = tmp_path / "copy" / "events.journal"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)  # what "copy the journal" does: the main file only
    with _open(copy) as journal:
        assert journal.counts() == {"pending": 181, "sent": 120}
        assert journal.get(["late"])["late"].detail == {"row": 301}


def test_a_journal_of_an_older_plabdata_keeps_the_state_in_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "old.journal"
    setup = textwrap.dedent(
        """
        import sqlite3
        old = sqlite3.connect(PATH, isolation_level=None)
        old.execute("PRAGMA journal_mode=WAL")
        old.execute("PRAGMA wal_autocheckpoint=0")  # as if killed before any checkpoint
        old.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        old.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, status TEXT NOT NULL, "
                    "attempts INTEGER NOT NULL DEFAULT 0, http_status INTEGER, error TEXT, "
                    "member_id TEXT, detail TEXT, first_seen INTEGER NOT NULL, "
                    "updated_at INTEGER NOT NULL)")
        old.executemany("INSERT INTO meta VALUES (?, ?)", [("plugin_id", "p1"), ("job", "events")])
        old.executemany("INSERT INTO entries (key, status, first_seen, updated_at) "
                        "VALUES (?, 'sent', 0, 0)", [(f"k{i}",) for i in range(50)])
        print("ready", flush=True)
        time.sleep(60)
        """
    ).replace("PATH", repr(str(path)))
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\n" + setup],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    kill(child)
    assert (tmp_path / "old.journal-wal").stat().st_size > 0
    with _open(path) as journal:
        assert journal.counts() == {"sent": 50}
    # Opened once, it is one file: the -wal was folded in, and a copy holds it all.
    assert not (tmp_path / "old.journal-wal").exists()
    shutil.copyfile(path, tmp_path / "copy.journal")
    with _open(tmp_path / "copy.journal") as journal:
        assert journal.counts() == {"sent": 50}


# --------------------------------------------------------------------------- creating


def test_a_new_journal_is_private_and_created_whole(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    _open(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it lists member emails and ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.journal"]
    with sqlite3.connect(path) as conn:
        meta = dict(conn.execute("SELECT name, value FROM meta"))
    assert meta["plugin_id"] == "p1" and meta["job"] == "events"


def test_a_crash_while_creating_leaves_no_half_journal(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    # The child dies inside the creating transaction, tables made, binding not yet written.
    setup = textwrap.dedent(
        """
        import plabdata.jobs._journal as module
        def stuck(conn, meta):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            print("ready", flush=True)
            time.sleep(60)
        module.initialise = stuck
        """
    )
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n" + setup + f"module.Journal({str(path)!r}, plugin_id='p1', job='x')",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    kill(child)
    assert not path.exists()  # only a dot-named temporary file was left
    assert [p.name.startswith(".events.journal.") for p in tmp_path.iterdir()] == [True, True]
    with _open(path) as journal:  # created afresh, and the dead run's leftovers removed
        assert journal.counts() == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.journal"]


def test_a_failure_while_creating_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(conn: sqlite3.Connection, meta: Any) -> None:
        conn.execute("CREATE TABLE meta (name TEXT)")
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(journal_module, "initialise", broken)
    with pytest.raises(JournalError, match=r"cannot create journal .*events.journal.*disk"):
        _open(tmp_path / "events.journal")
    assert list(tmp_path.iterdir()) == []


def test_creating_needs_the_folder(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match=r"the folder .*missing does not exist"):
        _open(tmp_path / "missing" / "events.journal")


# --------------------------------------------------------------------------- state expected


def test_an_empty_file_where_a_journal_was_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    path.touch()
    with pytest.raises(JournalError, match=r"events.journal is empty \(0 bytes\).*record is lost"):
        _open(path)
    assert path.stat().st_size == 0  # left as found, not turned into a new journal


def test_a_schema_less_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 1")  # a valid database with no tables
    with pytest.raises(JournalError, match="holds no journal tables"):
        _open(path)
    unbound = tmp_path / "unbound.journal"
    with sqlite3.connect(unbound) as conn:
        conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("CREATE TABLE entries (key TEXT PRIMARY KEY)")
    with pytest.raises(JournalError, match="has no binding"):
        _open(unbound)


def test_a_damaged_journal_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    with _open(path) as journal:
        journal.begin([(f"key-{i:05d}" * 4, {"row": i}) for i in range(3000)])
    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page : 5 * page] = b"\xff" * (2 * page)  # two pages of the entries' b-tree
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="damaged") as raised:
        _open(path)
    assert "restore it from a backup" in str(raised.value).lower()
    assert not isinstance(raised.value, sqlite3.Error)
    _open(tmp_path / "fresh.journal").close()  # the refusal held no lock or handle


# --------------------------------------------------------------------------- under a running job


def test_a_journal_deleted_under_a_running_job_stops_it_and_is_rescued(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    journal = _open(path)
    journal.begin([("a", {"row": 2})])
    journal.finish("a", "sent")
    path.unlink()
    with pytest.raises(
        JournalError, match=r"was deleted \(or moved\) while this run was using it"
    ) as raised:
        journal.begin([("b", {"row": 3})])
    assert "sends nothing more" in str(raised.value)
    with pytest.raises(JournalError, match="deleted"):  # and every later call
        journal.finish("c", "sent")
    with pytest.raises(JournalError, match="deleted"):  # the run cannot end as a success
        journal.close()
    assert journal.closed
    (rescued,) = tmp_path.glob("events.journal.rescued-*")
    assert str(rescued) in str(raised.value)
    with _open(rescued) as copy:
        assert copy.counts() == {"sent": 1}  # b was never recorded, so never sent


def test_a_journal_replaced_under_a_running_job_stops_it(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    journal = _open(path)
    journal.begin([("a", {})])
    backup = tmp_path / "backup.journal"
    shutil.copyfile(path, backup)
    journal.finish("a", "sent")
    journal.flush()
    os.replace(backup, path)  # an older copy restored over the running journal
    with pytest.raises(JournalError, match="was replaced by another file"):
        journal.begin([("b", {})])
    with pytest.raises(JournalError):
        journal.close()
    with _open(path) as restored:  # the file now there was not written to
        assert restored.counts() == {"pending": 1}


def test_a_journal_deleted_after_the_last_commit_fails_the_close(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    journal = _open(path)
    journal.begin([("a", {})])
    path.unlink()
    with pytest.raises(JournalError, match="deleted"):
        journal.close()


# --------------------------------------------------------------------------- sqlite errors


class _FailingConnection:
    """A connection whose writes fail as a full disk does (sqlite3.Connection is immutable)."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real = real

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("BEGIN"):
            raise sqlite3.OperationalError("database or disk is full")
        return self.real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_sqlite_errors_become_journal_errors_that_say_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    journal = _open(path)
    real = journal._conn
    assert real is not None
    journal.finish("done-before", "sent")
    journal._conn = _FailingConnection(real)  # type: ignore[assignment]
    with pytest.raises(JournalError) as raised:
        journal.begin([("a", {})])
    message = str(raised.value)
    assert str(path) in message and "disk is full" in message and "free disk space" in message
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    journal._conn = real
    journal.flush()  # the outcome that could not be committed was kept, not dropped
    assert journal.statuses(["done-before"]) == {"done-before": "sent"}
    journal.close()
