"""Loaders: the whole member base, its identities and its quota usage, as DataFrames.

The member list is a cursor walk (each page needs the previous page's cursor), so it is
sequential; identities and quota usage are one request per member and run concurrently
under the client's shared rate limiter. The two overlap: the moment a page of members
arrives, their identities and quota are asked for, so loading the whole base takes about
as long as the longer of the walk and the per-member calls at the rate limit — not their sum.

    >>> admin = plabdata.connect()
    >>> base = load_member_base(admin)       # members + providers + quota, one row each
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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

MemberIds = pd.DataFrame | pd.Series | Iterable[str] | None
#: What :func:`load_member_base` can add to the members (``include=``).
PARTS = ("identities", "quota")


def load_members(
    admin: Admin, *, page_size: int | None = None, progress: bool = True
) -> pd.DataFrame:
    """Every member, one row each (columns: :data:`plabdata.tables._frames.MEMBER_COLUMNS`, then
    ``metadata.<key>`` / ``custom_fields.<key>`` flattened from the maps).

    ``page_size`` defaults to the client's (50, the size every PluginLab document accepts);
    a server that refuses or shortens it is walked all the same.

    Example:
        >>> members = load_members(plabdata.connect())
        >>> members.groupby("sign_in_method").size()
    """
    loaded = admin.run(_load(admin.aio, (), page_size=page_size, progress=progress))
    return members_frame(loaded.members)


@dataclass
class _Loaded:
    """What one pipelined load brought back."""

    members: list[Member] = field(default_factory=list)
    identities: dict[str, dict[str, Identity]] = field(default_factory=dict)
    quota: dict[str, QuotaUsage] = field(default_factory=dict)
    failures: list[tuple[str, str, BaseException]] = field(default_factory=list)


async def _load(
    aio: AsyncAdmin,
    parts: Collection[str],
    *,
    member_ids: list[str] | None = None,
    page_size: int | None = None,
    concurrency: int | None = None,
    progress: bool = True,
) -> _Loaded:
    """Walk the members (unless ``member_ids`` are given) and fetch ``parts`` for each member
    as soon as its page arrives. Members deleted meanwhile are skipped; any other failure
    (after the client's retries) fails the load with the first error and a count."""
    loaded = _Loaded()
    limit = concurrency or aio.settings.concurrency
    bars = {
        name: tqdm(desc=name, unit=" members", disable=not progress, leave=False, total=0)
        for name in ("members", *parts)
    }
    pages: asyncio.Queue[list[str] | None] = asyncio.Queue()

    async def walk() -> None:
        try:
            if member_ids is not None:
                pages.put_nowait(member_ids)
                return
            async for page in aio.iter_member_pages(page_size):
                bars["members"].total = max(page.total, len(loaded.members) + len(page.items))
                loaded.members.extend(page.items)
                bars["members"].update(len(page.items))
                pages.put_nowait([m.id for m in page.items])
        finally:
            pages.put_nowait(None)

    async def calls() -> AsyncIterator[tuple[str, str]]:
        while (ids := await pages.get()) is not None:
            for name in parts:
                bars[name].total += len(ids)
                bars[name].refresh()
            for member_id in ids:
                for name in parts:
                    yield name, member_id

    async def fetch(call: tuple[str, str]) -> Any:
        name, member_id = call
        if name == "identities":
            return await aio.get_identities(member_id)
        return await aio.get_quota_usage(member_id)

    walker = asyncio.ensure_future(walk())
    try:
        async for (name, member_id), outcome in run_bounded(calls(), fetch, concurrency=limit):
            bars[name].update(1)
            if isinstance(outcome, NotFound):
                log.info("member %s disappeared during the load: skipped", member_id)
            elif isinstance(outcome, BaseException):
                loaded.failures.append((name, member_id, outcome))
            elif name == "identities":
                loaded.identities[member_id] = outcome
            else:
                loaded.quota[member_id] = outcome
        await walker  # raises the walk's own failure, if any
    finally:
        if not walker.done():
            walker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await walker
        for bar in bars.values():
            bar.close()
    if loaded.failures:
        name, member_id, first = loaded.failures[0]
        total = len(loaded.members) if member_ids is None else len(member_ids)
        raise PlabdataError(
            f"{name}: {len(loaded.failures)} of {total} members failed after retries; "
            f"first: {member_id}: {first}"
        ) from (first if isinstance(first, Exception) else None)
    return loaded


def _member_id_list(member_ids: pd.DataFrame | pd.Series | Iterable[str]) -> list[str]:
    if isinstance(member_ids, pd.DataFrame):
        member_ids = member_ids["member_id"]
    return list(dict.fromkeys(str(m) for m in member_ids if isinstance(m, str) and m))


def _identity_rows(loaded: _Loaded, order: Iterable[str]) -> list[tuple[str, Identity]]:
    return [
        (member_id, identity)
        for member_id in order
        for _, identity in sorted(loaded.identities.get(member_id, {}).items())
    ]


def _order(loaded: _Loaded, member_ids: list[str] | None) -> list[str]:
    return member_ids if member_ids is not None else [m.id for m in loaded.members]


def load_identities(
    admin: Admin,
    member_ids: MemberIds = None,
    *,
    concurrency: int | None = None,
    include_tokens: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per (member, provider) identity, fetched concurrently.

    ``member_ids`` may be a members frame, a Series or a list; None walks every member and
    fetches each page's identities as it arrives. Access and refresh tokens are secrets: they
    are included only with ``include_tokens=True``; otherwise ``has_access_token`` /
    ``has_refresh_token`` say whether they exist.

    Example:
        >>> ids = load_identities(admin, members)
        >>> ids.groupby("provider", observed=True).size()
    """
    ids = None if member_ids is None else _member_id_list(member_ids)
    loaded = admin.run(
        _load(
            admin.aio, ("identities",), member_ids=ids, concurrency=concurrency, progress=progress
        )
    )
    rows = _identity_rows(loaded, _order(loaded, ids))
    return identities_frame(rows, include_tokens=include_tokens)


def load_quota_usage(
    admin: Admin,
    member_ids: MemberIds = None,
    *,
    concurrency: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Quota usage per member (interval, count, limit, unlimited, over-limit, reset-in-days).

    ``member_ids`` as for :func:`load_identities`; None walks every member.

    Example:
        >>> quota = load_quota_usage(admin, members)
        >>> quota[quota.is_over_limit]
    """
    ids = None if member_ids is None else _member_id_list(member_ids)
    loaded = admin.run(
        _load(admin.aio, ("quota",), member_ids=ids, concurrency=concurrency, progress=progress)
    )
    order = _order(loaded, ids)
    return quota_frame([(m, loaded.quota[m]) for m in order if m in loaded.quota])


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
    include: Iterable[str] = PARTS,
    plan_names: Mapping[int, str] | None = None,
    concurrency: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Members joined with their sign-in providers and quota: the starting point to explore.

    Adds to the member columns, with ``"identities"`` in ``include``: ``providers``
    (comma-separated, sorted) and ``n_identities``; with ``"quota"``: ``quota_interval``,
    ``quota_usage_count``, ``quota_usage_limit``, ``quota_is_unlimited``,
    ``quota_is_over_limit``, ``quota_reset_in_days`` and ``plan`` (see :func:`plan_labels`).
    Each page's identities and quota are fetched while the next pages are walked.

    Example:
        >>> base = load_member_base(plabdata.connect(), plan_names={100: "free", 5000: "pro"})
        >>> base.pivot_table(index="plan", columns="sign_in_method", aggfunc="size")
    """
    parts = tuple(dict.fromkeys(include))
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"include: unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    loaded = admin.run(_load(admin.aio, parts, concurrency=concurrency, progress=progress))
    members = members_frame(loaded.members)
    order = [m.id for m in loaded.members]
    identities = identities_frame(_identity_rows(loaded, order)) if "identities" in parts else None
    quota = (
        quota_frame([(m, loaded.quota[m]) for m in order if m in loaded.quota])
        if "quota" in parts
        else None
    )
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
