"""Diff a desired member list against the live member base: a reviewable, savable ``Plan``.

``plan_member_changes`` is pure (DataFrames in, a :class:`~plabdata.Plan` out) and vectorised:
one index lookup matches desired rows to current members, then each field is compared
column-wise (:mod:`plabdata.members._diff`). What a plan holds, and how it is saved and
loaded, is in :mod:`plabdata.members._plan_object`.

One member, one key: desired rows meet current members through the canonical email key
(:func:`~plabdata.tables._keys.email_key`: NFC, IDNA → Unicode, lower-cased), so a member
stored as ``ü@xn--mnchen-3ya.de`` is the sheet's ``ü@münchen.de``, and a plan never creates
and deletes one member (checked again on every plan built or loaded: :class:`PlanError`).

Staleness: every update and delete records the member's ``updated_at``; applying refuses a row
whose member changed since (status ``stale``), so a plan reviewed yesterday cannot overwrite
today's edits.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from plabdata.config import Secret
from plabdata.errors import PlanError
from plabdata.members._diff import (
    INVALID_COLUMNS,
    ROW_COLUMNS,
    Builder,
    check_one_op_per_member,
    match_column,
    match_members,
    normalise,
    settable,
    typed,
)

# Re-exported: the package's API, the CLI and the widgets import Plan from here.
from plabdata.members._plan_object import Plan as Plan
from plabdata.members._sheet import MASK, SheetResult
from plabdata.tables._keys import email_keys


def plan_member_changes(
    desired: SheetResult | pd.DataFrame,
    current: pd.DataFrame,
    *,
    key: Literal["email", "member_id"] = "email",
    delete_missing: bool = False,
    max_deletes: int = 50,
    blank_means: Literal["keep", "clear"] = "keep",
    plugin_id: str | None = None,
) -> Plan:
    """Plan the creates, updates and deletes that bring ``current`` in line with ``desired``.

    Values are normalised before comparing (blank / NaN / None alike, emails compared by
    their canonical key: two spellings of one address are one member), so only real
    differences show. Blank cells leave a field as it is unless
    ``blank_means="clear"``. Metadata: the API replaces a member's whole map on update, so a
    sheet's ``metadata.<key>`` columns are *merged* into each member's current map — keys the
    sheet has no column for are kept (and, with ``blank_means="clear"``, a blank cell removes
    that one key).

    Args:
        desired: a :class:`~plabdata.SheetResult` (its invalid rows are carried into the
            plan) or a DataFrame with the same columns (normalised here, not re-validated).
        current: the members frame of :func:`plabdata.load_members`.
        key: match rows to members by ``email`` or by ``member_id``.
        delete_missing: also delete current members absent from ``desired``.
        max_deletes: refuse a plan with more deletes than this (raise it on purpose).
        blank_means: ``"keep"`` (default) or ``"clear"``.
        plugin_id: the plugin ``current`` came from (default: ``current.attrs["plugin_id"]``).

    Raises:
        PlanError: duplicate keys in ``desired``, duplicate member ids in ``current``, too
            many deletes, or deletes asked for while the sheet has errors (an invalid row, or
            a doubtful parse such as a stray quote: such a row may be a member you mean to
            keep). Warnings (a short password) do not stop deletes.

    Example:
        >>> plan = plan_member_changes(read_member_sheet("members.xlsx"), load_members(admin))
        >>> print(plan)
    """
    if key not in ("email", "member_id"):
        raise PlanError(f"key must be 'email' or 'member_id', not {key!r}")
    if blank_means not in ("keep", "clear"):
        raise PlanError(f"blank_means must be 'keep' or 'clear', not {blank_means!r}")
    sheet = desired if isinstance(desired, SheetResult) else None
    want = normalise(desired.rows if isinstance(desired, SheetResult) else desired, desired=True)
    have = normalise(current, desired=False)
    invalid = _invalid_rows(sheet)
    if delete_missing and sheet is not None and len(sheet.errors):
        unplaced = int(sheet.errors["row"].isna().sum())
        raise PlanError(
            f"refusing to plan deletes: {len(invalid)} row(s) of the sheet are "
            "invalid"
            + (f" and {unplaced} problem(s) concern the whole sheet" if unplaced else "")
            + ", and a member on an unreadable row would be deleted; fix them "
            "first or plan without delete_missing"
        )
    column = match_column(key)
    duplicated = want[column].notna() & want[column].duplicated(keep=False)
    if duplicated.any():
        rows = want.loc[duplicated, "row"].tolist()
        raise PlanError(
            f"desired rows share a {key}: rows {rows[:20]} (read the sheet with "
            "read_member_sheet to get them as issues)"
        )
    if have["member_id"].duplicated().any():
        raise PlanError("the current members frame has duplicate member ids")

    position, moved, shared = match_members(want, have, key)
    build = Builder()
    ambiguous = shared.notna().to_numpy()
    for problem, group in want[ambiguous].groupby(shared[ambiguous]):
        build.simple(group, "unsupported", problem=str(problem))
    new = (position < 0) & ~moved & ~ambiguous
    if key == "member_id":  # an id the plugin does not know cannot be created with that id
        unknown = new & want["member_id"].notna().to_numpy()
        new &= ~unknown
        build.simple(want[unknown], "unsupported", problem="no member with this member_id")
    build.creates(want[new], settable(want, with_verified=True))
    both = position >= 0
    pairs = want[both].reset_index(drop=True)
    mine = have.iloc[position[both]].reset_index(drop=True)
    unchanged = build.updates(
        pairs, mine, settable(want, with_verified=False), clear=blank_means == "clear"
    )
    if delete_missing:
        # Kept: every member a desired row names, by its id or by its canonical email — so a
        # member is never deleted while the plan creates (or updates) the same address.
        wanted_ids = set(want["member_id"].dropna()) | set(mine["member_id"])
        wanted_keys = set(want["email_key"].dropna())
        gone = have[~have["member_id"].isin(wanted_ids) & ~have["email_key"].isin(wanted_keys)]
        if len(gone) > max_deletes:
            raise PlanError(
                f"the plan would delete {len(gone)} members, more than "
                f"max_deletes={max_deletes}; check the sheet, then raise max_deletes "
                "to allow it"
            )
        build.deletes(gone)
    ops, changes = build.frames()
    check_one_op_per_member(ops)
    meta = {
        "key": key,
        "blank_means": blank_means,
        "delete_missing": delete_missing,
        "source": sheet.source if sheet is not None else "<DataFrame>",
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "current_count": len(have),
    }
    return Plan(
        ops,
        changes,
        typed(unchanged, ROW_COLUMNS),
        invalid,
        plugin_id or current.attrs.get("plugin_id"),
        meta,
        _passwords(want, ops),
    )


def _invalid_rows(sheet: SheetResult | None) -> pd.DataFrame:
    """One line per row an error left out (warnings keep their row, and are not listed)."""
    if sheet is None:
        return typed(pd.DataFrame(), INVALID_COLUMNS)
    issues = sheet.errors.dropna(subset=["row"])
    if issues.empty:
        return typed(pd.DataFrame(), INVALID_COLUMNS)
    problems = issues.assign(text=issues["column"].fillna("") + ": " + issues["problem"])
    grouped = problems.groupby("row")["text"].agg("; ".join)
    email_header = next((h for h, t in sheet.header_map.items() if t == "email"), None)
    emails = (
        sheet.raw[email_header] if email_header in sheet.raw else pd.Series(dtype=object)
    ).reindex(grouped.index)
    frame = pd.DataFrame(
        {
            "row": grouped.index,
            "email": [MASK if isinstance(e, Secret) else e for e in emails.tolist()],
            "problem": grouped.to_numpy(),
        }
    )
    return typed(frame, INVALID_COLUMNS)


def _passwords(want: pd.DataFrame, ops: pd.DataFrame) -> dict[str, Secret]:
    """The sheet's passwords of the plan's creates, keyed by the create's email (matched by
    canonical key, so the lookup cannot miss on a second spelling)."""
    if "password" not in want:
        return {}
    creates = ops.loc[ops["op"] == "create", "email"].dropna()
    by_key = dict(zip(email_keys(creates), creates, strict=True))
    return {
        str(by_key[key]): value if isinstance(value, Secret) else Secret(str(value))
        for key, value in zip(want["email_key"], want["password"], strict=True)
        if key in by_key and value is not None and not pd.isna(value)
    }
