"""The SQLite journal that makes bulk jobs resumable and never double-applied.

A journal is one SQLite file (WAL mode) recording, per key (a member email, an event
fingerprint…), what happened to it: ``pending`` (about to be sent), then the caller's outcome
(``sent``, ``failed``, ``in-doubt``, …). The write protocol is what makes a crash safe:

1. :meth:`Journal.begin` marks keys ``pending`` and **commits before returning** (with
   ``synchronous=FULL``, so the mark survives a kill, a Ctrl-C or a power cut). Call it just
   before the request leaves.
2. :meth:`Journal.finish` records the outcome. Outcomes are buffered and committed in batches
   (every ~200 or ~0.5 s, and by :meth:`flush`, :meth:`begin` and :meth:`close`), because an
   outcome lost in a crash only turns a finished key back into a pending one — never the
   other way round.
3. After a crash, :meth:`pending_keys` lists what was begun and never finished: those requests
   may or may not have been applied (*in doubt*).

A journal is bound to one plugin id and one job when created, and one run at a time holds it:
an exclusive ``fcntl.flock`` on the sidecar file ``<path>.lock``, which the operating system
releases when the holding process dies (so a lock left by ``kill -9`` is simply taken over).

Never put secrets (passwords, tokens) into a journal's ``detail`` or ``error``.

    >>> with Journal("events.journal.sqlite", plugin_id="p1", job="events") as journal:
    ...     journal.begin([("fp1", {"row": 2})]); journal.finish("fp1", "sent")
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from plabdata.errors import JournalError

__all__ = ["Journal", "JournalEntry"]

SCHEMA_VERSION = "1"
PENDING = "pending"

#: Buffered outcomes are committed once this many are waiting…
FLUSH_EVERY = 200
#: …or once the oldest waiting outcome is this many seconds old (checked on each call).
FLUSH_SECONDS = 0.5
#: Keys per query in :meth:`Journal.get` (passed as one JSON array, so no variable limit).
_GET_CHUNK = 50_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    error TEXT,
    member_id TEXT,
    detail TEXT,
    first_seen INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_status ON entries (status);
"""

_BEGIN_SQL = """
INSERT INTO entries (key, status, attempts, detail, first_seen, updated_at)
VALUES (?, 'pending', 1, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    status = 'pending', attempts = attempts + 1, detail = excluded.detail,
    http_status = NULL, error = NULL, updated_at = excluded.updated_at
"""

_FINISH_SQL = """
INSERT INTO entries (key, status, attempts, http_status, error, member_id, detail,
                     first_seen, updated_at)
VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    status = excluded.status, http_status = excluded.http_status, error = excluded.error,
    member_id = COALESCE(excluded.member_id, member_id),
    detail = COALESCE(excluded.detail, detail), updated_at = excluded.updated_at
"""

_COLUMNS = "key, status, attempts, http_status, error, member_id, detail, first_seen, updated_at"


@dataclass(frozen=True)
class JournalEntry:
    """What the journal knows about one key.

    Attributes:
        key: The caller's key (an email, an event fingerprint…).
        status: ``"pending"`` (begun, not finished) or the caller's outcome word.
        attempts: How many times :meth:`Journal.begin` marked the key.
        http_status: The last HTTP status recorded by :meth:`Journal.finish`, if any.
        error: The last error text, if any.
        member_id: The member the key concerns, when known.
        detail: The JSON detail stored with the last begin/finish.
    """

    key: str
    status: str
    attempts: int
    http_status: int | None
    error: str | None
    member_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _dump(detail: Mapping[str, Any] | None) -> str | None:
    if detail is None:
        return None
    return json.dumps(dict(detail), sort_keys=True, default=str, separators=(",", ":"))


def _load(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}


