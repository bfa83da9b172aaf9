"""Typed records for what PluginLab's admin API returns.

Each record is built from the wire JSON with ``from_json`` and keeps unknown fields in
``extra`` so nothing the API adds is dropped. Identity tokens are wrapped in
:class:`~plabdata.config.Secret` so they never show in a repr or a log line.

    >>> m = Member.from_json({"id": "mem_1", "auth": {"email": "a@x.io", "isVerified": True,
    ...     "hasPassword": False, "signInMethod": "google"}, "customFields": {}, "metadata": {},
    ...     "createdAtMs": 0, "updatedAtMs": 0})
    >>> m.email
    'a@x.io'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plabdata.config import Secret

_MEMBER_KEYS = frozenset(
    {
        "id",
        "auth",
        "name",
        "givenName",
        "familyName",
        "pictureUrl",
        "customFields",
        "metadata",
        "createdAtMs",
        "updatedAtMs",
    }
)
_AUTH_KEYS = frozenset({"isVerified", "email", "hasPassword", "signInMethod"})


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


@dataclass(frozen=True)
class Member:
    """A plugin member, as PluginLab describes it."""

    id: str
    email: str
    is_verified: bool
    has_password: bool
    sign_in_method: str
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    picture_url: str | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    created_at_ms: int = 0
    updated_at_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Member:
        auth = data.get("auth") or {}
        extra = {k: v for k, v in data.items() if k not in _MEMBER_KEYS}
        extra.update({f"auth.{k}": v for k, v in auth.items() if k not in _AUTH_KEYS})
        return cls(
            id=str(data["id"]),
            email=str(auth.get("email", "")),
            is_verified=bool(auth.get("isVerified", False)),
            has_password=bool(auth.get("hasPassword", False)),
            sign_in_method=str(auth.get("signInMethod", "")),
            name=data.get("name"),
            given_name=data.get("givenName"),
            family_name=data.get("familyName"),
            picture_url=data.get("pictureUrl"),
            custom_fields=_str_map(data.get("customFields")),
            metadata=_str_map(data.get("metadata")),
            created_at_ms=int(data.get("createdAtMs") or 0),
            updated_at_ms=int(data.get("updatedAtMs") or 0),
            extra=extra,
        )


@dataclass(frozen=True)
class Identity:
    """A member's third-party identity. Tokens are secrets: call ``.reveal()`` to use them."""

    provider: str
    provider_user_id: str
    access_token_expires_at_ms: int | None = None
    refresh_token_expires_at_ms: int | None = None
    last_used_at_ms: int | None = None
    access_token: Secret | None = None
    refresh_token: Secret | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], provider: str | None = None) -> Identity:
        def opt_int(key: str) -> int | None:
            value = data.get(key)
            return None if value is None else int(value)

        def opt_secret(key: str) -> Secret | None:
            value = data.get(key)
            return None if not value else Secret(str(value))

        return cls(
            provider=str(data.get("provider") or provider or ""),
            provider_user_id=str(data.get("providerUserId", "")),
            access_token_expires_at_ms=opt_int("accessTokenExpiresAtMs"),
            refresh_token_expires_at_ms=opt_int("refreshTokenExpiresAtMs"),
            last_used_at_ms=opt_int("lastUsedAtMs"),
            access_token=opt_secret("accessToken"),
            refresh_token=opt_secret("refreshToken"),
        )


@dataclass(frozen=True)
class QuotaUsage:
    """A member's quota usage in the current interval of its plan."""

    interval: str
    is_over_limit: bool
    is_unlimited: bool
    reset_in_days: int
    usage_count: int
    usage_limit: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QuotaUsage:
        return cls(
            interval=str(data.get("interval", "")),
            is_over_limit=bool(data.get("isOverLimit", False)),
            is_unlimited=bool(data.get("isUnlimited", False)),
            reset_in_days=int(data.get("resetInDays") or 0),
            usage_count=int(data.get("usageCount") or 0),
            usage_limit=int(data.get("usageLimit") or 0),
        )


@dataclass(frozen=True)
class MembersPage:
    """One page of ``GET /members``: its members, the server's total and the next cursor."""

    items: list[Member]
    total: int
    next_page_token: str | None
