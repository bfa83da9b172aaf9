"""The diff engine behind :func:`plabdata.plan_member_changes`: pure and vectorised.

Desired rows and current members are normalised into comparable columns (strings trimmed,
blanks as NA, emails lower-cased, plus ``email_key``: the canonical key of
:func:`~plabdata.tables._keys.email_key`), matched by one index lookup on that key (or on
``member_id``), and compared field by field as whole columns. The result is two long
frames: ops (one row per create / update / delete / unsupported difference) and changes (one
row per op and field, with before and after values).

    >>> frame = normalise(pd.DataFrame({"email": [" A@XN--Mnchen-3ya.de "]}), desired=True)
    >>> frame["email_key"].tolist()
    ['a@münchen.de']
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plabdata.errors import PlanError
from plabdata.members._sheet_checks import TEXT_FIELDS
from plabdata.tables._keys import email_keys

_TRUE = {"true", "yes", "y", "t", "1", "x"}
_FALSE = {"false", "no", "n", "f", "0"}
OP_COLUMNS = {
    "op_id": "int64",
    "op": "string",
    "row": "Int64",
    "email": "string",
    "member_id": "string",
    "password_source": "string",
    "expected_updated_at_ms": "Int64",
    "problem": "string",
    #: creates from a platform export: "reset-needed" / "oauth-only" (see _sources).
    "password_note": "string",
}
CHANGE_COLUMNS = ("op_id", "field", "before", "after")
_UNSUPPORTED = {
    "email": "the API cannot change a member's email (delete and re-create to change it)",
    "is_verified": "the API cannot change is_verified of an existing member",
    "sign_in_method": "the sign-in method is chosen by the member; the API cannot change it",
    "custom_fields": "custom fields are filled in by members; the API cannot change them",
}


#: Desired columns kept besides the text fields (``password_note``: carried into creates).
_DESIRED_EXTRA = ("email", "member_id", "sign_in_method", "password_note")
ROW_COLUMNS = {"row": "Int64", "email": "string", "member_id": "string"}
INVALID_COLUMNS = {"row": "Int64", "email": "string", "problem": "string"}


def match_column(key: str) -> str:
    """The normalised column a plan key matches on: emails by their canonical key."""
    return "email_key" if key == "email" else key


def match_rows(want: pd.DataFrame, have: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Position of each desired row's member in ``have`` (-1: none), and which rows matched
    only by ``member_id`` under another email (an email change, with ``key="email"``).

    Emails match by ``email_key``, never by spelling: ``ü@xn--mnchen-3ya.de`` in the member
    base and ``ü@münchen.de`` in a sheet are one member. ``have`` must be unique on the key.
    """
    if not len(have):
        return np.full(len(want), -1), np.zeros(len(want), dtype=bool)
    column = match_column(key)
    position = pd.Index(have[column]).get_indexer(want[column])
    position = np.where(want[column].isna().to_numpy(), -1, position)
    moved = np.zeros(len(want), dtype=bool)
    if key == "email" and want["member_id"].notna().any():
        by_id = pd.Index(have["member_id"]).get_indexer(want["member_id"])
        moved = (position < 0) & (by_id >= 0) & want["member_id"].notna().to_numpy()
        position = np.where(moved, by_id, position)
    return position, moved


def match_members(
    want: pd.DataFrame, have: pd.DataFrame, key: str
) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """:func:`match_rows` against a member base that may hold *twins*: two members under one
    canonical email (stored as two spellings). A row for such an address cannot say which
    member it means, so it matches neither: the third result holds, per desired row, why
    (``NA`` for the others), and the plan reports it instead of guessing.
    """
    twin = (have["email_key"].notna() & have["email_key"].duplicated(keep=False)).to_numpy()
    position, moved = match_rows(want, have[~twin].reset_index(drop=True), key)
    found = position >= 0  # positions in the twin-free frame → positions in ``have``
    position[found] = np.flatnonzero(~twin)[position[found]]
    problems = {
        str(key): f"several members share this email ({', '.join(sorted(emails))}): "
        "merge or delete one first"
        for key, emails in have[twin].groupby("email_key")["email"]
    }
    shared = [
        problems.get(k) if p < 0 and isinstance(k, str) else None
        for k, p in zip(want["email_key"].tolist(), position.tolist(), strict=True)
    ]
    return position, moved, pd.Series(shared, dtype="string")


def check_one_op_per_member(ops: pd.DataFrame, where: str = "") -> None:
    """Refuse a plan that creates and deletes one member, or changes one member twice.

    Raises:
        PlanError: an address is both created and deleted (compared by canonical key), or a
            member id has more than one update / delete.

    Example:
        >>> check_one_op_per_member(plan.ops)
    """
    creates = ops[ops["op"] == "create"]
    deletes = ops[ops["op"] == "delete"]
    both = set(email_keys(creates["email"]).dropna()) & set(email_keys(deletes["email"]).dropna())
    if both:
        raise PlanError(
            f"{where}the plan creates and deletes the same member: {sorted(both)[:5]}; "
            "refusing it (the delete would lose the member's data)"
        )
    changing = ops[ops["op"].isin(["update", "delete"]) & ops["member_id"].notna()]
    twice = changing["member_id"][changing["member_id"].duplicated()]
    if len(twice):
        raise PlanError(
            f"{where}the plan changes one member more than once: {sorted(set(twice))[:5]} "
            "(two rows name the same member)"
        )


