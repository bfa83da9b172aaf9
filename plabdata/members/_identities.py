"""Bulk identity refresh: renew every google / gitlab access token that is about to expire.

PluginLab keeps each member's OAuth tokens; a plugin that calls Google or GitLab on a member's
behalf needs a live access token. :func:`refresh_identities` finds the identities whose access
token expires within a window (or already has) and refreshes them concurrently. A provider
that refuses the refresh (422 ``refresh-token-failed``: the refresh token was revoked or has
expired) marks that member ``reauth-needed`` — the member has to sign in again — and the run
carries on.

The result never holds a token: only expiry times, statuses and error texts.

    >>> result = refresh_identities(admin, load_identities(admin), expiring_within="30min")
    >>> result[result.status == "reauth-needed"].member_id
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from plabdata.client._core import AsyncAdmin
from plabdata.client._records import Identity
from plabdata.client._retry import track
from plabdata.client._sync import Admin
from plabdata.errors import ApiError, NotFound, PlabdataError, RefreshTokenFailed, ValidationError
from plabdata.jobs._outcomes import RefreshOutcome
from plabdata.jobs._progress import ProgressOption, open_progress
from plabdata.jobs._runner import run_bounded
from plabdata.members._loaders import load_identities
from plabdata.tables._dtypes import INT, PROVIDER, STRING, TIMESTAMP
from plabdata.wire import PROVIDERS

log = logging.getLogger("plabdata")

#: Providers whose access tokens PluginLab can refresh.
REFRESHABLE_PROVIDERS = ("google", "gitlab")
#: Every status a result row can have.
REFRESH_STATUSES = tuple(RefreshOutcome)
#: Columns (and dtypes) of :func:`refresh_identities`' result.
REFRESH_COLUMNS: dict[str, Any] = {
    "member_id": STRING,
    "provider": PROVIDER,
    "status": STRING,
    "access_token_expires_at_before": TIMESTAMP,
    "access_token_expires_at_after": TIMESTAMP,
    "error": STRING,
    "attempts": INT,
}
_REQUIRED = ("member_id", "provider", "access_token_expires_at")
_TOKEN_COLUMNS = ("access_token", "refresh_token")
_MAX_ERROR = 300
_REDACTED = "**********"

Window = str | timedelta | pd.Timedelta


@dataclass
class _Row:
    """One identity to report on, and what happened to it."""

    member_id: str
    provider: str
    expires_before: pd.Timestamp | None
    status: str = RefreshOutcome.SKIPPED
    expires_after_ms: int | None = None
    error: str | None = None
    attempts: int = 0


def refresh_identities(
    admin: Admin,
    identities: pd.DataFrame | None = None,
    *,
    expiring_within: Window = "1h",
    providers: str | Sequence[str] = REFRESHABLE_PROVIDERS,
    concurrency: int | None = None,
    progress: ProgressOption = True,
    now: datetime | str | None = None,
) -> pd.DataFrame:
    """Refresh the access tokens of identities that expire within ``expiring_within``.

    Every identity in ``identities`` gets exactly one result row (a repeated
    ``(member_id, provider)`` pair is refreshed once and reported once). Identities not due
    are **kept in the result as** ``skipped`` with the reason in ``error``: a provider not in
    ``providers`` (github and microsoft by default), no access-token expiry, or an expiry
    beyond the window. Filter with ``result[result.status != "skipped"]``.

    Args:
        admin: the connected client.
        identities: a frame as returned by :func:`~plabdata.load_identities` (columns
            ``member_id``, ``provider``, ``access_token_expires_at`` at least); None loads
            every member's identities first.
        expiring_within: a pandas Timedelta string (``"1h"``, ``"30min"``) or a timedelta.
            Tokens already expired are always due.
        providers: the providers to refresh (a name or a sequence of names); PluginLab
            refreshes google and gitlab only.
        concurrency: requests in flight at most (default: ``admin.settings.concurrency``);
            the client's shared rate limiter still applies.
        progress: show a progress bar.
        now: the reference time (default: the current time); naive values are UTC.

    Returns:
        One row per identity, columns ``member_id``, ``provider``, ``status`` (``refreshed``,
        ``reauth-needed``, ``failed``, ``skipped``), ``access_token_expires_at_before``,
        ``access_token_expires_at_after`` (the new expiry, NaT unless refreshed; both
        datetime64[ms, UTC]), ``error`` (the reason, for every status but ``refreshed``) and
        ``attempts`` (HTTP requests made). ``reauth-needed`` means the provider refused the
        refresh: the member must sign in again. A member or identity deleted meanwhile is
        ``failed`` with the reason. No token ever appears in it.

    Raises:
        ValidationError: ``identities`` lacks a required column.
        ValueError: ``expiring_within`` is negative or not a duration.

    Example:
        >>> result = refresh_identities(admin, expiring_within="2h")
        >>> result.status.value_counts()
    """
    window = _window(expiring_within)
    reference = _utc(now)
    if identities is None:
        identities = load_identities(admin, progress=progress is True)
    selected = {providers} if isinstance(providers, str) else set(providers)
    rows = _plan_rows(identities, reference + window, selected, window)
    due = [row for row in rows if row.status == "due"]
    limit = concurrency or admin.settings.concurrency
    if due:
        admin.run(_refresh(admin.aio, due, concurrency=limit, progress=progress))
    for row in due:
        row.error = _scrub(row.error, _known_tokens(identities))
    counts = pd.Series([row.status for row in rows], dtype=STRING).value_counts().to_dict()
    log.info("identity refresh: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return _frame(rows)


# ---------------------------------------------------------------------------- selection


def _window(expiring_within: Window) -> pd.Timedelta:
    try:
        window = pd.Timedelta(expiring_within)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"expiring_within={expiring_within!r} is not a duration") from exc
    if pd.isna(window) or window < pd.Timedelta(0):
        raise ValueError(f"expiring_within={expiring_within!r} must be a positive duration")
    return window


def _utc(value: datetime | str | None) -> pd.Timestamp:
    stamp = pd.Timestamp.now(tz="UTC") if value is None else pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _plan_rows(
    identities: pd.DataFrame, deadline: pd.Timestamp, providers: set[str], window: pd.Timedelta
) -> list[_Row]:
    """One :class:`_Row` per distinct identity: ``due`` for refresh, or ``skipped`` with why."""
    missing = [name for name in _REQUIRED if name not in identities.columns]
    if missing:
        raise ValidationError(
            f"the identities frame lacks column(s) {', '.join(missing)}: "
            "pass a frame from load_identities()"
        )
    frame = identities.loc[:, list(_REQUIRED)].drop_duplicates(["member_id", "provider"])
    member_ids = frame["member_id"].astype(STRING)
    names = frame["provider"].astype(STRING)
    expires = pd.to_datetime(frame["access_token_expires_at"], utc=True)
    rows: list[_Row] = []
    for member_id, provider, expiry in zip(member_ids, names, expires, strict=True):
        row = _Row(
            member_id="" if pd.isna(member_id) else str(member_id),
            provider="" if pd.isna(provider) else str(provider),
            expires_before=None if pd.isna(expiry) else pd.Timestamp(expiry),
        )
        if not row.member_id:
            row.error = "no member id"
        elif row.provider not in providers:
            row.error = f"provider {row.provider or '(none)'} not selected for refresh"
        elif row.expires_before is None:
            row.error = "no access-token expiry"
        elif row.expires_before > deadline:
            row.error = f"access token does not expire within {window}"
        else:
            row.status = "due"
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- refreshing


async def _refresh(
    aio: AsyncAdmin, rows: list[_Row], *, concurrency: int, progress: ProgressOption
) -> None:
    bar = open_progress(progress, "refresh", len(rows), unit=" identities")
    try:
        async for _, _ in run_bounded(
            rows, lambda row: _refresh_one(aio, row), concurrency=concurrency
        ):
            bar.update(1)
    finally:
        bar.close()


async def _refresh_one(aio: AsyncAdmin, row: _Row) -> None:
    """Refresh one identity and record the outcome on ``row``; never raises (but cancels)."""
    identity: Identity | None = None
    with track() as trace:
        try:
            identity = await aio.refresh_identity_token(row.member_id, row.provider)
        except RefreshTokenFailed as exc:
            row.status, row.error = RefreshOutcome.REAUTH_NEEDED, _reason(exc)
        except NotFound as exc:
            row.status, row.error = RefreshOutcome.FAILED, f"gone: {_reason(exc)}"
        except Exception as exc:
            row.status, row.error = RefreshOutcome.FAILED, _reason(exc)
    row.attempts = trace.attempts
    if identity is not None:
        row.status = RefreshOutcome.REFRESHED
        row.expires_after_ms = identity.access_token_expires_at_ms
    if row.status != RefreshOutcome.REFRESHED:
        log.debug("refresh %s/%s: %s (%s)", row.member_id, row.provider, row.status, row.error)


def _reason(exc: BaseException) -> str:
    """The error as text for the result table: status, code and message, no request body."""
    if isinstance(exc, ApiError):
        text = " ".join(str(part) for part in (exc.status, exc.code) if part)
        return f"{text}: {exc.message}" if exc.message else text
    if isinstance(exc, PlabdataError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _known_tokens(identities: pd.DataFrame) -> list[str]:
    """Token values present in the input frame (``include_tokens=True``), to scrub from errors."""
    found: list[str] = []
    for name in _TOKEN_COLUMNS:
        if name in identities.columns:
            found.extend(str(v) for v in identities[name].dropna() if str(v))
    return found


def _scrub(text: str | None, tokens: Iterable[str]) -> str | None:
    """``text`` shortened, with any known token replaced: an error never carries a secret."""
    if text is None:
        return None
    for token in tokens:
        text = text.replace(token, _REDACTED)
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


def _frame(rows: list[_Row]) -> pd.DataFrame:
    providers = [row.provider for row in rows]
    extra = sorted(set(providers) - set(PROVIDERS) - {""})
    after = pd.Series([row.expires_after_ms for row in rows], dtype=INT)
    frame = pd.DataFrame(
        {
            "member_id": pd.Series([row.member_id for row in rows], dtype=STRING),
            "provider": pd.Series([p or None for p in providers], dtype=object),
            "status": pd.Series([row.status for row in rows], dtype=STRING),
            "access_token_expires_at_before": pd.Series(
                [row.expires_before for row in rows], dtype=object
            ),
            "access_token_expires_at_after": pd.to_datetime(after, unit="ms", utc=True),
            "error": pd.Series([row.error for row in rows], dtype=STRING),
            "attempts": pd.Series([row.attempts for row in rows], dtype=INT),
        }
    )
    frame["access_token_expires_at_before"] = pd.to_datetime(
        frame["access_token_expires_at_before"], utc=True
    )
    return frame.astype({**REFRESH_COLUMNS, "provider": pd.CategoricalDtype([*PROVIDERS, *extra])})
