"""The emulator's state in SQLite: members, identities, events, signing keys and settings.

In memory by default; a file path keeps everything across restarts. One connection,
guarded by a lock: the server's event loop and test threads may both reach it, and every
statement is short, so serialising them costs less than a connection pool would.

    >>> store = Store()
    >>> store.count_members()
    0
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from plabdata.emulator.model import EventRecord, IdentityRecord, MemberRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    sign_in_method TEXT NOT NULL,
    is_verified INTEGER NOT NULL,
    password_hash TEXT,
    name TEXT,
    given_name TEXT,
    family_name TEXT,
    picture_url TEXT,
    custom_fields TEXT NOT NULL,
    metadata TEXT NOT NULL,
    plan TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS identities (
    member_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    access_token TEXT,
    refresh_token TEXT,
    access_token_expires_at_ms INTEGER,
    refresh_token_expires_at_ms INTEGER,
    last_used_at_ms INTEGER,
    refresh_token_revoked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (member_id, provider)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id TEXT,
    source TEXT NOT NULL,
    country_code TEXT,
    subdivision_code TEXT,
    is_in_quota INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_member ON events (member_id, received_at_ms);
CREATE TABLE IF NOT EXISTS signing_keys (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    kid TEXT NOT NULL UNIQUE,
    private_pem TEXT NOT NULL
);
"""

_MEMBER_COLUMNS = (
    "id, email, sign_in_method, is_verified, password_hash, name, given_name, family_name, "
    "picture_url, custom_fields, metadata, plan, created_at_ms, updated_at_ms"
)
_IDENTITY_COLUMNS = (
    "member_id, provider, provider_user_id, access_token, refresh_token, "
    "access_token_expires_at_ms, refresh_token_expires_at_ms, last_used_at_ms, "
    "refresh_token_revoked"
)
_EVENT_COLUMNS = (
    "id, member_id, source, country_code, subdivision_code, is_in_quota, received_at_ms"
)


class MemberExists(Exception):
    """A member with that email (hence that id) is stored already."""


def _member_row(member: MemberRecord) -> tuple[Any, ...]:
    return (
        member.id,
        member.email,
        member.sign_in_method,
        int(member.is_verified),
        member.password_hash,
        member.name,
        member.given_name,
        member.family_name,
        member.picture_url,
        json.dumps(member.custom_fields),
        json.dumps(member.metadata),
        member.plan,
        member.created_at_ms,
        member.updated_at_ms,
    )


