"""Records ⇄ DataFrames: the documented columns and real dtypes of every frame plabdata returns.

Strings are pandas' nullable ``string`` dtype (missing = ``pd.NA``), booleans ``boolean``,
counts ``Int64``, times ``datetime64[ms, UTC]``, and the sign-in method and provider are
categories with a fixed set of categories, so frames from different runs concatenate and
compare equal, and a Parquet round trip loses nothing.

    >>> members_frame([]).columns[:3].tolist()
    ['member_id', 'email', 'is_verified']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from plabdata.client._records import Identity, Member, QuotaUsage
from plabdata.tables._dtypes import BOOLEAN, INT, PROVIDER, SIGN_IN_METHOD, STRING, TIMESTAMP
from plabdata.wire import PROVIDERS, SIGN_IN_METHODS

#: The fixed leading columns of ``load_members``; ``metadata.<key>`` and
#: ``custom_fields.<key>`` columns (strings) follow, then any fields the API adds.
MEMBER_COLUMNS: dict[str, Any] = {
    "member_id": STRING,
    "email": STRING,
    "is_verified": BOOLEAN,
    "has_password": BOOLEAN,
    "sign_in_method": SIGN_IN_METHOD,
    "name": STRING,
    "given_name": STRING,
    "family_name": STRING,
    "picture_url": STRING,
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
}

#: Columns of ``load_identities`` (tokens only with ``include_tokens=True``).
IDENTITY_COLUMNS: dict[str, Any] = {
    "member_id": STRING,
    "provider": PROVIDER,
    "provider_user_id": STRING,
    "access_token_expires_at": TIMESTAMP,
    "refresh_token_expires_at": TIMESTAMP,
    "last_used_at": TIMESTAMP,
    "has_access_token": BOOLEAN,
    "has_refresh_token": BOOLEAN,
}
TOKEN_COLUMNS: dict[str, Any] = {"access_token": STRING, "refresh_token": STRING}

#: Columns of ``load_quota_usage``.
QUOTA_COLUMNS: dict[str, Any] = {
    "member_id": STRING,
    "interval": STRING,
    "usage_count": INT,
    "usage_limit": INT,
    "is_unlimited": BOOLEAN,
    "is_over_limit": BOOLEAN,
    "reset_in_days": INT,
}


def _ms_to_timestamps(values: Sequence[int | None]) -> pd.Series:
    millis = pd.Series(list(values), dtype=INT)
    return pd.to_datetime(millis, unit="ms", utc=True).astype(TIMESTAMP)


def _empty(columns: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def members_frame(members: Sequence[Member]) -> pd.DataFrame:
    """One row per member, columns as in :data:`MEMBER_COLUMNS` plus flattened maps.

    Example:
        >>> members_frame(page.items).dtypes["sign_in_method"]
        CategoricalDtype(...)
    """
    if not members:
        return _empty(MEMBER_COLUMNS)
    columns: dict[str, Any] = {
        "member_id": [m.id for m in members],
        "email": [m.email for m in members],
        "is_verified": [m.is_verified for m in members],
        "has_password": [m.has_password for m in members],
        "sign_in_method": [m.sign_in_method for m in members],
        "name": [m.name for m in members],
        "given_name": [m.given_name for m in members],
        "family_name": [m.family_name for m in members],
        "picture_url": [m.picture_url for m in members],
        "created_at": [m.created_at_ms for m in members],
        "updated_at": [m.updated_at_ms for m in members],
    }
    frame = pd.DataFrame(columns)
    for name, dtype in MEMBER_COLUMNS.items():
        if dtype is TIMESTAMP:
            frame[name] = _ms_to_timestamps(columns[name])
        elif dtype is SIGN_IN_METHOD:
            # A method PluginLab adds later must not silently become NaN: widen the categories.
            extra = sorted(set(columns[name]) - set(SIGN_IN_METHODS))
            frame[name] = frame[name].astype(pd.CategoricalDtype([*SIGN_IN_METHODS, *extra]))
        else:
            frame[name] = frame[name].astype(dtype)
    flat = {
        **_flatten(members, "metadata", lambda m: m.metadata),
        **_flatten(members, "custom_fields", lambda m: m.custom_fields),
        **_flatten(members, "extra", lambda m: {k: _scalar(v) for k, v in m.extra.items()}),
    }
    if flat:
        extra_frame = pd.DataFrame(flat, index=frame.index).astype(STRING)
        frame = pd.concat([frame, extra_frame], axis=1)
    return frame


def _scalar(value: Any) -> str | None:
    return None if value is None else str(value)


def _flatten(members: Sequence[Member], prefix: str, get: Any) -> dict[str, list[str | None]]:
    keys: dict[str, None] = {}
    maps = [get(m) for m in members]
    for mapping in maps:
        keys.update(dict.fromkeys(mapping))
    return {f"{prefix}.{key}": [mapping.get(key) for mapping in maps] for key in sorted(keys)}


def identities_frame(
    rows: Iterable[tuple[str, Identity]], *, include_tokens: bool = False
) -> pd.DataFrame:
    """One row per (member, provider). Tokens appear only with ``include_tokens=True``."""
    columns = dict(IDENTITY_COLUMNS)
    if include_tokens:
        columns.update(TOKEN_COLUMNS)
    items = list(rows)
    if not items:
        return _empty(columns)
    data: dict[str, Any] = {
        "member_id": [member_id for member_id, _ in items],
        "provider": [i.provider for _, i in items],
        "provider_user_id": [i.provider_user_id for _, i in items],
        "access_token_expires_at": [i.access_token_expires_at_ms for _, i in items],
        "refresh_token_expires_at": [i.refresh_token_expires_at_ms for _, i in items],
        "last_used_at": [i.last_used_at_ms for _, i in items],
        "has_access_token": [i.access_token is not None for _, i in items],
        "has_refresh_token": [i.refresh_token is not None for _, i in items],
    }
    if include_tokens:
        data["access_token"] = [t.reveal() if (t := i.access_token) else None for _, i in items]
        data["refresh_token"] = [t.reveal() if (t := i.refresh_token) else None for _, i in items]
    frame = pd.DataFrame(data)
    for name in ("access_token_expires_at", "refresh_token_expires_at", "last_used_at"):
        frame[name] = _ms_to_timestamps(data[name])
    extra = sorted(set(frame["provider"]) - set(PROVIDERS))
    return frame.astype({**columns, "provider": pd.CategoricalDtype([*PROVIDERS, *extra])})


def quota_frame(rows: Iterable[tuple[str, QuotaUsage]]) -> pd.DataFrame:
    """One row per member with its quota usage."""
    items = list(rows)
    if not items:
        return _empty(QUOTA_COLUMNS)
    frame = pd.DataFrame(
        {
            "member_id": [member_id for member_id, _ in items],
            "interval": [q.interval for _, q in items],
            "usage_count": [q.usage_count for _, q in items],
            "usage_limit": [q.usage_limit for _, q in items],
            "is_unlimited": [q.is_unlimited for _, q in items],
            "is_over_limit": [q.is_over_limit for _, q in items],
            "reset_in_days": [q.reset_in_days for _, q in items],
        }
    )
    return frame.astype(QUOTA_COLUMNS)
