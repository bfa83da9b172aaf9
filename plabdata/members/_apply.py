"""Apply a member :class:`~plabdata.Plan`: concurrent, journaled, resumable, verified.

Creates and updates run concurrently under the client's shared rate limiter; deletes run last.
With a journal, every op is marked ``pending`` (committed) before its request leaves and
marked with its outcome after, so a crash, a kill or Ctrl-C loses nothing. Running the same
plan — or a fresh plan of the same sheet — with the same journal again skips what was done and
resolves what was in flight:

- a pending **create** is looked up by email first (PluginLab derives the id from the email, so
  a member found is ours: it is finished, not created again);
- a pending **update** compares the member with the target;
- a pending **delete** checks the member is gone.

Before sending, each update and delete is checked against the member's ``updated_at`` recorded
in the plan: a member changed since is refused (status ``stale``), never overwritten.

Result statuses: ``done``, ``in-doubt-resolved`` (an interrupted or unanswered request turned
out to have been applied), ``failed`` (with the reason), ``stale``, ``skipped`` (unchanged rows,
unsupported differences, members already gone), ``invalid`` (sheet rows that failed
validation) and ``planned`` (dry run).

This module runs the job (journal, ordering, read-back, the result table); each op's requests,
and what an earlier run's journal entry means for it, are in :mod:`plabdata.members._apply_ops`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pandas as pd

from plabdata.client._core import AsyncAdmin
from plabdata.client._sync import Admin
from plabdata.config import Secret
from plabdata.errors import PlabdataError, PlanError
from plabdata.jobs._journal import Journal
from plabdata.jobs._open import journal_path, open_journal
from plabdata.jobs._outcomes import (
    MEMBER_APPLIED,
    MEMBER_FAILURES,
    MEMBER_PROBLEMS,
    MemberOutcome,
)
from plabdata.jobs._outputs import check_outputs
from plabdata.jobs._progress import Progress, ProgressOption, open_progress
from plabdata.jobs._runner import run_bounded
from plabdata.members._apply_ops import _Op, run_op
from plabdata.members._plan_object import Plan, op_key_frame, targets
from plabdata.members._readback import Live, fetch_members
from plabdata.members._sheet import SheetResult
from plabdata.members._targets import mismatch
from plabdata.tables._keys import email_key

RESULT_COLUMNS = {
    "row": "Int64",
    "op": "string",
    "email": "string",
    "member_id": "string",
    "status": "string",
    "http_status": "Int64",
    "error": "string",
    "attempts": "Int64",
    #: creates from a platform export: "reset-needed" / "oauth-only" (the plan's password_note).
    "note": "string",
}


def apply_plan(
    admin: Admin,
    plan: Plan,
    *,
    journal: Journal | str | os.PathLike[str] | None = None,
    concurrency: int = 8,
    dry_run: bool = False,
    progress: ProgressOption = True,
    verify: bool = True,
) -> pd.DataFrame:
    """Apply a plan and return one result row per op, unchanged row and invalid row.

    Args:
        admin: the connected client (its plugin must be the plan's).
        plan: from :func:`~plabdata.plan_member_changes` or :meth:`Plan.load` (a loaded
            plan whose creates take the sheet's passwords needs :meth:`Plan.with_passwords`).
        journal: a :class:`~plabdata.Journal` or a path to one (opened for this run,
            job ``"members"``), or None for the default place,
            ``$PLABDATA_HOME/journals/<plugin id>/members.journal`` (what ``plabdata members
            import`` uses). A dry run does not touch it.
        concurrency: requests in flight at most (the client's rate limit still applies).
        dry_run: send nothing, write nothing; every op comes back as ``planned``.
        progress: ``True`` for a progress bar, ``False`` for none, a
            :class:`~plabdata.jobs._progress.Progress` or ``fn(done, total)`` called after
            each op.
        verify: read the touched members back and mark any that does not match as failed.

    Returns:
        Columns ``row, op, email, member_id, status, http_status, error, attempts``
        (``attempts`` = HTTP requests made for the op in this run).

    Raises:
        PlanError: the plan belongs to another plugin, or lacks the sheet's passwords.
        JournalError: the journal belongs to another plugin, job or API, is damaged or
            emptied, or another run holds it.

    Example:
        >>> results = apply_plan(admin, plan, journal="members.journal")
        >>> results["status"].value_counts()
    """
    if plan.plugin_id is not None and plan.plugin_id != admin.settings.plugin_id:
        raise PlanError(
            f"the plan was made for plugin {plan.plugin_id!r}, not {admin.settings.plugin_id!r}"
        )
    missing = plan.needs_passwords
    if missing and not dry_run:
        raise PlanError(
            f"{len(missing)} create(s) take their password from the sheet, but a saved plan "
            "keeps no passwords: use plan.with_passwords(read_member_sheet(<sheet>)) first"
        )
    ops = _ops(plan)
    if dry_run:
        for op in ops:
            op.status = MemberOutcome.PLANNED
        return _results(plan, ops)
    # Never without a journal: it is what makes a re-run after a crash create nobody twice.
    sheet = plan.meta.get("source")
    check_outputs(
        [sheet] if isinstance(sheet, str) and os.path.isfile(sheet) else [],
        {},
        journal_path(admin, journal, "members"),
    )
    opened = open_journal(admin, journal, "members")
    try:
        admin.run(_apply(admin.aio, plan, ops, opened, concurrency, progress, verify))
    finally:
        if opened is not journal:
            opened.close()
        else:
            opened.flush()
    return _results(plan, ops)


def summarize_results(results: pd.DataFrame, *, limit: int = 20) -> str:
    """The results of :func:`apply_plan` in a few lines: rows per (op, status), then the ops
    that failed or were stale with their reasons (at most ``limit``).

    Example:
        >>> print(summarize_results(apply_plan(admin, plan)))
        results:
          create       done               89
    """
    counts = results.groupby(["op", "status"]).size()
    lines = ["results:"]
    for (op, status), n in zip(counts.index, counts.tolist(), strict=True):
        lines.append(f"  {op:<12} {status:<18} {n:,}")
    failed = results[results["status"].isin(MEMBER_FAILURES)]
    for item in failed.head(limit).to_dict("records"):
        lines.append(
            f"  row {item['row']} {item['op']} {item['email']}: {item['status']}: {item['error']}"
        )
    if len(failed) > limit:
        lines.append(f"  … and {len(failed) - limit} more")
    return "\n".join(lines)


def problem_counts(results: pd.DataFrame) -> dict[str, int]:
    """Rows per problem status (failed, invalid, stale) of an :func:`apply_plan` result.

    Example:
        >>> problem_counts(results)
        {'invalid': 6}
    """
    bad = results.loc[results["status"].isin(MEMBER_PROBLEMS), "status"]
    return {str(status): int(n) for status, n in bad.value_counts().items()}


def failed_rows(
    results: pd.DataFrame, sheet: SheetResult, *, reveal_passwords: bool = False
) -> pd.DataFrame:
    """The sheet rows that failed, were invalid or stale, in the sheet's own columns, with a
    ``problem`` column — ready to fix and feed back.

    Passwords are left out unless ``reveal_passwords`` (a file written from this frame would
    hold them in clear): a row fed back without one gets a generated password.

    Example:
        >>> failed_rows(results, sheet).to_csv("to_fix.csv")
    """
    bad = results[results["status"].isin(MEMBER_PROBLEMS) & results["row"].notna()]
    problems = bad.assign(text=bad["op"] + ": " + bad["error"].fillna(bad["status"]))
    by_row = problems.groupby("row")["text"].agg("; ".join)
    out = sheet.original_rows(by_row.index.astype(int), reveal_passwords=reveal_passwords)
    out["problem"] = by_row.reindex(out.index).astype("string")
    return out


# ---------------------------------------------------------------------------- the run


def _ops(plan: Plan) -> list[_Op]:
    frame = op_key_frame(plan)
    frame = frame[frame["op"].isin(["create", "update", "delete"])]
    goals = targets(plan)
    order = {"create": 0, "update": 0, "delete": 1}
    ops = [
        _Op(
            kind=item["op"],
            key=item["key"],
            row=_opt_int(item["row"]),
            email=_opt(item["email"]),
            member_id=_opt(item["member_id"]),
            target=goals.get(item["op_id"], {}),
            expected_ms=_opt_int(item["expected_updated_at_ms"]),
            password_source=_opt(item["password_source"]),
            note=_opt(item.get("password_note")),
        )
        for item in frame.to_dict("records")
    ]
    return sorted(ops, key=lambda op: order[op.kind])


async def _apply(
    aio: AsyncAdmin,
    plan: Plan,
    ops: list[_Op],
    journal: Journal | None,
    concurrency: int,
    progress: ProgressOption,
    verify: bool,
) -> None:
    previous = journal.get(op.key for op in ops) if journal is not None else {}
    if journal is not None:
        _supersede(journal, plan, {op.key for op in ops})
    # Every op runs, those the journal holds as finished too: each is first compared with the
    # member as it is now, so a journal finished against another state of the member base
    # (the member deleted since, an emulator reset) never turns a needed op into a no-op.
    todo: list[_Op] = []
    for op in ops:
        op.previous = previous.get(op.key)
        op.member_id = op.member_id or (op.previous.member_id if op.previous else None)
        todo.append(op)
    count = int(plan.meta.get("current_count") or 0)
    live: Live[_Op] = Live(
        aio,
        [op.member_id for op in todo if op.kind != "create" and op.member_id],
        count,
        concurrency,
    )
    bar = open_progress(progress, "applying", len(todo), unit=" ops")
    try:
        creates = [o for o in todo if o.kind == "create"]
        for batches in (
            live.ordered(creates, [o for o in todo if o.kind == "update"]),
            live.ordered([], [o for o in todo if o.kind == "delete"]),
        ):
            async for _ in run_bounded(
                _begin(batches, journal),
                lambda op: run_op(aio, op, live, lambda: _password(plan, op)),
                concurrency=concurrency,
                on_result=lambda op, r: _finish(op, r, journal, bar),
            ):
                pass
        if verify:
            await _verify(
                aio, [o for o in ops if o.status in MEMBER_APPLIED], count, concurrency, journal
            )
    finally:
        await live.close()
        bar.close()


def _supersede(journal: Journal, plan: Plan, keys: set[str]) -> None:
    """Close pending entries of an interrupted run that this plan no longer contains.

    A fresh plan of the same sheet is made from the members as they are now, so an op that
    landed before the crash is no longer in it (or has another target, so another key): its
    member has been re-read and planned again, and the old entry is marked ``superseded``.
    """
    orphans = [k for k in journal.pending_keys() if k not in keys]
    if not orphans:
        return
    # By canonical key: a create journals the sheet's spelling, the member base its own.
    emails = {
        email_key(str(e))
        for e in (*plan.ops["email"].dropna(), *plan.unchanged_rows["email"].dropna())
    }
    for key, entry in journal.get(orphans).items():
        email = entry.detail.get("email")
        if isinstance(email, str) and email_key(email) in emails:
            journal.finish(
                key,
                MemberOutcome.SUPERSEDED,
                member_id=entry.member_id,
                error="planned again from the member's current state",
            )


async def _begin(batches: AsyncIterator[list[_Op]], journal: Journal | None) -> AsyncIterator[_Op]:
    """Mark each batch pending (one durable commit per batch), then hand its ops out."""
    async for batch in batches:
        if journal is not None:
            journal.begin((op.key, op.detail()) for op in batch)
        for op in batch:
            yield op


def _finish(op: _Op, outcome: object, journal: Journal | None, bar: Progress) -> None:
    bar.update(1)
    if isinstance(outcome, BaseException):  # a bug, not an API failure: still recorded
        op.status, op.error = MemberOutcome.FAILED, f"{type(outcome).__name__}: {outcome}"
    if journal is not None:
        journal.finish(
            op.key,
            op.status,
            http_status=op.http_status,
            error=op.error,
            member_id=op.member_id,
            detail=op.detail(),
        )


def _password(plan: Plan, op: _Op) -> Secret:
    """The password a create sends: the sheet's, else a strong random one, made here and sent
    once (never stored, logged or shown)."""
    given = plan.passwords.get(op.email or "") if op.password_source == "sheet" else None
    return given or Secret(secrets.token_urlsafe(24))


# ---------------------------------------------------------------------------- reading back


async def _verify(
    aio: AsyncAdmin, ops: list[_Op], count: int, concurrency: int, journal: Journal | None
) -> None:
    ids = [op.member_id for op in ops if op.member_id]
    live = await fetch_members(aio, ids, count + len(ids), concurrency)
    for op in ops:
        member = live.get(op.member_id or "")
        if isinstance(member, PlabdataError):
            op.error = f"applied, but not verified: reading it back failed ({member})"
            continue
        problem = mismatch(member, op.kind, op.target)
        if problem is not None:
            op.status = MemberOutcome.FAILED
            op.error = f"read back after applying: {problem}"
            if journal is not None:
                journal.finish(op.key, op.status, error=op.error, member_id=op.member_id)


# ---------------------------------------------------------------------------- results


def _results(plan: Plan, ops: list[_Op]) -> pd.DataFrame:
    rows = [op.result() for op in ops]
    for item in plan.ops[plan.ops["op"] == "unsupported"].to_dict("records"):
        rows.append(
            {
                "row": item["row"],
                "op": "unsupported",
                "email": item["email"],
                "member_id": item["member_id"],
                "status": MemberOutcome.SKIPPED,
                "error": item["problem"],
                "attempts": 0,
            }
        )
    for item in plan.unchanged_rows.to_dict("records"):
        rows.append(
            {
                "row": item["row"],
                "op": "unchanged",
                "email": item["email"],
                "member_id": item["member_id"],
                "status": MemberOutcome.SKIPPED,
                "attempts": 0,
            }
        )
    for item in plan.invalid.to_dict("records"):
        rows.append(
            {
                "row": item["row"],
                "op": "invalid",
                "email": item["email"],
                "status": MemberOutcome.INVALID,
                "error": item["problem"],
                "attempts": 0,
            }
        )
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    frame = frame.astype(RESULT_COLUMNS)
    return frame.sort_values(["row", "op"], na_position="last", kind="stable").reset_index(
        drop=True
    )


def _opt(value: Any) -> str | None:
    return None if value is None or value is pd.NA or pd.isna(value) else str(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None or value is pd.NA or pd.isna(value) else int(value)
