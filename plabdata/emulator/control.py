"""The emulator's own control API under ``/_emulator/`` — not part of PluginLab's contract.

No auth, never rate-limited or fault-injected: tests and benchmarks drive the emulator
through it (``EmulatorHandle`` wraps every call), in-process or in another process alike.

    POST /_emulator/seed {"members": 100, "randomSeed": 0}
    {"memberIds": ["mem_…", …], "total": 100}
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from plabdata.emulator._http import (
    Problem,
    RawPathRoute,
    json_response,
    optional_bool,
    optional_int,
    optional_str,
    read_object,
    reject_unknown,
)
from plabdata.emulator.churn import advance
from plabdata.emulator.clock import DAY_MS, ClockBackwards
from plabdata.emulator.faults import Faults, FaultsInvalid
from plabdata.emulator.model import PLANS, PROVIDERS, IdentityRecord, MemberRecord
from plabdata.emulator.profile import Profile, ProfileInvalid
from plabdata.emulator.seed import seed_members
from plabdata.emulator.state import EmulatorState

PREFIX = "/_emulator"
MAX_SEED = 1_000_000
#: The longest single advance (ten years), and the furthest back a clock may be set.
MAX_DAYS = 3650
_IDENTITY_STRINGS = {"providerUserId", "accessToken", "refreshToken"}
_IDENTITY_INTS = {"accessTokenExpiresAtMs", "refreshTokenExpiresAtMs", "lastUsedAtMs"}
_ATTRIBUTES = {
    "providerUserId": "provider_user_id",
    "accessToken": "access_token",
    "refreshToken": "refresh_token",
    "accessTokenExpiresAtMs": "access_token_expires_at_ms",
    "refreshTokenExpiresAtMs": "refresh_token_expires_at_ms",
    "lastUsedAtMs": "last_used_at_ms",
    "refreshTokenRevoked": "refresh_token_revoked",
}


def _int_field(body: dict[str, Any], key: str, *, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Problem(
            400, f"invalid-{key.lower()}", f"'{key}' must be an integer in [{low}, {high}]."
        )
    return value


def _days(body: dict[str, Any], key: str, *, allow_zero: bool) -> float:
    value = body.get(key, 7 if key == "days" else None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        value = math.nan
    if not (value >= 0 if allow_zero else value > 0) or not value <= MAX_DAYS:
        low = "0" if allow_zero else "more than 0"
        raise Problem(
            400,
            f"invalid-{key.lower()}",
            f"'{key}' must be a number of days, {low} and at most {MAX_DAYS}.",
        )
    return float(value)


class ControlApi:
    """Reset, seed, clock, faults, stats, tokens, keys and per-member test hooks."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.store = state.store

    def routes(self) -> list[BaseRoute]:
        """Starlette routes under ``/_emulator``."""
        return [
            RawPathRoute(PREFIX + "/health", self.health, methods=["GET"]),
            RawPathRoute(PREFIX + "/reset", self.reset, methods=["POST"]),
            RawPathRoute(PREFIX + "/seed", self.seed, methods=["POST"]),
            RawPathRoute(PREFIX + "/clock", self.get_clock, methods=["GET"]),
            RawPathRoute(PREFIX + "/clock", self.set_clock, methods=["PUT"]),
            RawPathRoute(PREFIX + "/clock/advance", self.advance_clock, methods=["POST"]),
            RawPathRoute(PREFIX + "/faults", self.get_faults, methods=["GET"]),
            RawPathRoute(PREFIX + "/faults", self.put_faults, methods=["PUT"]),
            RawPathRoute(PREFIX + "/profile", self.get_profile, methods=["GET"]),
            RawPathRoute(PREFIX + "/profile", self.put_profile, methods=["PUT"]),
            RawPathRoute(PREFIX + "/stats", self.stats, methods=["GET"]),
            RawPathRoute(PREFIX + "/tokens", self.mint_token, methods=["POST"]),
            RawPathRoute(PREFIX + "/keys/rotate", self.rotate_key, methods=["POST"]),
            RawPathRoute(PREFIX + "/members/{member_id}/plan", self.get_plan, methods=["GET"]),
            RawPathRoute(PREFIX + "/members/{member_id}/plan", self.set_plan, methods=["PUT"]),
            RawPathRoute(
                PREFIX + "/members/{member_id}/identities/{provider}",
                self.set_identity,
                methods=["PUT"],
            ),
            RawPathRoute(PREFIX + "/events", self.events, methods=["GET"]),
        ]

    def _member(self, member_id: str) -> MemberRecord:
        member = self.store.get_member(member_id)
        if member is None:
            raise Problem(404, "member-not-found", f"No member with id {member_id}.")
        return member

    async def health(self, request: Request) -> Response:
        """``{"ok": true, "pluginId": …, "kid": …}`` once the server answers."""
        return json_response(
            {"ok": True, "pluginId": self.state.plugin_id, "kid": self.state.keys.current_kid}
        )

    async def reset(self, request: Request) -> Response:
        """Delete all members, identities, events and counters (keys, faults, profile stay)."""
        self.state.reset()
        return json_response({})

    async def seed(self, request: Request) -> Response:
        """Add ``members`` deterministic demo members for ``randomSeed``."""
        body = await read_object(request, allow_empty=True)
        reject_unknown(body, {"members", "randomSeed"})
        count = _int_field(body, "members", default=0, low=0, high=MAX_SEED)
        random_seed = _int_field(body, "randomSeed", default=0, low=-(2**62), high=2**62)
        ids = seed_members(
            self.store,
            count,
            random_seed=random_seed,
            plugin_id=self.state.plugin_id,
            now=self.state.clock.now_ms(),
        )
        return json_response({"memberIds": ids, "total": self.store.count_members()})

    async def get_clock(self, request: Request) -> Response:
        """``{nowMs, now, offsetMs}``: the emulator's time."""
        return json_response(self.state.clock.to_json())

    async def set_clock(self, request: Request) -> Response:
        """Set the time: ``{"nowMs": …}`` or ``{"daysAgo": …}``; never back while data exists."""
        body = await read_object(request)
        reject_unknown(body, {"nowMs", "daysAgo"})
        if ("nowMs" in body) == ("daysAgo" in body):
            raise Problem(400, "invalid-clock", "Give exactly one of 'nowMs' and 'daysAgo'.")
        clock = self.state.clock
        if "nowMs" in body:
            at = optional_int(body, "nowMs", "invalid-nowms")
            if at is None or at < 0:
                raise Problem(400, "invalid-nowms", "'nowMs' must be a non-negative integer.")
        else:
            days = _days(body, "daysAgo", allow_zero=True)
            at = clock.now_ms() - clock.offset_ms - round(days * DAY_MS)
        try:
            clock.set(at)
        except ClockBackwards as exc:
            raise Problem(409, "clock-backwards", str(exc)) from None
        return json_response(clock.to_json())

    async def advance_clock(self, request: Request) -> Response:
        """Let ``days`` pass (``churn`` true by default: signups, deletions, plan moves…)."""
        body = await read_object(request, allow_empty=True)
        reject_unknown(body, {"days", "churn", "randomSeed"})
        days = _days(body, "days", allow_zero=False)
        churn = optional_bool(body, "churn", "invalid-churn")
        random_seed = _int_field(body, "randomSeed", default=0, low=-(2**62), high=2**62)
        done = advance(
            self.store,
            self.state.clock,
            plugin_id=self.state.plugin_id,
            ms=round(days * DAY_MS),
            churn=True if churn is None else churn,
            random_seed=random_seed,
        )
        return json_response(
            {
                **self.state.clock.to_json(),
                "nowMs": done.to_ms,
                "fromMs": done.from_ms,
                "days": days,
                "steps": done.steps,
                "churn": done.counts.to_json(),
                "members": self.store.count_members(),
            }
        )

    async def get_faults(self, request: Request) -> Response:
        """The current fault knobs."""
        return json_response(self.state.faults.faults.to_json())

    async def put_faults(self, request: Request) -> Response:
        """Replace the knobs (absent ones take defaults) and reseed the fault generator."""
        body = await read_object(request, allow_empty=True)
        try:
            faults = Faults.from_json(body)
        except (FaultsInvalid, TypeError) as exc:
            raise Problem(400, "invalid-faults", str(exc)) from None
        self.state.faults.configure(faults)
        return json_response(faults.to_json())

    async def get_profile(self, request: Request) -> Response:
        """The documented reading the emulator plays (page cap, …)."""
        return json_response(self.state.profile.to_json())

    async def put_profile(self, request: Request) -> Response:
        """Replace the profile (absent settings take their defaults)."""
        body = await read_object(request, allow_empty=True)
        try:
            profile = Profile.from_json(body)
        except (ProfileInvalid, TypeError) as exc:
            raise Problem(400, "invalid-profile", str(exc)) from None
        self.state.profile = profile
        return json_response(profile.to_json())

    async def stats(self, request: Request) -> Response:
        """Stored counts and the contract requests served since start or reset."""
        return json_response({**self.store.counts(), **self.state.counters.to_json()})

    async def mint_token(self, request: Request) -> Response:
        """``{"token", "kid"}`` for ``{memberId, expiresIn?, claims?}`` (claims override).

        ``iss`` and the casing of the ``user`` claim come from the profile (``issuer``,
        ``userClaims``), so a token is indistinguishable from PluginLab's.
        """
        body = await read_object(request)
        reject_unknown(body, {"memberId", "expiresIn", "claims"})
        member_id = optional_str(body, "memberId", "invalid-member-id")
        if member_id is None:
            raise Problem(400, "invalid-member-id", "'memberId' is required.")
        expires_in = _int_field(body, "expiresIn", default=3600, low=-(10**9), high=10**9)
        claims = body.get("claims", {})
        if not isinstance(claims, dict):
            raise Problem(400, "invalid-claims", "'claims' must be an object.")
        profile = self.state.profile
        token = self.state.keys.mint(
            self._member(member_id),
            plugin_id=self.state.plugin_id,
            issuer=profile.issuer,
            user_claims=profile.user_claims,
            expires_in=expires_in,
            claims=claims,
        )
        return json_response({"token": token, "kid": self.state.keys.current_kid})

    async def rotate_key(self, request: Request) -> Response:
        """A new current signing key; the previous one stays published second."""
        return json_response({"kid": self.state.keys.rotate()})

    async def get_plan(self, request: Request) -> Response:
        """A member's plan: ``{memberId, plan, planId, priceId, usageLimit, isUnlimited}``."""
        return json_response(self._plan_json(self._member(request.path_params["member_id"])))

    async def set_plan(self, request: Request) -> Response:
        """Move a member to ``{"plan": "free" | "pro" | "unlimited"}``."""
        body = await read_object(request)
        reject_unknown(body, {"plan"})
        plan = body.get("plan")
        if not isinstance(plan, str) or plan not in PLANS:  # a list is unhashable: no `in`
            raise Problem(400, "invalid-plan", f"'plan' must be one of {', '.join(PLANS)}.")
        member = self._member(request.path_params["member_id"])
        member.plan = str(plan)
        self.store.save_member(member)
        return json_response(self._plan_json(member))

    @staticmethod
    def _plan_json(member: MemberRecord) -> dict[str, Any]:
        plan = PLANS[member.plan]
        return {
            "memberId": member.id,
            "plan": plan.name,
            "planId": plan.plan_id,
            "priceId": plan.price_id,
            "usageLimit": plan.usage_limit,
            "isUnlimited": plan.is_unlimited,
        }

    async def set_identity(self, request: Request) -> Response:
        """Create or change an identity's fields (e.g. expiries, ``refreshTokenRevoked``)."""
        provider = request.path_params["provider"]
        if provider not in PROVIDERS:
            raise Problem(
                400, "invalid-provider", f"'provider' must be one of {', '.join(PROVIDERS)}."
            )
        body = await read_object(request, allow_empty=True)
        reject_unknown(body, set(_ATTRIBUTES))
        for key in _IDENTITY_STRINGS:
            optional_str(body, key, f"invalid-{key.lower()}")
        for key in _IDENTITY_INTS:
            optional_int(body, key, f"invalid-{key.lower()}")
        optional_bool(body, "refreshTokenRevoked", "invalid-refreshtokenrevoked")
        member = self._member(request.path_params["member_id"])
        identity = self.store.identity(member.id, provider) or IdentityRecord(
            member_id=member.id, provider=provider, provider_user_id=f"{provider}-{member.id[4:16]}"
        )
        for key, value in body.items():
            if key == "providerUserId" and value is None:
                raise Problem(400, "invalid-provideruserid", "'providerUserId' cannot be null.")
            setattr(
                identity, _ATTRIBUTES[key], bool(value) if key == "refreshTokenRevoked" else value
            )
        self.store.save_identity(identity)
        return json_response(
            {**identity.to_json(), "refreshTokenRevoked": identity.refresh_token_revoked}
        )

    async def events(self, request: Request) -> Response:
        """``{"items": [...]}``: stored events, filtered by ``memberId`` and/or ``source``."""
        query = request.query_params
        source = query.get("source")
        events = self.store.events(
            member_id=query.get("memberId") or None,
            source=source.upper() if source else None,
        )
        return json_response({"items": [event.to_json() for event in events]})