class Builder:
    """Collects op rows and change rows (long format), numbering ops as they come."""

    def __init__(self) -> None:
        self.ops: list[pd.DataFrame] = []
        self.changes: list[pd.DataFrame] = []
        self.next_id = 0

    def _ids(self, n: int) -> np.ndarray:
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        return ids

    def simple(self, rows: pd.DataFrame, op: str, *, problem: str) -> None:
        self.ops.append(
            pd.DataFrame(
                {
                    "op_id": self._ids(len(rows)),
                    "op": op,
                    "row": rows["row"].to_numpy(),
                    "email": rows["email"].to_numpy(),
                    "member_id": rows["member_id"].to_numpy(),
                    "problem": problem,
                }
            )
        )

    def creates(self, rows: pd.DataFrame, fields: list[str]) -> None:
        ids = self._ids(len(rows))
        has_password = rows["password"].notna().to_numpy() if "password" in rows else False
        self.ops.append(
            pd.DataFrame(
                {
                    "op_id": ids,
                    "op": "create",
                    "row": rows["row"].to_numpy(),
                    "email": rows["email"].to_numpy(),
                    "password_source": np.where(has_password, "sheet", "generated"),
                    "password_note": (
                        rows["password_note"].to_numpy() if "password_note" in rows else None
                    ),
                }
            )
        )
        for name in fields:
            has = rows[name].notna().to_numpy()
            self.changes.append(_change_rows(ids[has], name, None, rows[name][has]))

    def updates(
        self, pairs: pd.DataFrame, mine: pd.DataFrame, fields: list[str], *, clear: bool
    ) -> pd.DataFrame:
        """Update ops for settable differences, unsupported ops for the others; returns the
        rows with neither (unchanged)."""
        ids = self._ids(len(pairs))
        changed = np.zeros(len(pairs), dtype=bool)
        odd = np.zeros(len(pairs), dtype=bool)
        for name in fields:
            before = _column(mine, name)
            diff = _differs(pairs[name], before, clear=clear)
            changed |= diff
            self.changes.append(_change_rows(ids[diff], name, before[diff], pairs[name][diff]))
        self.ops.append(
            pd.DataFrame(
                {
                    "op_id": ids[changed],
                    "op": "update",
                    "row": pairs.loc[changed, "row"].to_numpy(),
                    "email": mine.loc[changed, "email"].to_numpy(),
                    "member_id": mine.loc[changed, "member_id"].to_numpy(),
                    "expected_updated_at_ms": _millis(mine.loc[changed, "updated_at"]),
                }
            )
        )
        for name in [str(c) for c in pairs.columns if _unsupported_kind(str(c))]:
            before = _column(mine, name)
            if name == "email":  # two spellings of one address are no change of email
                diff = _differs(pairs["email_key"], mine["email_key"], clear=False)
            else:
                diff = _differs(pairs[name], before, clear=False)
            if not diff.any():
                continue
            odd |= diff
            uid = self._ids(int(diff.sum()))
            self.ops.append(
                pd.DataFrame(
                    {
                        "op_id": uid,
                        "op": "unsupported",
                        "row": pairs.loc[diff, "row"].to_numpy(),
                        "email": pairs.loc[diff, "email"].to_numpy(),
                        "member_id": mine.loc[diff, "member_id"].to_numpy(),
                        "problem": _UNSUPPORTED[_unsupported_kind(name) or ""],
                    }
                )
            )
            self.changes.append(_change_rows(uid, name, before[diff], pairs[name][diff]))
        same = ~changed & ~odd
        return pd.DataFrame(
            {
                "row": pairs.loc[same, "row"].to_numpy(),
                "email": mine.loc[same, "email"].to_numpy(),
                "member_id": mine.loc[same, "member_id"].to_numpy(),
            }
        )

    def deletes(self, gone: pd.DataFrame) -> None:
        self.ops.append(
            pd.DataFrame(
                {
                    "op_id": self._ids(len(gone)),
                    "op": "delete",
                    "email": gone["email"].to_numpy(),
                    "member_id": gone["member_id"].to_numpy(),
                    "expected_updated_at_ms": _millis(gone["updated_at"]),
                }
            )
        )

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        ops = [o for o in self.ops if len(o)]
        frame = typed(pd.concat(ops, ignore_index=True) if ops else pd.DataFrame(), OP_COLUMNS)
        changes = [c for c in self.changes if len(c)]
        return (
            frame.sort_values("op_id", kind="stable").reset_index(drop=True),
            changes_frame(pd.concat(changes, ignore_index=True) if changes else None),
        )


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame:
        return frame[name]
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def normalise(frame: pd.DataFrame, *, desired: bool) -> pd.DataFrame:
    """Comparable columns: strings trimmed with blanks as NA, emails lower-cased, and
    ``email_key`` (the canonical key every match and duplicate check uses)."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    source = frame.reset_index(drop=True)
    if "metadata" in source and source["metadata"].map(lambda v: isinstance(v, dict)).any():
        flat = pd.DataFrame([v if isinstance(v, dict) else {} for v in source["metadata"]])
        flat.columns = [f"metadata.{k}" for k in flat.columns]
        source = pd.concat([source.drop(columns="metadata"), flat], axis=1)
    if "email" not in source:
        raise PlanError(f"the {'desired' if desired else 'current'} frame has no email column")
    out["row"] = (
        source["row"] if "row" in source else pd.Series(np.arange(2, len(source) + 2))
    ).astype("Int64")
    for name in source.columns:
        if name in ("row", "password", "is_verified", "updated_at", "created_at", "email_key"):
            continue
        if (
            desired
            and name not in (*TEXT_FIELDS, *_DESIRED_EXTRA)
            and not name.startswith(("metadata.", "custom_fields."))
        ):
            continue
        text = source[name].astype("string").str.strip()
        out[name] = text.mask(text == "")
    out["email"] = out["email"].str.lower()
    out["email_key"] = email_keys(out["email"])
    if "member_id" not in out:
        out["member_id"] = pd.Series(pd.NA, index=out.index, dtype="string")
    if "is_verified" in source:
        out["is_verified"] = _booleans(source["is_verified"])
    if desired:
        if "password" in source:
            out["password"] = source["password"].to_numpy()
        if out["email"].isna().any():
            rows = out.loc[out["email"].isna(), "row"].tolist()[:20]
            raise PlanError(f"desired rows without an email: rows {rows}")
    else:
        stamps = (
            source["updated_at"] if "updated_at" in source else pd.Series(pd.NaT, index=out.index)
        )
        out["updated_at"] = pd.to_datetime(stamps, utc=True)
    return out


def _booleans(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean")
    text = values.astype("string").str.strip().str.lower()
    parsed = text.map(lambda v: True if v in _TRUE else False if v in _FALSE else pd.NA)
    bad = text.notna() & (text != "") & parsed.isna()
    if bad.any():
        raise PlanError(f"is_verified values that are not yes/no: {text[bad].unique()[:5]}")
    return parsed.astype("boolean")


def settable(want: pd.DataFrame, *, with_verified: bool) -> list[str]:
    """The desired columns the API can set (``is_verified`` only when creating)."""
    names = [f for f in TEXT_FIELDS if f in want]
    names += sorted(c for c in want.columns if c.startswith("metadata."))
    if with_verified and "is_verified" in want:
        names.insert(0, "is_verified")
    return names


def _unsupported_kind(column: str) -> str | None:
    if column == "email":  # same key by construction unless matched by member_id
        return "email"
    if column in ("is_verified", "sign_in_method"):
        return column
    return "custom_fields" if column.startswith("custom_fields.") else None


def _differs(after: pd.Series, before: pd.Series, *, clear: bool) -> np.ndarray:
    a, b = after.reset_index(drop=True), before.reset_index(drop=True)
    if a.dtype != b.dtype:
        a, b = a.astype(object), b.astype(object)
    unequal = (a != b).fillna(True).to_numpy(dtype=bool)
    a_na, b_na = a.isna().to_numpy(), b.isna().to_numpy()
    if clear:
        return np.asarray((a_na != b_na) | (~a_na & ~b_na & unequal), dtype=bool)
    return np.asarray(~a_na & (b_na | unequal), dtype=bool)


def _change_rows(
    ids: np.ndarray, name: str, before: pd.Series | None, after: pd.Series
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "op_id": ids,
            "field": name,
            "before": None if before is None else before.astype(object).to_numpy(),
            "after": after.astype(object).to_numpy(),
        }
    )


def _millis(stamps: pd.Series) -> pd.Series:
    epoch = pd.Timestamp(0, tz="UTC")
    values = (pd.to_datetime(stamps, utc=True) - epoch) // pd.Timedelta(milliseconds=1)
    return values.astype("Int64").reset_index(drop=True)


def typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Exactly ``columns`` (name → dtype), missing ones as NA, in that order."""
    out = pd.DataFrame(index=frame.index)
    for name, dtype in columns.items():
        out[name] = (frame[name] if name in frame else pd.Series(pd.NA, index=frame.index)).astype(
            dtype
        )  # type: ignore[call-overload]
    return out.reset_index(drop=True)


def changes_frame(frame: pd.DataFrame | None) -> pd.DataFrame:
    """The long changes frame with plain Python values (None, bool, str) in before/after."""
    if frame is None or frame.empty:
        frame = pd.DataFrame({c: [] for c in CHANGE_COLUMNS})
    frame = frame.astype({"op_id": "int64", "field": "string"})
    for side in ("before", "after"):  # Series.map would turn None back into NaN
        frame[side] = pd.Series(
            [_plain(v) for v in frame[side].tolist()], index=frame.index, dtype=object
        )
    return frame[list(CHANGE_COLUMNS)].reset_index(drop=True)


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    return str(value)
