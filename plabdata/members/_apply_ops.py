"""One op of a member plan and how it runs: the ``_Op`` record, the create / update / delete
requests, and what an earlier run's journal entry means for each.

:func:`run_op` never raises for an API failure: it records the outcome on the op (``status``,
``error``, ``http_status``, ``attempts``), which :mod:`plabdata.members._apply` journals. A
create an interrupted run left pending is looked up by email first (PluginLab derives the id
from the email, so a member found is ours); an update or a delete first compares the member
with the ``updated_at`` the plan recorded and refuses a changed one as ``stale``.

    >>> await run_op(aio, op, live, password=lambda: Secret("from-the-sheet"))
    >>> op.status, op.error
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from plabdata.client._core import AsyncAdmin
from plabdata.client._records import Member
from plabdata.client._retry import track
from plabdata.config import Secret
from plabdata.errors import ApiError, Conflict, NotFound, PlabdataError
from plabdata.jobs._journal import JournalEntry
from plabdata.jobs._outcomes import MEMBER_APPLIED, PENDING, MemberOutcome
from plabdata.members._readback import Live
from plabdata.members._sheet_checks import TEXT_FIELDS
from plabdata.members._targets import merged_metadata, patch_for

_ALREADY_DONE = "already done by an earlier run (journal)"


@dataclass
class _Op:
    """One create / update / delete and, once run, its outcome."""

    kind: str
    key: str
    row: int | None
    email: str | None
    member_id: str | None
    target: dict[str, Any]
    expected_ms: int | None
    password_source: str | None
    note: str | None = None
    previous: JournalEntry | None = None
    status: str = MemberOutcome.FAILED
    http_status: int | None = None
    error: str | None = None
    attempts: int = 0

    def detail(self) -> dict[str, Any]:
        return {"op": self.kind, "row": self.row, "email": self.email}

    def result(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "op": self.kind,
            "email": self.email,
            "member_id": self.member_id,
            "status": self.status,
            "http_status": self.http_status,
            "error": self.error,
            "attempts": self.attempts,
            "note": self.note,
        }


async def run_op(aio: AsyncAdmin, op: _Op, live: Live[_Op], password: Callable[[], Secret]) -> None:
    """Send one op and record its outcome on it: an API failure is a ``failed`` op, never an
    exception. ``password`` is called only when a create sends its request."""
    with track() as trace:
        try:
            member = None if op.kind == "create" else await live.member(op.member_id or "")
            if op.kind == "create":
                await _create(aio, op, password)
            elif op.kind == "update":
                await _update(aio, op, member)
            else:
                await _delete(aio, op, member)
            if op.status == MemberOutcome.DONE and trace.in_doubt_resolved:
                op.status = MemberOutcome.IN_DOUBT_RESOLVED
        except PlabdataError as exc:
            op.status = MemberOutcome.FAILED
            op.error = str(exc)
            op.http_status = exc.status if isinstance(exc, ApiError) else trace.last_status
        finally:
            op.attempts = trace.attempts
            if op.http_status is None:
                op.http_status = trace.last_status


async def _create(aio: AsyncAdmin, op: _Op, password: Callable[[], Secret]) -> None:
    email = op.email or ""
    interrupted = op.previous is not None and op.previous.status in (PENDING, MemberOutcome.FAILED)
    member = await aio.get_member_by_email(email) if interrupted or _journaled_done(op) else None
    resolved = member is not None
    if member is None:
        metadata = merged_metadata(op.target, {})
        verified = op.target.get("is_verified")
        try:
            member = await aio.create_member(
                email,
                password(),
                is_verified=None if verified is None else bool(verified),
                metadata=metadata or None,
            )
        except Conflict:
            op.status = MemberOutcome.STALE
            op.error = (
                "a member with this email exists already (created after the plan was "
                "made): plan again"
            )
            return
    op.member_id = member.id
    patch = (
        patch_for(member, op.target)
        if resolved
        else {f: op.target[f] for f in TEXT_FIELDS if f in op.target}
    )
    if patch:
        await aio.update_member(member.id, **patch)
    if resolved and _journaled_done(op):
        op.status, op.error = MemberOutcome.DONE, _ALREADY_DONE
    else:
        op.status = MemberOutcome.IN_DOUBT_RESOLVED if resolved else MemberOutcome.DONE


async def _update(aio: AsyncAdmin, op: _Op, member: Member | None) -> None:
    if member is None:
        op.status, op.error = MemberOutcome.STALE, "the member no longer exists"
        return
    patch = patch_for(member, op.target)
    if not patch:
        _already_there(op, "already matches the plan")
        return
    if op.expected_ms is not None and member.updated_at_ms != op.expected_ms:
        op.status = MemberOutcome.STALE
        op.error = (
            f"changed since the plan was made (updated "
            f"{pd.Timestamp(member.updated_at_ms, unit='ms', tz='UTC')}): plan again"
        )
        return
    await aio.update_member(member.id, **patch)
    op.status = MemberOutcome.DONE


def _journaled_done(op: _Op) -> bool:
    """The journal holds this op as applied by an earlier run."""
    return op.previous is not None and op.previous.status in (
        *MEMBER_APPLIED,
        MemberOutcome.SKIPPED,
    )


def _already_there(op: _Op, reason: str) -> None:
    """The server already holds the op's target: ours if the op was left pending, done if
    the journal says an earlier run applied it, else nothing to do."""
    if op.previous is not None and op.previous.status == PENDING:
        op.status, op.error = MemberOutcome.IN_DOUBT_RESOLVED, None
    elif op.previous is not None and op.previous.status in MEMBER_APPLIED:
        op.status, op.error = MemberOutcome.DONE, _ALREADY_DONE
    else:
        op.status, op.error = MemberOutcome.SKIPPED, reason


async def _delete(aio: AsyncAdmin, op: _Op, member: Member | None) -> None:
    if member is None:
        _already_there(op, "already deleted")
        return
    if op.expected_ms is not None and member.updated_at_ms != op.expected_ms:
        op.status = MemberOutcome.STALE
        op.error = "changed since the plan was made: not deleted; plan again"
        return
    try:
        await aio.delete_member(member.id)
    except NotFound:
        op.status, op.error = MemberOutcome.SKIPPED, "already deleted"
        return
    op.status = MemberOutcome.DONE
