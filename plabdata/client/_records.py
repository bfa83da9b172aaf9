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


class ShapeError(ValueError):
    """A JSON answer that is not the documented shape (the client turns it into
    :class:`~plabdata.errors.UnexpectedResponse`, naming the endpoint)."""


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ShapeError(f"{what} is {_kind(value)}, not an object")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _required_str(data: Mapping[str, Any], key: str, what: str, *, empty: bool = False) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not (value or empty):
        shown = ("empty" if value == "" else _kind(value)) if key in data else "missing"
        raise ShapeError(f"{what}.{key} is {shown}")
    return value


def _optional_str(data: Mapping[str, Any], key: str, what: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ShapeError(f"{what}.{key} is {_kind(value)}, not a string")
    return value


def _int(data: Mapping[str, Any], key: str, what: str, *, required: bool) -> int | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        shown = _kind(value) if key in data else "missing"
        raise ShapeError(f"{what}.{key} is {shown}, not a number")
    return int(value)


def _bool(data: Mapping[str, Any], key: str, what: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ShapeError(f"{what}.{key} is {_kind(value)}, not a boolean")
    return value


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    mapping = _object(value, what)
    return {str(k): "" if v is None else str(v) for k, v in mapping.items()}


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
    def from_json(cls, data: Any) -> Member:
        """A member from its wire JSON.

        Raises:
            ShapeError: a required field is missing or of the wrong type.
        """
        data = _object(data, "member")
        member_id = _required_str(data, "id", "member")
        auth = _object(data.get("auth"), f"member {member_id}: auth")
        what = f"member {member_id}"
        extra = {k: v for k, v in data.items() if k not in _MEMBER_KEYS}
        extra.update({f"auth.{k}": v for k, v in auth.items() if k not in _AUTH_KEYS})
        return cls(
            id=member_id,
            email=_required_str(auth, "email", f"{what}: auth", empty=True),
            is_verified=_bool(auth, "isVerified", f"{what}: auth"),
            has_password=_bool(auth, "hasPassword", f"{what}: auth"),
            sign_in_method=_optional_str(auth, "signInMethod", f"{what}: auth") or "",
            name=_optional_str(data, "name", what),
            given_name=_optional_str(data, "givenName", what),
            family_name=_optional_str(data, "familyName", what),
            picture_url=_optional_str(data, "pictureUrl", what),
            custom_fields=_str_map(data.get("customFields"), f"{what}: customFields"),
            metadata=_str_map(data.get("metadata"), f"{what}: metadata"),
            created_at_ms=_int(data, "createdAtMs", what, required=False) or 0,
            updated_at_ms=_int(data, "updatedAtMs", what, required=False) or 0,
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
    def from_json(cls, data: Any, provider: str | None = None) -> Identity:
        """An identity from its wire JSON (``provider`` when the JSON does not say it).

        Raises:
            ShapeError: a field is of the wrong type.
        """
        what = f"identity {provider or ''}".strip()
        data = _object(data, what)

        def opt_int(key: str) -> int | None:
            return _int(data, key, what, required=False)

        def opt_secret(key: str) -> Secret | None:
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise ShapeError(f"{what}.{key} is {_kind(value)}, not a string")
            return Secret(value) if value else None

        user_id = data.get("providerUserId", "")
        if not isinstance(user_id, str | int):
            raise ShapeError(f"{what}.providerUserId is {_kind(user_id)}, not a string")
        return cls(
            provider=str(_optional_str(data, "provider", what) or provider or ""),
            provider_user_id=str(user_id),
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
    def from_json(cls, data: Any) -> QuotaUsage:
        """Quota usage from its wire JSON (every field is required, as the SDK reads them).

        Raises:
            ShapeError: a field is missing or of the wrong type.
        """
        what = "quota usage"
        data = _object(data, what)
        return cls(
            interval=_required_str(data, "interval", what),
            is_over_limit=_bool(data, "isOverLimit", what),
            is_unlimited=_bool(data, "isUnlimited", what),
            reset_in_days=_int(data, "resetInDays", what, required=True) or 0,
            usage_count=_int(data, "usageCount", what, required=True) or 0,
            usage_limit=_int(data, "usageLimit", what, required=True) or 0,
        )


@dataclass(frozen=True)
class MembersPage:
    """One page of ``GET /members``: its members, the server's total and the next cursor."""

    items: list[Member]
    total: int
    next_page_token: str | None

    @classmethod
    def from_json(cls, data: Any) -> MembersPage:
        """A page from its wire JSON: ``items``, ``total`` and ``nextPageToken`` are all
        required (the official client indexes each), the token may be null.

        Raises:
            ShapeError: a key is missing or of the wrong type.
        """
        data = _object(data, "the page")
        items = data.get("items")
        if not isinstance(items, list):
            raise ShapeError(
                f"the page's items is {_kind(items) if 'items' in data else 'missing'}"
            )
        if "nextPageToken" not in data:
            raise ShapeError("the page has no nextPageToken (null on the last page)")
        token = data["nextPageToken"]
        if token is not None and not isinstance(token, str):
            raise ShapeError(f"the page's nextPageToken is {_kind(token)}, not a string")
        return cls(
            items=[Member.from_json(item) for item in items],
            total=_int(data, "total", "the page", required=True) or 0,
            next_page_token=token or None,
        )
