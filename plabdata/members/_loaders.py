"""Loaders: the whole member base, its identities and its quota usage, as DataFrames.

The member list is a cursor walk (each page needs the previous page's cursor), so it is
sequential; identities and quota usage are one request per member and run concurrently
under the client's shared rate limiter.

    >>> admin = plabdata.connect()
    >>> base = load_member_base(admin)       # members + providers + quota, one row each
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeVar

import pandas as pd
from tqdm.auto import tqdm

from plabdata.client._core import AsyncAdmin
from plabdata.client._records import Identity, Member, QuotaUsage
from plabdata.client._sync import Admin
from plabdata.errors import NotFound, PlabdataError
from plabdata.jobs._runner import run_bounded
from plabdata.tables._dtypes import BOOLEAN, INT, STRING
from plabdata.tables._frames import identities_frame, members_frame, quota_frame

log = logging.getLogger("plabdata")
R = TypeVar("R")

MemberIds = pd.DataFrame | pd.Series | Iterable[str] | None


def load_members(admin: Admin, *, page_size: int = 100, progress: bool = True) -> pd.DataFrame:
    """Every member, one row each (columns: :data:`plabdata.tables._frames.MEMBER_COLUMNS`, then
    ``metadata.<key>`` / ``custom_fields.<key>`` flattened from the maps).

    Example:
        >>> members = load_members(plabdata.connect())
        >>> members.groupby("sign_in_method").size()
    """
    return admin.run(_load_members(admin.aio, page_size=page_size, progress=progress))


async def _load_members(aio: AsyncAdmin, *, page_size: int, progress: bool) -> pd.DataFrame:
    members: dict[str, Member] = {}
    bar = tqdm(desc="members", unit=" members", disable=not progress, leave=False)
    try:
        async for page in aio.iter_member_pages(page_size):
            bar.total = page.total
            for member in page.items:
                members[member.id] = member
            bar.update(len(page.items))
    finally:
        bar.close()
    return members_frame(list(members.values()))


def _member_ids(admin: Admin, member_ids: MemberIds, progress: bool) -> list[str]:
    if member_ids is None:
        return _member_id_list(load_members(admin, progress=progress))
    return _member_id_list(member_ids)


def _member_id_list(member_ids: pd.DataFrame | pd.Series | Iterable[str]) -> list[str]:
    if isinstance(member_ids, pd.DataFrame):
        member_ids = member_ids["member_id"]
    return list(dict.fromkeys(str(m) for m in member_ids if isinstance(m, str) and m))


async def _per_member(
    member_ids: list[str],
    fetch: Callable[[str], Awaitable[R]],
    *,
    concurrency: int,
    desc: str,
    progress: bool,
) -> list[tuple[str, R]]:
    """Fetch one thing per member concurrently; members deleted meanwhile are skipped.

    Results come back in ``member_ids`` order. Any other failure (after the client's retries)
    fails the load with the first error and how many members it hit.
    """
    results: dict[str, R] = {}
    failures: list[tuple[str, BaseException]] = []
    with tqdm(
        total=len(member_ids), desc=desc, unit=" members", disable=not progress, leave=False
    ) as bar:
        async for member_id, outcome in run_bounded(member_ids, fetch, concurrency=concurrency):
            bar.update(1)
            if isinstance(outcome, NotFound):
                log.info("member %s disappeared during the load: skipped", member_id)
            elif isinstance(outcome, BaseException):
                failures.append((member_id, outcome))
            else:
                results[member_id] = outcome
    if failures:
        member_id, first = failures[0]
        raise PlabdataError(
            f"{desc}: {len(failures)} of {len(member_ids)} members failed after retries; "
            f"first: {member_id}: {first}"
        ) from (first if isinstance(first, Exception) else None)
    return [(m, results[m]) for m in member_ids if m in results]


def load_identities(
    admin: Admin,
    member_ids: MemberIds = None,
    *,
    concurrency: int | None = None,
    include_tokens: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per (member, provider) identity, fetched concurrently.

    ``member_ids`` may be a members frame, a Series or a list; None loads every member first.
    Access and refresh tokens are secrets: they are included only with
    ``include_tokens=True``; otherwise ``has_access_token`` / ``has_refresh_token`` say
    whether they exist.

    Example:
        >>> ids = load_identities(admin, members)
        >>> ids.groupby("provider", observed=True).size()
    """
    ids = _member_ids(admin, member_ids, progress)
    limit = concurrency or admin.settings.concurrency
    fetched = admin.run(
        _per_member(
            ids, admin.aio.get_identities, concurrency=limit, desc="identities", progress=progress
        )
    )
    rows: list[tuple[str, Identity]] = [
        (member_id, identity)
        for member_id, identities in fetched
        for _, identity in sorted(identities.items())
    ]
    return identities_frame(rows, include_tokens=include_tokens)


def load_quota_usage(
    admin: Admin,
    member_ids: MemberIds = None,
    *,
    concurrency: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Quota usage per member (interval, count, limit, unlimited, over-limit, reset-in-days).

    Example:
        >>> quota = load_quota_usage(admin, members)
        >>> quota[quota.is_over_limit]
    """
    ids = _member_ids(admin, member_ids, progress)
    limit = concurrency or admin.settings.concurrency
    fetched: list[tuple[str, QuotaUsage]] = admin.run(
        _per_member(
            ids, admin.aio.get_quota_usage, concurrency=limit, desc="quota", progress=progress
        )
    )
    return quota_frame(fetched)


def plan_labels(quota: pd.DataFrame, names: Mapping[int, str] | None = None) -> pd.Series:
    """A plan label per member, derived from its quota (the admin API exposes no plan id).

    ``unlimited`` for unlimited members, otherwise ``"<limit>/<interval>"`` — or the name given
    for that limit in ``names`` (e.g. ``{100: "free", 5000: "pro"}``).
    """
    names = dict(names or {})
    limit = quota["usage_limit"]
    label = limit.astype(STRING) + "/" + quota["interval"].astype(STRING)
    named = limit.map(lambda v: names.get(int(v)) if pd.notna(v) else None).astype(STRING)
    label = named.fillna(label)
    label = label.mask(quota["is_unlimited"].fillna(False).astype(bool), "unlimited")
    # Categories typed ``str`` (not ``string``) so the frame survives a Parquet round trip.
    return label.astype(pd.CategoricalDtype(pd.Index(sorted(label.dropna().unique()), dtype=str)))


def load_member_base(
    admin: Admin,
    *,
    plan_names: Mapping[int, str] | None = None,
    concurrency: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Members joined with their sign-in providers and quota: the starting point to explore.

    Adds to the member columns: ``providers`` (comma-separated, sorted), ``n_identities``,
    ``quota_interval``, ``quota_usage_count``, ``quota_usage_limit``, ``quota_is_unlimited``,
    ``quota_is_over_limit``, ``quota_reset_in_days`` and ``plan`` (see :func:`plan_labels`).

    Example:
        >>> base = load_member_base(plabdata.connect(), plan_names={100: "free", 5000: "pro"})
        >>> base.pivot_table(index="plan", columns="sign_in_method", aggfunc="size")
    """
    members = load_members(admin, progress=progress)
    identities = load_identities(admin, members, concurrency=concurrency, progress=progress)
    quota = load_quota_usage(admin, members, concurrency=concurrency, progress=progress)
    return join_member_base(members, identities, quota, plan_names=plan_names)


def join_member_base(
    members: pd.DataFrame,
    identities: pd.DataFrame | None,
    quota: pd.DataFrame | None,
    *,
    plan_names: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """The pure join behind :func:`load_member_base` (members keep their order).

    Pass None for ``identities`` or ``quota`` to leave their columns out.
    """
    base = members
    if identities is not None:
        providers = (
            identities.assign(provider=identities["provider"].astype(str))
            .groupby("member_id", observed=True)["provider"]
            .agg(lambda s: ",".join(sorted(s)))
            .astype(STRING)
            .rename("providers")
        )
        counts = identities.groupby("member_id", observed=True).size().rename("n_identities")
        base = base.join(providers, on="member_id").join(counts, on="member_id")
        base["providers"] = base["providers"].astype(STRING).fillna("")
        base["n_identities"] = base["n_identities"].fillna(0).astype(INT)
    if quota is not None:
        base = base.join(quota.set_index("member_id").add_prefix("quota_"), on="member_id")
        for name in ("quota_is_unlimited", "quota_is_over_limit"):
            base[name] = base[name].astype(BOOLEAN)
        for name in ("quota_usage_count", "quota_usage_limit", "quota_reset_in_days"):
            base[name] = base[name].astype(INT)
        base["quota_interval"] = base["quota_interval"].astype(STRING)
        plan_input = pd.DataFrame(
            {
                "usage_limit": base["quota_usage_limit"],
                "interval": base["quota_interval"],
                "is_unlimited": base["quota_is_unlimited"],
            }
        )
        base["plan"] = plan_labels(plan_input, plan_names)
    return base
