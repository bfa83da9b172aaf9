"""What a journal file holds: its tables, its statements, and entries as Python values.

``meta`` holds the binding (``plugin_id``, ``job``, ``api_url``, ``schema_version``,
``created_at_ms``); ``entries`` one row per key. Kept apart from :mod:`._journal` (the write
protocol) so each reads in one sitting.

    >>> entries_frame([])["status"].dtype
    string[python]
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = [
    "ADOPT_URL",
    "BEGIN_SQL",
    "COLUMNS",
    "FINISH_SQL",
    "PENDING",
    "SCHEMA_VERSION",
    "JournalEntry",
    "dump",
    "entries_frame",
    "initialise",
    "load",
    "now_ms",
]

SCHEMA_VERSION = "1"
PENDING = "pending"

SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE entries (
        key TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        http_status INTEGER,
        error TEXT,
        member_id TEXT,
        detail TEXT,
        first_seen INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE INDEX entries_status ON entries (status)",
)

BEGIN_SQL = """
INSERT INTO entries (key, status, attempts, detail, first_seen, updated_at)
VALUES (?, 'pending', 1, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    status = 'pending', attempts = attempts + 1, detail = excluded.detail,
    http_status = NULL, error = NULL, updated_at = excluded.updated_at
"""

FINISH_SQL = """
INSERT INTO entries (key, status, attempts, http_status, error, member_id, detail,
                     first_seen, updated_at)
VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    status = excluded.status, http_status = excluded.http_status, error = excluded.error,
    member_id = COALESCE(excluded.member_id, member_id),
    detail = COALESCE(excluded.detail, detail), updated_at = excluded.updated_at
"""

ADOPT_URL = "INSERT INTO meta (name, value) VALUES ('api_url', ?)"
COLUMNS = "key, status, attempts, http_status, error, member_id, detail, first_seen, updated_at"


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


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def dump(detail: Mapping[str, Any] | None) -> str | None:
    if detail is None:
        return None
    return json.dumps(dict(detail), sort_keys=True, default=str, separators=(",", ":"))


def load(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}


def initialise(conn: sqlite3.Connection, meta: Iterable[tuple[str, str]]) -> None:
    """Create the tables and write the binding, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    for statement in SCHEMA:
        conn.execute(statement)
    conn.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", list(meta))
    conn.execute("COMMIT")


def entries_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Rows of ``SELECT {COLUMNS} FROM entries`` as the documented DataFrame."""
    names = COLUMNS.split(", ")
    raw: dict[str, list[Any]] = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    return pd.DataFrame(
        {
            "key": pd.array(raw["key"], dtype="string"),
            "status": pd.array(raw["status"], dtype="string"),
            "attempts": pd.array(raw["attempts"], dtype="int64"),
            "http_status": pd.array(raw["http_status"], dtype="Int64"),
            "error": pd.array(raw["error"], dtype="string"),
            "member_id": pd.array(raw["member_id"], dtype="string"),
            "detail": pd.Series([load(d) for d in raw["detail"]], dtype=object),
            "first_seen": _ms_to_utc(raw["first_seen"]),
            "updated_at": _ms_to_utc(raw["updated_at"]),
        }
    )


def _ms_to_utc(values: list[int]) -> pd.Series:
    stamps = pd.to_datetime(pd.Series(values, dtype="int64"), unit="ms", utc=True)
    return stamps.astype("datetime64[ms, UTC]")
