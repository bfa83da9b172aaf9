"""Every outcome a row of a bulk job can end in, named once, and which of them need a person.

Each job's result table (``apply_plan``, ``backfill_events``, ``refresh_identities``) has a
``status`` column holding one of these words, the journal stores the same words, and the
CLI, the demo and the widgets decide "is this a problem row" from the sets below — nowhere
else. The enums are ``StrEnum``: a status compares equal to its word, so
``results["status"].isin(MEMBER_PROBLEMS)`` works on a plain string column.

    >>> MemberOutcome.STALE == "stale"
    True
    >>> sorted(MEMBER_PROBLEMS)
    ['failed', 'invalid', 'stale']
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "EVENT_PROBLEMS",
    "MEMBER_APPLIED",
    "MEMBER_FAILURES",
    "MEMBER_PROBLEMS",
    "PENDING",
    "REFRESH_PROBLEMS",
    "EventOutcome",
    "MemberOutcome",
    "RefreshOutcome",
]

#: The journal's word for a request begun and not finished: after a crash, it is in doubt.
PENDING = "pending"


class MemberOutcome(StrEnum):
    """What became of one op (create, update, delete) or sheet row of a member plan."""

    #: Applied by this run (or, with the journal's note, by an earlier one).
    DONE = "done"
    #: An interrupted or unanswered request turned out to have been applied.
    IN_DOUBT_RESOLVED = "in-doubt-resolved"
    #: Refused or failing after retries; the error says why. Re-feed the row.
    FAILED = "failed"
    #: The member changed (or appeared, or went) since the plan was made: plan again.
    STALE = "stale"
    #: Nothing to do: the row already matches, the member is already gone, …
    SKIPPED = "skipped"
    #: The sheet row failed validation: nothing was sent for it.
    INVALID = "invalid"
    #: A dry run: what would be done.
    PLANNED = "planned"
    #: A journal entry of an interrupted run that a fresh plan made from the current state
    #: no longer needs.
    SUPERSEDED = "superseded"


class EventOutcome(StrEnum):
    """What became of one row of an event log."""

    SENT = "sent"
    #: A dry run: what would be sent.
    WOULD_SEND = "would-send"
    #: The journal holds it as sent by an earlier run (or an overlapping export).
    ALREADY_DONE = "already-done"
    INVALID = "invalid"
    #: Surely not recorded (refused, or failing after retries): a later run tries again.
    FAILED = "failed"
    #: Sent and never confirmed: maybe recorded. Not re-sent unless ``on_in_doubt="retry"``.
    IN_DOUBT = "in-doubt"
    #: Outside ``since`` / ``until``.
    FILTERED = "filtered"


class RefreshOutcome(StrEnum):
    """What became of one identity in a bulk token refresh."""

    REFRESHED = "refreshed"
    #: The provider refused the refresh: the member must sign in again.
    REAUTH_NEEDED = "reauth-needed"
    FAILED = "failed"
    #: Not due (or not refreshable).
    SKIPPED = "skipped"


#: A member op whose change is on the server.
MEMBER_APPLIED = frozenset({MemberOutcome.DONE, MemberOutcome.IN_DOUBT_RESOLVED})
#: Member ops the apply itself could not carry out (invalid rows are the sheet's).
MEMBER_FAILURES = frozenset({MemberOutcome.FAILED, MemberOutcome.STALE})
#: Sheet rows that need fixing (or planning again) and feeding back.
MEMBER_PROBLEMS = MEMBER_FAILURES | {MemberOutcome.INVALID}
#: Log rows not cleanly sent or done.
EVENT_PROBLEMS = frozenset({EventOutcome.FAILED, EventOutcome.INVALID, EventOutcome.IN_DOUBT})
#: Identities that still need something.
REFRESH_PROBLEMS = frozenset({RefreshOutcome.REAUTH_NEEDED, RefreshOutcome.FAILED})
