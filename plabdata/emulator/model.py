"""The emulator's domain: member, identity and event records, plans, and their JSON shapes.

Pure values and functions only (no I/O), so the store, the routes and the demo-data
generator agree on one definition of each PluginLab object.

    >>> member_id_for(" Ada@Example.com ", "plg_x") == member_id_for("ada@example.com", "plg_x")
    True
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SIGN_IN_METHODS = (
    "email-and-password",
    "magic-email-code",
    "google",
    "github",
    "gitlab",
    "microsoft",
)
PROVIDERS = ("google", "github", "gitlab", "microsoft")
REFRESHABLE_PROVIDERS = ("google", "gitlab")
ACCESS_TOKEN_LIFETIME_MS = 3_600_000

REFRESH_FAILED_MESSAGE = (
    "The refresh token request has been rejected by the provider. It most likely means the "
    "refresh token is expired. Please ask your user to sign-in again using your auth-portal url."
)


@dataclass(frozen=True)
class Plan:
    """A monetization plan. Emulator-internal: it shows only in quota usage and user tokens.

    ``usage_limit`` is per calendar month (UTC); an unlimited plan reports ``usageLimit`` 0
    together with ``isUnlimited`` true.
    """

    name: str
    plan_id: str
    price_id: str | None
    usage_limit: int
    is_unlimited: bool = False


PLANS: dict[str, Plan] = {
    "free": Plan("free", "Fq7xKp2LmN9sVt4RbW1z", None, 100),
    "pro": Plan("pro", "Pr3dLk8vQz6YhTn2MwXa", "Xb4nMs7DfL2oWq9EaVc6", 5000),
    "unlimited": Plan("unlimited", "Un5wGh3JkC8pZr1TyQe0", "Hc2vRt6YpB9sKd4NmLa8", 0, True),
}
DEFAULT_PLAN = "free"


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds (what every ``*AtMs`` field holds)."""
    return time.time_ns() // 1_000_000


def normalize_email(email: str) -> str:
    """The stored form of an email: trimmed and lower-cased (lookups are case-insensitive)."""
    return email.strip().lower()


def is_plausible_email(email: str) -> bool:
    """A structural check only: one ``@``, non-empty local part and domain, no whitespace."""
    if any(ch.isspace() for ch in email) or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    return bool(local) and bool(domain)


def member_id_for(email: str, plugin_id: str) -> str:
    """``mem_`` + sha1 hex of plugin id and normalized email: re-creating an email keeps its id."""
    digest = hashlib.sha1(f"{plugin_id}:{normalize_email(email)}".encode()).hexdigest()
    return f"mem_{digest}"


_HASH_ITERATIONS = 1_000  # an emulator: enough to never hold clear text, cheap enough for bulk


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A salted PBKDF2 hash, ``pbkdf2_sha256$iterations$salt$hash`` (hex fields)."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _HASH_ITERATIONS)
    return f"pbkdf2_sha256${_HASH_ITERATIONS}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` value (constant-time compare)."""
    _, iterations, salt, expected = stored.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(digest.hex(), expected)


@dataclass
class MemberRecord:
    """One member row. ``password_hash`` is None for members who never set a password."""

    id: str
    email: str
    sign_in_method: str
    is_verified: bool
    created_at_ms: int
    updated_at_ms: int
    password_hash: str | None = None
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    picture_url: str | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    plan: str = DEFAULT_PLAN

    def to_json(self) -> dict[str, Any]:
        """The wire Member; absent optional name fields are omitted, never sent as null."""
        body: dict[str, Any] = {
            "id": self.id,
            "auth": {
                "isVerified": self.is_verified,
                "email": self.email,
                "hasPassword": self.password_hash is not None,
                "signInMethod": self.sign_in_method,
            },
        }
        for key, value in (
            ("name", self.name),
            ("givenName", self.given_name),
            ("familyName", self.family_name),
            ("pictureUrl", self.picture_url),
        ):
            if value is not None:
                body[key] = value
        body["customFields"] = dict(self.custom_fields)
        body["metadata"] = dict(self.metadata)
        body["createdAtMs"] = self.created_at_ms
        body["updatedAtMs"] = self.updated_at_ms
        return body


@dataclass
class IdentityRecord:
    """A member's identity at one OAuth provider. ``refresh_token_revoked`` is emulator-only."""

    member_id: str
    provider: str
    provider_user_id: str
    access_token: str | None = None
    refresh_token: str | None = None
    access_token_expires_at_ms: int | None = None
    refresh_token_expires_at_ms: int | None = None
    last_used_at_ms: int | None = None
    refresh_token_revoked: bool = False

    def to_json(self) -> dict[str, Any]:
        """The wire Identity; absent optional fields are omitted."""
        body: dict[str, Any] = {"provider": self.provider, "providerUserId": self.provider_user_id}
        for key, value in (
            ("accessTokenExpiresAtMs", self.access_token_expires_at_ms),
            ("refreshTokenExpiresAtMs", self.refresh_token_expires_at_ms),
            ("lastUsedAtMs", self.last_used_at_ms),
            ("accessToken", self.access_token),
            ("refreshToken", self.refresh_token),
        ):
            if value is not None:
                body[key] = value
        return body

    def can_refresh(self, at_ms: int) -> bool:
        """Whether the provider would still honour this identity's refresh token."""
        if self.refresh_token is None or self.refresh_token_revoked:
            return False
        expires = self.refresh_token_expires_at_ms
        return expires is None or expires > at_ms


@dataclass(frozen=True)
class EventRecord:
    """One custom event as received (the API has no client timestamp)."""

    id: int
    member_id: str | None
    source: str
    country_code: str | None
    subdivision_code: str | None
    is_in_quota: bool
    received_at_ms: int

    def to_json(self) -> dict[str, Any]:
        """Control-API view of an event (not part of PluginLab's contract)."""
        return {
            "id": self.id,
            "memberId": self.member_id,
            "eventSource": self.source,
            "countryCode": self.country_code,
            "subdivisionCode": self.subdivision_code,
            "isInQuota": self.is_in_quota,
            "receivedAtMs": self.received_at_ms,
        }


def month_bounds(at_ms: int) -> tuple[int, int]:
    """Start and end (epoch ms, UTC) of the calendar month holding ``at_ms``."""
    at = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    start = datetime(at.year, at.month, 1, tzinfo=UTC)
    days = calendar.monthrange(at.year, at.month)[1]
    end_ms = int(start.timestamp() * 1000) + days * 86_400_000
    return int(start.timestamp() * 1000), end_ms


def quota_usage(plan: Plan, usage_count: int, at_ms: int) -> dict[str, Any]:
    """The wire quota-usage body for a member on ``plan`` with ``usage_count`` events this month.

    Example::

        {"interval": "month", "isOverLimit": false, "isUnlimited": false,
         "resetInDays": 6, "usageCount": 12, "usageLimit": 100}
    """
    _, end_ms = month_bounds(at_ms)
    return {
        "interval": "month",
        "isOverLimit": (not plan.is_unlimited) and usage_count >= plan.usage_limit,
        "isUnlimited": plan.is_unlimited,
        "resetInDays": math.ceil((end_ms - at_ms) / 86_400_000),
        "usageCount": usage_count,
        "usageLimit": plan.usage_limit,
    }
