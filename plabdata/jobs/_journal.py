"""The SQLite journal that makes bulk jobs resumable and never double-applied.

A journal is one SQLite file recording, per key (a member email, an event fingerprint…), what
happened to it: ``pending`` (about to be sent), then the caller's outcome (``sent``,
``failed``, ``in-doubt``, …). The write protocol is what makes a crash safe:

1. :meth:`Journal.begin` marks keys ``pending`` and **commits before returning** (with
   ``synchronous=FULL``, so the mark survives a kill, a Ctrl-C or a power cut). Call it just
   before the request leaves.
2. :meth:`Journal.finish` records the outcome. Outcomes are buffered and committed in batches
   (every ~200 or ~0.5 s, and by :meth:`flush`, :meth:`begin` and :meth:`close`), because an
   outcome lost in a crash only turns a finished key back into a pending one — never the
   other way round.
3. After a crash, :meth:`pending_keys` lists what was begun and never finished: those requests
   may or may not have been applied (*in doubt*).

**One file at rest.** The journal runs in SQLite's rollback mode (``journal_mode=DELETE``):
each commit lands in the main file before it returns, so the file alone — copied, backed up,
moved — always holds every committed entry, even after ``kill -9``. (In WAL mode the
state would sit in a ``-wal`` sidecar until a checkpoint: a copy of "the journal" without it
is an empty journal.) The cost is ~1.5 ms per commit, and commits are grouped, so at 500
events/s the journal is far from the bottleneck (see ``docs/reliability.md``).

**Bound and held.** A journal is bound when created to one plugin id, one job and (through
:func:`~plabdata.jobs._open.open_journal`) the API it writes to; a journal of another is
refused. One run at a time holds it: an exclusive lock on the file itself, so a symlink or a
hard link cannot get a second run in (see :mod:`plabdata.jobs._journal_file`, which also
refuses damaged, emptied, swapped and deleted journals). Every SQLite error becomes a
:class:`~plabdata.errors.JournalError` naming the file and what to do.

Never put secrets (passwords, tokens) into a journal's ``detail`` or ``error``.

    >>> with Journal("events.journal", plugin_id="p1", job="events") as journal:
    ...     journal.begin([("fp1", {"row": 2})]); journal.finish("fp1", "sent")
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from plabdata.errors import JournalError
from plabdata.jobs._journal_file import (
    JournalFile,
    connect_checked,
    describe_sqlite_error,
    rescue,
    set_pragmas,
)
from plabdata.jobs._journal_schema import (
    ADOPT_URL,
    BEGIN_SQL,
    COLUMNS,
    FINISH_SQL,
    PENDING,
    SCHEMA_VERSION,
    JournalEntry,
    dump,
    entries_frame,
    initialise,
    load,
    now_ms,
)

__all__ = ["Journal", "JournalEntry"]

#: Buffered outcomes are committed once this many are waiting…
FLUSH_EVERY = 200
#: …or once the oldest waiting outcome is this many seconds old (checked on each call).
FLUSH_SECONDS = 0.5
#: Keys per query in :meth:`Journal.get` (passed as one JSON array, so no variable limit).
_GET_CHUNK = 50_000


class Journal:
    """A resumable job's durable record, bound to one plugin id and one job.

    Jobs open theirs with :func:`~plabdata.jobs._open.open_journal`, which also binds the
    API's base URL and knows the default place; this class is the file itself.

    Args:
        path: The journal file. Created (atomically; its folder must exist) when absent and
            ``create`` is true.
        plugin_id: The plugin the job writes to. A file bound to another plugin is refused.
        job: The kind of job (``"events"``, ``"members"``). A file of another job is refused.
        api_url: The base URL the job writes to. Recorded when given (a journal without one
            adopts it); a journal bound to another URL is refused. None: not checked.
        create: Create the journal when absent (False: absent is an error).

    Raises:
        JournalError: The file belongs to another plugin, job or API; is not a journal, is
            damaged or empty; or another run (this process or another) holds it.

    Example:
        >>> journal = Journal("members.journal", plugin_id="p1", job="members")
        >>> journal.pending_keys(); journal.close()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        plugin_id: str,
        job: str,
        api_url: str | None = None,
        create: bool = True,
    ) -> None:
        if not os.fspath(path).strip():  # Path("") would be ".", the working directory
            raise JournalError("the journal path is empty (an unset variable?): name a file")
        self.path = Path(path)
        self.plugin_id = plugin_id
        self.job = job
        self.api_url = api_url
        self._mutex = threading.RLock()
        self._buffer: list[tuple[Any, ...]] = []
        self._buffer_since = 0.0
        self._conn: sqlite3.Connection | None = None
        self._broken: str | None = None
        self._file = JournalFile.lock(self.path, create=self._initialise if create else None)
        try:
            self._conn = self._open()
            self._bind()
        except BaseException:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            self._file.release()
            raise

    # -- opening -------------------------------------------------------------------------

    @property
    def real_path(self) -> Path:
        """The journal file with symlinks resolved (what SQLite opens)."""
        return self._file.real_path

    def _initialise(self, conn: sqlite3.Connection) -> None:
        """Schema and binding of a new journal, in one transaction (see ``_journal_file``)."""
        set_pragmas(conn)
        meta = [
            ("plugin_id", self.plugin_id),
            ("job", self.job),
            ("schema_version", SCHEMA_VERSION),
            ("created_at_ms", str(now_ms())),
        ]
        if self.api_url is not None:
            meta.append(("api_url", self.api_url))
        initialise(conn, meta)

    def _open(self) -> sqlite3.Connection:
        with self._guard("opening it"):
            return connect_checked(self._file)

    def _bind(self) -> None:
        conn = self._connection()
        with self._guard("reading its binding"):
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        if "plugin_id" not in meta or "job" not in meta:
            raise JournalError(
                f"journal {self.path} has no binding (plugin, job): it was never completed "
                "by plabdata. Delete it only if no run ever used it; else restore it"
            )
        self.check_binding(self.plugin_id, self.job, self.api_url, _meta=meta)

    def check_binding(
        self,
        plugin_id: str,
        job: str,
        api_url: str | None = None,
        *,
        _meta: Mapping[str, str] | None = None,
    ) -> None:
        """Refuse unless this journal is bound to ``plugin_id``, ``job`` (and ``api_url``).

        A journal with no API URL recorded (made by an older plabdata, or without one)
        adopts ``api_url``.

        Raises:
            JournalError: It is bound to another plugin, job or API.

        Example:
            >>> journal.check_binding("p1", "events", "https://event.pluginlab.ai")
        """
        conn = self._connection()
        if _meta is None:
            with self._guard("reading its binding"):
                _meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        bound_plugin, bound_job = _meta.get("plugin_id"), _meta.get("job")
        if bound_plugin != plugin_id or bound_job != job:
            raise JournalError(
                f"journal {self.path} is bound to plugin {bound_plugin!r} (job {bound_job!r}), "
                f"not plugin {plugin_id!r} (job {job!r}); use another journal file"
            )
        bound_url = _meta.get("api_url")
        if api_url is None:
            self.api_url = bound_url
        elif bound_url is None:
            with self._mutex:
                self._write("recording its API", lambda c: c.execute(ADOPT_URL, (api_url,)))
            self.api_url = api_url
        elif bound_url != api_url:
            raise JournalError(
                f"journal {self.path} records what {bound_url} received for plugin "
                f"{plugin_id!r} (job {job!r}), not {api_url}: use another journal for this "
                "server, or delete this one if that server is gone for good (an emulator "
                "that was stopped)"
            )
        else:
            self.api_url = api_url

    def _connection(self) -> sqlite3.Connection:
        if self._broken is not None:
            raise JournalError(self._broken)
        if self._conn is None:
            raise JournalError(f"journal {self.path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn SQLite's errors into a JournalError naming the file and what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            raise JournalError(
                f"journal {self.path}: {action} failed: {describe_sqlite_error(exc)}"
            ) from exc

    def _write(
        self,
        action: str,
        statements: Callable[[sqlite3.Connection], object],
        salvage: Callable[[sqlite3.Connection], object] | None = None,
    ) -> None:
        """One ``BEGIN IMMEDIATE`` … ``COMMIT``, checked before and after: the path must still
        name the file (so a deleted or replaced journal stops the job before anything else is
        sent). Two ``stat`` calls per commit: nothing next to the commit's fsyncs."""
        conn = self._connection()
        # Already gone: record no new marks into a file nobody will read (only the outcomes,
        # ``salvage``, which are facts, go into the rescued copy).
        self._check_file(salvage)
        try:
            with self._guard(action):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    statements(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
        except JournalError:
            self._check_file(salvage)  # deleted meanwhile (SQLite then refuses writes) says more
            raise
        self._check_file()

    def _check_file(self, salvage: Callable[[sqlite3.Connection], object] | None = None) -> None:
        problem = self._file.problem()
        if problem is None:
            return
        # SQLite refuses writes to an unlinked file, so the outcomes go into the copy.
        rescued = rescue(self._conn, self.path, salvage) if self._conn is not None else None
        self._broken = (
            f"{problem}: the record of this run is no longer where the next run will look, "
            "so this run stops and sends nothing more. "
            + (
                f"Its record was saved to {rescued}: put it back at {self.path} (after "
                "checking what is there now), then run again"
                if rescued is not None
                else f"Restore {self.path} before running again, or rows may be sent twice"
            )
        )
        raise JournalError(self._broken)

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

        Raises:
            JournalError: The journal was deleted or replaced during the run (the run must
                not report success), or the last outcomes could not be written.

        Example:
            >>> journal.close()
            >>> journal.closed
            True
        """
        with self._mutex:
            if self._conn is None:
                return
            try:
                if self._broken is not None:
                    raise JournalError(self._broken)
                self._flush_locked()
                self._check_file()
            finally:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
                self._file.release()

    # -- writing -------------------------------------------------------------------------

    def begin(self, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Mark keys ``pending`` (attempts + 1) and commit durably before returning.

        Buffered outcomes are committed in the same transaction, so a key finished and then
        begun again is never overwritten by its stale outcome.

        Args:
            entries: ``(key, detail)`` pairs; ``detail`` is stored as JSON (no secrets).

        Raises:
            JournalError: The marks could not be committed, or the journal was deleted or
                replaced: the requests must not be sent.

        Example:
            >>> journal.begin([("fp1", {"row": 2, "file": "logs.csv"})])
            >>> journal.pending_keys()
            ['fp1']
        """
        now = now_ms()
        rows = [(key, dump(detail) or "{}", now, now) for key, detail in entries]
        with self._mutex:
            if not rows and not self._buffer:
                return
            self._commit_buffer("recording the requests about to be sent", rows)

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
        now = now_ms()
        row = (key, status, http_status, error, member_id, dump(detail), now, now)
        with self._mutex:
            self._connection()  # a closed or broken journal refuses at once, not at the flush
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
        if self._buffer:
            self._commit_buffer("recording outcomes", [])

    def _commit_buffer(self, action: str, begun: list[tuple[Any, ...]]) -> None:
        outcomes, self._buffer = self._buffer, []

        def statements(conn: sqlite3.Connection) -> None:
            if outcomes:
                conn.executemany(FINISH_SQL, outcomes)
            if begun:
                conn.executemany(BEGIN_SQL, begun)

        def salvage(conn: sqlite3.Connection) -> None:
            conn.executemany(FINISH_SQL, outcomes)

        try:
            self._write(action, statements, salvage if outcomes else None)
        except JournalError:
            if self._broken is None:  # not committed: keep the outcomes for a later try
                self._buffer = outcomes + self._buffer
            raise

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
            with self._guard("reading entries"):
                for start in range(0, len(wanted), _GET_CHUNK):
                    chunk = json.dumps(wanted[start : start + _GET_CHUNK])
                    cursor = conn.execute(
                        f"SELECT {COLUMNS} FROM entries "
                        "WHERE key IN (SELECT value FROM json_each(?))",
                        (chunk,),
                    )
                    for key, status, attempts, http_status, error, member_id, detail, *_ in cursor:
                        found[key] = JournalEntry(
                            key, status, attempts, http_status, error, member_id, load(detail)
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
            with self._guard("reading entries"):
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
            with self._guard("reading entries"):
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
            with self._guard("reading entries"):
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
            with self._guard("reading entries"):
                rows = (
                    self._connection()
                    .execute(f"SELECT {COLUMNS} FROM entries ORDER BY first_seen, key")
                    .fetchall()
                )
        return entries_frame(rows)
