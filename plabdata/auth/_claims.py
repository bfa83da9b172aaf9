"""A verified token's claims, typed: who issued it, for which plugin, which member and plan.

The ``user`` claim comes in two casings. Both SDKs read camelCase (``id, email, name,
givenName, planId, priceId``); PluginLab's "Verifying ID Tokens" article shows snake_case
(``email, name, given_name, family_name, plan_id, price_id``, and no ``id``). Reading only one
would silently give ``plan_id=None`` for the other — the very field a plugin gates on — so both
are read, camelCase winning when a token carries both, and a missing ``user.id`` falls back to
the top-level ``uid`` (the member id either way).

    >>> user_from_claim({"email": "ada@example.com", "plan_id": "pro"}, uid="mem_1").plan_id
    'pro'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from plabdata.errors import TokenAudienceError, TokenExpired, TokenIssuerError, TokenMalformed

__all__ = ["TokenPayload", "TokenUser", "check_times", "payload_from_claims", "user_from_claim"]

# Issuers are not secrets, but ``iss`` is whatever the token's author wrote: keep it short.
_SHOWN_ISSUER_CHARS: Final = 80


@dataclass(frozen=True, slots=True)
class TokenUser:
    """The ``user`` claim: who the member is and which plan they pay for.

    ``family_name`` is last so that positional construction from before it existed still works.
    """

    id: str
    email: str
    name: str | None = None
    given_name: str | None = None
    plan_id: str | None = None
    price_id: str | None = None
    family_name: str | None = None


@dataclass(frozen=True, slots=True)
class TokenPayload:
    """A verified token's claims. ``iat`` and ``exp`` are seconds since the epoch."""

    uid: str
    iss: str
    aud: str
    iat: int
    exp: int
    user: TokenUser


def payload_from_claims(claims: Mapping[str, Any], *, audience: str, issuer: str) -> TokenPayload:
    """Typed claims of a token whose signature has verified; the times are checked apart.

    Registered claims are checked for presence and type, ``iss`` against ``issuer`` and
    ``aud`` against ``audience``.

    Example:
        >>> payload = payload_from_claims(claims, audience="plugin:p1:admin",
        ...                               issuer="https://auth.pluginlab.ai")
        >>> payload.user.plan_id
        'pro'
    """
    iat, exp = _number(claims, "iat"), _number(claims, "exp")
    uid = _text(claims, "uid")
    iss = _text(claims, "iss")
    if iss != issuer:
        raise TokenIssuerError(
            f"the token was issued by {_shown(iss)!r}, not by the expected issuer {issuer!r}"
        )
    _check_audience(claims, audience)
    user = claims.get("user")
    if not isinstance(user, dict):
        raise TokenMalformed("the token lacks the 'user' claim")
    return TokenPayload(
        uid=uid, iss=iss, aud=audience, iat=iat, exp=exp, user=user_from_claim(user, uid=uid)
    )


def user_from_claim(user: Mapping[str, Any], *, uid: str) -> TokenUser:
    """The ``user`` claim in either casing (camelCase wins); ``uid`` stands in for ``user.id``.

    Example:
        >>> user = user_from_claim({"email": "a@x.test", "plan_id": "pro"}, uid="mem_1")
        >>> user.id, user.plan_id
        ('mem_1', 'pro')
    """
    member_id = uid if user.get("id") is None else _text(user, "id", "user.id")
    return TokenUser(
        id=member_id,
        email=_text(user, "email", "user.email"),
        name=_optional_text(user, "name", "name"),
        given_name=_optional_text(user, "givenName", "given_name"),
        plan_id=_optional_text(user, "planId", "plan_id"),
        price_id=_optional_text(user, "priceId", "price_id"),
        family_name=_optional_text(user, "familyName", "family_name"),
    )


def check_times(iat: int, exp: int, nbf: object, now: float, leeway: float) -> None:
    """Refuse a token outside its lifetime (``exp``, ``iat``, ``nbf``) by more than ``leeway``.

    Example:
        >>> check_times(iat=1000, exp=4600, nbf=None, now=2000.0, leeway=30.0)
    """
    if exp <= now - leeway:
        raise TokenExpired("the token has expired")
    if iat > now + leeway:
        raise TokenExpired("the token is not valid yet (issued in the future)")
    if nbf is not None:
        if isinstance(nbf, bool) or not isinstance(nbf, int | float) or not math.isfinite(nbf):
            raise TokenMalformed("the token's 'nbf' claim is not a number")
        if nbf > now + leeway:
            raise TokenExpired("the token is not valid yet (nbf)")


def _shown(issuer: str) -> str:
    if len(issuer) <= _SHOWN_ISSUER_CHARS:
        return issuer
    return issuer[:_SHOWN_ISSUER_CHARS] + "…"


def _number(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if value is None:
        raise TokenMalformed(f"the token lacks the {name!r} claim")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenMalformed(f"the token's {name!r} claim is not a number")
    return int(value)


def _check_audience(claims: Mapping[str, Any], audience: str) -> None:
    aud = claims.get("aud")
    if aud is None or aud == [] or aud == "":
        raise TokenMalformed("the token lacks the 'aud' claim")
    if isinstance(aud, str):
        accepted = aud == audience
    elif isinstance(aud, list) and all(isinstance(item, str) for item in aud):
        accepted = audience in aud
    else:
        raise TokenMalformed("the token's 'aud' claim is not a string or a list of strings")
    if not accepted:
        raise TokenAudienceError("the token was issued for another audience (plugin)")


def _text(claims: Mapping[str, Any], name: str, label: str | None = None) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise TokenMalformed(f"the token's {label or name!r} claim is missing or not a string")
    return value


def _optional_text(user: Mapping[str, Any], camel: str, snake: str) -> str | None:
    # A null counts as absent, so {"planId": null, "plan_id": "pro"} still gives the plan.
    name = camel if user.get(camel) is not None else snake
    value = user.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TokenMalformed(f"the token's 'user.{name}' claim is not a string")
    return value