def _member_from(row: sqlite3.Row) -> MemberRecord:
    return MemberRecord(
        id=row["id"],
        email=row["email"],
        sign_in_method=row["sign_in_method"],
        is_verified=bool(row["is_verified"]),
        password_hash=row["password_hash"],
        name=row["name"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        picture_url=row["picture_url"],
        custom_fields=json.loads(row["custom_fields"]),
        metadata=json.loads(row["metadata"]),
        plan=row["plan"],
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
    )


def _identity_row(identity: IdentityRecord) -> tuple[Any, ...]:
    return (
        identity.member_id,
        identity.provider,
        identity.provider_user_id,
        identity.access_token,
        identity.refresh_token,
        identity.access_token_expires_at_ms,
        identity.refresh_token_expires_at_ms,
        identity.last_used_at_ms,
        int(identity.refresh_token_revoked),
    )


def _identity_from(row: sqlite3.Row) -> IdentityRecord:
    return IdentityRecord(
        member_id=row["member_id"],
        provider=row["provider"],
        provider_user_id=row["provider_user_id"],
        access_token=row["access_token"],
        refresh_token=row["refresh_token"],
        access_token_expires_at_ms=row["access_token_expires_at_ms"],
        refresh_token_expires_at_ms=row["refresh_token_expires_at_ms"],
        last_used_at_ms=row["last_used_at_ms"],
        refresh_token_revoked=bool(row["refresh_token_revoked"]),
    )


def _event_from(row: sqlite3.Row) -> EventRecord:
    return EventRecord(
        id=row["id"],
        member_id=row["member_id"],
        source=row["source"],
        country_code=row["country_code"],
        subdivision_code=row["subdivision_code"],
        is_in_quota=bool(row["is_in_quota"]),
        received_at_ms=row["received_at_ms"],
    )


class Store:
    """All emulator state behind one SQLite connection.

    Args:
        path: a database file (created if absent), or None for a private in-memory database.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        target = ":memory:" if self.path is None else str(self.path)
        # Autocommit mode: each statement (or explicit BEGIN block) commits on its own, so a
        # write is durable before the route answers — the premise of drop-after-commit.
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection (pending writes are already committed)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, tuple(params)).fetchone()
            return row

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # -- settings -------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A stored setting (plugin id, secret, seed counters), or None."""
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting, replacing any previous value."""
        with self._lock:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- signing keys ---------------------------------------------------------------------

    def signing_keys(self) -> list[tuple[str, str]]:
        """``(kid, private key PEM)`` pairs, newest first."""
        rows = self._all("SELECT kid, private_pem FROM signing_keys ORDER BY position DESC")
        return [(row["kid"], row["private_pem"]) for row in rows]

    def add_signing_key(self, kid: str, private_pem: str) -> None:
        """Store a new key; it becomes the newest."""
        with self._lock:
            self._db.execute(
                "INSERT INTO signing_keys (kid, private_pem) VALUES (?, ?)", (kid, private_pem)
            )

    # -- members --------------------------------------------------------------------------

    def insert_member(self, member: MemberRecord) -> None:
        """Store a new member.

        Raises:
            MemberExists: the email (or id) is taken.
        """
        try:
            with self._lock:
                self._db.execute(
                    f"INSERT INTO members ({_MEMBER_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                    _member_row(member),
                )
        except sqlite3.IntegrityError as exc:
            raise MemberExists(member.email) from exc

    def insert_bulk(
        self,
        members: list[MemberRecord],
        identities: list[IdentityRecord],
        events: list[tuple[str | None, str, str | None, str | None, bool, int]],
    ) -> None:
        """Insert demo data in one transaction; ``events`` rows follow :meth:`add_event`'s order."""
        with self._transaction() as db:
            db.executemany(
                f"INSERT INTO members ({_MEMBER_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                [_member_row(member) for member in members],
            )
            db.executemany(
                f"INSERT INTO identities ({_IDENTITY_COLUMNS}) VALUES ({', '.join('?' * 9)})",
                [_identity_row(identity) for identity in identities],
            )
            db.executemany(
                "INSERT INTO events (member_id, source, country_code, subdivision_code, "
                "is_in_quota, received_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                [(m, s, c, d, int(q), t) for m, s, c, d, q, t in events],
            )

    def get_member(self, member_id: str) -> MemberRecord | None:
        """The member with that id, or None."""
        row = self._one(f"SELECT {_MEMBER_COLUMNS} FROM members WHERE id = ?", (member_id,))
        return None if row is None else _member_from(row)

    def get_member_by_email(self, email: str) -> MemberRecord | None:
        """The member with that (already normalized) email, or None."""
        row = self._one(f"SELECT {_MEMBER_COLUMNS} FROM members WHERE email = ?", (email,))
        return None if row is None else _member_from(row)

    def all_emails(self) -> set[str]:
        """Every stored email (the demo-data generator avoids collisions with them)."""
        return {row["email"] for row in self._all("SELECT email FROM members")}

    def list_members(self, after_id: str | None, limit: int) -> tuple[list[MemberRecord], bool]:
        """Up to ``limit`` members with ids greater than ``after_id``, and whether more follow.

        Keyset pagination on the primary key: members created or deleted during a walk
        never shift the others, so a walk neither repeats nor skips a stable member.
        """
        rows = self._all(
            f"SELECT {_MEMBER_COLUMNS} FROM members WHERE id > ? ORDER BY id LIMIT ?",
            (after_id or "", limit + 1),
        )
        return [_member_from(row) for row in rows[:limit]], len(rows) > limit

    def all_members(self) -> list[MemberRecord]:
        """Every member, in id order (churn walks them all)."""
        return [
            _member_from(row)
            for row in self._all(f"SELECT {_MEMBER_COLUMNS} FROM members ORDER BY id")
        ]

    def is_empty(self) -> bool:
        """Whether the store holds no member and no event (the clock may then go back)."""
        row = self._one(
            "SELECT EXISTS (SELECT 1 FROM members) OR EXISTS (SELECT 1 FROM events) AS busy"
        )
        return row is None or not row["busy"]

    def count_members(self) -> int:
        """How many members are stored."""
        row = self._one("SELECT count(*) AS n FROM members")
        return 0 if row is None else int(row["n"])

    def save_member(self, member: MemberRecord) -> None:
        """Overwrite an existing member's row (the routes decide what changed)."""
        with self._lock:
            self._db.execute(
                "UPDATE members SET name = ?, given_name = ?, family_name = ?, picture_url = ?, "
                "metadata = ?, custom_fields = ?, plan = ?, is_verified = ?, updated_at_ms = ? "
                "WHERE id = ?",
                (
                    member.name,
                    member.given_name,
                    member.family_name,
                    member.picture_url,
                    json.dumps(member.metadata),
                    json.dumps(member.custom_fields),
                    member.plan,
                    int(member.is_verified),
                    member.updated_at_ms,
                    member.id,
                ),
            )

    def delete_member(self, member_id: str) -> bool:
        """Delete a member and its identities (its events stay); False if it was absent."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM members WHERE id = ?", (member_id,))
            db.execute("DELETE FROM identities WHERE member_id = ?", (member_id,))
            return cursor.rowcount > 0

    # -- identities -----------------------------------------------------------------------

    def identities(self, member_id: str) -> list[IdentityRecord]:
        """A member's identities, in provider order."""
        rows = self._all(
            f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE member_id = ? ORDER BY provider",
            (member_id,),
        )
        return [_identity_from(row) for row in rows]

    def identity(self, member_id: str, provider: str) -> IdentityRecord | None:
        """One identity, or None."""
        row = self._one(
            f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE member_id = ? AND provider = ?",
            (member_id, provider),
        )
        return None if row is None else _identity_from(row)

    def save_identity(self, identity: IdentityRecord) -> None:
        """Insert or replace one identity."""
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO identities ({_IDENTITY_COLUMNS}) "
                f"VALUES ({', '.join('?' * 9)})",
                _identity_row(identity),
            )

    def all_identities(self) -> dict[str, list[IdentityRecord]]:
        """Every identity, by member id."""
        found: dict[str, list[IdentityRecord]] = {}
        for row in self._all(
            f"SELECT {_IDENTITY_COLUMNS} FROM identities ORDER BY member_id, provider"
        ):
            identity = _identity_from(row)
            found.setdefault(identity.member_id, []).append(identity)
        return found

    def apply_churn(
        self,
        *,
        new_members: list[MemberRecord],
        new_identities: list[IdentityRecord],
        changed_members: list[MemberRecord],
        deleted_ids: list[str],
        removed_identities: list[tuple[str, str]],
        events: list[tuple[str | None, str, str | None, str | None, bool, int]],
    ) -> None:
        """One step of time passing, in one transaction (see ``plabdata.emulator.churn``)."""
        with self._transaction() as db:
            db.executemany(
                f"INSERT INTO members ({_MEMBER_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                [_member_row(member) for member in new_members],
            )
            db.executemany(
                "UPDATE members SET name = ?, given_name = ?, family_name = ?, metadata = ?, "
                "plan = ?, is_verified = ?, updated_at_ms = ? WHERE id = ?",
                [
                    (
                        m.name,
                        m.given_name,
                        m.family_name,
                        json.dumps(m.metadata),
                        m.plan,
                        int(m.is_verified),
                        m.updated_at_ms,
                        m.id,
                    )
                    for m in changed_members
                ],
            )
            db.executemany("DELETE FROM members WHERE id = ?", [(i,) for i in deleted_ids])
            db.executemany(
                "DELETE FROM identities WHERE member_id = ?", [(i,) for i in deleted_ids]
            )
            db.executemany(
                "DELETE FROM identities WHERE member_id = ? AND provider = ?", removed_identities
            )
            db.executemany(
                f"INSERT OR REPLACE INTO identities ({_IDENTITY_COLUMNS}) "
                f"VALUES ({', '.join('?' * 9)})",
                [_identity_row(identity) for identity in new_identities],
            )
            db.executemany(
                "INSERT INTO events (member_id, source, country_code, subdivision_code, "
                "is_in_quota, received_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                [(m, s, c, d, int(q), t) for m, s, c, d, q, t in events],
            )

    # -- events ---------------------------------------------------------------------------

    def add_event(
        self,
        member_id: str | None,
        source: str,
        country_code: str | None,
        subdivision_code: str | None,
        is_in_quota: bool,
        received_at_ms: int,
    ) -> int:
        """Record one event; returns its id."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO events (member_id, source, country_code, subdivision_code, "
                "is_in_quota, received_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    member_id,
                    source,
                    country_code,
                    subdivision_code,
                    int(is_in_quota),
                    received_at_ms,
                ),
            )
            return int(cursor.lastrowid or 0)

    def count_quota_events(self, member_id: str, since_ms: int, until_ms: int) -> int:
        """In-quota events of a member received in ``[since_ms, until_ms)``."""
        row = self._one(
            "SELECT count(*) AS n FROM events WHERE member_id = ? AND is_in_quota = 1 "
            "AND received_at_ms >= ? AND received_at_ms < ?",
            (member_id, since_ms, until_ms),
        )
        return 0 if row is None else int(row["n"])

    def events(self, member_id: str | None = None, source: str | None = None) -> list[EventRecord]:
        """Events in arrival order, optionally only one member's and/or one source's."""
        clauses, params = [], []
        if member_id is not None:
            clauses.append("member_id = ?")
            params.append(member_id)
        if source is not None:
            clauses.append("source = ?")
            params.append(source)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._all(f"SELECT {_EVENT_COLUMNS} FROM events{where} ORDER BY id", params)
        return [_event_from(row) for row in rows]

    # -- whole-store operations -----------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """Members, identities and events stored, with events per member and per source."""
        with self._lock:
            members = self._db.execute("SELECT count(*) FROM members").fetchone()[0]
            identities = self._db.execute("SELECT count(*) FROM identities").fetchone()[0]
            by_member = self._db.execute(
                "SELECT member_id, count(*) FROM events WHERE member_id IS NOT NULL "
                "GROUP BY member_id ORDER BY member_id"
            ).fetchall()
            by_source = self._db.execute(
                "SELECT source, count(*) FROM events GROUP BY source ORDER BY source"
            ).fetchall()
            total = self._db.execute("SELECT count(*) FROM events").fetchone()[0]
        return {
            "members": members,
            "identities": identities,
            "events": total,
            "eventsByMember": {row[0]: row[1] for row in by_member},
            "eventsBySource": {row[0]: row[1] for row in by_source},
        }

    def reset(self) -> None:
        """Delete every member, identity, event, seed and churn counter and the clock's offset
        (back to the wall clock); keep keys and settings."""
        with self._transaction() as db:
            db.execute("DELETE FROM members")
            db.execute("DELETE FROM identities")
            db.execute("DELETE FROM events")
            db.execute(
                "DELETE FROM meta WHERE key LIKE 'seed:%' OR key LIKE 'clock:%' "
                "OR key LIKE 'churn:%'"
            )