class Journal:
    """A resumable job's durable record, bound to one plugin id and one job.

    Args:
        path: The SQLite file; created (with its parents' existence required) if absent.
        plugin_id: The plugin the job writes to. A file bound to another plugin is refused.
        job: The kind of job (``"events"``, ``"members"``). A file of another job is refused.

    Raises:
        JournalError: The file belongs to another plugin or job, is not a journal, or
            another run (this process or another) holds it.

    Example:
        >>> journal = Journal("members.journal.sqlite", plugin_id="p1", job="members")
        >>> journal.pending_keys(); journal.close()
    """

    def __init__(self, path: str | os.PathLike[str], *, plugin_id: str, job: str) -> None:
        self.path = Path(path)
        self.plugin_id = plugin_id
        self.job = job
        self._mutex = threading.RLock()
        self._buffer: list[tuple[Any, ...]] = []
        self._buffer_since = 0.0
        self._conn: sqlite3.Connection | None = None
        self._lock_file = self._acquire_lock()
        try:
            self._conn = self._open()
            self._bind()
        except BaseException:
            self._release()
            raise

    # -- opening -------------------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        """The sidecar file whose ``flock`` marks the run holding the journal."""
        return self.path.with_name(self.path.name + ".lock")

    def _acquire_lock(self) -> Any:
        try:
            handle = open(self.lock_path, "a+", encoding="ascii")  # noqa: SIM115 - held open
        except OSError as exc:
            raise JournalError(f"cannot open the journal lock {self.lock_path}: {exc}") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise JournalError(
                f"journal {self.path} is held by another run (pid {holder}); "
                "wait for it to finish, or stop it"
            ) from None
        # Taken (freshly, or over from a process that died): record who holds it now.
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed begin() survives a power cut, not only a killed process.
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path} is not a plabdata journal: {exc}") from exc
        return conn

    def _bind(self) -> None:
        conn = self._connection()
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        if not meta:
            with self._transaction():
                conn.executemany(
                    "INSERT INTO meta (name, value) VALUES (?, ?)",
                    [
                        ("plugin_id", self.plugin_id),
                        ("job", self.job),
                        ("schema_version", SCHEMA_VERSION),
                        ("created_at_ms", str(_now_ms())),
                    ],
                )
            return
        bound_plugin, bound_job = meta.get("plugin_id"), meta.get("job")
        if bound_plugin != self.plugin_id or bound_job != self.job:
            raise JournalError(
                f"journal {self.path} is bound to plugin {bound_plugin!r} (job {bound_job!r}), "
                f"not plugin {self.plugin_id!r} (job {self.job!r}); use another journal file"
            )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {self.path} is closed")
        return self._conn

    def _transaction(self) -> _Transaction:
        return _Transaction(self._connection())

    # -- context and closing ---------------------------------------------------------------

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        where = str(self.path)
        return f"Journal({where!r}, plugin_id={self.plugin_id!r}, job={self.job!r}, {state})"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._conn is None

    def close(self) -> None:
        """Commit buffered outcomes, close the file and release the run lock (idempotent).

        Example:
            >>> journal.close()
            >>> journal.closed
            True
        """
        with self._mutex:
            if self._conn is None:
                return
            try:
                self._flush_locked()
            finally:
                self._conn.close()
                self._conn = None
                self._release()

    def _release(self) -> None:
        handle, self._lock_file = getattr(self, "_lock_file", None), None
        if handle is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            finally:
                handle.close()

    # -- writing -------------------------------------------------------------------------

    def begin(self, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Mark keys ``pending`` (attempts + 1) and commit durably before returning.

        Buffered outcomes are committed in the same transaction, so a key finished and then
        begun again is never overwritten by its stale outcome.

        Args:
            entries: ``(key, detail)`` pairs; ``detail`` is stored as JSON (no secrets).

        Example:
            >>> journal.begin([("fp1", {"row": 2, "file": "logs.csv"})])
            >>> journal.pending_keys()
            ['fp1']
        """
        now = _now_ms()
        rows = [(key, _dump(detail) or "{}", now, now) for key, detail in entries]
        with self._mutex:
            if not rows and not self._buffer:
                return
            conn = self._connection()
            with self._transaction():
                self._write_buffer(conn)
                conn.executemany(_BEGIN_SQL, rows)

    def finish(
        self,
        key: str,
        status: str,
        *,
        http_status: int | None = None,
        error: str | None = None,
        member_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a key's outcome; buffered and committed in batches.

        Args:
            key: The key (need not have been begun: e.g. a row skipped before sending).
            status: The outcome word, e.g. ``"sent"``, ``"failed"``, ``"in-doubt"``.
            http_status: The HTTP status seen, if any.
            error: Error text (never a secret).
            member_id: The member concerned; kept from before when None.
            detail: Replaces the stored JSON detail when given.

        Example:
            >>> journal.finish("fp1", "sent", http_status=200, member_id="mem_1")
            >>> journal.flush()
        """
        if status == PENDING:
            raise ValueError("use begin() to mark a key pending")
        now = _now_ms()
        row = (key, status, http_status, error, member_id, _dump(detail), now, now)
        with self._mutex:
            if not self._buffer:
                self._buffer_since = time.monotonic()
            self._buffer.append(row)
            if (
                len(self._buffer) >= FLUSH_EVERY
                or time.monotonic() - self._buffer_since >= FLUSH_SECONDS
            ):
                self._flush_locked()

    def flush(self) -> None:
        """Commit every buffered outcome now.

        Example:
            >>> journal.finish("fp1", "sent"); journal.flush()
        """
        with self._mutex:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._buffer:
            return
        conn = self._connection()
        with self._transaction():
            self._write_buffer(conn)

    def _write_buffer(self, conn: sqlite3.Connection) -> None:
        if self._buffer:
            conn.executemany(_FINISH_SQL, self._buffer)
            self._buffer = []

    # -- reading -------------------------------------------------------------------------

    def get(self, keys: Iterable[str]) -> dict[str, JournalEntry]:
        """The entries for those keys that exist, in bulk.

        Args:
            keys: Keys to look up; absent keys are simply missing from the result.

        Returns:
            ``{key: JournalEntry}`` for the keys the journal knows.

        Example:
            >>> journal.get(["fp1", "never-seen"])
            {'fp1': JournalEntry(key='fp1', status='sent', ...)}
        """
        wanted = list(dict.fromkeys(keys))
        found: dict[str, JournalEntry] = {}
        with self._mutex:
            self._flush_locked()
            conn = self._connection()
            for start in range(0, len(wanted), _GET_CHUNK):
                chunk = json.dumps(wanted[start : start + _GET_CHUNK])
                cursor = conn.execute(
                    f"SELECT {_COLUMNS} FROM entries WHERE key IN (SELECT value FROM json_each(?))",
                    (chunk,),
                )
                for key, status, attempts, http_status, error, member_id, detail, *_ in cursor:
                    found[key] = JournalEntry(
                        key, status, attempts, http_status, error, member_id, _load(detail)
                    )
        return found

    def statuses(self, keys: Iterable[str]) -> dict[str, str]:
        """Only the status of each known key: a lighter :meth:`get` for large lookups.

        Example:
            >>> journal.statuses(["fp1"])
            {'fp1': 'sent'}
        """
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._mutex:
            self._flush_locked()
            conn = self._connection()
            for start in range(0, len(wanted), _GET_CHUNK):
                chunk = json.dumps(wanted[start : start + _GET_CHUNK])
                found.update(
                    conn.execute(
                        "SELECT key, status FROM entries "
                        "WHERE key IN (SELECT value FROM json_each(?))",
                        (chunk,),
                    ).fetchall()
                )
        return found

    def pending_keys(self) -> list[str]:
        """Keys begun and never finished: after a crash, their requests are in doubt.

        Example:
            >>> journal.pending_keys()
            ['fp7', 'fp8']
        """
        with self._mutex:
            self._flush_locked()
            rows = self._connection().execute(
                "SELECT key FROM entries WHERE status = 'pending' ORDER BY updated_at, key"
            )
            return [key for (key,) in rows]

    def counts(self) -> dict[str, int]:
        """How many keys are in each status.

        Example:
            >>> journal.counts()
            {'pending': 2, 'sent': 998}
        """
        with self._mutex:
            self._flush_locked()
            rows = self._connection().execute(
                "SELECT status, COUNT(*) FROM entries GROUP BY status ORDER BY status"
            )
            return {status: int(n) for status, n in rows}

    def frame(self) -> pd.DataFrame:
        """Every entry as a DataFrame.

        Columns: ``key``, ``status``, ``error``, ``member_id`` (string), ``attempts`` (int64),
        ``http_status`` (Int64), ``detail`` (dicts), ``first_seen``, ``updated_at``
        (datetime64[ms, UTC]).

        Example:
            >>> journal.frame().query("status == 'in-doubt'")
        """
        with self._mutex:
            self._flush_locked()
            rows = (
                self._connection()
                .execute(f"SELECT {_COLUMNS} FROM entries ORDER BY first_seen, key")
                .fetchall()
            )
        names = _COLUMNS.split(", ")
        raw: dict[str, list[Any]] = {name: [row[i] for row in rows] for i, name in enumerate(names)}
        return pd.DataFrame(
            {
                "key": pd.array(raw["key"], dtype="string"),
                "status": pd.array(raw["status"], dtype="string"),
                "attempts": pd.array(raw["attempts"], dtype="int64"),
                "http_status": pd.array(raw["http_status"], dtype="Int64"),
                "error": pd.array(raw["error"], dtype="string"),
                "member_id": pd.array(raw["member_id"], dtype="string"),
                "detail": pd.Series([_load(d) for d in raw["detail"]], dtype=object),
                "first_seen": _ms_to_utc(raw["first_seen"]),
                "updated_at": _ms_to_utc(raw["updated_at"]),
            }
        )


def _ms_to_utc(values: list[int]) -> pd.Series:
    stamps = pd.to_datetime(pd.Series(values, dtype="int64"), unit="ms", utc=True)
    return stamps.astype("datetime64[ms, UTC]")


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self._conn.execute("COMMIT")
        else:
            self._conn.execute("ROLLBACK")
